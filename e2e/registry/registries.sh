# Registry e2e infrastructure: local OCI registries (Debian's docker-registry, distribution 2.8)
# on loopback in four modes, a token server, a fault-injecting proxy, and a test PKI.
# Sourced (after e2e/lib.sh), not executed. Everything lives under "$registry_root"
# (set by registry_init) and every server started here is stopped by registry_stop_all.
#
#   registry_init DIR                    state dir (configs, storage, logs, PKI)
#   registry_ensure_packages             apt-get installs what is missing
#   registry_make_pki                    test CA, server cert for 127.0.0.1, token-signing cert,
#                                        CA bundle (system roots + test CA) -> $registry_ca_bundle
#   registry_start NAME MODE PORT        MODE: plain | basic | tls | token (token needs token_server_start)
#   token_server_start PORT              bearer-token server on http://127.0.0.1:PORT/token
#   fault_proxy_start NAME PORT UPSTREAM_PORT [fault_proxy.py options...]
#   fault_proxy_config NAME JSON         reconfigure a running proxy (counters reset)
#   fault_proxy_stats NAME               its counters as JSON
#   registry_stop_all                    stops everything started here (by pid)
#
# Addresses: ${registry_addr[NAME]} = 127.0.0.1:PORT (also for proxies and "token-server").

registry_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
registry_python=/usr/bin/python3   # Debian's, where python3-cryptography is installed
registry_packages=(docker-registry apache2-utils openssl python3-cryptography curl jq skopeo)
registry_user=alice
registry_password=s3cret
registry_token_service=e2e-registry
registry_token_issuer=e2e-token-issuer
registry_root=
registry_ca_bundle=
# A name for the TLS registries that is not loopback-looking, resolved to 127.0.0.1 only inside
# a private mount namespace with its own /etc/hosts (registry_in_hosts_ns): clients that speak
# plain HTTP to every loopback address (rules-image-tool does) still reach them over TLS.
registry_tls_name=registry.e2e.test
declare -gA registry_addr=() registry_pid=() registry_scheme=()
registry_started=()   # names, in start order

registry_init() {
  registry_root=$1
  mkdir -p "$registry_root"
}

# docker-registry's maintainer script tries to start the packaged service; without systemd
# that is a no-op, and our instances use their own configs and ports anyway.
registry_ensure_packages() { ensure_packages "${registry_packages[@]}"; }

# Test PKI under $registry_root/pki: ca.{crt,key}, server.{crt,key} (SAN IP:127.0.0.1,
# DNS:localhost, DNS:$registry_tls_name), token.{crt,key} (self-signed, signs JWTs; the token registry's rootcertbundle),
# bundle.crt = system roots + test CA (for SSL_CERT_FILE), certs.d/ (for skopeo --cert-dir).
registry_make_pki() {
  local d="$registry_root/pki"
  [[ -f $d/bundle.crt ]] && { registry_ca_bundle=$d/bundle.crt; return 0; }
  mkdir -p "$d"
  (
    set -e
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -keyout ca.key -out ca.crt \
      -subj "/CN=rules_image e2e test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr \
      -subj "/CN=127.0.0.1" 2>/dev/null
    cat >server.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$registry_tls_name
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -sha256 \
      -extfile server.ext -out server.crt 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 -keyout token.key -out token.crt \
      -subj "/CN=rules_image e2e token signer" 2>/dev/null
    cat /etc/ssl/certs/ca-certificates.crt ca.crt >bundle.crt
    mkdir -p certs.d && cp ca.crt certs.d/ca.crt
    openssl verify -CAfile ca.crt server.crt >/dev/null
  ) || { echo "registry_make_pki failed" >&2; return 1; }
  registry_ca_bundle=$d/bundle.crt
}

# registry_in_hosts_ns CMD... — runs CMD in a private mount namespace where /etc/hosts maps
# $registry_tls_name to 127.0.0.1 (the host's /etc/hosts is untouched). Needs root.
registry_in_hosts_ns() {
  local hosts="$registry_root/hosts"
  [[ -f $hosts ]] || printf '127.0.0.1 localhost %s\n::1 localhost\n' "$registry_tls_name" >"$hosts"
  unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$hosts" "$@"
}

registry_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits (at most ~15 s) until URL answers with any HTTP status.
registry_wait_http() {
  local url=$1 name=$2 i code
  for i in $(seq 60); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$registry_root/pki/ca.crt" "$url" 2>/dev/null)
    [[ $code =~ ^[1-5][0-9][0-9]$ ]] && return 0
    if [[ -n ${registry_pid[$name]:-} ]] && ! kill -0 "${registry_pid[$name]}" 2>/dev/null; then
      echo "$name exited; its log:" >&2; tail -20 "$registry_root/$name/log" >&2; return 1
    fi
    sleep 0.25
  done
  echo "$name did not answer at $url; its log:" >&2; tail -20 "$registry_root/$name/log" >&2
  return 1
}

