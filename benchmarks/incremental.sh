#!/usr/bin/env bash
# Incremental benchmark: a ~SIZE_MIB image (four data layers of real bytes and a small app
# layer) in a Bazel workspace of its own, built and pushed to a loopback registry; then one
# source file of the app layer changes, and `bazel build` + `bazel run //:push` run again.
# Prints the actions each build ran (from Bazel's execution log), wall times and bytes
# uploaded; asserts nothing. Needs docker-registry. Usage: benchmarks/incremental.sh [SIZE_MIB]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
size_mib=${1:-1024}
work=$(mktemp -d /tmp/rules_image_incr.XXXXXX)
ws="$work/ws"
bazelw="$repo/bazelw"
port=5401
pids=()
cleanup() {
  (cd "$ws" 2>/dev/null && "$bazelw" shutdown >/dev/null 2>&1) || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

source "$repo/benchmarks/image_workspace.sh"
image_workspace "$ws" "$size_mib" incremental "127.0.0.1:$port" bench/incremental
registry_serve "$work/reg" "$port"

now() { date +%s.%N; }
actions() {  # execution log -> "N actions: mnemonic xCOUNT ..."
  jq -rs '[.[] | .mnemonic] | group_by(.) | map("\(.[0]) x\(length)") | "\(map(.) | length) kinds: " + join(", ")' "$1"
}
step() {  # NAME
  local t0 t1 t2
  t0=$(now)
  (cd "$ws" && "$bazelw" build --execution_log_json_file="$work/$1.exec.json" //:push >"$work/$1.build.log" 2>&1) ||
    { tail -20 "$work/$1.build.log" >&2; exit 1; }
  t1=$(now)
  (cd "$ws" && "$bazelw" run //:push -- --summary-json "$work/$1.push.json" >"$work/$1.push.log" 2>&1) ||
    { tail -20 "$work/$1.push.log" >&2; exit 1; }
  t2=$(now)
  printf '%-22s build %7.2f s   push %6.2f s   uploaded %9s bytes   actions: %s\n' "$1" \
    "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t2 - $t1" | bc -l)" \
    "$(jq '[.destinations[].bytes_uploaded] | add' "$work/$1.push.json")" "$(actions "$work/$1.exec.json")"
}
step "cold"
echo "v2" >"$ws/main.txt"
step "one file changed"
step "nothing changed"
echo "(image of $(du -sm "$ws" | cut -f1) MiB of sources; the layer actions of the data layers do not run again)"
