# Registry e2e checks: push/pull of rules-image-tool against real registries (Debian's
# docker-registry) in four modes, a token server and a fault-injecting proxy, verified by
# skopeo (every digest) and a Docker engine. Sourced after e2e/lib.sh and registries.sh;
# each function is one `check` and returns 0/1, saying why on failure.
#
# registry_up starts everything once per run; registry_stop_all (in e2e_cleanup) stops it.

# Ports (loopback only); REGISTRY_E2E_PORT_BASE moves the whole block.
reg_port_base=${REGISTRY_E2E_PORT_BASE:-5001}
reg_port_plain=$reg_port_base            # plain HTTP, no auth
reg_port_plain2=$((reg_port_base + 1))   # second plain registry (multi-destination)
reg_port_basic=$((reg_port_base + 2))    # htpasswd (alice/s3cret), TLS with the test CA
reg_port_tls=$((reg_port_base + 3))      # TLS with the test CA, no auth
reg_port_token=$((reg_port_base + 4))    # bearer tokens from the token server, plain HTTP
reg_port_token_server=$((reg_port_base + 5))
reg_port_proxy=$((reg_port_base + 6))    # fault proxy in front of "plain"

reg_tool=${RULES_IMAGE_TOOL:-$repo_root/tools/target/release/rules-image-tool}
reg_hello_line="hello from the rules_image registry e2e"
rw=   # work dir, set by registry_e2e_setup

# ---------------------------------------------------------------------------------------------
# Setup: packages, PKI, servers, test images.

registry_e2e_setup() {
  rw=$1
  mkdir -p "$rw"
  registry_init "$rw/registries"
  registry_ensure_packages || return 1
  registry_make_pki || return 1
  registry_start plain plain "$reg_port_plain" &&
    registry_start plain2 plain "$reg_port_plain2" &&
    registry_start basic basic "$reg_port_basic" &&
    registry_start tls tls "$reg_port_tls" &&
    token_server_start "$reg_port_token_server" &&
    registry_start token token "$reg_port_token" &&
    fault_proxy_start proxy "$reg_port_proxy" "$reg_port_plain" || return 1
  mkdir -p "$rw/docker-empty" && echo '{"auths": {}}' >"$rw/docker-empty/config.json"
  write_docker_config "$rw/docker-alice" "$registry_password"
  write_docker_config "$rw/docker-wrong" 'wr0ng-Passw0rd-e2e'
}

# DIR/config.json with alice:PASSWORD for the basic and token registries (by every name).
write_docker_config() {
  local dir=$1 auth
  auth=$(printf '%s:%s' "$registry_user" "$2" | base64 -w0)
  mkdir -p "$dir"
  jq -n --arg a "$auth" --arg b "${registry_addr[basic]}" --arg bn "$registry_tls_name:$reg_port_basic" \
    --arg t "${registry_addr[token]}" '{auths: {($b): {auth: $a}, ($bn): {auth: $a}, ($t): {auth: $a}}}' >"$dir/config.json"
}

# Builds the static test program and the test images with the tool's existing subcommands:
#   a    hello + /message.txt "image A" + 1 MiB random file   (3 layers)
#   b    hello + /message.txt "image B"                        (other digest, for "tag not moved")
#   many hello + 6 small random layers                         (7 layers: token reuse)
#   big  4 layers of 2 MiB random data                         (kill half-way, resume)
#   chunky 2 layers of 1.5 MiB random data                     (chunked uploads cut by the proxy)
registry_make_images() {
  [[ -x $reg_tool ]] || { echo "no tool at $reg_tool" >&2; return 1; }
  local src="$rw/src"
  mkdir -p "$src"
  cat >"$src/hello.c" <<EOF
#include <stdio.h>
int main(void) {
  puts("$reg_hello_line");
  FILE *f = fopen("/message.txt", "r");
  if (f) { char b[256]; size_t n = fread(b, 1, sizeof b - 1, f); b[n] = 0; printf("message: %s\n", b); }
  return 0;
}
EOF
  gcc -static -O2 -o "$src/hello" "$src/hello.c" || return 1
  echo "image A" >"$src/msg-a"; echo "image B" >"$src/msg-b"
  head -c 1048576 /dev/urandom >"$src/rand-1m"
  local i
  for i in 1 2 3 4 5 6; do head -c $((20000 + i * 1000)) /dev/urandom >"$src/small-$i"; done
  for i in 1 2 3 4; do head -c 2097152 /dev/urandom >"$src/big-$i"; done
  local T=$'\t'
  make_image a "exec$T/hello$T$src/hello" "file$T/message.txt$T$src/msg-a" "file$T/data/rand$T$src/rand-1m" || return 1
  make_image b "exec$T/hello$T$src/hello" "file$T/message.txt$T$src/msg-b" || return 1
  make_image many "exec$T/hello$T$src/hello" "file$T/s1$T$src/small-1" "file$T/s2$T$src/small-2" \
  "file$T/s3$T$src/small-3" "file$T/s4$T$src/small-4" "file$T/s5$T$src/small-5" "file$T/s6$T$src/small-6" || return 1
  make_image big "file$T/b1$T$src/big-1" "file$T/b2$T$src/big-2" "file$T/b3$T$src/big-3" "file$T/b4$T$src/big-4" || return 1
  for i in 1 2; do head -c 1572864 /dev/urandom >"$src/chunky-$i"; done
  make_image chunky "file$T/c1$T$src/chunky-1" "file$T/c2$T$src/chunky-2"
}

