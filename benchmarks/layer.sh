#!/usr/bin/env bash
# Layer benchmark: throughput and peak memory of `rules-image-tool layer` on a ~1 GiB tree
# (many small files plus a few large ones, real binaries and text from /usr), against
# baselines run here in the same process tree:
#   gzip:  tar --sort=name -c DIR | gzip -6        (target: tool <= 0.3x its time)
#          tar --sort=name -c DIR | pigz -pN -6    (target: tool <= 0.6x its time; N = nproc)
#          crane append -f (the tar)               (if crane is installed: gzips a tarball)
#   none:  sha256 over the same bytes              (target: tool >= 80% of its throughput)
#   zstd:  tar --sort=name -c DIR | zstd -3 -T0
#   estargz, zstd:chunked: the formats' reference writers, given the tar: stargz-snapshotter's
#          estargz.Build (gzip level 6, on every core) and containers/storage's zstd:chunked
#          compressor (level 3), built from Debian's Go sources (e2e/lazy_pull/tools.sh)
# and the gzip layer with 1 thread (the same bytes: checked). Prints figures and ratios;
# asserts nothing. Usage: benchmarks/layer.sh [SIZE_MIB]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
size_mib=${1:-1024}
source "$repo/benchmarks/peer_tools.sh"
ensure_crane || echo "crane unavailable: its row is skipped" >&2
source "$repo/e2e/lazy_pull/tools.sh"
lazy=1
{ ensure_lazy_verifier && ensure_lazy_cs_writer; } || { lazy=; echo "reference lazy-pull writers unavailable: their rows are skipped" >&2; }
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
threads=$(nproc)
read -r t_gz rss_gz < <(layer l.tar.gz gzip)
read -r t_gz1 _ < <(run "$tool" layer --output "$work/l1.tar.gz" --metadata "$work/l1.json" --compression gzip --threads 1 "$entry")
cmp -s "$work/l.tar.gz" "$work/l1.tar.gz" && same_bytes=identical || same_bytes=DIFFERENT
read -r t_tgz _ < <(run bash -c "tar --sort=name -C '$work/tree' -cf - . | gzip -6 >'$work/b.tar.gz'")
read -r t_pigz _ < <(run bash -c "tar --sort=name -C '$work/tree' -cf - . | pigz -p$threads -6 >'$work/p.tar.gz'")
read -r t_tzst _ < <(run bash -c "tar --sort=name -C '$work/tree' -cf - . | zstd -q -3 -T0 >'$work/b.tar.zst'")
read -r t_none rss_none < <(best3 "$work/l.tar" layer l.tar none)
read -r t_tar _ < <(best3 "$work/b.tar" run tar --sort=name -C "$work/tree" -cf "$work/b.tar" .)
# Pure sha256 speed: openssl (SHA-NI) over the uncompressed layer, now in the page cache.
read -r t_sha _ < <(best3 /dev/null/none run openssl dgst -sha256 -out /dev/null "$work/l.tar")
read -r t_zst rss_zst < <(layer l.tar.zst zstd)
read -r t_esgz rss_esgz < <(layer l.esgz.tar.gz estargz)
read -r t_zchk rss_zchk < <(layer l.chunked.tar.zst zstd:chunked)
t_ref_esgz= t_ref_zchk=
if [[ -n $lazy ]]; then
  # (Their own output, the annotations, is not measured.)
  read -r t_ref_esgz _ < <(run env GOMAXPROCS="$threads" bash -c "'$LAZY_VERIFIER' make-estargz -level 6 '$work/l.tar' '$work/ref.esgz' >/dev/null") || t_ref_esgz=
  read -r t_ref_zchk _ < <(run bash -c "'$LAZY_CS_WRITER' -level 3 '$work/l.tar' '$work/ref.zchk' >/dev/null") || t_ref_zchk=
fi
# Memory must not grow with the layer: the same run over one eighth of the tree.
small=$(printf 'file\t/data\t%s' "$work/tree/small")
read -r _ rss_small < <(run "$tool" layer --output "$work/s.tar.gz" --metadata "$work/s.json" --compression gzip "$small")

t_crane=
if command -v crane >/dev/null; then
  # crane append gzips a given tarball into a new layer of an image written to a tarball.
  read -r t_crane _ < <(run crane append --new_layer "$work/l.tar" --new_tag rules-image/bench:crane \
    --output "$work/crane.tar" 2>/dev/null) || t_crane=
fi

