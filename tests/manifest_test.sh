#!/usr/bin/env bash
# image_manifest: config and manifest are canonical JSON equal to the golden files (layers are
# uncompressed here, so every digest in them depends on content only), and the digest file
# is the sha256 of the manifest bytes.
set -euo pipefail
cd tests
fail() { echo "FAIL: $*" >&2; exit 1; }
diff -u image.config.golden.json image.config.json || fail "config differs from golden"
diff -u image.manifest.golden.json image.manifest.json || fail "manifest differs from golden"
[[ $(cat image.digest) == "sha256:$(sha256sum image.manifest.json | cut -d' ' -f1)" ]] || fail "digest file"
echo "PASS"
