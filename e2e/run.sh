#!/usr/bin/env bash
# The one launcher of the end-to-end suites: installs and starts what they need (Debian
# packages, dockerd, loopback registries, Bazel through ./bazelw), runs them, stops everything.
#
#   bash e2e/run.sh                      every suite, in order (what ./e2e/test_all.sh runs)
#   bash e2e/run.sh SUITE [FUNCTION...]  one suite, or only the named checks of it
#
# Suites (each a table of checks at the end of its file):
#   tool           cargo test of tools/                                   (e2e/checks.sh)
#   rules          bazel test //...                                       (e2e/checks.sh)
#   example        examples/ built, validated, loaded, run; consumer workspaces; bad input
#   registry       push/pull/auth/TLS/faults against real registries; images.pull, image_push
#   multiplatform  image_index built, validated, pushed, loaded, used as a base
#   nix            nix.image with real Nix                                (e2e/nix/checks.sh)
#   dockerfile     dockerfile.build and image_import with real builders   (e2e/dockerfile/checks.sh)
#   lazy           eStargz and zstd:chunked layers: reference readers, podman partial pulls
#                                                                         (e2e/lazy_pull/checks.sh)
#   remote         BuildGrid: remote cache, --remote_download_minimal, remote execution,
#                  push and load from the CAS                             (e2e/remote/checks.sh)
#   repro          same digests from other paths and umasks; tool rebuilds; no leaked mounts
#
# Env: E2E_KEEP=1 keeps the work directory; REGISTRY_E2E_PORT_BASE (default 5001) moves the
# registries' ports.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$repo_root/e2e/checks.sh"
source "$repo_root/e2e/registry/registries.sh"
source "$repo_root/e2e/registry/checks.sh"
source "$repo_root/e2e/multiplatform/checks.sh"
source "$repo_root/e2e/nix/checks.sh"
source "$repo_root/e2e/dockerfile/checks.sh"
source "$repo_root/e2e/lazy_pull/checks.sh"
source "$repo_root/e2e/remote/checks.sh"

all_suites=(tool rules example registry multiplatform nix dockerfile lazy remote repro)
if (($# > 0)); then
  [[ " ${all_suites[*]} " == *" $1 "* ]] || { echo "unknown suite $1 (suites: ${all_suites[*]})" >&2; exit 2; }
fi

trap e2e_cleanup EXIT
trap 'exit 130' INT TERM
ensure_host_packages || exit 1
registry_ensure_packages || exit 1
ensure_docker || exit 1

if (($# == 0)); then
  for suite in "${all_suites[@]}"; do run_suite "$suite"; done
else
  run_suite "$@"
fi

echo "elapsed: ${SECONDS}s"
summary
