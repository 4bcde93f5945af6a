#!/usr/bin/env bash
# Push benchmark: a ~1 GiB multi-layer image pushed to a loopback registry by
# `rules-image-tool push`, against `crane push` (go-containerregistry) and `skopeo copy` of the
# same OCI layout, each into its own empty registry, ROUNDS times in this run (best of them
# printed); then a re-push of the unchanged image. The blobs are in the page cache (written
# just before); with DROP_CACHES=1 (root) each push starts from a cold cache instead.
# Prints figures and ratios; asserts nothing. Usage: benchmarks/push.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
size_mib=${1:-1024}
rounds=${2:-2}
source "$repo/benchmarks/peer_tools.sh"
ensure_crane || exit 1
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

source "$repo/benchmarks/image_workspace.sh"   # registry_serve

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

now() { date +%s.%N; }
cold() { [[ ${DROP_CACHES:-0} == 1 ]] && sync && echo 3 >/proc/sys/vm/drop_caches; return 0; }
port=5100
best() { sort -n | head -1; }
declare -A times
for ((r = 1; r <= rounds; r++)); do
  for who in tool crane skopeo; do
    port=$((port + 1)); registry_serve "$work/$who-$r" "$port"
    cold
    t0=$(now)
    case $who in
      tool) "$tool" push --manifest "$work/m.json" --config "$work/c.json" "${blob_args[@]}" \
              --default-destination "127.0.0.1:$port/bench/app" --default-tag latest >/dev/null 2>&1 ;;
      crane) crane push --insecure "$work/layout" "127.0.0.1:$port/bench/app:latest" >/dev/null 2>&1 ;;
      skopeo) skopeo copy -q --dest-tls-verify=false "oci:$work/layout:latest" "docker://127.0.0.1:$port/bench/app:latest" ;;
    esac
    t=$(echo "$(now) - $t0" | bc -l)
    times[$who]+="$t "
    printf 'round %d %-7s %6.2f s\n' "$r" "$who" "$t"
  done
done
t_push=$(tr ' ' '\n' <<<"${times[tool]}" | grep . | best)
t_crane=$(tr ' ' '\n' <<<"${times[crane]}" | grep . | best)
t_skopeo=$(tr ' ' '\n' <<<"${times[skopeo]}" | grep . | best)
tool_port=5101
t1=$(now)
"$tool" push --manifest "$work/m.json" --config "$work/c.json" "${blob_args[@]}" \
  --default-destination 127.0.0.1:$tool_port/bench/app --default-tag latest --summary-json "$work/s2.json" >/dev/null 2>&1
t_repush=$(echo "$(now) - $t1" | bc -l)
# The pushed image is complete and verifies: skopeo reads it back, checking every digest.
skopeo copy -q --src-tls-verify=false docker://127.0.0.1:$tool_port/bench/app:latest "oci:$work/check:latest"

uploaded() { python3 -c 'import json,sys; print(sum(d["bytes_uploaded"] for d in json.load(open(sys.argv[1]))["destinations"]))' "$1"; }
cache=$([[ ${DROP_CACHES:-0} == 1 ]] && echo "cold page cache" || echo "warm page cache")
echo
echo "best of $rounds rounds, each into an empty registry, $cache:"
printf '%-52s %8.2f s %8.1f MiB/s\n' "rules-image-tool push" "$t_push" "$(echo "$bytes / 1048576 / $t_push" | bc -l)"
printf '%-52s %8.2f s %8.1f MiB/s\n' "crane push DIR (baseline)" "$t_crane" "$(echo "$bytes / 1048576 / $t_crane" | bc -l)"
printf '%-52s %8.2f s %8.1f MiB/s\n' "skopeo copy oci:DIR docker://... (baseline)" "$t_skopeo" "$(echo "$bytes / 1048576 / $t_skopeo" | bc -l)"
printf '%-52s %8.2f s  (%s blob bytes uploaded)\n' "rules-image-tool push, again (unchanged image)" "$t_repush" "$(uploaded "$work/s2.json")"
echo
printf 'push time / crane time: %.2f (target <= 0.8)\n' "$(echo "$t_push / $t_crane" | bc -l)"
printf 'push time / skopeo time: %.2f (target <= 0.4)\n' "$(echo "$t_push / $t_skopeo" | bc -l)"
printf 're-push: %.2f s with %s bytes uploaded (target < 0.5 s, 0 bytes)\n' "$t_repush" "$(uploaded "$work/s2.json")"
