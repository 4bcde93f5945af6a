#!/usr/bin/env bash
# Scale benchmark: `rules-image-tool layer` on growing inputs, to show that cost grows linearly
# and memory stays flat:
#   bytes: trees of SMALL_MIB and LARGE_MIB (default 512 and 4096) of real bytes from /usr,
#          gzip and uncompressed: seconds per GiB and peak RSS
#   files: 10,000 and 100,000 small files: seconds per 1,000 files and peak RSS
# Prints figures; asserts nothing. Usage: benchmarks/scale.sh [SMALL_MIB] [LARGE_MIB]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
small_mib=${1:-512}
large_mib=${2:-4096}
work=$(mktemp -d /tmp/rules_image_scale.XXXXXX)
trap 'rm -rf "$work"' EXIT

tool=${RULES_IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  (cd "$repo/tools" && cargo build --release --locked -q)
  tool="$repo/tools/target/release/rules-image-tool"
fi
run() { python3 "$repo/benchmarks/measure.py" "$@"; }   # prints "<seconds> <peak_rss_kib>"
layer() {  # DIR COMPRESSION -> "<seconds> <rss_kib>"
  rm -f "$work/out"
  run "$tool" layer --output "$work/out" --metadata "$work/out.json" --compression "$2" "$(printf 'file\t/data\t%s' "$1")"
}

# Many small files: 100-byte to 2 KiB slices of real files.
make_files() {  # DIR COUNT
  python3 - "$1" "$2" <<'EOF'
import os, sys
out, count = sys.argv[1], int(sys.argv[2])
corpus = b"".join(open(os.path.join("/usr/bin", n), "rb").read(65536) for n in sorted(os.listdir("/usr/bin"))[:200]
                  if os.path.isfile(os.path.join("/usr/bin", n)))
for i in range(count):
    d = os.path.join(out, "d%03d" % (i % 1000))
    os.makedirs(d, exist_ok=True)
    start = (i * 7919) % (len(corpus) - 4096)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(corpus[start:start + 100 + (i * 131) % 1948])
EOF
}

printf '%-34s %10s %12s %10s\n' "input" "seconds" "per unit" "peak RSS"
for mib in "$small_mib" "$large_mib"; do
  python3 "$repo/benchmarks/make_tree.py" "$work/tree$mib" "$mib" >/dev/null
  find "$work/tree$mib" -type f -exec cat {} + >/dev/null   # page cache warm
  gib=$(du -sb "$work/tree$mib" | awk '{print $1 / 1073741824}')
  for c in gzip none; do
    read -r t rss < <(layer "$work/tree$mib" "$c")
    printf '%-34s %10.2f %9.2f s/GiB %7d MiB\n' "$mib MiB tree, $c" "$t" "$(echo "$t / $gib" | bc -l)" $((rss / 1024))
  done
  rm -rf "$work/tree$mib"
done
for n in 10000 100000; do
  make_files "$work/files$n" "$n"
  for c in gzip none; do
    read -r t rss < <(layer "$work/files$n" "$c")
    printf '%-34s %10.2f %9.3f s/1k files %4d MiB\n' "$n files, $c" "$t" "$(echo "$t * 1000 / $n" | bc -l)" $((rss / 1024))
  done
  rm -rf "$work/files$n"
done
echo "(gzip on $(nproc) threads; the page cache is warm for every run)"
