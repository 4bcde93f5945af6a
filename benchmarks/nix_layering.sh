#!/usr/bin/env bash
# Layering quality: how much of a new release's image a registry or runtime already has.
# Plans the layers of two versions of a Nix closure with both `nix-layers` algorithms and
# prints, per algorithm, the layer counts and the share of v2's layer bytes that are in
# layers identical (same set of store paths) in v1, plus the ratio rules_image/popularity.
# Asserts nothing.
#
# Usage: benchmarks/nix_layering.sh V1_PATHINFO.json V1_ROOT V2_PATHINFO.json V2_ROOT [MAX_LAYERS]
#   *_PATHINFO.json: `nix path-info -r --json [--json-format N] ROOT` (any Nix version)
#   Synthetic inputs: python3 benchmarks/nix_layering.py synth DIR  (prints the arguments)
set -euo pipefail
if [[ $# -lt 4 || $# -gt 5 ]]; then
  sed -n '8,10p' "$0" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd -P)
v1_info=$1 v1_root=$2 v2_info=$3 v2_root=$4 max=${5:-100}
work=$(mktemp -d /tmp/rules_image_nix_layering.XXXXXX)
trap 'rm -rf "$work"' EXIT

tool=${RULES_IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  (cd "$repo/tools" && cargo build --release --locked -q)
  tool="$repo/tools/target/release/rules-image-tool"
fi

for alg in rules_image popularity; do
  "$tool" nix-layers --path-info "$v1_info" --root "$v1_root" --max-layers "$max" \
    --algorithm "$alg" --output "$work/v1.$alg.json"
  "$tool" nix-layers --path-info "$v2_info" --root "$v2_root" --max-layers "$max" \
    --algorithm "$alg" --output "$work/v2.$alg.json"
done
python3 "$repo/benchmarks/nix_layering.py" compare "$max" \
  "$work/v1.rules_image.json" "$work/v2.rules_image.json" \
  "$work/v1.popularity.json" "$work/v2.popularity.json"
