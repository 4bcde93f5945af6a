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

mkdir -p "$ws"
python3 "$repo/benchmarks/make_tree.py" "$work/tree" "$size_mib" >/dev/null
# Four data directories of about a quarter each.
i=0
while read -r f; do
  mkdir -p "$ws/data$((i % 4))"
  mv "$f" "$ws/data$((i % 4))/"
  i=$((i + 1))
done < <(find "$work/tree" -type f | sort)
echo "v1" >"$ws/main.txt"
cat >"$ws/MODULE.bazel" <<EOF
module(name = "incremental")

bazel_dep(name = "rules_image", version = "0.1.0")
local_path_override(module_name = "rules_image", path = "$repo")
EOF
{
  echo 'load("@rules_image//rules:defs.bzl", "image_layer", "image_manifest", "image_push")'
  for d in 0 1 2 3; do
    printf 'filegroup(name = "files%d", srcs = glob(["data%d/**"]))\n' "$d" "$d"
    printf 'image_layer(name = "data%d", srcs = {"/data": ":files%d"})\n' "$d" "$d"
  done
  cat <<EOF
image_layer(name = "app", srcs = {"/app/main.txt": "main.txt"})
image_manifest(name = "image", layers = [":data0", ":data1", ":data2", ":data3", ":app"])
image_push(name = "push", image = ":image", registry = "127.0.0.1:$port", repository = "bench/incremental", tag = "latest")
EOF
} >"$ws/BUILD.bazel"

mkdir -p "$work/reg"
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$work/reg" "$port" >"$work/reg.yml"
docker-registry serve "$work/reg.yml" >"$work/reg.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done

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