row() { printf '%-46s %8.2f %9s %s\n' "$1" "$2" "$(mib_s "$2")" "${3:-}"; }
echo
printf '%-46s %8s %9s %s\n' "run" "seconds" "MiB/s" "peak RSS"
row "rules-image-tool layer --compression gzip" "$t_gz" "$((rss_gz / 1024)) MiB, $threads threads"
row "  same, --threads 1 ($same_bytes bytes)" "$t_gz1"
row "  baseline: tar --sort=name | gzip -6" "$t_tgz"
row "  baseline: tar --sort=name | pigz -p$threads -6" "$t_pigz"
[[ -n $t_crane ]] && row "  baseline: crane append -f (tar given)" "$t_crane"
row "rules-image-tool layer --compression none" "$t_none" "$((rss_none / 1024)) MiB"
row "  baseline: openssl dgst -sha256 (hash only)" "$t_sha"
row "  context:  tar --sort=name -cf (same I/O)" "$t_tar"
row "rules-image-tool layer --compression zstd" "$t_zst" "$((rss_zst / 1024)) MiB"
row "  baseline: tar --sort=name | zstd -3 -T0" "$t_tzst"
row "rules-image-tool layer --compression estargz" "$t_esgz" "$((rss_esgz / 1024)) MiB"
[[ -n $t_ref_esgz ]] && row "  baseline: estargz.Build, $threads procs (tar given)" "$t_ref_esgz"
row "rules-image-tool layer --compression zstd:chunked" "$t_zchk" "$((rss_zchk / 1024)) MiB"
[[ -n $t_ref_zchk ]] && row "  baseline: containers/storage writer (tar given)" "$t_ref_zchk"
echo
printf 'gzip layer time / tar | gzip -6: %.2f (target <= 0.3)\n' "$(echo "$t_gz / $t_tgz" | bc -l)"
printf 'gzip layer time / tar | pigz -p%d -6: %.2f (target <= 0.6)\n' "$threads" "$(echo "$t_gz / $t_pigz" | bc -l)"
[[ -n $t_crane ]] && printf 'gzip layer time / crane append: %.2f\n' "$(echo "$t_gz / $t_crane" | bc -l)"
[[ -z $t_crane ]] && echo "crane: not installed (Debian unstable's crane package), not measured"
printf 'gzip: %d threads vs 1: %.2fx faster, bytes %s\n' "$threads" "$(echo "$t_gz1 / $t_gz" | bc -l)" "$same_bytes"
printf 'zstd layer time / tar | zstd -3 -T0: %.2f\n' "$(echo "$t_zst / $t_tzst" | bc -l)"
[[ -n $t_ref_esgz ]] && printf 'estargz layer time / estargz.Build: %.2f\n' "$(echo "$t_esgz / $t_ref_esgz" | bc -l)"
[[ -n $t_ref_zchk ]] && printf 'zstd:chunked layer time / containers/storage writer: %.2f\n' "$(echo "$t_zchk / $t_ref_zchk" | bc -l)"
printf 'estargz / gzip layer time: %.2f; zstd:chunked / zstd: %.2f\n' "$(echo "$t_esgz / $t_gz" | bc -l)" "$(echo "$t_zchk / $t_zst" | bc -l)"
printf 'uncompressed layer throughput vs sha256 alone: %.0f%% (target >= 80%%)\n' "$(echo "100 * $t_sha / $t_none" | bc -l)"
printf 'uncompressed layer throughput vs GNU tar writing the same tar: %.0f%%\n' "$(echo "100 * $t_tar / $t_none" | bc -l)"
printf 'peak RSS: %d MiB for the %d MiB tree, %d MiB for its small-files part\n' \
  $((rss_gz / 1024)) "$size_mib" $((rss_small / 1024))
echo "(none/tar/sha256: best of three runs)"
printf 'sizes: tool gzip %d MiB, tar|gzip %d MiB, tar|pigz %d MiB, tool zstd %d MiB, tar|zstd %d MiB\n' \
  $(($(stat -c %s "$work/l.tar.gz") / 1048576)) $(($(stat -c %s "$work/b.tar.gz") / 1048576)) \
  $(($(stat -c %s "$work/p.tar.gz") / 1048576)) $(($(stat -c %s "$work/l.tar.zst") / 1048576)) \
  $(($(stat -c %s "$work/b.tar.zst") / 1048576))
printf 'sizes: tool estargz %d MiB, tool zstd:chunked %d MiB\n' \
  $(($(stat -c %s "$work/l.esgz.tar.gz") / 1048576)) $(($(stat -c %s "$work/l.chunked.tar.zst") / 1048576))