# Starts a process in its own session, logging to $registry_root/NAME/log; records its pid.
registry_spawn() {
  local name=$1; shift
  mkdir -p "$registry_root/$name"
  setsid "$@" >"$registry_root/$name/log" 2>&1 </dev/null &
  registry_pid[$name]=$!
  registry_started+=("$name")
}

registry_start() {
  local name=$1 mode=$2 port=$3
  local d="$registry_root/$name"
  registry_port_free "$port" || { echo "port $port is in use" >&2; return 1; }
  mkdir -p "$d/data"
  local tls="" auth="" scheme=http
  case $mode in
    plain) ;;
    basic)
      # distribution 2.8 serves htpasswd auth over plain HTTP too (its docs only warn); we
      # still serve it with TLS, like a real deployment, so credentials never go in clear.
      htpasswd -Bbn "$registry_user" "$registry_password" >"$d/htpasswd" || return 1
      auth="auth:
  htpasswd:
    realm: e2e-basic-realm
    path: $d/htpasswd"
      scheme=https ;;
    tls) scheme=https ;;
    token)
      [[ -n ${registry_addr[token-server]:-} ]] || { echo "start the token server first" >&2; return 1; }
      auth="auth:
  token:
    realm: http://${registry_addr[token-server]}/token
    service: $registry_token_service
    issuer: $registry_token_issuer
    rootcertbundle: $registry_root/pki/token.crt" ;;
    basic-http)  # htpasswd without TLS (to show distribution accepts it); not used by the checks
      htpasswd -Bbn "$registry_user" "$registry_password" >"$d/htpasswd" || return 1
      auth="auth:
  htpasswd:
    realm: e2e-basic-realm
    path: $d/htpasswd" ;;
    *) echo "unknown registry mode $mode" >&2; return 1 ;;
  esac
  if [[ $scheme == https ]]; then
    registry_make_pki || return 1
    tls="  tls:
    certificate: $registry_root/pki/server.crt
    key: $registry_root/pki/server.key"
  fi
  cat >"$d/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry-$name
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: e2e-$name-$RANDOM$RANDOM
  headers:
    X-Content-Type-Options: [nosniff]
$tls
$auth
EOF
  registry_spawn "$name" docker-registry serve "$d/config.yml"
  registry_addr[$name]=127.0.0.1:$port
  registry_scheme[$name]=$scheme
  registry_wait_http "$scheme://127.0.0.1:$port/v2/" "$name"
}

token_server_start() {
  local port=$1 name=token-server
  registry_make_pki || return 1
  registry_port_free "$port" || { echo "port $port is in use" >&2; return 1; }
  mkdir -p "$registry_root/$name"
  registry_spawn "$name" "$registry_python" "$registry_dir/token_server.py" --port "$port" \
    --key "$registry_root/pki/token.key" --cert "$registry_root/pki/token.crt" \
    --issuer "$registry_token_issuer" --service "$registry_token_service" \
    --user "$registry_user:$registry_password" --log "$registry_root/$name/requests.jsonl" \
    --deny-repo e2e/forbidden
  registry_addr[$name]=127.0.0.1:$port
  registry_wait_http "http://127.0.0.1:$port/healthz" "$name"
}

# Number of token requests served so far (optionally only those of one account).
token_requests() {
  local f="$registry_root/token-server/requests.jsonl"
  if [[ -n ${1:-} ]]; then grep -c "\"account\": \"$1\"" "$f"; else wc -l <"$f"; fi
}

fault_proxy_start() {
  local name=$1 port=$2 upstream=$3; shift 3
  registry_port_free "$port" || { echo "port $port is in use" >&2; return 1; }
  mkdir -p "$registry_root/$name"
  registry_spawn "$name" "$registry_python" "$registry_dir/fault_proxy.py" --port "$port" \
    --upstream "127.0.0.1:$upstream" --log "$registry_root/$name/requests.jsonl" "$@"
  registry_addr[$name]=127.0.0.1:$port
  registry_wait_http "http://127.0.0.1:$port/__proxy/stats" "$name"
}

fault_proxy_config() {
  curl -sS --max-time 5 -X POST --data "$2" "http://${registry_addr[$1]}/__proxy/config" >/dev/null
}
fault_proxy_stats() {
  curl -sS --max-time 5 "http://${registry_addr[$1]}/__proxy/stats"
}

# Stops every server started here: SIGTERM, up to 5 s, then SIGKILL. Only our own pids.
registry_stop_all() {
  local name pid i
  for name in "${registry_started[@]}"; do
    pid=${registry_pid[$name]:-}
    [[ -n $pid ]] && kill "$pid" 2>/dev/null
  done
  for name in "${registry_started[@]}"; do
    pid=${registry_pid[$name]:-}
    [[ -n $pid ]] || continue
    for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "registry_pid[$name]"
  done
  registry_started=()
  return 0
}

# Stops one server (e.g. to restart a proxy with other options).
registry_stop() {
  local name=$1 pid=${registry_pid[$1]:-} i
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null
  for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "registry_pid[$name]"
  local keep=() n
  for n in "${registry_started[@]}"; do [[ $n == "$name" ]] || keep+=("$n"); done
  registry_started=("${keep[@]}")
}
