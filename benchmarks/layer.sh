#!/usr/bin/env bash
# Layer benchmark: throughput and peak memory of `rules-image-tool layer` on a ~1 GiB tree
# (many small files plus a few large ones, real binaries and text from /usr), against
# baselines run here in the same process tree:
#   gzip:  tar --sort=name -c DIR | gzip -6        (target: tool >= 2x, single-threaded)
#   none:  sha256sum over the same bytes           (target: tool >= 70% of its throughput)
# Prints figures and ratios; asserts nothing. Usage: benchmarks/layer.sh [SIZE_MIB]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/rules_image_bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

tool=${RULES_IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  (cd "$repo/tools" && cargo build --release --locked -q)
  tool="$repo/tools/target/release/rules-image-tool"
fi

python3 "$repo/benchmarks/make_tree.py" "$work/tree" "$size_mib"
bytes=$(du -sb "$work/tree" | cut -f1)
files=$(find "$work/tree" -type f | wc -l)
printf 'tree: %d files, %.0f MiB\n' "$files" "$(echo "$bytes / 1048576" | bc -l)"
# Warm the page cache so every run reads cached files.
find "$work/tree" -type f -exec cat {} + >/dev/null

run() { python3 "$repo/benchmarks/measure.py" "$@"; }   # prints "<seconds> <peak_rss_kib>"
# Fast runs are dominated by the kernel's page-cache costs, which vary from run to run on a
# VM: take the best of three (deleting the previous output first, as a build would).
best3() {
  local out=$1; shift
  for _ in 1 2 3; do rm -f "$out"; "$@"; done | sort -n | head -1
}
mib_s() { echo "scale=1; $bytes / 1048576 / $1" | bc -l; }

entry=$(printf 'file\t/data\t%s' "$work/tree")
layer() { run "$tool" layer --output "$work/$1" --metadata "$work/$1.json" --compression "$2" "$entry"; }
read -r t_gz rss_gz < <(layer l.tar.gz gzip)
read -r t_tgz _ < <(run bash -c "tar --sort=name -C '$work/tree' -cf - . | gzip -6 >'$work/b.tar.gz'")
read -r t_none rss_none < <(best3 "$work/l.tar" layer l.tar none)
read -r t_tar _ < <(best3 "$work/b.tar" run tar --sort=name -C "$work/tree" -cf "$work/b.tar" .)
# Pure sha256 speed: openssl (SHA-NI) over the uncompressed layer, now in the page cache.
read -r t_sha _ < <(best3 /dev/null/none run openssl dgst -sha256 -out /dev/null "$work/l.tar")
read -r t_zst rss_zst < <(layer l.tar.zst zstd)
# Memory must not grow with the layer: the same run over one eighth of the tree.
small=$(printf 'file\t/data\t%s' "$work/tree/small")
read -r _ rss_small < <(run "$tool" layer --output "$work/s.tar.gz" --metadata "$work/s.json" --compression gzip "$small")

row() { printf '%-46s %8.2f %9s %s\n' "$1" "$2" "$(mib_s "$2")" "${3:-}"; }
echo
printf '%-46s %8s %9s %s\n' "run" "seconds" "MiB/s" "peak RSS"
row "rules-image-tool layer --compression gzip" "$t_gz" "$((rss_gz / 1024)) MiB"
row "  baseline: tar --sort=name | gzip -6" "$t_tgz"
row "rules-image-tool layer --compression none" "$t_none" "$((rss_none / 1024)) MiB"
row "  baseline: openssl dgst -sha256 (hash only)" "$t_sha"
row "  context:  tar --sort=name -cf (same I/O)" "$t_tar"
row "rules-image-tool layer --compression zstd" "$t_zst" "$((rss_zst / 1024)) MiB"
echo
printf 'gzip layer speed-up over tar | gzip -6: %.2fx (target >= 2x)\n' "$(echo "$t_tgz / $t_gz" | bc -l)"
printf 'uncompressed layer throughput vs sha256 alone: %.0f%% (target >= 70%%)\n' "$(echo "100 * $t_sha / $t_none" | bc -l)"
printf 'uncompressed layer throughput vs GNU tar writing the same tar: %.0f%%\n' "$(echo "100 * $t_tar / $t_none" | bc -l)"
printf 'peak RSS: %d MiB for the %d MiB tree, %d MiB for its small-files part\n' \
  $((rss_gz / 1024)) "$size_mib" $((rss_small / 1024))
echo "(none/tar/sha256: best of three runs)"
printf 'sizes: tool gzip %d MiB, tar|gzip %d MiB, tool zstd %d MiB\n' \
  $(($(stat -c %s "$work/l.tar.gz") / 1048576)) $(($(stat -c %s "$work/b.tar.gz") / 1048576)) \
  $(($(stat -c %s "$work/l.tar.zst") / 1048576))
