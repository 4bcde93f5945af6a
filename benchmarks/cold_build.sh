#!/usr/bin/env bash
# Cold first build of an image in a consumer workspace (e2e/consumer: a cc_binary and two
# layers), after `bazel clean --expunge` with the tool cached nowhere, two ways in this run:
#
#   prebuilt  the released module (tools/release.sh, through a file:// registry, no repository
#             cache): the lock file's binary is downloaded
#   source    the module from this checkout with no lock entry: cargo builds the tool into the
#             output base (RULES_IMAGE_CARGO_TARGET_DIR empty), from cargo's warm download cache
#             (crates are not downloaded again; a machine without them also waits for that)
#
# Each is run RUNS times (default 2) from an expunged output base; prints each wall time, the
# medians and their ratio. Asserts nothing. Usage: benchmarks/cold_build.sh [RUNS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
runs=${1:-2}
work=$(mktemp -d /tmp/rules_image_cold_bench.XXXXXX)
bazelw="$repo/bazelw"
cleanup() {
  for ws in "$work/prebuilt" "$work/source"; do
    [[ -d $ws ]] && (cd "$ws" && "$bazelw" shutdown >/dev/null 2>&1)
  done
  rm -rf "$work"
}
trap cleanup EXIT

rev=$(git -C "$repo" stash create 2>/dev/null); rev=${rev:-HEAD}
"$repo/tools/release.sh" --url-base "file://$work/release" --out "$work/release" --rev "$rev" 2>/dev/null
version=$(jq -r .version "$work/release/prebuilt.lock.json")

for kind in prebuilt source; do
  ws="$work/$kind"
  cp -r "$repo/e2e/consumer" "$ws"
  if [[ $kind == prebuilt ]]; then
    printf 'module(name = "consumer")\n\nbazel_dep(name = "rules_image", version = "%s")\nbazel_dep(name = "rules_cc", version = "0.0.17")\n' \
      "$version" >"$ws/MODULE.bazel"
    printf 'common --registry=file://%s/bcr\ncommon --repository_cache=\n' "$work/release" >"$ws/.bazelrc"
  else
    sed -i "s|path = \"../..\"|path = \"$repo\"|" "$ws/MODULE.bazel"
  fi
done

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
declare -A times
for ((r = 1; r <= runs; r++)); do
  for kind in prebuilt source; do
    ws="$work/$kind"
    (cd "$ws" && "$bazelw" clean --expunge >/dev/null 2>&1 || true)
    start=$(date +%s.%N)
    (cd "$ws" && RULES_IMAGE_CARGO_TARGET_DIR= "$bazelw" build //:image >"$work/$kind.log" 2>&1) ||
      { tail -20 "$work/$kind.log" >&2; exit 1; }
    t=$(echo "$(date +%s.%N) - $start" | bc)
    times[$kind]+="$t "
    printf 'run %d %-8s %6.1f s  %s\n' "$r" "$kind" "$t" "$(cat "$ws/bazel-bin/image.digest")"
  done
done
p=$(tr ' ' '\n' <<<"${times[prebuilt]}" | grep . | median)
s=$(tr ' ' '\n' <<<"${times[source]}" | grep . | median)
printf '\ncold build of //:image, median of %d (Bazel server start, fetches, cc_binary, layers, manifests)\n' "$runs"
printf '  %-40s %7.1f s\n' "prebuilt tool (released module, file://)" "$p"
printf '  %-40s %7.1f s\n' "tool built from source (cargo)" "$s"
printf '  source / prebuilt: %.1fx\n' "$(echo "$s / $p" | bc -l)"
