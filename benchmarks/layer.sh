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
mib_s() { echo "scale=1; $bytes / 1048576 / $1" | bc -l; }

entry=$(printf 'file\t/data\t%s' "$work/tree")
read -r t_gz rss_gz < <(run "$tool" layer --output "$work/l.tar.gz" --metadata "$work/l.json" --compression gzip "$entry")
read -r t_tar < <(run bash -c "tar --sort=name -C '$work/tree' -cf - . | gzip -6 >'$work/b.tar.gz'")
read -r t_none rss_none < <(run "$tool" layer --output "$work/l.tar" --metadata "$work/l2.json" --compression none "$entry")
read -r t_sha < <(run bash -c "find '$work/tree' -type f -print0 | sort -z | xargs -0 cat | sha256sum >/dev/null")
read -r t_zst rss_zst < <(run "$tool" layer --output "$work/l.tar.zst" --metadata "$work/l3.json" --compression zstd "$entry")

echo
printf '%-44s %8s %10s %10s\n' "run" "seconds" "MiB/s" "peak RSS"
printf '%-44s %8.2f %10s %7d MiB\n' "rules-image-tool layer --compression gzip" "$t_gz" "$(mib_s "$t_gz")" $((rss_gz / 1024))
printf '%-44s %8.2f %10s\n' "tar --sort=name | gzip -6 (baseline)" "$t_tar" "$(mib_s "$t_tar")"
printf '%-44s %8.2f %10s %7d MiB\n' "rules-image-tool layer --compression none" "$t_none" "$(mib_s "$t_none")" $((rss_none / 1024))
printf '%-44s %8.2f %10s\n' "cat | sha256sum (baseline)" "$t_sha" "$(mib_s "$t_sha")"
printf '%-44s %8.2f %10s %7d MiB\n' "rules-image-tool layer --compression zstd" "$t_zst" "$(mib_s "$t_zst")" $((rss_zst / 1024))
echo
printf 'gzip speed-up over tar|gzip -6: %.2fx (target >= 2x)\n' "$(echo "$t_tar / $t_gz" | bc -l)"
printf 'uncompressed layer vs sha256 throughput: %.0f%% (target >= 70%%)\n' "$(echo "100 * $t_sha / $t_none" | bc -l)"
printf 'compressed sizes: tool gzip %d MiB, tar|gzip %d MiB, tool zstd %d MiB\n' \
  $(($(stat -c %s "$work/l.tar.gz") / 1048576)) $(($(stat -c %s "$work/b.tar.gz") / 1048576)) $(($(stat -c %s "$work/l.tar.zst") / 1048576))
