#!/usr/bin/env bash
# Builds the example image with Bazel, loads it into Docker and runs it.
# Installs and starts what it needs (Debian packages, dockerd, Bazel via ./bazelw).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_host_packages
ensure_docker
trap stop_docker EXIT
cd "$repo_root/examples"
"$bazelw" build //app:image
echo "image digest: $(cat bazel-bin/app/image.digest)"
"$bazelw" run //app:load
docker run --rm --network none rules-image-example/app:latest
