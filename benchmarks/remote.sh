#!/usr/bin/env bash
# Remote cache benchmark: a ~SIZE_MIB image (four data layers of real bytes and a small app
# layer, as benchmarks/incremental.sh) built against BuildGrid on loopback (e2e/remote/
# buildgrid.sh) with --remote_cache and --remote_download_minimal, in an output base of its own.
#
# Prints, asserts nothing:
# - per build (cold; after `bazel clean`; one source file of the app layer changed): wall time,
#   bytes uploaded to and downloaded from the CAS (Bazel's --remote_grpc_log), and the bytes
#   on the client's disk under bazel-out afterwards;
# - what the CAS holds after the cold build against the image's own size (its blobs);
# - `bazel run //:push` to an empty repository of a loopback registry, its blobs read from the
#   CAS (--@rules_image//rules:remote_cache) against the same push from a local build's files.
#
# Needs docker-registry (Debian) and what e2e/remote/buildgrid.sh installs.
# Usage: benchmarks/remote.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
size_mib=${1:-1024}
source "$repo/e2e/lib.sh"   # answers_within, and $work (a fresh temporary directory)
source "$repo/e2e/remote/buildgrid.sh"
ws="$work/ws"
ob="$work/remote-ob"
port=50081
reg_port=5402
pids=()
cleanup() {
  [[ -d $ob ]] && (cd "$ws" && "$bazelw" --output_base="$ob" shutdown >/dev/null 2>&1)
  (cd "$ws" 2>/dev/null && "$bazelw" shutdown >/dev/null 2>&1) || true
  buildgrid_stop
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

source "$repo/benchmarks/image_workspace.sh"
image_workspace "$ws" "$size_mib" remote_bench "127.0.0.1:$reg_port" bench/local
chmod o+x "$work"   # PostgreSQL runs as its own user, with its data under $work
buildgrid_start "$work/bg" "$port" >"$work/buildgrid.log" 2>&1 || { tail -20 "$work/buildgrid.log" >&2; exit 1; }
registry_serve "$work/reg" "$reg_port"

cache="grpc://127.0.0.1:$port"
remote=(--remote_cache="$cache" --remote_download_minimal)
now() { date +%s.%N; }
mib() { echo "scale=3; $1 / 1048576" | bc -l; }
# Bytes of regular files under bazel-out of the remote output base (what the client wrote).
client_bytes() { find "$ob/execroot/_main/bazel-out" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
# grpc log -> "DOWN UP" bytes of ByteStream reads and writes.
grpc_bytes() {
  python3 "$repo/e2e/remote/grpc_log_bytes.py" "$1" |
    awk '/downloaded/ {d = $4} /uploaded/ {u = $4} END {print d + 0, u + 0}'
}
build() {  # NAME
  local t0 t1 down up
  t0=$(now)
  (cd "$ws" && "$bazelw" --output_base="$ob" build "${remote[@]}" --remote_grpc_log="$work/$1.grpc" //:image \
    >"$work/$1.log" 2>&1) || { tail -20 "$work/$1.log" >&2; exit 1; }
  t1=$(now)
  read -r down up < <(grpc_bytes "$work/$1.grpc")
  printf '%-18s %7.2f s   to CAS %8s MiB   from CAS %8s MiB   client bazel-out %8s MiB\n' "$1" \
    "$(echo "$t1 - $t0" | bc -l)" "$(mib "$up")" "$(mib "$down")" "$(mib "$(client_bytes)")"
}

echo "== builds of //:image (~$size_mib MiB of sources) with --remote_cache --remote_download_minimal"
build "cold"
cas_bytes=$(find "$work/bg/buildgrid/cas" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
(cd "$ws" && "$bazelw" --output_base="$ob" clean >/dev/null 2>&1)
build "after clean"
echo "v2" >"$ws/main.txt"
build "one file changed"

# The image's own size: its manifest, config and layer blobs, from the (tiny) files the client has.
(cd "$ws" && "$bazelw" --output_base="$ob" build "${remote[@]}" --remote_download_toplevel //:image >/dev/null 2>&1)
bin="$ob/execroot/_main/bazel-out/k8-fastbuild/bin"
image_bytes=$(jq '[.config.size, (.layers[].size)] | add' "$bin/image.manifest.json")
image_bytes=$((image_bytes + $(stat -c %s "$bin/image.manifest.json")))
echo
echo "== what the CAS holds after the cold build (BuildGrid's disk storage) against the image"
printf 'CAS %s MiB, image %s MiB (manifest, config, layers): ratio %s\n' "$(mib "$cas_bytes")" "$(mib "$image_bytes")" \
  "$(echo "scale=3; $cas_bytes / $image_bytes" | bc -l)"

echo
echo "== bazel run //:push to an empty repository: blobs from the CAS vs from local files"
push() {  # NAME REPOSITORY OUTPUT_BASE (or "") BUILD_FLAGS...
  local name=$1 repository=$2 startup=(); shift 2
  [[ -n $1 ]] && startup=(--output_base="$1")
  shift
  (cd "$ws" && "$bazelw" "${startup[@]}" build "$@" //:push >"$work/$name.push-build.log" 2>&1) ||
    { tail -20 "$work/$name.push-build.log" >&2; exit 1; }
  local t0 t1
  t0=$(now)
  (cd "$ws" && "$bazelw" "${startup[@]}" run "$@" //:push -- --repository "$repository" --summary-json "$work/$name.push.json" \
    >"$work/$name.push.log" 2>&1) || { tail -20 "$work/$name.push.log" >&2; exit 1; }
  t1=$(now)
  printf '%-12s %7.2f s   uploaded %8s MiB\n' "$name" "$(echo "$t1 - $t0" | bc -l)" \
    "$(mib "$(jq '[.destinations[].bytes_uploaded] | add' "$work/$name.push.json")")"
  echo "$(echo "$t1 - $t0" | bc -l)" >"$work/$name.seconds"
}
push "from CAS" bench/cas "$ob" "${remote[@]}" --@rules_image//rules:remote_cache="$cache"
printf 'client bazel-out after the push from the CAS: %s MiB\n' "$(mib "$(client_bytes)")"
push "from disk" bench/disk ""
printf 'push from CAS / from disk: %s\n' "$(echo "scale=2; $(cat "$work/from CAS.seconds") / $(cat "$work/from disk.seconds")" | bc -l)"
