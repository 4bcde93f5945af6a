# End-to-end checks of the tool and rules themselves, the example workspace, consumer
# workspaces, bad input, the Bazel side of registries, and reproducibility: real Bazel
# (./bazelw), a real Docker engine and independent validators. Sourced by run.sh after lib.sh;
# each function is one `check`; the suites' tables are at the end.

schema_dir=/usr/share/gocode/src/github.com/opencontainers/image-spec/schema
bad_input_cases="$repo_root/e2e/bad_input/cases.tsv"

# Builds the example image with all output groups and its load target.
build_examples() {
  (cd "$repo_root/examples" && "$bazelw" build //app:image //app:load \
    --output_groups=+oci_layout,+tarball,+descriptor)
}

example_out() { echo "$repo_root/examples/bazel-bin/app/$1"; }

# Gzip layers are compressed on every core in blocks: gzip -t accepts each one, and 1, 3 or 8
# threads (--@rules_image//rules:compress_threads) give the same layers, so the same digest.
gzip_threads_same_bytes() {
  local ex="$repo_root/examples" want got n layers
  want=$(cat "$(example_out image.digest)")
  layers=$(find -L "$ex/bazel-bin/app" -maxdepth 1 -name '*.tar.gz')
  [[ -n $layers ]] || { echo "no gzip layer in //app" >&2; return 1; }
  for f in $layers; do gzip -t "$f" || { echo "gzip -t rejects $f" >&2; return 1; }; done
  for n in 1 3 8; do
    (cd "$ex" && "$bazelw" build --@rules_image//rules:compress_threads=$n //app:image) || return 1
    got=$(cat "$(example_out image.digest)")
    [[ $got == "$want" ]] || { echo "$n threads: $got, default: $want" >&2; return 1; }
  done
  (cd "$ex" && "$bazelw" build //app:image) || return 1
  echo "$(wc -w <<<"$layers") gzip layers valid; //app:image $want with 1, 3, 8 threads and the default"
}

skopeo_inspect_layout() { skopeo inspect "oci:$(example_out image.oci_layout):latest" >"$work/inspect.json"; }
skopeo_copy_layout() {   # copy reads and verifies every blob digest
  rm -rf "$work/copy"
  skopeo copy -q "oci:$(example_out image.oci_layout):latest" "oci:$work/copy:latest"
}
skopeo_inspect_tarball() {
  skopeo inspect "docker-archive:$(example_out image.tar)" >/dev/null &&
    skopeo inspect "oci-archive:$(example_out image.tar):latest" >/dev/null
}
umoci_unpack() {
  rm -rf "$work/bundle"
  umoci unpack --image "$(example_out image.oci_layout):latest" "$work/bundle" >/dev/null || return 1
  local root="$work/bundle/rootfs"
  [[ -x $root/app/hello ]] || { echo "no executable /app/hello" >&2; return 1; }
  [[ $(stat -c %a "$root/app/hello") == 755 ]] || { echo "/app/hello mode $(stat -c %a "$root/app/hello")" >&2; return 1; }
  [[ $(cat "$root/app/hello.runfiles/_main/app/message.txt") == "built by Bazel, shipped by rules_image" ]] || return 1
  [[ $(stat -c %a "$root/app/hello.runfiles/_main/app/message.txt") == 644 ]] || return 1
  [[ $(readlink "$root/usr/bin/hello") == /app/hello ]]
}
oci_image_tool_validate() { oci-image-tool validate --type image --ref name=latest "$(example_out image.oci_layout)" >/dev/null; }
json_schemas() { /usr/bin/python3 "$repo_root/e2e/validate_schemas.py" "$schema_dir" "$(example_out image.oci_layout)" >/dev/null; }

# image_sbom: an SPDX 2.3 document that spdx-tools validates, listing the image's files with
# the SHA-256 of what Bazel built, in the package of the target that made their layer.
# (reproducible_digests builds it, and the provenance, twice, clean, and compares the bytes.)
example_sbom() {
  ensure_supply_chain_tools || return 1
  local ex="$repo_root/examples" sbom="$repo_root/examples/bazel-bin/app/sbom.spdx.json"
  (cd "$ex" && "$bazelw" build //app:sbom //app:hello //app:image) || return 1
  "$spdx_validate" -i "$sbom" || return 1
  /usr/bin/python3 - "$sbom" "$ex/bazel-bin/app/hello" "$(cat "$ex/bazel-bin/app/image.digest")" <<'EOF' || return 1
import hashlib, json, sys
doc = json.load(open(sys.argv[1]))
binary = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
files = {f["fileName"]: f for f in doc["files"]}
hello = files["./app/hello"]
assert {"algorithm": "SHA256", "checksumValue": binary} in hello["checksums"], hello
packages = {p["SPDXID"]: p for p in doc["packages"]}
assert packages["SPDXRef-Image"]["versionInfo"] == sys.argv[3], packages["SPDXRef-Image"]
owner = [r["spdxElementId"] for r in doc["relationships"]
         if r["relatedSpdxElement"] == hello["SPDXID"] and r["relationshipType"] == "CONTAINS"]
assert [packages[o]["name"] for o in owner] == ["//app:app_layer"], owner
assert doc["creationInfo"]["created"] == "1970-01-01T00:00:00Z"
print("%d files; ./app/hello sha256 %s... in //app:app_layer" % (len(files), binary[:12]))
EOF
}

# image_provenance: an in-toto statement with SLSA provenance v1 that the attestation
# framework's protobufs accept; its subject is the image's digest and its dependencies are
# the sources Bazel built it from, with their sha256.
example_provenance() {
  ensure_supply_chain_tools || return 1
  local ex="$repo_root/examples" prov="$repo_root/examples/bazel-bin/app/provenance.intoto.json"
  (cd "$ex" && "$bazelw" build //app:provenance //app:image) || return 1
  validate_provenance "$prov" || return 1
  local digest; digest=$(cat "$ex/bazel-bin/app/image.digest")
  jq -e --arg d "${digest#sha256:}" --arg c "$(sha256sum <"$ex/app/hello.c" | cut -d' ' -f1)" \
    --arg m "$(sha256sum <"$ex/app/message.txt" | cut -d' ' -f1)" '
    .subject == [{"name": "//app:image", "digest": {"sha256": $d}}] and
    (.predicate.buildDefinition.resolvedDependencies | index({"name": "app/hello.c", "digest": {"sha256": $c}}) != null) and
    (.predicate.buildDefinition.resolvedDependencies | index({"name": "app/message.txt", "digest": {"sha256": $m}}) != null) and
    .predicate.runDetails.builder.version.rules_image != null' "$prov" >/dev/null ||
    { echo "provenance:" >&2; cat "$prov" >&2; return 1; }
}

# image_test reads the example image's layers: //app:image_test passes; //app:image_test_wrong
# fails as a test (exit 3, not a build error), its log naming the image, each failed path and
# the layer that wrote it.
example_image_test() { (cd "$repo_root/examples" && "$bazelw" test //app:image_test); }
image_test_failures() {
  local ex="$repo_root/examples" rc=0 log digest want
  (cd "$ex" && "$bazelw" test //app:image_test_wrong) || rc=$?
  ((rc == 3)) || { echo "bazel test //app:image_test_wrong: exit $rc, want 3 (a test failed)" >&2; return 1; }
  log="$ex/bazel-testlogs/app/image_test_wrong/test.log"
  digest=$(jq -r '.layers[0].digest' "$(example_out image.manifest.json)") || return 1
  for want in \
    "FAIL //app:image: /app/hello: mode is 0755, want 0700 (written by layers[0] $digest)" \
    "FAIL //app:image: /app/missing: does not exist (no layer has it)" \
    "FAIL //app:image: /usr/bin/hello: link_target is \"/app/hello\", want \"/bin/hello\" (written by layers[0] $digest)" \
    'FAIL //app:image: config: env "GREETING" is "Hello", want "Goodbye"' \
    "error: //app:image_test_wrong: 4 of 6 assertions failed on //app:image"; do
    grep -qF -- "$want" "$log" || { echo "not in $log: $want" >&2; cat "$log" >&2; return 1; }
  done
  echo "4 failures, each naming //app:image and its path; layers[0] $digest"
}

# image_test's `run`: //app:image_run_test runs the example image in Docker (three commands:
# its own, another argument/env/user, a replaced entrypoint that fails as expected);
# //app:image_run_test_wrong fails, naming each command and what differed, with the failed
# command's output; neither leaves the tag it loaded the image under. Test results are not
# cached, so that each run reaches the engine.
run_test_tags() { docker images --format '{{.Repository}}:{{.Tag}}' | grep -c '^rules-image-test:app\.image-'; }
example_image_run_test() {
  (cd "$repo_root/examples" && "$bazelw" test --nocache_test_results //app:image_run_test) || return 1
  local log="$repo_root/examples/bazel-testlogs/app/image_run_test/test.log" left
  grep -qxF "7 assertions passed on //app:image" "$log" || { echo "not in $log: 7 assertions passed" >&2; cat "$log" >&2; return 1; }
  left=$(run_test_tags)
  ((left == 0)) || { echo "$left rules-image-test:app.image-* tags left in docker" >&2; return 1; }
}
image_run_test_failures() {
  local ex="$repo_root/examples" rc=0 log want left
  (cd "$ex" && "$bazelw" test --nocache_test_results //app:image_run_test_wrong) || rc=$?
  ((rc == 3)) || { echo "bazel test //app:image_run_test_wrong: exit $rc, want 3 (a test failed)" >&2; return 1; }
  log="$ex/bazel-testlogs/app/image_run_test_wrong/test.log"
  for want in \
    'FAIL //app:image: run[0] ["/app/hello", "container"]: stdout does not contain "Goodbye, container!"' \
    'FAIL //app:image: run[1] ["/usr/bin/hello"]: exit code is 1, want 0' \
    '  | Hello, container!' \
    '  | /usr/bin/hello.runfiles/_main/app/message.txt: No such file or directory' \
    "error: //app:image_run_test_wrong: 2 of 3 assertions failed on //app:image"; do
    grep -qF -- "$want" "$log" || { echo "not in $log: $want" >&2; cat "$log" >&2; return 1; }
  done
  left=$(run_test_tags)
  ((left == 0)) || { echo "$left rules-image-test:app.image-* tags left in docker" >&2; return 1; }
  echo "2 failures, each naming //app:image and the command run"
}

load_and_run() {
  docker rmi -f rules-image-example/app:latest >/dev/null 2>&1 || true
  (cd "$repo_root/examples" && "$bazelw" run //app:load) || return 1
  local out
  out=$(docker run --rm --network none rules-image-example/app:latest) || return 1
  echo "$out"
  grep -qx 'Hello, container!' <<<"$out" && grep -qx 'message: built by Bazel, shipped by rules_image' <<<"$out" || return 1
  # Docker's image ID is the digest of our config: the engine agrees with the bytes we made.
  local id config_digest
  id=$(docker image inspect --format '{{.Id}}' rules-image-example/app:latest)
  config_digest=sha256:$(sha256sum "$(example_out image.config.json)" | cut -d' ' -f1)
  [[ $id == "$config_digest" ]] || { echo "docker image id $id != config digest $config_digest" >&2; return 1; }
}

# The podman path of image_load: podman (inside bazelw's rootfs) holds the same image.
load_podman() {
  (cd "$repo_root/examples" && "$bazelw" run //app:load_podman) || return 1
  local id config_digest
  id=$(in_rootfs podman image inspect --format '{{.Id}}' rules-image-example/app:podman) || return 1
  config_digest=$(sha256sum "$(example_out image.config.json)" | cut -d' ' -f1)
  [[ $id == "$config_digest" ]] || { echo "podman image id $id != config digest $config_digest" >&2; return 1; }
}

# `bazel run TARGET -- --summary-json $work/ctr-load-N.json ARGS...` of an examples target
# against the run's own containerd; prints the tool's summary line and keeps it in $ctr_line.
ctr_line=
ctr_load() {
  local n=$1 target=$2 out; shift 2
  out=$(cd "$repo_root/examples" && CONTAINERD_ADDRESS=$containerd_socket RULES_IMAGE_CTR=$containerd_dir/bin/ctr \
    "$bazelw" run "$target" -- --summary-json "$work/ctr-load-$n.json" "$@" 2>&1) || { echo "$out" | tail -8 >&2; return 1; }
  ctr_line=$(grep '^loaded ' <<<"$out") || { echo "$out" | tail -8 >&2; return 1; }
  echo "$ctr_line"
}

# containerd's NS/REF has the manifest and the config of //app:IMAGE as Bazel built them.
ctr_same_as_built() {
  local ns=$1 ref=$2 image=$3 digest config
  digest=$(ctr_e2e -n "$ns" images ls "name==$ref" | awk 'NR == 2 {print $3}')
  [[ $digest == "$(cat "$(example_out "$image.digest")")" ]] || { echo "$ref is '$digest', not //app:$image" >&2; return 1; }
  config=$(ctr_e2e -n "$ns" content get "$digest" | jq -r .config.digest)
  [[ $config == "sha256:$(sha256sum "$(example_out "$image.config.json")" | cut -d' ' -f1)" ]] ||
    { echo "$ref has config $config, not //app:$image's" >&2; return 1; }
}

# `ctr run` of containerd's NS/REF prints the example's greeting and MESSAGE.
ctr_run_prints() {
  local ns=$1 ref=$2 message=$3 out
  out=$(ctr_e2e -n "$ns" run --rm "$ref" "rules-image-e2e-$RANDOM") || return 1
  echo "$out"
  grep -qx 'Hello, container!' <<<"$out" && grep -qxF "message: $message" <<<"$out"
}

# The containerd path of image_load, against a containerd 2 of this run's own (lib.sh):
# //app:load_containerd into namespace k8s.io sends the one layer, and `ctr run` runs the image,
# whose manifest and config are the ones Bazel built. //app:image_v2 (the same image and one
# layer more) then sends only that layer, and runs on the layer containerd already had. Into
# the default namespace, which has neither, both layers travel. The figures go to the log.
load_containerd() {
  local ns=k8s.io first=docker.io/rules-image-example/app:containerd second=docker.io/rules-image-example/app:v2
  (cd "$repo_root/examples" && "$bazelw" build //app:image //app:image_v2 //app:load_containerd //app:load_containerd_v2) || return 1
  ensure_containerd || return 1
  ctr_e2e version | grep -A1 '^Server' | tail -1

  ctr_load 1 //app:load_containerd --namespace "$ns" || return 1
  [[ $ctr_line =~ ^"loaded $first into containerd namespace $ns: 1 of 1 layers sent (".*" MiB), 0 already present"$ ]] || return 1
  ctr_same_as_built "$ns" "$first" image || return 1
  ctr_run_prints "$ns" "$first" 'built by Bazel, shipped by rules_image' || return 1

  ctr_load 2 //app:load_containerd_v2 --namespace "$ns" || return 1
  [[ $ctr_line =~ ^"loaded $second into containerd namespace $ns: 1 of 2 layers sent (".*" MiB), 1 already present"$ ]] || return 1
  ctr_same_as_built "$ns" "$second" image_v2 || return 1
  ctr_run_prints "$ns" "$second" 'only this layer was sent to containerd' || return 1

  ctr_load 3 //app:load_containerd_v2 || return 1
  [[ $ctr_line =~ ^"loaded $second into containerd namespace default: 2 of 2 layers sent (" ]] || return 1
  ctr_same_as_built default "$second" image_v2 || return 1

  local i
  for i in 1 2 3; do
    jq -r '"\(.references[0]) into namespace \(.namespace): \(.layers_sent) of \(.layers) layers sent, \(.bytes_sent) bytes"' "$work/ctr-load-$i.json"
  done
}

# bazelw works in private mount namespaces: nothing under its rootfs is mounted on the host.
no_rootfs_mounts() {
  local rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs
  local leaked
  leaked=$(awk -v r="$rootfs/" 'index($5 "/", r) == 1 {print $5}' /proc/self/mountinfo)
  [[ -z $leaked ]] || { echo "mounted on the host: $leaked" >&2; return 1; }
}

# A copy of this checkout at another path (tracked and untracked-but-not-ignored files).
copy_checkout() {
  local dest=$1 mask=$2
  mkdir -p "$dest"
  (cd "$repo_root" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) |
    (umask "$mask" && tar -C "$dest" -xf - --no-same-permissions --no-same-owner)
}

# Two clean builds (fresh output bases) from two checkout paths with different umasks give
# the same digests.
reproducible_digests() {
  local i mask digests=()
  for i in 1 2; do
    mask=$([[ $i == 1 ]] && echo 022 || echo 077)
    local checkout="$work/repro-$i/path-number-$i/rules_image"
    copy_checkout "$checkout" "$mask" || return 1
    # Checkout 2 builds the tool in its output base (the default; bazelw otherwise shares one
    # cargo target dir): a tool built afresh elsewhere must give the same digests.
    local target_dir=()
    [[ $i == 2 ]] && target_dir=(env RULES_IMAGE_CARGO_TARGET_DIR=)
    (umask "$mask" && cd "$checkout/examples" &&
      "${target_dir[@]}" "$checkout/bazelw" --output_base="$work/repro-$i/output_base" build //app:image //app:app_layer //app:sbom //app:provenance \
        //app:image_estargz //app:image_zstd_chunked) || return 1
    if [[ $i == 2 && ! -x $work/repro-2/output_base/rules_image_cargo_target/release/rules-image-tool ]]; then
      echo "the tool was not built inside the output base" >&2; return 1
    fi
    local bin="$checkout/examples/bazel-bin/app"
    digests+=("$(cat "$bin/image.digest") $(cat "$bin/app_layer.layer.json") sbom $(sha256sum <"$bin/sbom.spdx.json") provenance $(sha256sum <"$bin/provenance.intoto.json") estargz $(cat "$bin/image_estargz.digest") zstd:chunked $(cat "$bin/image_zstd_chunked.digest")")
    echo "checkout $i (umask $mask): $(cat "$bin/image.digest"), estargz $(cat "$bin/image_estargz.digest"), zstd:chunked $(cat "$bin/image_zstd_chunked.digest")"
  done
  [[ ${digests[0]} == "${digests[1]}" ]] || { printf '%s\n' "${digests[@]}" >&2; return 1; }
}

# Editing the tool's sources re-runs the source toolchain repository rule (and only then).
tool_rebuilds_on_source_change() {
  local checkout="$work/repro-1/path-number-1/rules_image"
  local ob="$work/repro-1/output_base"
  local tool
  tool=$(ls "$ob"/external/*rules_image_tool_source/rules-image-tool) || return 1
  local before
  before=$(stat -c %Y.%i "$tool")
  (cd "$checkout/examples" && "$checkout/bazelw" --output_base="$ob" build //app:image) || return 1
  [[ $(stat -c %Y.%i "$tool") == "$before" ]] || { echo "tool rebuilt without a source change" >&2; return 1; }
  echo "// touched by e2e" >>"$checkout/tools/src/main.rs"
  (cd "$checkout/examples" && "$checkout/bazelw" --output_base="$ob" build //app:image) || return 1
  [[ $(stat -c %Y.%i "$tool") != "$before" ]] || { echo "tool not rebuilt after a source change" >&2; return 1; }
}

shutdown_repro_servers() {
  local i
  for i in 1 2; do
    local checkout="$work/repro-$i/path-number-$i/rules_image"
    [[ -d $checkout ]] && (cd "$checkout/examples" && "$checkout/bazelw" --output_base="$work/repro-$i/output_base" shutdown) >/dev/null 2>&1
  done
  return 0
}

# A workspace outside this repository that uses only what the README and docstrings document.
consumer_workspace() {
  local ws="$work/consumer"
  rm -rf "$ws"; cp -r "$repo_root/e2e/consumer" "$ws"
  sed -i "s|path = \"../..\"|path = \"$repo_root\"|" "$ws/MODULE.bazel"
  docker rmi -f consumer/app:test >/dev/null 2>&1 || true
  (cd "$ws" && "$bazelw" build //:image && "$bazelw" run //:load) || return 1
  local out
  out=$(docker run --rm --network none consumer/app:test) || return 1
  echo "$out"
  [[ $out == "$(printf 'alpha\nbeta\ngamma\nrunning as 1234')" ]]
}

# The consumer's file metadata as a running engine sees it: capabilities granted by the
# security.capability xattr (CapPrm/CapEff of a non-root process), owners, names, modes and
# times in `docker export`, and cat2 a hard link (cat's bytes are in the layer once, with
# cat, cat2 and their runfiles copies linked to the first).
file_metadata_in_docker() {
  [[ -f $work/consumer/bazel-bin/image.digest ]] || consumer_workspace >/dev/null || return 1
  local status plain
  status=$(docker run --rm --network none --user 1234:1234 --entrypoint /usr/local/bin/capcat consumer/app:test /proc/self/status) || return 1
  grep -q $'^CapPrm:\t0000000000000400$' <<<"$status" && grep -q $'^CapEff:\t0000000000000400$' <<<"$status" ||
    { echo "capcat (cap_net_bind_service) as uid 1234:" >&2; grep ^Cap <<<"$status" >&2; return 1; }
  plain=$(docker run --rm --network none consumer/app:test /proc/self/status) || return 1
  grep -q $'^CapPrm:\t0000000000000000$' <<<"$plain" || { echo "plain cat has capabilities:" >&2; grep ^Cap <<<"$plain" >&2; return 1; }
  local cid listing
  cid=$(docker create consumer/app:test) || return 1
  listing=$(docker export "$cid" | tar -tv --numeric-owner --full-time); docker rm "$cid" >/dev/null
  local want line
  for want in \
    '^-rw-r----- 1234/1234 +6 2024-05-01 12:00:00 srv/data/alpha.txt$' \
    '^drwxr-xr-x 1234/1234 +0 2024-05-01 12:00:00 srv/data/$' \
    '^-rwxr-x--- 0/1234 .* usr/local/bin/capcat$' \
    '^h.* usr/local/bin/cat2 link to usr/local/bin/'; do
    line=$(grep -E -- "$want" <<<"$listing") || { echo "docker export: no entry matching $want" >&2; grep -E 'srv|usr/local' <<<"$listing" >&2; return 1; }
    echo "$line"
  done
  # The names are in the layer (engines keep only ids): read them back from the blob.
  local layer names
  layer=$(find -L "$work/consumer/bazel-bin" -maxdepth 1 -name 'files.tar.gz') || return 1
  names=$(tar -tvzf "$layer" srv/data/alpha.txt) || return 1
  [[ $names == *" app/app "* ]] || { echo "layer entry: $names" >&2; return 1; }
  echo "$names"
}

# Stamping: unstamped, //:stamped keeps its templates (created is the epoch) and its digest
# from build to build; with --stamp, skopeo sees the status value in the label and annotation
# and Bazel's BUILD_TIMESTAMP as created.
stamping() {
  [[ -f $work/consumer/bazel-bin/image.digest ]] || consumer_workspace >/dev/null || return 1
  local ws="$work/consumer" d0 d1 d2 inspect
  printf '#!/bin/sh\necho STABLE_GIT_COMMIT 0123abcd\n' >"$ws/status.sh"; chmod +x "$ws/status.sh"
  build() { (cd "$ws" && "$bazelw" build //:stamped --output_groups=+oci_layout "$@") && cat "$ws/bazel-bin/stamped.digest"; }
  look() {
    skopeo inspect "oci:$ws/bazel-bin/stamped.oci_layout:latest" >"$work/stamped.json" &&
      skopeo inspect --raw "oci:$ws/bazel-bin/stamped.oci_layout:latest" >"$work/stamped.manifest.json" &&
      python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); m=json.load(open(sys.argv[2])); print(i["Created"], i["Labels"]["org.opencontainers.image.revision"], m["annotations"]["org.opencontainers.image.revision"])' \
        "$work/stamped.json" "$work/stamped.manifest.json"
  }
  d0=$(build) || return 1
  inspect=$(look) || return 1
  [[ $inspect == "1970-01-01T00:00:00Z {STABLE_GIT_COMMIT} {STABLE_GIT_COMMIT}" ]] || { echo "unstamped: $inspect" >&2; return 1; }
  d1=$(build --stamp --workspace_status_command="$ws/status.sh") || return 1
  inspect=$(look) || return 1
  local ts want
  ts=$(sed -n 's/^BUILD_TIMESTAMP //p' "$ws/bazel-out/volatile-status.txt")
  want="$(date -u -d "@$ts" +%Y-%m-%dT%H:%M:%SZ) 0123abcd 0123abcd"
  [[ $inspect == "$want" ]] || { echo "stamped: $inspect, want $want" >&2; return 1; }
  d2=$(build) || return 1
  [[ $d0 == "$d2" && $d1 != "$d0" ]] || { echo "unstamped $d0 then $d2, stamped $d1" >&2; return 1; }
  echo "unstamped $d0 (twice), stamped $d1: $inspect"
}

# The prebuilt toolchain path: a lock file pinning a file:// URL and sha256 of a tool binary per
# platform, one toolchain per platform chosen by each action's exec platform.
prebuilt_toolchain() {
  local ws="$work/prebuilt" tool
  tool=$(ls "$repo_root"/examples/bazel-bin/app/load.sh.runfiles/*rules_image_tool_source/rules-image-tool) || return 1
  cp "$tool" "$work/rules-image-tool-release"
  # The aarch64 Linux "binary" is only ever chosen by analysis here, never run.
  printf '#!/bin/sh\necho not for this machine >&2; exit 1\n' >"$work/rules-image-tool-aarch64"
  local sha sha_arm
  sha=$(sha256sum "$work/rules-image-tool-release" | cut -d' ' -f1)
  sha_arm=$(sha256sum "$work/rules-image-tool-aarch64" | cut -d' ' -f1)
  rm -rf "$ws"; cp -r "$repo_root/e2e/consumer" "$ws"
  sed -i "s|path = \"../..\"|path = \"$repo_root\"|" "$ws/MODULE.bazel"
  cat >>"$ws/MODULE.bazel" <<EOM

bazel_dep(name = "platforms", version = "0.0.10")

tool = use_extension("@rules_image//rules:extensions.bzl", "tool")
tool.prebuilt(lock = "//:tool.lock.json")
EOM
  cat >>"$ws/BUILD.bazel" <<'EOM'

# Exec platforms of remote workers, as a user would declare them (--extra_execution_platforms).
platform(name = "linux_arm64", constraint_values = ["@platforms//os:linux", "@platforms//cpu:aarch64"])
platform(name = "macos_arm64", constraint_values = ["@platforms//os:macos", "@platforms//cpu:aarch64"])
EOM
  jq -n --arg x "file://$work/rules-image-tool-release" --arg xs "$sha" \
    --arg a "file://$work/rules-image-tool-aarch64" --arg asha "$sha_arm" \
    '{binaries: {"x86_64-unknown-linux-gnu": {urls: [$x], sha256: $xs},
                 "aarch64-unknown-linux-gnu": {urls: [$a], sha256: $asha},
                 "x86_64-apple-darwin": null, "aarch64-apple-darwin": null}}' >"$ws/tool.lock.json"
  (cd "$ws" && "$bazelw" build //:image) || return 1
  ls "$(bazel_output_base "$ws")"/external/*rules_image_tool_x86_64_unknown_linux_gnu/rules-image-tool >/dev/null || return 1
  # Same image as the from-source consumer build.
  [[ $(cat "$ws/bazel-bin/image.digest") == $(cat "$work/consumer/bazel-bin/image.digest") ]] || return 1

  # The tool of each action follows its exec platform, not the host.
  local q
  q=$(cd "$ws" && "$bazelw" aquery --extra_execution_platforms=//:linux_arm64 'mnemonic("ImageLayer", //:files)' 2>/dev/null) || return 1
  grep -q 'rules_image_tool_aarch64_unknown_linux_gnu/rules-image-tool' <<<"$q" ||
    { echo "exec platform linux_arm64 did not get the aarch64 binary:" >&2; grep -m3 rules-image-tool <<<"$q" >&2; return 1; }
  grep -q 'rules_image_tool_x86_64_unknown_linux_gnu' <<<"$q" && { echo "x86_64 binary used on linux_arm64" >&2; return 1; }
  q=$(cd "$ws" && "$bazelw" aquery 'mnemonic("ImageLayer", //:files)' 2>/dev/null) || return 1
  grep -q 'rules_image_tool_x86_64_unknown_linux_gnu/rules-image-tool' <<<"$q" || { echo "host exec platform did not get the x86_64 binary" >&2; return 1; }
  echo "exec platform linux_arm64 -> aarch64 binary; host -> x86_64 binary"
  # A platform the lock has no binary for is named, with the way out.
  local err
  if err=$(cd "$ws" && "$bazelw" build --extra_execution_platforms=//:macos_arm64 //:files 2>&1); then
    echo "a build for an exec platform without a binary succeeded" >&2; return 1
  fi
  grep -q 'no rules-image-tool binary for the exec platform aarch64-apple-darwin: the lock file @@//:tool.lock.json has no binary for it.*tool.build_from_source()' <<<"$err" ||
    { echo "$err" | grep -m3 -i error >&2; return 1; }
  grep -m1 -o 'no rules-image-tool binary for the exec platform [a-z0-9_-]\+' <<<"$err"

  # A wrong checksum is refused.
  jq --arg z "$(printf '%064d' 0)" '.binaries["x86_64-unknown-linux-gnu"].sha256 = $z' "$ws/tool.lock.json" >"$ws/tool.lock.json.new" &&
    mv "$ws/tool.lock.json.new" "$ws/tool.lock.json"
  if err=$(cd "$ws" && "$bazelw" build //:image 2>&1); then echo "wrong sha256 accepted" >&2; return 1; fi
  grep -qi 'checksum' <<<"$err" || { echo "$err" | tail -5 >&2; return 1; }
  (cd "$ws" && "$bazelw" shutdown) >/dev/null 2>&1
  return 0
}
# The released module, the way a user gets it: tools/release.sh's archive, lock file and BCR
# entry behind file:// URLs, `bazel_dep(name = "rules_image", ...)` and nothing else, and no cargo
# or rustc anywhere Bazel looks (a HOME without ~/.cargo, a rootfs without Rust). Build, load, run
# and push; after `bazel clean --expunge`, with no repository cache, the tool is downloaded again
# and the digests are the same.
released_module_consumer() {
  local rel="$work/release" ws="$work/released" home="$work/home-without-rust" rev version
  ensure_release_tools || return 1
  # Uncommitted changes are released too when run from a work tree (CI's clone has none).
  rev=$(git -C "$repo_root" stash create 2>/dev/null); rev=${rev:-HEAD}
  "$repo_root/tools/release.sh" --url-base "file://$rel" --out "$rel" --rev "$rev" || return 1
  version=$(jq -r .version "$rel/prebuilt.lock.json")
  # The Linux binary (glibc 2.17) ran on this Debian bookworm host in release.sh; here it runs in
  # bazelw's Debian unstable rootfs, which has no Rust.
  if in_rootfs sh -c 'command -v cargo || command -v rustc'; then echo "the rootfs has Rust on PATH" >&2; return 1; fi
  local rootfs_tmp=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs/tmp
  cp "$rel/rules-image-tool-v$version-x86_64-unknown-linux-gnu" "$rootfs_tmp/released-tool"
  in_rootfs /tmp/released-tool --version || { rm -f "$rootfs_tmp/released-tool"; return 1; }
  rm -f "$rootfs_tmp/released-tool"

  rm -rf "$ws" "$home"; mkdir -p "$home"; cp -r "$repo_root/e2e/consumer" "$ws"
  cat >"$ws/MODULE.bazel" <<EOM
# "consumer", as in e2e/consumer: the runfiles repo mapping in the image names the module.
module(name = "consumer")

bazel_dep(name = "rules_image", version = "$version")
bazel_dep(name = "rules_cc", version = "0.0.17")
EOM
  printf 'common --registry=file://%s/bcr\ncommon --repository_cache=\n' "$rel" >"$ws/.bazelrc"
  cat >>"$ws/BUILD.bazel" <<EOM

load("@rules_image//rules:defs.bzl", "image_push")

image_push(
    name = "push",
    image = ":image",
    registry = "127.0.0.1:$reg_port_plain",
    repository = "released/app",
    tag_list = ["latest"],
)
EOM
  local bz=(env HOME="$home" RULES_IMAGE_CACHE="${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}" "$bazelw")
  docker rmi -f consumer/app:test >/dev/null 2>&1
  (cd "$ws" && "${bz[@]}" build //:image //:push && "${bz[@]}" run //:load && "${bz[@]}" run //:push) || return 1
  local ob digest out
  ob=$(cd "$ws" && "${bz[@]}" info output_base 2>/dev/null) || return 1
  ls "$ob"/external/*rules_image_tool_x86_64_unknown_linux_gnu/rules-image-tool >/dev/null || return 1
  if ls -d "$ob"/external/*rules_image_tool_source 2>/dev/null; then echo "the tool was built from source" >&2; return 1; fi
  digest=$(cat "$ws/bazel-bin/image.digest")
  out=$(docker run --rm --network none consumer/app:test) || return 1
  [[ $out == "$(printf 'alpha\nbeta\ngamma\nrunning as 1234')" ]] || { echo "docker run printed: $out" >&2; return 1; }
  [[ "sha256:$(skopeo inspect --raw --tls-verify=false "docker://127.0.0.1:$reg_port_plain/released/app:latest" | sha256sum | cut -d' ' -f1)" == "$digest" ]] ||
    { echo "the registry's released/app:latest is not $digest" >&2; return 1; }
  # The released binary makes the same image as the tool built from source (consumer_workspace).
  [[ -f $work/consumer/bazel-bin/image.digest ]] || consumer_workspace >/dev/null || return 1
  [[ $digest == "$(cat "$work/consumer/bazel-bin/image.digest")" ]] ||
    { echo "prebuilt $digest differs from the source-built consumer's image" >&2; return 1; }

  (cd "$ws" && "${bz[@]}" clean --expunge) || return 1
  [[ ! -e $ob/external ]] || { echo "clean --expunge left $ob/external" >&2; return 1; }
  (cd "$ws" && "${bz[@]}" build //:image) || return 1
  ls "$ob"/external/*rules_image_tool_x86_64_unknown_linux_gnu/rules-image-tool >/dev/null || return 1
  [[ $(cat "$ws/bazel-bin/image.digest") == "$digest" ]] || { echo "digest changed after clean --expunge" >&2; return 1; }
  # Nothing was written to HOME: with a prebuilt tool all state is in the output base.
  [[ -z $(ls -A "$home") ]] || { echo "written to HOME: $(ls -A "$home")" >&2; return 1; }
  echo "released module $version, prebuilt tool: $digest, twice; HOME untouched"
  (cd "$ws" && "${bz[@]}" shutdown) >/dev/null 2>&1
  return 0
}

bazel_output_base() { (cd "$1" && "$bazelw" info output_base 2>/dev/null); }

# Bad input: each case of bad_input/cases.tsv fails with a message naming the target and the
# path, and leaves no output.
bad_input_case() {
  local target=$1 expect output _
  IFS=$'\t' read -r _ expect output _ < <(grep -P "^$target\t" "$bad_input_cases") ||
    { echo "no case $target in $bad_input_cases" >&2; return 1; }
  [[ $output == - ]] && output=
  local ws="$work/bad"
  local err
  if err=$(cd "$ws" && "$bazelw" build "//:$target" 2>&1); then
    echo "//:$target built, expected a failure" >&2; return 1
  fi
  if ! grep -q -- "//:$target" <<<"$err" || ! grep -qF -- "$expect" <<<"$err"; then
    echo "//:$target: error does not name the target and '$expect':" >&2; echo "$err" | grep -iE 'error' | head -5 >&2
    return 1
  fi
  [[ -z $output || ! -e $ws/bazel-bin/$output ]] || { echo "partial output $output left behind" >&2; return 1; }
  echo "//:$target: $(grep -m1 -E '^error: //|Error in fail|missing input file' <<<"$err" | cut -c1-200)"
}

setup_bad_input_workspace() {
  local ws="$work/bad"
  rm -rf "$ws"; cp -r "$repo_root/e2e/bad_input" "$ws"
  sed -i "s|@RULES_IMAGE_PATH@|$repo_root|" "$ws/MODULE.bazel"
}

# ---------------------------------------------------------------------------------------------
# Registries through Bazel (needs e2e/registry/checks.sh set up: registries on loopback).

# `bazel run //app:push` with run-time overrides; skopeo verifies every digest, Docker runs it.
bazel_push_example() {
  local reg="127.0.0.1:$reg_port_plain" summary="$work/push-example.json"
  (cd "$repo_root/examples" && "$bazelw" run //app:push -- --registry "$reg" --summary-json "$summary") || return 1
  local digest short
  digest=$(cat "$(example_out image.digest)"); short=${digest#sha256:}; short=${short:0:12}
  [[ $(jq -r .digest "$summary") == "$digest" ]] || { echo "summary digest differs" >&2; return 1; }
  rm -rf "$work/pushed"
  skopeo copy -q --src-tls-verify=false "docker://$reg/rules-image-example/app:sha-$short" "oci:$work/pushed:latest" || return 1
  [[ "sha256:$(skopeo inspect --raw --tls-verify=false "docker://$reg/rules-image-example/app:latest" | sha256sum | cut -d' ' -f1)" == "$digest" ]] ||
    { echo "registry's :latest is not $digest" >&2; return 1; }
  docker rmi -f "$reg/rules-image-example/app:latest" >/dev/null 2>&1
  docker pull -q "$reg/rules-image-example/app:latest" >/dev/null || return 1
  docker run --rm --network none "$reg/rules-image-example/app:latest" | grep -qx 'Hello, container!'
}

# The push attached the SBOM and the provenance: distribution 2.8 has no referrers API, so
# the fallback tag sha256-<hex> is an index of both artifact manifests, each with the image as
# subject and the built file as its one blob; `referrers` lists them; pushing again adds no
# duplicate.
bazel_push_referrers() {
  local reg="127.0.0.1:$reg_port_plain" digest tool="$repo_root/tools/target/release/rules-image-tool"
  digest=$(cat "$(example_out image.digest)")
  # The tool built for this host (Bazel's runs in bazelw's rootfs).
  (cd "$repo_root/tools" && cargo build --release --locked 2>&1 | tail -1; exit "${PIPESTATUS[0]}") || return 1
  local index; index=$(skopeo inspect --raw --tls-verify=false "docker://$reg/rules-image-example/app:sha256-${digest#sha256:}") || return 1
  jq -e '.mediaType == "application/vnd.oci.image.index.v1+json" and
    ([.manifests[].artifactType] | sort) == ["application/spdx+json", "application/vnd.in-toto+json"]' <<<"$index" >/dev/null ||
    { echo "fallback index: $index" >&2; return 1; }
  local d type file
  for d in $(jq -r '.manifests[].digest' <<<"$index"); do
    local m; m=$(skopeo inspect --raw --tls-verify=false "docker://$reg/rules-image-example/app@$d") || return 1
    type=$(jq -r .artifactType <<<"$m")
    case $type in
      application/spdx+json) file=$(example_out sbom.spdx.json) ;;
      application/vnd.in-toto+json) file=$(example_out provenance.intoto.json) ;;
      *) echo "unexpected artifact type $type" >&2; return 1 ;;
    esac
    jq -e --arg s "$digest" --arg l "sha256:$(sha256sum <"$file" | cut -d' ' -f1)" \
      '.subject.digest == $s and .config.mediaType == "application/vnd.oci.empty.v1+json" and .layers[0].digest == $l' <<<"$m" >/dev/null ||
      { echo "artifact $d: $m" >&2; return 1; }
    curl -sf "http://$reg/v2/rules-image-example/app/blobs/$(jq -r '.layers[0].digest' <<<"$m")" | cmp -s - "$file" ||
      { echo "the registry's $type blob differs from the built file" >&2; return 1; }
  done
  local listed; listed=$("$tool" referrers "$reg/rules-image-example/app@$digest") || return 1
  echo "$listed"
  [[ $(wc -l <<<"$listed") == 2 ]] || return 1
  (cd "$repo_root/examples" && "$bazelw" run //app:push -- --registry "$reg") || return 1
  [[ $(skopeo inspect --raw --tls-verify=false "docker://$reg/rules-image-example/app:sha256-${digest#sha256:}" | jq '.manifests | length') == 2 ]] ||
    { echo "pushing again duplicated the referrers" >&2; return 1; }
}

# cosign (Debian's, unpacked) and a key pair, under $work (which `bazel run` in bazelw's
# rootfs sees too), made once per run: sets cosign, keys, password.
cosign_keys() {
  cosign="$work/cosign/bin/cosign" keys="$work/cosign"
  [[ -n ${password:-} && -x $cosign && -f $keys/cosign.key ]] && return 0
  source "$repo_root/benchmarks/peer_tools.sh"
  peer_unpack cosign usr/bin/cosign cosign || return 1
  password="e2e-$RANDOM-secret"
  rm -rf "$keys" && mkdir -p "$keys/bin" && cp "$peer_cache/cosign/usr/bin/cosign" "$cosign" || return 1
  (cd "$keys" && COSIGN_PASSWORD=$password "$cosign" generate-key-pair >/dev/null 2>&1)
}

# Signing: `bazel run //app:push -- --sign-key KEY` signs the pushed digest with cosign
# (Debian's, unpacked; key-based, no transparency log: this machine has no internet), and
# `cosign verify --key` accepts it; the signature is a third referrer; the key's password
# never shows in the output.
bazel_push_signed() {
  cosign_keys || return 1
  local reg="127.0.0.1:$reg_port_plain" digest tool="$repo_root/tools/target/release/rules-image-tool"
  digest=$(cat "$(example_out image.digest)")
  local log
  log=$(cd "$repo_root/examples" && COSIGN_PASSWORD=$password RULES_IMAGE_COSIGN=$cosign \
    "$bazelw" run //app:push -- --registry "$reg" --sign-key "$keys/cosign.key" --no-transparency-log 2>&1) ||
    { echo "$log" | tail -20 >&2; return 1; }
  grep -q "signed $reg/rules-image-example/app@$digest with cosign" <<<"$log" || { echo "$log" | tail -20 >&2; return 1; }
  if grep -qF "$password" <<<"$log"; then echo "the key's password is in the output" >&2; return 1; fi
  "$cosign" verify --key "$keys/cosign.pub" --allow-http-registry --insecure-ignore-tlog "$reg/rules-image-example/app@$digest" \
    >"$work/cosign-verify.json" 2>"$work/cosign-verify.log" || { cat "$work/cosign-verify.log" >&2; return 1; }
  jq -e --arg d "$digest" '.[0].critical.image["docker-manifest-digest"] == $d' "$work/cosign-verify.json" >/dev/null || return 1
  echo "cosign verify: $(grep -c . "$work/cosign-verify.log") lines, signature over $digest"
  # A wrong key is refused: the check can fail.
  (cd "$keys" && mkdir -p other && cd other && COSIGN_PASSWORD=x "$cosign" generate-key-pair >/dev/null 2>&1) || return 1
  if "$cosign" verify --key "$keys/other/cosign.pub" --allow-http-registry --insecure-ignore-tlog "$reg/rules-image-example/app@$digest" >/dev/null 2>&1; then
    echo "cosign verify accepted another key" >&2; return 1
  fi
  local listed; listed=$("$tool" referrers "$reg/rules-image-example/app@$digest") || return 1
  echo "$listed"
  grep -q '^application/spdx+json ' <<<"$listed" && grep -q '^application/vnd.in-toto+json ' <<<"$listed" &&
    [[ $(wc -l <<<"$listed") -ge 3 ]] || { echo "the signature is not listed with the other referrers" >&2; return 1; }
  # Pushing the referrers again keeps what another tool (cosign) added to the fallback tag.
  (cd "$repo_root/examples" && "$bazelw" run //app:push -- --registry "$reg") || return 1
  [[ $("$tool" referrers "$reg/rules-image-example/app@$digest" | sort) == "$(sort <<<"$listed")" ]] ||
    { echo "a later push lost cosign's referrer" >&2; return 1; }
  "$cosign" verify --key "$keys/cosign.pub" --allow-http-registry --insecure-ignore-tlog "$reg/rules-image-example/app@$digest" >/dev/null 2>&1
}

pulled_blobs() { find -L "$work/pull_consumer/bazel-bin/external" -path '*/blobs/*' -type f 2>/dev/null | wc -l; }

# A workspace whose base image is pulled by digest (images.pull): the example image as skopeo
# pushed it, converted to Docker schema 2. Only manifest and config are fetched; pushes mount
# or copy the base layers registry to registry; only `load` downloads them.
pull_consumer_setup() {
  local ws="$work/pull_consumer" src="127.0.0.1:$reg_port_plain/rules-image-example/skopeo"
  skopeo copy -q --format v2s2 --dest-tls-verify=false "oci:$(example_out image.oci_layout):latest" "docker://$src:latest" || return 1
  local digest
  digest=sha256:$(skopeo inspect --raw --tls-verify=false "docker://$src:latest" | sha256sum | cut -d' ' -f1)
  skopeo inspect --raw --tls-verify=false "docker://$src@$digest" | grep -q 'application/vnd.docker.distribution.manifest.v2+json' ||
    { echo "skopeo did not push a Docker schema 2 manifest" >&2; return 1; }
  rm -rf "$ws"; cp -r "$repo_root/e2e/pull_consumer" "$ws"
  sed -i -e "s|@RULES_IMAGE_PATH@|$repo_root|" -e "s|@REGISTRY@|127.0.0.1:$reg_port_plain|" \
    -e "s|@REGISTRY2@|127.0.0.1:$reg_port_plain2|" -e "s|@DIGEST@|$digest|" \
    -e "s|@REPOSITORY@|rules-image-example/skopeo|" "$ws/MODULE.bazel" "$ws/BUILD.bazel"
  (cd "$ws" && "$bazelw" build //:image) || return 1
  local n; n=$(pulled_blobs)
  ((n == 0)) || { echo "$n layer blobs were downloaded by a build that needs none" >&2; return 1; }
  # The base's layers come first, with the digests the registry has.
  jq -e --slurpfile base "$(example_out image.manifest.json)" \
    '.layers[0].digest == $base[0].layers[0].digest and .layers[0].mediaType == "application/vnd.oci.image.layer.v1.tar+gzip"' \
    "$ws/bazel-bin/image.manifest.json" >/dev/null || { echo "base layer not carried over as an OCI layer" >&2; return 1; }
}

pull_consumer_push_same_registry() {
  local s="$work/push-same.json"
  (cd "$work/pull_consumer" && "$bazelw" run //:push_same_registry -- --summary-json "$s") || return 1
  echo "mounted $(jq '.destinations[0].bytes_mounted' "$s") bytes, uploaded $(jq '.destinations[0].bytes_uploaded' "$s")"
  jq -e '.destinations[0].blobs_mounted >= 1' "$s" >/dev/null || { echo "base layer not mounted" >&2; return 1; }
  (($(pulled_blobs) == 0)) || { echo "push downloaded base layers" >&2; return 1; }
  skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$reg_port_plain/pull-consumer/app:latest" "oci:$work/pc1:latest"
}

pull_consumer_push_other_registry() {
  local s="$work/push-other.json"
  (cd "$work/pull_consumer" && "$bazelw" run //:push_other_registry -- --summary-json "$s") || return 1
  (($(pulled_blobs) == 0)) || { echo "push downloaded base layers to disk" >&2; return 1; }
  rm -rf "$work/pc2"
  skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$reg_port_plain2/pull-consumer/app:latest" "oci:$work/pc2:latest"
}

pull_consumer_load_and_run() {
  docker rmi -f pull-consumer/app:test >/dev/null 2>&1
  (cd "$work/pull_consumer" && "$bazelw" run //:load) || return 1
  (($(pulled_blobs) >= 1)) || { echo "load did not fetch the base layers" >&2; return 1; }
  docker run --rm --network none pull-consumer/app:test | grep -qx 'Hello, pulled!'
}

# No network on ordinary rebuilds: with the source registry stopped and a new Bazel server,
# the pulled image still builds (its repository is not fetched again).
pull_consumer_rebuild_offline() {
  registry_stop plain || return 1
  local ok=0
  (cd "$work/pull_consumer" && "$bazelw" shutdown && "$bazelw" build //:image) || ok=1
  registry_start plain plain "$reg_port_plain" || return 1
  return "$ok"
}

# Tags stamped from workspace status, and derived from the digest.
pull_consumer_stamped_tags() {
  local ws="$work/pull_consumer"
  (cd "$ws" && "$bazelw" run --stamp --workspace_status_command="$ws/status.sh" //:push_stamped) || return 1
  local digest tags
  digest=$(cat "$ws/bazel-bin/image.digest")
  tags=$(skopeo list-tags --tls-verify=false "docker://127.0.0.1:$reg_port_plain2/pull-consumer/stamped" | jq -r '.Tags[]' | sort | tr '\n' ' ')
  echo "tags: $tags"
  [[ $tags == "sha256-${digest#sha256:} v1.2.3 " ]]
}

# multi_deploy: a deployment with one unreachable destination fails and moves no tag at the
# reachable ones; the whole one pushes both images to three repositories in one run, and the
# registries serve each tag at the digest Bazel built.
pull_consumer_multi_deploy() {
  local ws="$work/pull_consumer" reg2="127.0.0.1:$reg_port_plain2" s="$work/deploy.json"
  if (cd "$ws" && RULES_IMAGE_RETRY_BASE_MS=10 "$bazelw" run //:deploy_broken); then
    echo "deploy with an unreachable destination succeeded" >&2; return 1
  fi
  if skopeo inspect --raw --tls-verify=false "docker://$reg2/pull-consumer/two:deployed" >/dev/null 2>&1; then
    echo "the failed deploy moved pull-consumer/two:deployed" >&2; return 1
  fi
  (cd "$ws" && "$bazelw" run //:deploy -- --summary-json "$s") || return 1
  local want_one want_two got
  want_one=$(cat "$ws/bazel-bin/image.digest"); want_two=$(cat "$ws/bazel-bin/image_two.digest")
  for ref in "127.0.0.1:$reg_port_plain/pull-consumer/app:latest=$want_one" "$reg2/pull-consumer/app:latest=$want_one" \
    "$reg2/pull-consumer/two:deployed=$want_two"; do
    got=sha256:$(skopeo inspect --raw --tls-verify=false "docker://${ref%=*}" | sha256sum | cut -d' ' -f1)
    [[ $got == "${ref#*=}" ]] || { echo "${ref%=*} is $got, not ${ref#*=}" >&2; return 1; }
  done
  jq -e --arg one "$want_one" --arg two "$want_two" \
    '[.pushes[].digest] == [$one, $one, $two] and ([.pushes[].label] == ["//:push_same_registry", "//:push_other_registry", "//:push_two"])' \
    "$s" >/dev/null || { echo "deploy summary:" >&2; jq -c '.pushes[] | {label, digest}' "$s" >&2; return 1; }
  # //:push_other_registry's referrer went with it: the fallback index at that destination
  # lists the provenance, whose subject is the image.
  local index artifact
  index=$(skopeo inspect --raw --tls-verify=false "docker://$reg2/pull-consumer/app:sha256-${want_one#sha256:}") || return 1
  jq -e '[.manifests[].artifactType] == ["application/vnd.in-toto+json"]' <<<"$index" >/dev/null ||
    { echo "referrers at $reg2: $index" >&2; return 1; }
  artifact=$(skopeo inspect --raw --tls-verify=false "docker://$reg2/pull-consumer/app@$(jq -r '.manifests[0].digest' <<<"$index")") || return 1
  jq -e --arg one "$want_one" '.subject.digest == $one' <<<"$artifact" >/dev/null || { echo "the provenance's subject is not $want_one" >&2; return 1; }
  (($(pulled_blobs) == 0)) || { echo "deploy downloaded base layers to disk" >&2; return 1; }
  jq -r '.pushes[] | .label + ": " + (.destinations[] | .registry + "/" + .repository + " uploaded " + (.bytes_uploaded|tostring) + " B, skipped " + (.blobs_skipped|tostring) + ", mounted " + (.blobs_mounted|tostring))' "$s"
}

# multi_deploy with --sign-key: every pushed image is signed at every destination, before the
# tags; cosign verify --key accepts each.
pull_consumer_deploy_signed() {
  cosign_keys || return 1
  local ws="$work/pull_consumer" reg2="127.0.0.1:$reg_port_plain2"
  (cd "$ws" && COSIGN_PASSWORD=$password RULES_IMAGE_COSIGN=$cosign \
    "$bazelw" run //:deploy -- --sign-key "$keys/cosign.key" --no-transparency-log) || return 1
  local one two ref
  one=$(cat "$ws/bazel-bin/image.digest"); two=$(cat "$ws/bazel-bin/image_two.digest")
  for ref in "127.0.0.1:$reg_port_plain/pull-consumer/app@$one" "$reg2/pull-consumer/app@$one" "$reg2/pull-consumer/two@$two"; do
    "$cosign" verify --key "$keys/cosign.pub" --allow-http-registry --insecure-ignore-tlog "$ref" >/dev/null 2>"$work/cosign-deploy.log" ||
      { echo "cosign verify $ref:" >&2; cat "$work/cosign-deploy.log" >&2; return 1; }
    echo "verified $ref"
  done
}

# The provenance of an image on a pulled base names the base by registry, repository and
# digest, and lists the workspace's sources; writing it downloads no base layer.
pull_consumer_provenance() {
  ensure_supply_chain_tools || return 1
  local ws="$work/pull_consumer" prov="$work/pull_consumer/bazel-bin/provenance.intoto.json"
  (cd "$ws" && "$bazelw" build //:provenance) || return 1
  validate_provenance "$prov" || return 1
  local base_digest; base_digest=$(grep -o 'sha256:[0-9a-f]\{64\}' "$ws/MODULE.bazel" | head -1)
  local base="127.0.0.1:$reg_port_plain/rules-image-example/skopeo"
  jq -e --arg d "${base_digest#sha256:}" --arg name "$base" --arg uri "oci://$base@$base_digest" \
    --arg x "$(sha256sum <"$ws/extra.txt" | cut -d' ' -f1)" '
    (.predicate.buildDefinition.resolvedDependencies | index({"name": $name, "uri": $uri, "digest": {"sha256": $d}}) != null) and
    (.predicate.buildDefinition.resolvedDependencies | index({"name": "extra.txt", "digest": {"sha256": $x}}) != null)' "$prov" >/dev/null ||
    { echo "provenance:" >&2; cat "$prov" >&2; return 1; }
  (($(pulled_blobs) == 0)) || { echo "writing the provenance downloaded base layers" >&2; return 1; }
  jq -r '.predicate.buildDefinition.resolvedDependencies[] | select(.uri) | "base: " + .uri' "$prov"
}

# ---------------------------------------------------------------------------------------------
# Suites (see run.sh).

tool_checks=("cargo test (tools/)|cargo_test")
cargo_test() {
  (cd "$repo_root/tools" && cargo test --locked --release 2>&1 | tail -40; exit "${PIPESTATUS[0]}")
}

rules_checks=(
  "bazel test //... (rules: Starlark unit, analysis and docs tests)|bazel_test"
  "Bazel 8/9 defaults (--config=next): bazel test, the examples build with the same digests|bazel_next"
)
bazel_test() { (cd "$repo_root" && "$bazelw" test //...); }

# The Starlark under the defaults that Bazel 8 and 9 flip (tools/bazel/next.bazelrc), in output
# bases of their own and without convenience links, so the normal builds are not disturbed.
# Left out: //tools (rules_rust 0.54.1) and //docs (stardoc's Java renderer on Bazel 7.7's
# rules_java), whose dependencies here predate Bazel 9; they are dev-only.
next_output_base() { echo "$work/next-$1"; }
bazel_next() {
  local flags=(--config=next --symlink_prefix=/)
  # Bazel 9 drops the language modules from Starlark's globals (the one flag next.bazelrc cannot set).
  if grep -rnwE 'CcInfo|cc_common|JavaInfo|java_common|PyInfo|ProtoInfo' "$repo_root/rules"; then
    echo "rules/ uses a language module that Bazel 9 removes" >&2; return 1
  fi
  (cd "$repo_root" && "$bazelw" --output_base="$(next_output_base root)" test "${flags[@]}" -- //... -//tools/... -//docs/...) || return 1
  local ex="$repo_root/examples" bin image
  (cd "$ex" && "$bazelw" build //app:image //attic:image) || return 1
  (cd "$ex" && "$bazelw" --output_base="$(next_output_base examples)" build "${flags[@]}" //...) || return 1
  bin=$(cd "$ex" && "$bazelw" --output_base="$(next_output_base examples)" info "${flags[@]}" bazel-bin 2>/dev/null) || return 1
  for image in app attic; do
    [[ $(cat "$bin/$image/image.digest") == "$(cat "$ex/bazel-bin/$image/image.digest")" ]] ||
      { echo "//$image:image has another digest under --config=next" >&2; return 1; }
    echo "//$image:image $(cat "$bin/$image/image.digest") under both"
  done
}
rules_shutdown() {
  local ws dir
  for ws in root examples; do
    [[ -d $(next_output_base $ws) ]] || continue
    dir=$repo_root; [[ $ws == examples ]] && dir=$repo_root/examples
    (cd "$dir" && "$bazelw" --output_base="$(next_output_base $ws)" shutdown) >/dev/null 2>&1
  done
  return 0
}

example_checks=(
  "build examples|build_examples"
  "gzip layers: gzip -t, same bytes with 1, 3, 8 compression threads|gzip_threads_same_bytes"
  "skopeo inspect oci layout|skopeo_inspect_layout"
  "skopeo copy verifies every digest|skopeo_copy_layout"
  "skopeo inspect tarball (docker-archive and oci-archive)|skopeo_inspect_tarball"
  "umoci unpack: files, modes, runfiles, symlink|umoci_unpack"
  "image_sbom: SPDX 2.3 validated by spdx-tools; files, hashes and origins|example_sbom"
  "image_provenance: in-toto + SLSA v1 validated; subject digest, sources with sha256|example_provenance"
  "bazel test //app:image_test: files and config read from the layers|example_image_test"
  "image_test with wrong expectations fails, naming image, path and layer|image_test_failures"
  "bazel test //app:image_run_test: commands run in Docker, exit codes and output|example_image_run_test"
  "image_test run with wrong expectations fails, naming image, command and difference; no tag left|image_run_test_failures"
  "oci-image-tool validate|oci_image_tool_validate"
  "image-spec JSON schemas|json_schemas"
  "bazel run //app:load, docker run|load_and_run"
  "bazel run //app:load_podman, podman image inspect|load_podman"
  "bazel run //app:load_containerd (and a one-layer-larger image): only missing layers sent, ctr run|load_containerd"
  "consumer: build, load, run|consumer_workspace"
  "file metadata: capabilities in docker run, owners/times/hard links in docker export|file_metadata_in_docker"
  "stamping: workspace status in created, labels, annotations only under --stamp|stamping"
  "prebuilt toolchain from a pinned lock file|prebuilt_toolchain"
)
while IFS=$'\t' read -r target _ _ what; do
  [[ $target == \#* || -z $target ]] || example_checks+=("bad input: $what|bad_input_case $target")
done <"$bad_input_cases"
example_setup() { setup_bad_input_workspace; }
example_shutdown() {
  local ws
  for ws in "$repo_root" "$repo_root/examples" "$work/consumer" "$work/bad" "$work/pull_consumer"; do
    [[ -f $ws/MODULE.bazel ]] && (cd "$ws" && "$bazelw" shutdown >/dev/null 2>&1)
  done
  return 0
}

# bazelw provisions its rootfs from the Debian archive in the machine's apt sources: each
# directory of e2e/bazelw_mirror is an /etc/apt with the archive it must pick in `expected`.
bazelw_debian_mirror() {
  local dir got want
  for dir in "$repo_root"/e2e/bazelw_mirror/*/; do
    want=$(cat "$dir/expected")
    got=$(BAZELW_APT_DIR=$dir BAZELW_PRINT_DEBIAN_MIRROR=1 "$bazelw") || return 1
    [[ $got == "$want" ]] || { echo "$(basename "$dir"): got $got, want $want" >&2; return 1; }
    echo "$(basename "$dir"): $got"
  done
  got=$(BAZELW_APT_DIR="$repo_root/e2e/bazelw_mirror/deb822" BAZELW_DEBIAN_MIRROR=http://override.example/debian/ BAZELW_PRINT_DEBIAN_MIRROR=1 "$bazelw")
  [[ $got == http://override.example/debian ]] || { echo "BAZELW_DEBIAN_MIRROR ignored: $got" >&2; return 1; }
}

repro_checks=(
  "bazelw takes the Debian archive from apt's sources (deb822, one-line), or BAZELW_DEBIAN_MIRROR|bazelw_debian_mirror"
  "identical digests (and SBOM, provenance bytes) from two checkouts, two umasks, two fresh output bases|reproducible_digests"
  "tool rebuilt when (and only when) its sources change|tool_rebuilds_on_source_change"
  "bazelw left no mounts on the host|no_rootfs_mounts"
)
repro_shutdown() { shutdown_repro_servers; }
