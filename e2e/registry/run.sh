#!/usr/bin/env bash
# Registry e2e checks on their own: builds the tool, starts local registries (plain x2, basic
# auth over TLS, TLS, bearer token + token server) and a fault proxy on loopback, runs every
# check and prints the summary line. Everything is stopped and removed at exit.
#   bash e2e/registry/run.sh [CHECK_FUNCTION...]   (default: all)
# Env: REGISTRY_E2E_PORT_BASE (default 5001; 7 ports from there), REGISTRY_E2E_KEEP=1 keeps $work.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
source "$here/../lib.sh"
source "$here/registries.sh"
source "$here/checks.sh"

work=$(mktemp -d /tmp/rules_image_registry_e2e.XXXXXX)
cleanup() {
  registry_stop_all
  stop_docker
  if [[ ${REGISTRY_E2E_KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_host_packages || exit 1
registry_ensure_packages || exit 1
ensure_docker || exit 1

say "building rules-image-tool"
build_tool() { (cd "$repo_root/tools" && cargo build --release 2>&1 | tail -3; exit "${PIPESTATUS[0]}"); }
# A failed build is a failed check; an older binary (if any) still serves the infrastructure checks.
check "cargo build --release (tools/)" build_tool

say "starting registries, token server and fault proxy"
registry_e2e_setup "$work" || exit 1
for n in "${registry_started[@]}"; do echo "  $n: ${registry_scheme[$n]:-http}://${registry_addr[$n]}"; done
registry_make_images || { echo "cannot make the test images" >&2; exit 1; }

all_checks=(
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
)
for entry in "${all_checks[@]}"; do
  name=${entry%%|*}; fn=${entry#*|}
  if (($# > 0)); then
    wanted=0
    for w in "$@"; do [[ ${fn%% *} == "$w" ]] && wanted=1; done
    ((wanted)) || continue
  fi
  say "$name"
  # shellcheck disable=SC2086
  check "$name" $fn
done

echo "elapsed: ${SECONDS}s"
summary
