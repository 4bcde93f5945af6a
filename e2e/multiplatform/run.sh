#!/usr/bin/env bash
# Multi-platform image checks on their own: builds the tool, starts the loopback registries
# (as e2e/registry/run.sh does), runs run_multiplatform_checks and prints the summary line.
#   bash e2e/multiplatform/run.sh
# Env: REGISTRY_E2E_PORT_BASE (default 5001), MULTIPLATFORM_E2E_KEEP=1 keeps $work.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
source "$here/../lib.sh"
source "$here/../registry/registries.sh"
source "$here/../registry/checks.sh"
source "$here/checks.sh"

work=$(mktemp -d /tmp/rules_image_multiplatform_e2e.XXXXXX)
cleanup() {
  multiplatform_shutdown
  registry_stop_all
  stop_docker
  if [[ ${MULTIPLATFORM_E2E_KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_host_packages || exit 1
registry_ensure_packages || exit 1
ensure_docker || exit 1

say "building rules-image-tool"
build_tool() { (cd "$repo_root/tools" && cargo build --release 2>&1 | tail -3; exit "${PIPESTATUS[0]}"); }
check "cargo build --release (tools/)" build_tool

say "starting registries"
registry_e2e_setup "$work/registry" || exit 1

say "multi-platform images"
run_multiplatform_checks

echo "elapsed: ${SECONDS}s"
summary