# make_image NAME ENTRY... — one layer per entry; writes $rw/img/NAME/{m.json,c.json,d,layout,blobs.args}.
make_image() {
  local name=$1; shift
  local d="$rw/img/$name" i=0 e layer_args=() blob_args=()
  rm -rf "$d"; mkdir -p "$d"
  for e in "$@"; do
    i=$((i + 1))
  "$reg_tool" layer --output "$d/l$i.tar.gz" --metadata "$d/l$i.json" "$e" || return 1
    layer_args+=(--layer "$d/l$i.json"); blob_args+=(--blob "$d/l$i.tar.gz")
  done
  echo '{"os":"linux","architecture":"amd64","entrypoint":["/hello"]}' >"$d/frag.json"
  "$reg_tool" manifest --config-fragment "$d/frag.json" "${layer_args[@]}" --output-manifest "$d/m.json" \
    --output-config "$d/c.json" --output-digest "$d/d" --output-descriptor "$d/desc.json" || return 1
  "$reg_tool" layout --manifest "$d/m.json" --config "$d/c.json" "${blob_args[@]}" --output "$d/layout" || return 1
  printf '%s\n' "${blob_args[@]}" >"$d/blobs.args"
}

img_digest() { tr -d '\n' <"$rw/img/$1/d"; }
img_blob_args() { mapfile -t _img_blob_args <"$rw/img/$1/blobs.args"; }
# Bytes of all blobs of an image (config + layers).
img_total_bytes() { jq '.config.size + ([.layers[].size] | add)' "$rw/img/$1/m.json"; }
img_blob_count() { jq '1 + (.layers | length)' "$rw/img/$1/m.json"; }

# ---------------------------------------------------------------------------------------------
# Helpers.

tool_has() {
  if ! "$reg_tool" help 2>/dev/null | grep -qE "^  $1( |$)"; then
    echo "rules-image-tool has no '$1' subcommand (yet): cannot run this check" >&2
    return 1
  fi
}

# run_tool TAG ARGS... — runs the tool (bounded to 180 s) with clean registry env; its stdout and
# stderr go to $rw/out/TAG.{out,err}; returns its exit code. Extra env via reg_env=(K=V ...).
reg_env=()
reg_wrap=()   # e.g. (registry_in_hosts_ns) for the TLS registries by name
run_tool() {
  local tag=$1; shift
  mkdir -p "$rw/out"
  "${reg_wrap[@]}" env -u REGISTRY_AUTH_FILE -u SSL_CERT_FILE DOCKER_CONFIG="$rw/docker-empty" RULES_IMAGE_RETRY_BASE_MS=20 \
  "${reg_env[@]}" timeout 180 "$reg_tool" "$@" >"$rw/out/$tag.out" 2>"$rw/out/$tag.err"
  local rc=$?
  ((rc == 0)) || { echo "rules-image-tool $1 exited $rc:" >&2; tail -8 "$rw/out/$tag.err" >&2; }
  return $rc
}

# push_image TAG IMAGE DEST [more push args...] — pushes with a summary in $rw/out/TAG.json.
push_image() {
  local tag=$1 img=$2 dest=$3; shift 3
  img_blob_args "$img"
  run_tool "$tag" push --manifest "$rw/img/$img/m.json" --config "$rw/img/$img/c.json" "${_img_blob_args[@]}" \
    --default-destination "$dest" --summary-json "$rw/out/$tag.json" "$@"
}

# summary_field TAG FIELD [DEST_INDEX]
summary_field() { jq -r ".destinations[${3:-0}].$2" "$rw/out/$1.json"; }

# Manifest digest of REF (docker://...) as the registry serves it; extra skopeo flags follow.
remote_digest() {
  local ref=$1; shift
  skopeo inspect --raw "$@" "$ref" | sha256sum | sed 's/^/sha256:/; s/ .*//'
}

# skopeo copies REF to a fresh OCI layout (verifying every digest) and checks its manifest digest.
skopeo_verify() {
  local ref=$1 want=$2; shift 2
  local dir="$rw/verify/$(echo "$ref" | tr -c 'a-zA-Z0-9' _)"
  rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
  skopeo copy -q "$@" "$ref" "oci:$dir:latest" || { echo "skopeo copy $ref failed" >&2; return 1; }
  local got
  got=$(remote_digest "$ref" "${@/--src-/--}") || return 1
  [[ $got == "$want" ]] || { echo "$ref has digest $got, expected $want" >&2; return 1; }
  # The copy holds our manifest byte for byte (skopeo kept it: same media types).
  local copied
  copied=$(jq -r '.manifests[0].digest' "$dir/index.json")
  [[ $copied == "$want" ]] || { echo "skopeo's copy of $ref has manifest $copied, expected $want" >&2; return 1; }
}

