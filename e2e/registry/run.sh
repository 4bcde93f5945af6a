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

run_registry_checks "$@"

echo "elapsed: ${SECONDS}s"
summary
