#!/usr/bin/env bash
# bazel run //docs:update: copies the generated reference pages over docs/<page>.md.
set -euo pipefail
[[ -n ${BUILD_WORKSPACE_DIRECTORY:-} ]] || { echo "run me with: bazel run //docs:update" >&2; exit 1; }
for generated in "$@"; do
  page="$BUILD_WORKSPACE_DIRECTORY/docs/$(basename "$generated")"
  cat "$generated" >"$page"
  echo "wrote ${page#"$BUILD_WORKSPACE_DIRECTORY/"}"
done
