#!/usr/bin/env bash
# nix.image end-to-end checks on their own (real Nix in bazelw's rootfs, Bazel, Docker, skopeo,
# umoci). Installs and starts what it needs; stops and removes it at exit.
#   bash e2e/nix/run.sh [CHECK_FUNCTION...]   (default: all, see run_nix_checks in checks.sh)
# Env: NIX_E2E_KEEP=1 keeps the work directory.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
source "$here/../lib.sh"
source "$here/../checks.sh"
source "$here/checks.sh"

cleanup() {
  nix_shutdown
  (cd "$repo_root/examples" && "$bazelw" shutdown >/dev/null 2>&1)
  stop_docker
  if [[ ${NIX_E2E_KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_host_packages || exit 1
ensure_docker || exit 1

if (($# == 0)); then
  run_nix_checks
else
  nix_setup_workspace || exit 1
  for fn in "$@"; do check "$fn" "$fn"; done
fi

echo "elapsed: ${SECONDS}s"
summary
