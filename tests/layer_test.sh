#!/usr/bin/env bash
# image_layer: the tar listing (paths, modes, owners, times, runfiles, symlinks) matches the
# golden listing, and every compression of the same entries has the same diff_id.
set -euo pipefail
cd tests
fail() { echo "FAIL: $*" >&2; exit 1; }
field() { sed -E "s/.*\"$2\":\"?([^,\"}]*).*/\1/" "$1"; }

# mode owner size date time path [-> target], whitespace collapsed
listing=$(tar --numeric-owner --full-time -tvf layer_none.tar | tr -s ' ')
if ! diff -u layer.golden <(echo "$listing"); then
  fail "layer listing differs from tests/layer.golden"
fi

none_sha="sha256:$(sha256sum layer_none.tar | cut -d' ' -f1)"
[[ $(field layer_none.layer.json diff_id) == "$none_sha" ]] || fail "diff_id of the uncompressed layer is not its sha256"
[[ $(field layer_none.layer.json digest) == "$none_sha" ]] || fail "digest of the uncompressed layer is not its sha256"
[[ $(field layer_gzip.layer.json diff_id) == "$none_sha" ]] || fail "gzip layer diff_id differs"
[[ $(field layer_zstd.layer.json diff_id) == "$none_sha" ]] || fail "zstd layer diff_id differs"
[[ $(field layer_gzip.layer.json digest) == "sha256:$(sha256sum layer_gzip.tar.gz | cut -d' ' -f1)" ]] || fail "gzip digest"
[[ $(field layer_gzip.layer.json size) == "$(stat -L -c %s layer_gzip.tar.gz)" ]] || fail "gzip size"
[[ "sha256:$(gzip -dc layer_gzip.tar.gz | sha256sum | cut -d' ' -f1)" == "$none_sha" ]] || fail "gunzip of the gzip layer differs"
[[ $(field layer_gzip.layer.json media_type) == "application/vnd.oci.image.layer.v1.tar+gzip" ]] || fail "gzip media type"
[[ $(field layer_zstd.layer.json media_type) == "application/vnd.oci.image.layer.v1.tar+zstd" ]] || fail "zstd media type"
[[ $(head -c4 layer_zstd.tar.zst | od -An -tx1 | tr -d ' ') == "28b52ffd" ]] || fail "zstd frame magic"
echo "PASS"