docker_run_check() {
  local ref=$1 msg=$2 out
  docker rmi -f "$ref" >/dev/null 2>&1
  docker pull -q "$ref" >/dev/null || { echo "docker pull $ref failed" >&2; return 1; }
  out=$(docker run --rm --network none "$ref") || { echo "docker run $ref failed" >&2; return 1; }
  docker rmi -f "$ref" >/dev/null 2>&1
  grep -qxF "$reg_hello_line" <<<"$out" && grep -qxF "message: $msg" <<<"$out" ||
    { echo "docker run $ref printed: $out" >&2; return 1; }
  echo "docker run $ref: $(head -1 <<<"$out")"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Infrastructure smoke tests (skopeo as the client): prove registries, PKI, tokens and proxy.

smoke_plain() {
  local name=$1 want ref
  want=$(img_digest a)
  ref="docker://${registry_addr[$name]}/smoke/app:v1"
  skopeo copy -q --dest-tls-verify=false "oci:$rw/img/a/layout:latest" "$ref" || return 1
  skopeo_verify "$ref" "$want" --src-tls-verify=false || return 1
  docker_run_check "${registry_addr[$name]}/smoke/app:v1" "image A"
}

smoke_basic() {
  local ref="docker://${registry_addr[basic]}/smoke/app:v1" certs="$registry_root/pki/certs.d" err
  if err=$(skopeo copy -q --dest-cert-dir "$certs" "oci:$rw/img/a/layout:latest" "$ref" 2>&1); then
    echo "anonymous push to the basic-auth registry succeeded" >&2; return 1
  fi
  grep -qiE 'unauthorized|authentication required' <<<"$err" || { echo "anonymous push: $err" >&2; return 1; }
  if err=$(skopeo copy -q --dest-cert-dir "$certs" --dest-creds alice:nope "oci:$rw/img/a/layout:latest" "$ref" 2>&1); then
    echo "push with a wrong password succeeded" >&2; return 1
  fi
  skopeo copy -q --dest-cert-dir "$certs" --dest-creds "$registry_user:$registry_password" \
  "oci:$rw/img/a/layout:latest" "$ref" || return 1
  skopeo_verify "$ref" "$(img_digest a)" --src-cert-dir "$certs" --src-creds "$registry_user:$registry_password"
}

smoke_tls() {
  local ref="docker://${registry_addr[tls]}/smoke/app:v1" certs="$registry_root/pki/certs.d" err
  if err=$(skopeo copy -q "oci:$rw/img/a/layout:latest" "$ref" 2>&1); then
    echo "push to the TLS registry succeeded without trusting the test CA" >&2; return 1
  fi
  grep -qi 'certificate' <<<"$err" || { echo "untrusted TLS push: $err" >&2; return 1; }
  skopeo copy -q --dest-cert-dir "$certs" "oci:$rw/img/a/layout:latest" "$ref" || return 1
  skopeo_verify "$ref" "$(img_digest a)" --src-cert-dir "$certs" || return 1
  # The bundle (system roots + test CA) is what SSL_CERT_FILE gets: OpenSSL's default verify
  # paths (Python here) trust the registry with it, and not without it. (curl ignores
  # SSL_CERT_FILE: its CA path is compiled in.)
  local probe='import ssl, sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5, context=ssl.create_default_context())'
  SSL_CERT_FILE=$registry_ca_bundle "$registry_python" -c "$probe" "https://${registry_addr[tls]}/v2/" ||
    { echo "TLS with SSL_CERT_FILE=$registry_ca_bundle failed" >&2; return 1; }
  ! env -u SSL_CERT_FILE "$registry_python" -c "$probe" "https://${registry_addr[tls]}/v2/" 2>/dev/null ||
    { echo "the system roots alone trust the test registry?" >&2; return 1; }
}

smoke_token() {
  local ref="docker://${registry_addr[token]}/smoke/app:v1" err before after
  if err=$(skopeo copy -q --dest-tls-verify=false "oci:$rw/img/a/layout:latest" "$ref" 2>&1); then
    echo "anonymous push to the token registry succeeded" >&2; return 1
  fi
  grep -qiE 'denied|unauthorized|authentication required' <<<"$err" || { echo "anonymous push: $err" >&2; return 1; }
  before=$(token_requests)
  skopeo copy -q --dest-tls-verify=false --dest-creds "$registry_user:$registry_password" \
  "oci:$rw/img/a/layout:latest" "$ref" || return 1
  after=$(token_requests)
  ((after > before)) || { echo "no token request logged" >&2; return 1; }
  tail -n $((after - before)) "$registry_root/token-server/requests.jsonl" | grep -q '"account": "alice".*"actions": \[[^]]*"push"' ||
    { echo "no push grant to alice in the token log" >&2; return 1; }
  ! grep -q "$registry_password" "$registry_root/token-server/requests.jsonl" || { echo "password in the token log" >&2; return 1; }
  skopeo_verify "$ref" "$(img_digest a)" --src-tls-verify=false --src-creds "$registry_user:$registry_password" || return 1
  # Anonymous clients are granted pull only.
  skopeo_verify "$ref" "$(img_digest a)" --src-tls-verify=false || return 1
  echo "skopeo push: $((after - before)) token request(s) for $(img_blob_count a) blobs"
}

# The proxy forwards faithfully, and each fault is visible at the HTTP level.
smoke_proxy() {
  local p=${registry_addr[proxy]} ref code hdrs t0 err
  fault_proxy_config proxy '{}' || return 1
  ref="docker://$p/smoke/via-proxy:v1"
  skopeo copy -q --dest-tls-verify=false "oci:$rw/img/a/layout:latest" "$ref" || return 1
  skopeo_verify "$ref" "$(img_digest a)" --src-tls-verify=false || return 1
  # The registry stored it: same digest straight from the registry.
  [[ $(remote_digest "docker://${registry_addr[plain]}/smoke/via-proxy:v1" --tls-verify=false) == "$(img_digest a)" ]] || return 1

  fault_proxy_config proxy '{"fail_every": 1, "status": 503, "max_faults": 2}'
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$p/v2/"); [[ $code == 503 ]] || { echo "503 mode: $code" >&2; return 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$p/v2/"); [[ $code == 503 ]] || { echo "503 mode (2): $code" >&2; return 1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$p/v2/"); [[ $code == 200 ]] || { echo "after max_faults: $code" >&2; return 1; }

  fault_proxy_config proxy '{"fail_every": 2, "status": 429, "max_faults": 1}'
  curl -s -o /dev/null "http://$p/v2/"
  hdrs=$(curl -s -D - -o /dev/null "http://$p/v2/")
  grep -q '^HTTP/1.1 429' <<<"$hdrs" && grep -qi '^Retry-After: 1' <<<"$hdrs" || { echo "429 mode: $hdrs" >&2; return 1; }

  fault_proxy_config proxy '{"delay_ms": 700}'
  t0=$(now); curl -s -o /dev/null "http://$p/v2/"
  awk -v e="$(elapsed "$t0")" 'BEGIN { exit !(e >= 0.7) }' || { echo "delay mode did not delay" >&2; return 1; }

  # A monolithic upload (POST + PUT with the body) cut after 100000 bytes: curl sees a reset.
  fault_proxy_config proxy '{"drop_upload_after": 100000, "max_faults": 1}'
  local loc
  loc=$(curl -s -D - -o /dev/null -X POST "http://$p/v2/smoke/drop/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
  [[ $loc == "http://$p/"* ]] || { echo "upload Location not through the proxy: $loc" >&2; return 1; }
  local blob="$rw/src/rand-1m" dg
  dg=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
  if curl -s -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$blob" \
  "$loc$([[ $loc == *\?* ]] && echo '&' || echo '?')digest=$dg"; then
    echo "upload through the dropping proxy did not fail" >&2; return 1
  fi
  [[ $(fault_proxy_stats proxy | jq '.by_kind["drop-upload"]') == 1 ]] || { echo "no drop counted" >&2; return 1; }

  # Corrupted blob GETs: skopeo's digest verification catches them.
  fault_proxy_config proxy '{"corrupt_blobs": true}'
  rm -rf "$rw/corrupt-copy"
  if err=$(skopeo copy -q --src-tls-verify=false "$ref" "oci:$rw/corrupt-copy:latest" 2>&1); then
    echo "skopeo copied corrupted blobs without complaint" >&2; return 1
  fi
  grep -qi 'digest' <<<"$err" || { echo "corrupt copy: $err" >&2; return 1; }
  fault_proxy_config proxy '{}'
}

# ---------------------------------------------------------------------------------------------
# rules-image-tool push / pull / fetch-blob.

push_plain() {
  tool_has push || return 1
  local dest="${registry_addr[plain]}/e2e/app" t0
  t0=$(now)
  push_image push-plain a "$dest" --default-tag v1 || return 1
  echo "first push: $(elapsed "$t0")s, $(summary_field push-plain bytes_uploaded) bytes uploaded"
  [[ $(jq -r .digest "$rw/out/push-plain.json") == "$(img_digest a)" ]] || { echo "summary digest != image digest" >&2; return 1; }
  [[ $(summary_field push-plain bytes_uploaded) == "$(img_total_bytes a)" ]] ||
    { echo "bytes_uploaded $(summary_field push-plain bytes_uploaded) != $(img_total_bytes a)" >&2; return 1; }
  skopeo_verify "docker://$dest:v1" "$(img_digest a)" --src-tls-verify=false || return 1
  docker_run_check "$dest:v1" "image A"
}

repush_zero() {
  tool_has push || return 1
  local dest="${registry_addr[plain]}/e2e/app" t0 up
  t0=$(now)
  push_image repush a "$dest" --default-tag v1 || return 1
  up=$(summary_field repush bytes_uploaded)
  echo "re-push: $(elapsed "$t0")s, bytes_uploaded=$up, blobs_skipped=$(summary_field repush blobs_skipped)"
  [[ $up == 0 ]] || { echo "re-push uploaded $up bytes" >&2; return 1; }
  [[ $(summary_field repush blobs_skipped) == "$(img_blob_count a)" ]] || { echo "not every blob skipped" >&2; return 1; }
}

multi_destination() {
  tool_has push || return 1
  local d1="${registry_addr[plain]}/e2e/multi" d2="${registry_addr[plain2]}/e2e/multi"
  push_image multi a "$d1" --default-destination "$d2" --default-tag v1 --default-tag v2 || return 1
  [[ $(jq '.destinations | length' "$rw/out/multi.json") == 2 ]] || { echo "summary has not 2 destinations" >&2; return 1; }
  local d t
  for d in "$d1" "$d2"; do
    for t in v1 v2; do
      [[ $(remote_digest "docker://$d:$t" --tls-verify=false) == "$(img_digest a)" ]] || { echo "$d:$t wrong" >&2; return 1; }
    done
  done
  skopeo_verify "docker://$d2:v2" "$(img_digest a)" --src-tls-verify=false
}

basic_auth_ok() {
  tool_has push || return 1
  local dest="$registry_tls_name:$reg_port_basic/e2e/app"
  reg_wrap=(registry_in_hosts_ns) reg_env=(DOCKER_CONFIG="$rw/docker-alice" SSL_CERT_FILE="$registry_ca_bundle")
  push_image basic-ok a "$dest" --default-tag v1; local rc=$?; reg_env=() reg_wrap=()
  ((rc == 0)) || return 1
  skopeo_verify "docker://${registry_addr[basic]}/${dest#*/}:v1" "$(img_digest a)" --src-cert-dir "$registry_root/pki/certs.d" \
    --src-creds "$registry_user:$registry_password"
}

basic_auth_wrong() {
  tool_has push || return 1
  local dest="$registry_tls_name:$reg_port_basic/e2e/wrong"
  reg_wrap=(registry_in_hosts_ns) reg_env=(DOCKER_CONFIG="$rw/docker-wrong" SSL_CERT_FILE="$registry_ca_bundle")
  push_image basic-wrong b "$dest" --default-tag v1 2>/dev/null; local rc=$?; reg_env=() reg_wrap=()
  ((rc != 0)) || { echo "push with a wrong password succeeded" >&2; return 1; }
  local err="$rw/out/basic-wrong.err"
  if grep -qF 'wr0ng-Passw0rd-e2e' "$err" || grep -qF "$(printf '%s:%s' alice wr0ng-Passw0rd-e2e | base64 -w0)" "$err"; then
    echo "stderr shows the password" >&2; return 1
  fi
  grep -qiE 'unauthori[sz]ed|authenticat|401|credential|denied' "$err" || { echo "error does not say why:" >&2; cat "$err" >&2; return 1; }
  echo "wrong password: exit $rc: $(grep -m1 -i error "$err" | cut -c1-200)"
}

tls_ok() {
  tool_has push || return 1
  local dest="$registry_tls_name:$reg_port_tls/e2e/app"
  reg_wrap=(registry_in_hosts_ns) reg_env=(SSL_CERT_FILE="$registry_ca_bundle")
  push_image tls-ok a "$dest" --default-tag v1; local rc=$?; reg_env=() reg_wrap=()
  ((rc == 0)) || return 1
  skopeo_verify "docker://${registry_addr[tls]}/${dest#*/}:v1" "$(img_digest a)" --src-cert-dir "$registry_root/pki/certs.d"
}

tls_untrusted() {
  tool_has push || return 1
  local dest="$registry_tls_name:$reg_port_tls/e2e/untrusted"
  reg_wrap=(registry_in_hosts_ns)
  push_image tls-untrusted b "$dest" --default-tag v1 2>/dev/null; local rc=$?; reg_wrap=()
  if ((rc == 0)); then
    echo "push to a registry whose CA is not trusted succeeded" >&2; return 1
  fi
  grep -qi 'certificate' "$rw/out/tls-untrusted.err" || { echo "no certificate error:" >&2; cat "$rw/out/tls-untrusted.err" >&2; return 1; }
  echo "untrusted: $(grep -m1 -i certificate "$rw/out/tls-untrusted.err" | cut -c1-200)"
}

# The TLS registry addressed by its loopback IP, trusted through SSL_CERT_FILE: the tool must
# notice that this loopback registry speaks TLS and verify it rather than use plain HTTP.
tls_loopback_ip() {
  tool_has push || return 1
  local dest="${registry_addr[tls]}/e2e/by-ip"
  reg_env=(SSL_CERT_FILE="$registry_ca_bundle")
  push_image tls-by-ip a "$dest" --default-tag v1; local rc=$?; reg_env=()
  ((rc == 0)) || return 1
  skopeo_verify "docker://$dest:v1" "$(img_digest a)" --src-cert-dir "$registry_root/pki/certs.d"
}

token_push() {
  tool_has push || return 1
  local dest="${registry_addr[token]}/e2e/many" before after n
  before=$(token_requests)
  reg_env=(DOCKER_CONFIG="$rw/docker-alice")
  push_image token many "$dest" --default-tag v1; local rc=$?; reg_env=()
  ((rc == 0)) || return 1
  after=$(token_requests)
  n=$((after - before))
  echo "token registry: $n token request(s) for $(img_blob_count many) blobs + manifest"
  ((n >= 1)) || { echo "no token requested" >&2; return 1; }
  # Reuse: fewer token requests than blobs. (With --jobs N, up to N workers may each fetch the
  # first token at the same moment; more than that means tokens are not shared.)
  local blobs; blobs=$(img_blob_count many)
  ((n < blobs)) || { echo "$n token requests for $blobs blobs: tokens are not reused" >&2; return 1; }
  local same
  same=$(tail -n "$n" "$registry_root/token-server/requests.jsonl" | jq -r '.scopes | join(" ")' | sort | uniq -c | sort -rn | head -1)
  [[ ${same%% r*} -le 1 ]] 2>/dev/null || echo "note: identical token requests:$same (concurrent workers, no single-flight)"
  skopeo_verify "docker://$dest:v1" "$(img_digest many)" --src-tls-verify=false --src-creds "$registry_user:$registry_password"
}

token_denied() {
  tool_has push || return 1
  reg_env=(DOCKER_CONFIG="$rw/docker-alice")
  push_image token-denied b "${registry_addr[token]}/e2e/forbidden" --default-tag v1 2>/dev/null; local rc=$?; reg_env=()
  ((rc != 0)) || { echo "push to a repository the token server denies succeeded" >&2; return 1; }
  ! grep -qi 'panicked' "$rw/out/token-denied.err" || { cat "$rw/out/token-denied.err" >&2; return 1; }
  echo "denied: $(grep -m1 -iE 'error|denied' "$rw/out/token-denied.err" | cut -c1-200)"
}

fault_push_args=()   # extra push flags for fault_push
# fault_push NAME IMAGE PROXYCONFIG — push through the proxy with PROXYCONFIG, expect success,
# at least one fault injected, and skopeo verification straight from the registry.
fault_push() {
  tool_has push || return 1
  local name=$1 img=$2 config=$3 t0 faults
  fault_proxy_config proxy "$config" || return 1
  t0=$(now)
  push_image "fault-$name" "$img" "${registry_addr[proxy]}/e2e/fault-$name" --default-tag v1 "${fault_push_args[@]}" || return 1
  faults=$(fault_proxy_stats proxy | jq .faults)
  fault_proxy_config proxy '{}'
  echo "$name: push completed in $(elapsed "$t0")s with $faults injected fault(s)"
  ((faults >= 1)) || { echo "no fault was injected: the check proves nothing" >&2; return 1; }
  skopeo_verify "docker://${registry_addr[plain]}/e2e/fault-$name:v1" "$(img_digest "$img")" --src-tls-verify=false
}

fault_503() { fault_push 503 a '{"fail_every": 2, "status": 503, "max_faults": 4}'; }
fault_500() { fault_push 500 b '{"fail_every": 3, "status": 500, "max_faults": 2}'; }
fault_429() { fault_push 429 many '{"fail_every": 2, "status": 429, "retry_after": "1", "max_faults": 3}'; }
fault_drop() { fault_push drop a '{"drop_upload_after": 200000, "methods": ["PATCH", "PUT"], "max_faults": 2}'; }
fault_slow() { fault_push slow b '{"delay_ms": 300}'; }
# Chunked uploads (PATCH of 256 KiB each): some PATCHes cut mid-body, some get 503.
fault_drop_chunked() {
  fault_push_args=(--chunk-size 262144)
  fault_push drop-chunked chunky '{"drop_upload_after": 100000, "methods": ["PATCH"], "max_faults": 3}'
  local rc=$?; fault_push_args=(); return $rc
}
fault_503_chunked() {
  fault_push_args=(--chunk-size 262144)
  fault_push 503-chunked chunky '{"fail_every": 5, "status": 503, "max_faults": 4, "methods": ["PATCH", "PUT"]}'
  local rc=$?; fault_push_args=(); return $rc
}

# pull and fetch-blob through the proxy while it answers 503 and 429: both retry and verify.
fault_pull() {
  tool_has pull && tool_has fetch-blob || return 1
  local reg=${registry_addr[plain]} p=${registry_addr[proxy]} repo=e2e/pull-faults want out="$rw/pull-faults"
  skopeo copy -q --dest-tls-verify=false "oci:$rw/img/a/layout:latest" "docker://$reg/$repo:v1" || return 1
  want=$(remote_digest "docker://$reg/$repo:v1" --tls-verify=false)
  rm -rf "$out"; mkdir -p "$out"
  fault_proxy_config proxy '{"fail_every": 2, "status": 503, "max_faults": 3}' || return 1
  run_tool pull-faults pull --image "$p/$repo@$want" --output-dir "$out"; local rc=$?
  local faults_pull; faults_pull=$(fault_proxy_stats proxy | jq .faults)
  # fetch-blob makes one request when all goes well: the first two answers are 429.
  fault_proxy_config proxy '{"fail_every": 1, "status": 429, "max_faults": 2}'
  local dg size
  dg=$(jq -r '.layers[2].digest' "$rw/img/a/m.json"); size=$(jq -r '.layers[2].size' "$rw/img/a/m.json")
  ((rc == 0)) && run_tool fetch-faults fetch-blob --repository "$p/$repo" --digest "$dg" --size "$size" --output "$out/blob"
  rc=$?
  local faults_fetch; faults_fetch=$(fault_proxy_stats proxy | jq .faults)
  fault_proxy_config proxy '{}'
  ((rc == 0)) || return 1
  ((faults_pull >= 1)) || { echo "no 503 was injected during pull" >&2; return 1; }
  ((faults_fetch >= 1)) || { echo "no 429 was injected during fetch-blob" >&2; return 1; }
  [[ sha256:$(sha256sum <"$out/blob" | cut -d' ' -f1) == "$dg" ]] || { echo "fetched blob has the wrong digest" >&2; return 1; }
  [[ $(jq -r .manifest_digest "$out/image.json") == "$want" ]] || { echo "pulled the wrong manifest" >&2; return 1; }
  echo "pull completed through $faults_pull 503(s), fetch-blob through $faults_fetch 429(s)"
}

# A push killed half-way (throttled proxy, SIGKILL), then rerun: only what was missing is uploaded.
kill_and_resume() {
  tool_has push || return 1
  local dest="${registry_addr[proxy]}/e2e/resume" total rc up skipped
  total=$(img_total_bytes big)
  fault_proxy_config proxy '{"throttle_bps": 1048576}' || return 1
  img_blob_args big
  mkdir -p "$rw/out"
  (env -u REGISTRY_AUTH_FILE -u SSL_CERT_FILE DOCKER_CONFIG="$rw/docker-empty" RULES_IMAGE_RETRY_BASE_MS=20 \
    timeout -s KILL 5 "$reg_tool" push --manifest "$rw/img/big/m.json" --config "$rw/img/big/c.json" \
  "${_img_blob_args[@]}" --default-destination "$dest" --default-tag v1 --jobs 1 \
    >"$rw/out/resume-killed.out" 2>"$rw/out/resume-killed.err"; exit $?) 2>/dev/null  # no "Killed" job notice
  rc=$?
  fault_proxy_config proxy '{}'
  ((rc == 137)) || { echo "first push was not killed (exit $rc)" >&2; tail -5 "$rw/out/resume-killed.err" >&2; return 1; }
  push_image resume big "$dest" --default-tag v1 || return 1
  up=$(summary_field resume bytes_uploaded); skipped=$(summary_field resume bytes_skipped)
  echo "killed after 5s; rerun uploaded $up of $total bytes, skipped $skipped"
  ((up < total)) || { echo "rerun uploaded everything again" >&2; return 1; }
  ((skipped > 0)) || { echo "rerun skipped nothing" >&2; return 1; }
  skopeo_verify "docker://${registry_addr[plain]}/e2e/resume:v1" "$(img_digest big)" --src-tls-verify=false
}

# fetch-blob through a proxy that corrupts blob bodies: digest error, no output file.
fetch_blob_corrupt() {
  tool_has fetch-blob || return 1
  local repo="${registry_addr[proxy]}/e2e/app" dg size out="$rw/fetch-corrupt"
  # The image is there (pushed by push_plain, or by skopeo here if push does not exist).
  skopeo copy -q --dest-tls-verify=false "oci:$rw/img/a/layout:latest" "docker://${registry_addr[plain]}/e2e/app:fetch" || return 1
  dg=$(jq -r '.layers[2].digest' "$rw/img/a/m.json"); size=$(jq -r '.layers[2].size' "$rw/img/a/m.json")
  rm -rf "$out"; mkdir -p "$out"
  fault_proxy_config proxy '{"corrupt_blobs": true}' || return 1
  run_tool fetch-corrupt fetch-blob --repository "$repo" --digest "$dg" --size "$size" --output "$out/blob" 2>/dev/null
  local rc=$? faults
  faults=$(fault_proxy_stats proxy | jq .faults)
  fault_proxy_config proxy '{}'
  ((rc != 0)) || { echo "fetch-blob accepted a corrupted blob" >&2; return 1; }
  ((faults >= 1)) || { echo "the proxy corrupted nothing" >&2; return 1; }
  grep -qi 'digest' "$rw/out/fetch-corrupt.err" || { echo "error does not mention the digest:" >&2; cat "$rw/out/fetch-corrupt.err" >&2; return 1; }
  [[ -z $(ls -A "$out") ]] || { echo "fetch-blob left files: $(ls -A "$out")" >&2; return 1; }
  echo "corrupted: $(grep -m1 -i digest "$rw/out/fetch-corrupt.err" | cut -c1-200)"
}

# A push whose local blob does not match its digest fails, and the tag is not moved.
push_corrupt_source() {
  tool_has push || return 1
  local dest="${registry_addr[plain]}/e2e/guard" bad="$rw/img/b-corrupt"
  push_image guard a "$dest" --default-tag stable || return 1
  rm -rf "$bad"; cp -r "$rw/img/b" "$bad"
  # Flip one byte in the middle of the message layer blob; the manifest keeps the old digest.
  local f="$bad/l2.tar.gz" size off byte
  size=$(stat -c %s "$f"); off=$((size / 2))
  byte=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
  printf "$(printf '\\%03o' $(((byte ^ 255))))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
  [[ $(sha256sum "$f" | cut -d' ' -f1) != "$(sha256sum "$rw/img/b/l2.tar.gz" | cut -d' ' -f1)" ]] || return 1
  if run_tool guard-bad push --manifest "$bad/m.json" --config "$bad/c.json" --blob "$bad/l1.tar.gz" --blob "$f" \
    --default-destination "$dest" --default-tag stable --summary-json "$rw/out/guard-bad.json" 2>/dev/null; then
    echo "push of a corrupted blob succeeded" >&2; return 1
  fi
  grep -qi 'digest' "$rw/out/guard-bad.err" || { echo "error does not mention the digest:" >&2; cat "$rw/out/guard-bad.err" >&2; return 1; }
  local now_digest
  now_digest=$(remote_digest "docker://$dest:stable" --tls-verify=false)
  [[ $now_digest == "$(img_digest a)" ]] || { echo "tag stable moved to $now_digest" >&2; return 1; }
  echo "corrupted source: $(grep -m1 -i digest "$rw/out/guard-bad.err" | cut -c1-200); stable still $now_digest"
}

bad_registry_name() {
  tool_has push || return 1
  img_blob_args a
  if run_tool bad-registry push --manifest "$rw/img/a/m.json" --config "$rw/img/a/c.json" "${_img_blob_args[@]}" \
    --default-destination "${registry_addr[plain]}/e2e/app" --registry 'bad host' 2>/dev/null; then
    echo "push to registry 'bad host' succeeded" >&2; return 1
  fi
  local err="$rw/out/bad-registry.err"
  ! grep -qi 'panicked' "$err" || { cat "$err" >&2; return 1; }
  grep -qF 'bad host' "$err" || { echo "error does not name 'bad host':" >&2; cat "$err" >&2; return 1; }
  echo "bad registry: $(head -1 "$err" | cut -c1-200)"
}

unknown_repository() {
  tool_has pull || return 1
  local out="$rw/pull-unknown"
  rm -rf "$out"; mkdir -p "$out"
  if run_tool pull-unknown pull --image "${registry_addr[plain]}/e2e/does-not-exist@sha256:$(printf '%064d' 0)" \
    --output-dir "$out" 2>/dev/null; then
    echo "pull of an unknown repository succeeded" >&2; return 1
  fi
  local err="$rw/out/pull-unknown.err"
  ! grep -qi 'panicked' "$err" || { cat "$err" >&2; return 1; }
  grep -qiE 'does-not-exist|unknown|not found|404' "$err" || { echo "unclear error:" >&2; cat "$err" >&2; return 1; }
  echo "unknown repository: $(head -1 "$err" | cut -c1-200)"
}

# pull of an image skopeo pushed: manifest/config/layers.json match; fetch-blob of each layer verifies.
pull_skopeo_pushed() {
  tool_has pull || return 1
  local reg=${registry_addr[plain]} repo=e2e/skopeo-pushed out="$rw/pull-out" raw="$rw/pull-raw.json" want
  skopeo copy -q --dest-tls-verify=false "oci:$rw/img/many/layout:latest" "docker://$reg/$repo:v1" || return 1
  skopeo inspect --raw --tls-verify=false "docker://$reg/$repo:v1" >"$raw" || return 1
  want=sha256:$(sha256sum <"$raw" | cut -d' ' -f1)
  rm -rf "$out"; mkdir -p "$out"
  run_tool pull pull --image "$reg/$repo@$want" --platform linux/amd64 --output-dir "$out" || return 1
  cmp -s "$raw" "$out/manifest.json" || { echo "manifest.json differs from the registry's" >&2; return 1; }
  [[ sha256:$(sha256sum <"$out/config.json" | cut -d' ' -f1) == "$(jq -r .config.digest "$raw")" ]] ||
    { echo "config.json does not match the manifest's config digest" >&2; return 1; }
  [[ $(jq -c '[.[] | {digest, size}]' "$out/layers.json") == "$(jq -c '[.layers[] | {digest, size}]' "$raw")" ]] ||
    { echo "layers.json: $(jq -c . "$out/layers.json") vs manifest $(jq -c .layers "$raw")" >&2; return 1; }
  [[ $(jq -c '[.[] | .diff_id]' "$out/layers.json") == "$(jq -c '.rootfs.diff_ids' "$out/config.json")" ]] ||
    { echo "layers.json diff_ids do not match the config" >&2; return 1; }
  if [[ -f $out/image.json ]]; then
    [[ $(jq -r .manifest_digest "$out/image.json") == "$want" ]] || { echo "image.json manifest_digest wrong" >&2; return 1; }
  fi
  local i n dg size
  n=$(jq '.layers | length' "$raw")
  for ((i = 0; i < n; i++)); do
    dg=$(jq -r ".layers[$i].digest" "$raw"); size=$(jq -r ".layers[$i].size" "$raw")
    run_tool "fetch-$i" fetch-blob --repository "$reg/$repo" --digest "$dg" --size "$size" --output "$out/layer-$i" || return 1
    [[ sha256:$(sha256sum <"$out/layer-$i" | cut -d' ' -f1) == "$dg" ]] || { echo "layer $i: wrong bytes" >&2; return 1; }
  done
  echo "pulled $want: $n layers fetched and verified"
}

# ---------------------------------------------------------------------------------------------
# The registry suite (see run.sh): the tool against every registry, then the rules.
registry_checks=(
  "skopeo smoke: plain registry|smoke_plain plain"
  "skopeo smoke: second plain registry|smoke_plain plain2"
  "skopeo smoke: basic auth (htpasswd over TLS)|smoke_basic"
  "skopeo smoke: TLS with the test CA|smoke_tls"
  "skopeo smoke: bearer token registry|smoke_token"
  "skopeo smoke: fault proxy (forwarding, 503, 429, delay, drop, corrupt)|smoke_proxy"
  "push: plain registry, skopeo + docker run verify|push_plain"
  "push: re-push uploads zero bytes|repush_zero"
  "push: two destinations in one call|multi_destination"
  "push: basic auth with the right password|basic_auth_ok"
  "push: basic auth with a wrong password fails, password not shown|basic_auth_wrong"
  "push: TLS with SSL_CERT_FILE bundle|tls_ok"
  "push: TLS without the test CA fails with a certificate error|tls_untrusted"
  "push: TLS registry by loopback IP (https on 127.0.0.1)|tls_loopback_ip"
  "push: bearer token registry, tokens reused|token_push"
  "push: bearer token denied|token_denied"
  "push through proxy: 503s|fault_503"
  "push through proxy: 500s|fault_500"
  "push through proxy: 429 Retry-After|fault_429"
  "push through proxy: dropped uploads|fault_drop"
  "push through proxy: slow responses|fault_slow"
  "push through proxy: chunked uploads cut mid-PATCH|fault_drop_chunked"
  "push through proxy: chunked uploads with 503s|fault_503_chunked"
  "pull and fetch-blob through proxy: 503s and 429s|fault_pull"
  "push killed half-way, rerun uploads only what is missing|kill_and_resume"
  "fetch-blob of corrupted blobs fails, no output|fetch_blob_corrupt"
  "push of a corrupted local blob fails, tag not moved|push_corrupt_source"
  "bad input: --registry 'bad host'|bad_registry_name"
  "bad input: unknown repository|unknown_repository"
  "pull of a skopeo-pushed image, fetch-blob each layer|pull_skopeo_pushed"
  "bazel run //app:push, skopeo and docker pull verify|bazel_push_example"
  "the push attached SBOM and provenance: referrers fallback tag, artifact blobs, listed|bazel_push_referrers"
  "bazel run //app:push -- --sign-key: cosign signs, cosign verify --key passes, password never shown|bazel_push_signed"
  "released module (tools/release.sh) from a file:// registry, no Rust: build, load, run, push, expunge|released_module_consumer"
  "images.pull of a skopeo-pushed Docker schema 2 image; build on it, no layer downloaded|pull_consumer_setup"
  "push to the base's registry mounts its layers|pull_consumer_push_same_registry"
  "push to another registry copies them registry to registry|pull_consumer_push_other_registry"
  "tags stamped from workspace status and the digest|pull_consumer_stamped_tags"
  "multi_deploy: two images, three repositories, one run, a push's referrer along; a failed deploy moves no tag|pull_consumer_multi_deploy"
  "multi_deploy -- --sign-key: every image signed at every destination; cosign verify passes|pull_consumer_deploy_signed"
  "image_provenance on a pulled base: base by digest, sources; no layer downloaded|pull_consumer_provenance"
  "load fetches the layers; docker run|pull_consumer_load_and_run"
  "rebuild with the source registry down uses no network|pull_consumer_rebuild_offline"
)

# The tool (built with cargo), the registries and their test images, once per run; and the
# example image the Bazel checks push and pull.
registry_setup() {
  registry_up && build_examples
}

registry_up() {
  [[ -n $rw ]] && return 0
  (cd "$repo_root/tools" && cargo build --release --locked 2>&1 | tail -1; exit "${PIPESTATUS[0]}") || return 1
  registry_e2e_setup "$work/registry" || return 1
  for n in "${registry_started[@]}"; do echo "  $n: ${registry_scheme[$n]:-http}://${registry_addr[$n]}"; done
  registry_make_images
}
