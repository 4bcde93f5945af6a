#!/usr/bin/env bash
# image_import and dockerfile.build end-to-end checks on their own: builds the tool, starts
# dockerd and a plain loopback registry (port base + 10), runs run_dockerfile_checks, prints the summary line.
#   bash e2e/dockerfile/run.sh [CHECK_FUNCTION...]   (default: all, see checks.sh)
# Env: DOCKERFILE_E2E_KEEP=1 keeps the work directory; REGISTRY_E2E_PORT_BASE (default 5001).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
source "$here/../lib.sh"
source "$here/../checks.sh"
source "$here/../registry/registries.sh"
source "$here/checks.sh"

cleanup() {
  df_shutdown
  registry_stop_all
  (cd "$repo_root/examples" && "$bazelw" shutdown >/dev/null 2>&1)
  stop_docker
  if [[ ${DOCKERFILE_E2E_KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_host_packages || exit 1
registry_ensure_packages || exit 1
ensure_docker || exit 1
if (($# == 0)); then
  run_dockerfile_checks
else
  df_setup || exit 1
  for fn in "$@"; do check "$fn" "$fn"; done
fi

echo "elapsed: ${SECONDS}s"
summary
