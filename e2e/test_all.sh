#!/usr/bin/env bash
# Runs every test of rules_image: the tool's cargo tests, the rules' Bazel tests, and the
# end-to-end checks (example images validated by skopeo/umoci/oci-image-tool/JSON schemas,
# loaded into a real Docker engine and run; reproducibility across checkouts; bad input).
# Installs and starts what it needs (Debian packages, dockerd, Bazel via ./bazelw).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$repo_root/e2e/checks.sh"
source "$repo_root/e2e/registry/registries.sh"
source "$repo_root/e2e/registry/checks.sh"
source "$repo_root/e2e/nix/checks.sh"
source "$repo_root/e2e/multiplatform/checks.sh"
source "$repo_root/e2e/dockerfile/checks.sh"

ensure_host_packages || exit 1
registry_ensure_packages || exit 1
ensure_docker || exit 1
cleanup() {
  shutdown_repro_servers
  nix_shutdown
  multiplatform_shutdown
  df_shutdown
  registry_stop_all
  for ws in "$repo_root" "$repo_root/examples" "$work/consumer" "$work/bad" "$work/pull_consumer"; do
    [[ -f $ws/MODULE.bazel ]] && (cd "$ws" && "$bazelw" shutdown >/dev/null 2>&1)
  done
  stop_docker
  rm -rf "$work"
}
trap cleanup EXIT

say "cargo test (tools/)"
check "cargo test" bash -c 'cd "$1/tools" && cargo test --locked --release 2>&1 | tail -40; exit ${PIPESTATUS[0]}' _ "$repo_root"

say "bazel test //... (rules)"
check "bazel test //..." bash -c 'cd "$1" && "$2" test //...' _ "$repo_root" "$bazelw"

say "example image: build and validate"
check "build examples" build_examples
check "skopeo inspect oci layout" skopeo_inspect_layout
check "skopeo copy verifies every digest" skopeo_copy_layout
check "skopeo inspect tarball (docker-archive and oci-archive)" skopeo_inspect_tarball
check "umoci unpack: files, modes, runfiles, symlink" umoci_unpack
check "oci-image-tool validate" oci_image_tool_validate
check "image-spec JSON schemas" json_schemas
check "bazel run //app:load, docker run" load_and_run
check "bazel run //app:load_podman, podman image inspect" load_podman

say "a consumer workspace outside the repo"
check "consumer: build, load, run" consumer_workspace
check "prebuilt toolchain from a pinned lock file" prebuilt_toolchain

say "bad input"
setup_bad_input_workspace
check "missing source file" bad_input_case missing_source "does_not_exist.txt" ""
check "two sources, one image path" bad_input_case duplicate_path "/app/x" duplicate_path.tar.gz
check "path escaping the root" bad_input_case escapes_root "/app/../../etc/passwd" escapes_root.tar.gz
check "invalid mode" bad_input_case invalid_mode "0999" invalid_mode.tar.gz
check "empty srcs and symlinks" bad_input_case empty "srcs" ""
check "file used as a directory" bad_input_case file_under_file "/a" file_under_file.tar.gz

say "registries: push, pull, auth, TLS, faults (Debian's docker-registry on loopback)"
if registry_e2e_setup "$work/registry" && registry_make_images; then
  run_registry_checks
  say "registries through Bazel: image_push, images.pull"
  check "bazel run //app:push, skopeo and docker pull verify" bazel_push_example
  check "images.pull of a skopeo-pushed Docker schema 2 image; build on it, no layer downloaded" pull_consumer_setup
  check "push to the base's registry mounts its layers" pull_consumer_push_same_registry
  check "push to another registry copies them registry to registry" pull_consumer_push_other_registry
  check "tags stamped from workspace status and the digest" pull_consumer_stamped_tags
  check "load fetches the layers; docker run" pull_consumer_load_and_run
  say "multi-platform images: image_index"
  run_multiplatform_checks
  check "rebuild with the source registry down uses no network" pull_consumer_rebuild_offline
else
  check "registry setup" false
fi

say "Nix closures as images (real Nix in bazelw's rootfs)"
run_nix_checks

say "Dockerfile builds and image_import (Docker engine, Nix-built base, registry)"
run_dockerfile_checks

say "reproducibility: two checkouts, two umasks, two fresh output bases"
check "identical digests" reproducible_digests
check "tool rebuilt when (and only when) its sources change" tool_rebuilds_on_source_change

check "bazelw left no mounts on the host" no_rootfs_mounts

echo "elapsed: ${SECONDS}s"
summary
