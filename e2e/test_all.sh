#!/usr/bin/env bash
# Runs every test of rules_image: the tool's cargo tests, the rules' Bazel tests, and the
# end-to-end suites (example images validated by skopeo/umoci/oci-image-tool/JSON schemas,
# loaded into a real Docker engine and run; registries, multi-platform images, Nix,
# Dockerfiles; reproducibility across checkouts; bad input). See e2e/run.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/run.sh"
