#!/usr/bin/env bash
# Hostile import inputs (hardening issue rows 3, 4, 5, 7, 12, the --normalize spool) and an
# ordinary ~1 GiB control, each imported by the release binary through measure.py, and the
# `layer` command on a tree artifact with a climbing staging link (row 10) and on the control
# file (gzip, the memory of the encode pipeline). Prints a
# table: input, exit status, first line of the error, wall time, peak RSS, and whether the
# peak stayed under 64 MiB (the goal for every hostile input).
#   benchmarks/hostile_inputs.sh [CONTROL_MIB]      (HOSTILE_INPUTS=DIR to reuse inputs)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
control_mib=${1:-1024}
work=$(mktemp -d /tmp/rules_image_hostile.XXXXXX)
trap 'rm -rf "$work"' EXIT

tool=${RULES_IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  (cd "$repo/tools" && cargo build --release --locked -q)
  tool="$repo/tools/target/release/rules-image-tool"
fi

# HOSTILE_INPUTS: a directory hostile_inputs.py already filled (it is only read).
in=${HOSTILE_INPUTS:-}
if [[ -z $in ]]; then
  echo "building inputs in $work/in ..." >&2
  python3 "$repo/benchmarks/hostile_inputs.py" "$work/in" "$control_mib"
  in=$work/in
fi

row() {  # row NAME EXPECT ARGS...: runs `import ARGS`, prints one table line
  local name=$1 expect=$2
  shift 2
  run_row "$name" "$expect" import --output-dir "$work/out" "$@"
}

layer_row() {  # layer_row NAME EXPECT ENTRY...: runs `layer` (gzip) on the entries
  local name=$1 expect=$2
  shift 2
  run_row "$name" "$expect" layer --output "$work/out.tgz" --metadata "$work/out.json" \
    --compression gzip "$@"
}

run_row() {  # run_row NAME EXPECT COMMAND ARGS...
  local name=$1 expect=$2
  shift 2
  rm -rf "$work/out" "$work/.out.import" "$work/out.tgz" "$work/out.json"
  local t rss rc
  read -r t rss rc < <(python3 "$repo/benchmarks/measure.py" --status \
    bash -c '"$0" "$@" >/dev/null 2>"'"$work"'/err"' "$tool" "$@")
  local err
  err=$(head -n1 "$work/err")
  # Long lines keep their end, where the reason is.
  ((${#err} <= 150)) || err="...${err: -147}"
  [[ -n $err ]] || err="(ok)"
  local mib=$((rss / 1024)) under=yes
  ((mib < 64)) || under=no
  local left=""
  [[ -e "$work/.out.import" ]] && left=" (scratch left!)"
  printf '| %-34s | %-7s | %4s | %-150s | %8.2f | %6d | %-3s |\n' "$name" "$expect" "$rc" "$err$left" "$t" "$mib" "$under"
}

printf '| %-34s | %-7s | %4s | %-150s | %8s | %6s | %-3s |\n' input expect exit "first line of stderr" seconds "MiB" "<64"
printf '|%s|\n' "------------------------------------|---------|------|--------------------------------------------------------------------------------------------------------------------------------------------------------|----------|--------|-----"
row "row3: 1 GiB GNU long name (.tar.zst)" refuse --src "$in/row3.tar.zst"
row "row4: 1 GiB pax xattr in a layer" refuse --src "$in/row4.tar.zst"
row "row5: 128 x 8 MiB under blobs/junk/" refuse --src "$in/row5.tar.zst"
row "row7: layout dir, blob -> outside" refuse --src "$in/row7"
row "row12: legacy save, linked layer" accept --src "$in/row12.tar"
row "row12: same, --normalize" accept --src "$in/row12.tar" --normalize
row "spool: 2 GiB zstd bomb, cap 1 GiB" refuse --src "$in/spool.tar" --normalize --max-layer-size 1073741824
row "control: ${control_mib} MiB layer (tar)" accept --src "$in/control.tar"
row "control: ${control_mib} MiB layer --normalize" accept --src "$in/control.tar" --normalize

# Row 10: a tree artifact whose symlink names bazel-out/../secret; the layer keeps the symlink.
mkdir -p "$work/row10/tree" "$work/row10/bazel-out"
echo "host secret" >"$work/row10/secret"
ln -sfn "$work/row10/bazel-out/../secret" "$work/row10/tree/s"
layer_row "row10: staging link climbing out" accept "file	/t	$work/row10/tree"
if tar -xzOf "$work/out.tgz" 2>/dev/null | grep -q "host secret"; then
  echo "row10: the host file was embedded in the layer" >&2
  exit 1
fi
layer_row "control: ${control_mib} MiB file, layer gzip" accept "file	/control.tar	$in/control.tar"
