#!/usr/bin/env bash
# Push benchmark: a ~1 GiB multi-layer image pushed to a loopback registry by
# `rules-image-tool push`, against `skopeo copy oci:DIR docker://...` of the same image,
# each into its own empty registry, in this run; then a re-push of the unchanged image.
# Prints figures and ratios; asserts nothing. Usage: benchmarks/push.sh [SIZE_MIB]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/rules_image_push_bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

command -v docker-registry >/dev/null && command -v skopeo >/dev/null ||
  { echo "needs docker-registry and skopeo (apt-get install docker-registry skopeo)" >&2; exit 1; }
tool=${RULES_IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  (cd "$repo/tools" && cargo build --release --locked -q)
  tool="$repo/tools/target/release/rules-image-tool"
fi

start_registry() {  # NAME PORT
  mkdir -p "$work/$1"
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$work/$1/storage" "$2" >"$work/$1/config.yml"
  docker-registry serve "$work/$1/config.yml" >"$work/$1/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "registry $1 did not start" >&2; return 1
}

# Five uncompressed layers of real bytes, about size_mib of blobs in all.
python3 "$repo/benchmarks/make_tree.py" "$work/tree" "$size_mib"
frag="$work/frag.json"
echo '{"os":"linux","architecture":"amd64"}' >"$frag"
layer_args=(); blob_args=()
i=0
for part in "$work"/tree/large/blob*.bin "$work/tree/small"; do
  i=$((i + 1))
  "$tool" layer --output "$work/l$i.tar" --metadata "$work/l$i.json" --compression none \
    "$(printf 'file\t/data/%s\t%s' "$(basename "$part")" "$part")"
  layer_args+=(--layer "$work/l$i.json"); blob_args+=(--blob "$work/l$i.tar")
done
"$tool" manifest --config-fragment "$frag" "${layer_args[@]}" --output-manifest "$work/m.json" \
  --output-config "$work/c.json" --output-digest "$work/d" --output-descriptor "$work/desc.json"
"$tool" layout --manifest "$work/m.json" --config "$work/c.json" "${blob_args[@]}" --output "$work/layout"
bytes=$(cat "$work"/l*.tar | wc -c)
printf 'image: %d layers, %.0f MiB of blobs\n' "$i" "$(echo "$bytes / 1048576" | bc -l)"

start_registry skopeo 5101
start_registry tool 5102
now() { date +%s.%N; }
t0=$(now)
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:latest" docker://127.0.0.1:5101/bench/app:latest
t1=$(now)
"$tool" push --manifest "$work/m.json" --config "$work/c.json" "${blob_args[@]}" \
  --default-destination 127.0.0.1:5102/bench/app --default-tag latest --summary-json "$work/s1.json" >/dev/null 2>&1
t2=$(now)
"$tool" push --manifest "$work/m.json" --config "$work/c.json" "${blob_args[@]}" \
  --default-destination 127.0.0.1:5102/bench/app --default-tag latest --summary-json "$work/s2.json" >/dev/null 2>&1
t3=$(now)
# The pushed image is complete and verifies: skopeo reads it back, checking every digest.
skopeo copy -q --src-tls-verify=false docker://127.0.0.1:5102/bench/app:latest "oci:$work/check:latest"

t_skopeo=$(echo "$t1 - $t0" | bc -l); t_push=$(echo "$t2 - $t1" | bc -l); t_repush=$(echo "$t3 - $t2" | bc -l)
uploaded() { python3 -c 'import json,sys; print(sum(d["bytes_uploaded"] for d in json.load(open(sys.argv[1]))["destinations"]))' "$1"; }
echo
printf '%-52s %8.2f s %8.1f MiB/s\n' "skopeo copy oci:DIR docker://... (baseline)" "$t_skopeo" "$(echo "$bytes / 1048576 / $t_skopeo" | bc -l)"
printf '%-52s %8.2f s %8.1f MiB/s\n' "rules-image-tool push" "$t_push" "$(echo "$bytes / 1048576 / $t_push" | bc -l)"
printf '%-52s %8.2f s  (%s blob bytes uploaded)\n' "rules-image-tool push, again (unchanged image)" "$t_repush" "$(uploaded "$work/s2.json")"
echo
printf 'push time / skopeo time: %.2f (target <= 1.0, aim 0.7)\n' "$(echo "$t_push / $t_skopeo" | bc -l)"
printf 're-push: %.2f s with %s bytes uploaded (target < 0.5 s, 0 bytes)\n' "$t_repush" "$(uploaded "$work/s2.json")"
