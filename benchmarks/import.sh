#!/usr/bin/env bash
# Import benchmark: `rules-image-tool import` of a `docker save` tarball (one ~SIZE_MIB layer
# of real bytes, built FROM scratch by the Docker engine), against skopeo doing the same job,
# run here in the same process tree:
#   verify:    import (every digest and every layer entry checked, blobs kept)
#              vs skopeo copy docker-archive: oci:        (target: tool <= 1.0x the time)
#   normalize: import --normalize (entries sorted, mtimes clamped, gzip -6)
#              vs skopeo copy --dest-compress-format gzip  (recompresses, no normalization)
# Needs a running Docker engine (e2e/lib.sh ensure_docker). Prints figures; asserts nothing.
#   benchmarks/import.sh [SIZE_MIB]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
size_mib=${1:-512}
work=$(mktemp -d /tmp/rules_image_bench_import.XXXXXX)
tag=rules-image-bench/import:latest
trap 'rm -rf "$work"; docker rmi -f "$tag" >/dev/null 2>&1 || true' EXIT

tool=${RULES_IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  (cd "$repo/tools" && cargo build --release --locked -q)
  tool="$repo/tools/target/release/rules-image-tool"
fi

python3 "$repo/benchmarks/make_tree.py" "$work/ctx/tree" "$size_mib"
printf 'FROM scratch\nCOPY tree /data\n' >"$work/ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q --network none -t "$tag" "$work/ctx" >/dev/null
rm -rf "$work/ctx"
docker save -o "$work/saved.tar" "$tag"
bytes=$(stat -c %s "$work/saved.tar")
files=$(tar -xOf "$work/saved.tar" --wildcards '*/layer.tar' | tar -t | wc -l)
printf 'docker save: %.0f MiB, %d layer entries\n' "$(echo "$bytes / 1048576" | bc -l)" "$files"
cat "$work/saved.tar" >/dev/null   # page cache

run() { python3 "$repo/benchmarks/measure.py" "$@"; }   # prints "<seconds> <peak_rss_kib>"
fresh() { rm -rf "$work/out" "$work/sk"; }
# The tool prints the imported digest: keep it out of measure.py's output.
import() { run bash -c '"$0" import "$@" >/dev/null' "$tool" --src "$work/saved.tar" --output-dir "$work/out" "$@"; }
read -r t_imp rss_imp < <(fresh; import)
read -r t_sk _ < <(fresh; run skopeo copy -q "docker-archive:$work/saved.tar" "oci:$work/sk:x")
read -r t_norm rss_norm < <(fresh; import --normalize)
norm_bytes=$(du -sb "$work/out/blobs" | cut -f1)
read -r t_skgz _ < <(fresh; run skopeo copy -q --dest-compress-format gzip "docker-archive:$work/saved.tar" "oci:$work/sk:x")
sk_bytes=$(du -sb "$work/sk/blobs" | cut -f1)
read -r t_zst _ < <(fresh; import --normalize --compression zstd)

mib_s() { echo "scale=1; $bytes / 1048576 / $1" | bc -l; }
row() { printf '%-58s %8.2f %8s %s\n' "$1" "$2" "$(mib_s "$2")" "${3:-}"; }
echo
printf '%-58s %8s %8s %s\n' "run" "seconds" "MiB/s" "notes"
row "rules-image-tool import (verify, check entries)" "$t_imp" "peak RSS $((rss_imp / 1024)) MiB"
row "  baseline: skopeo copy docker-archive: oci:" "$t_sk"
row "rules-image-tool import --normalize (gzip -6)" "$t_norm" "peak RSS $((rss_norm / 1024)) MiB, $((norm_bytes / 1048576)) MiB out"
row "  baseline: skopeo copy --dest-compress-format gzip" "$t_skgz" "$((sk_bytes / 1048576)) MiB out"
row "rules-image-tool import --normalize --compression zstd" "$t_zst"
echo
printf 'verify-only import vs skopeo copy: %.2fx the time (target <= 1.0x)\n' "$(echo "$t_imp / $t_sk" | bc -l)"
printf 'normalized gzip import vs skopeo gzip copy: %.2fx the time\n' "$(echo "$t_norm / $t_skgz" | bc -l)"
