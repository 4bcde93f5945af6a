# End-to-end checks of nix.image: real Nix (in bazelw's rootfs), real Bazel, Docker, skopeo, umoci.
# Sourced after lib.sh and checks.sh (for $work, copy_checkout); each function is one `check`.
# The suite (see e2e/run.sh): nix_setup, the table nix_checks at the end, nix_shutdown.

nix_ws="$work/nix"
nix_rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs

# Runs a command inside bazelw's rootfs (where Nix and its store live), with /tmp and this
# repository mounted at their own paths.
in_nix_rootfs() {
  unshare --mount --propagation private bash -c '
    rootfs=$1 repo=$2; shift 2
    mount -t proc proc "$rootfs/proc" && mount --rbind /dev "$rootfs/dev" && mount --rbind /sys "$rootfs/sys" || exit 1
    for d in /tmp "$repo"; do mkdir -p "$rootfs$d" && mount --rbind "$d" "$rootfs$d" || exit 1; done
    exec chroot "$rootfs" "$@"
  ' _ "$nix_rootfs" "$repo_root" "$@"
}

# The generated repository of nix.image(name = $2) in workspace $1 (Bazel 7: rules_image~~nix~NAME,
# Bazel 8+: rules_image++nix+NAME).
nix_repo_dir() {
  local ob
  ob=$(cd "$1" && "$bazelw" info output_base 2>/dev/null) || return 1
  ls -d "$ob"/external/rules_image*nix*"$2" 2>/dev/null | head -1
}
nix_bin() { ls -d "$1"/bazel-bin/external/rules_image*nix*"$2" 2>/dev/null | head -1; }

nix_setup() {
  rm -rf "$nix_ws"; cp -r "$repo_root/e2e/nix" "$nix_ws"
  sed -i "s|@RULES_IMAGE_PATH@|$repo_root|" "$nix_ws/MODULE.bazel"
}

# import -> image -> bazel run load -> docker run; Docker's image ID is our config digest.
nix_diamond_load_and_run() {
  docker rmi -f rules-image-nix/diamond:latest >/dev/null 2>&1
  (cd "$nix_ws" && "$bazelw" build @diamond//:image --output_groups=+oci_layout,+tarball &&
    "$bazelw" run //:load_diamond) || return 1
  local out
  out=$(docker run --rm --network none rules-image-nix/diamond:latest) || return 1
  echo "$out"
  grep -qE '^diamond app: A\+common B\+common from /nix/store/[a-z0-9]{32}-libcommon$' <<<"$out" &&
    grep -qx 'args: from nix' <<<"$out" || return 1
  local id config
  id=$(docker image inspect --format '{{.Id}}' rules-image-nix/diamond:latest)
  config=sha256:$(sha256sum "$(nix_bin "$nix_ws" diamond)/image.config.json" | cut -d' ' -f1)
  [[ $id == "$config" ]] || { echo "docker image id $id != config digest $config" >&2; return 1; }
}

# Every path of the closure is in exactly one planned layer; the image has those layers plus
# the copy_to_root layer.
nix_diamond_plan() {
  local repo; repo=$(nix_repo_dir "$nix_ws" diamond) || return 1
  python3 - "$repo/closure.json" "$repo/plan.json" "$(nix_bin "$nix_ws" diamond)/image.manifest.json" <<'EOF' || return 1
import json, sys
info = json.load(open(sys.argv[1]))
if isinstance(info, dict) and "info" in info:
    info = info["info"]
paths = {e["path"] for e in info} if isinstance(info, list) else set(info)
plan = json.load(open(sys.argv[2]))
planned = [p for layer in plan["layers"] for p in layer["paths"]]
assert sorted(planned) == sorted(paths), ("planned", sorted(planned), "closure", sorted(paths))
manifest = json.load(open(sys.argv[3]))
assert len(manifest["layers"]) == len(plan["layers"]) + 1, (len(manifest["layers"]), len(plan["layers"]))
print("%d store paths in %d layers (+1 copy_to_root): %s" % (len(paths), len(plan["layers"]),
      ", ".join(l["name"] for l in plan["layers"])))
EOF
}

nix_layout() { echo "$(nix_bin "$nix_ws" diamond)/image.oci_layout"; }

# skopeo copy verifies every blob; umoci applies the layers: store paths, /bin/app, modes.
nix_validate_layout() {
  rm -rf "$work/nix-copy" "$work/nix-bundle"
  skopeo copy -q "oci:$(nix_layout):latest" "oci:$work/nix-copy:latest" || return 1
  skopeo inspect "docker-archive:$(nix_bin "$nix_ws" diamond)/image.tar" >/dev/null || return 1
  oci-image-tool validate --type image --ref name=latest "$(nix_layout)" >/dev/null || return 1
  umoci unpack --image "$(nix_layout):latest" "$work/nix-bundle" >/dev/null || return 1
  local root="$work/nix-bundle/rootfs" app
  app=$(readlink "$root/bin/app") || { echo "/bin/app is not a symlink" >&2; return 1; }
  [[ $app == /nix/store/*-diamond-app/bin/diamond-app ]] || { echo "/bin/app -> $app" >&2; return 1; }
  [[ -x $root$app ]] || { echo "$app is not an executable file in the image" >&2; return 1; }
  [[ $(cat "$root"/nix/store/*-libcommon/common.txt) == common ]] || return 1
  [[ -x $(echo "$root"/nix/store/*-busybox-static/busybox) ]] || { echo "busybox missing" >&2; return 1; }
  echo "/bin/app -> $app; $(find "$root/nix/store" -mindepth 1 -maxdepth 1 | wc -l) store paths unpacked"
}

# The Attic example: /bin/atticd --mode monolithic reads a mounted config and a secret from env.
nix_attic_example() {
  local tag=rules-image-example/attic:latest secret
  docker rmi -f "$tag" >/dev/null 2>&1
  (cd "$repo_root/examples" && "$bazelw" run //attic:load) || return 1
  secret=$(head -c 64 /dev/urandom | base64 -w0)
  local out
  out=$(docker run --rm --network none -v "$repo_root/examples/attic/server.toml:/etc/attic/server.toml:ro" \
    -e ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64="$secret" "$tag") || return 1
  echo "$out"
  grep -qx 'atticd: mode monolithic' <<<"$out" &&
    grep -qx 'atticd: configuration /etc/attic/server.toml: listen \[::\]:8080, database sqlite:///var/lib/atticd/server.db?mode=rwc' <<<"$out" &&
    grep -qx 'atticd: token signing secret: HS256, 64 bytes' <<<"$out" &&
    grep -qx 'atticd: running as uid 65534' <<<"$out" || return 1
  # Without the mounted file it refuses to start: the output above came from reading it.
  if out=$(docker run --rm --network none -e ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64="$secret" "$tag" 2>&1); then
    echo "atticd started without a configuration file" >&2; return 1
  fi
  grep -q 'cannot read the configuration file /etc/attic/server.toml' <<<"$out" || { echo "$out" >&2; return 1; }
}

# 242 store paths, max_layers = 20: at most 20 layers, every path planned, and the app runs.
nix_many_max_layers() {
  docker rmi -f rules-image-nix/many:latest >/dev/null 2>&1
  (cd "$nix_ws" && "$bazelw" run //:load_many) || return 1
  local repo manifest n paths
  repo=$(nix_repo_dir "$nix_ws" many) || return 1
  manifest="$(nix_bin "$nix_ws" many)/image.manifest.json"
  n=$(jq '.layers | length' "$manifest")
  paths=$(jq '[.layers[].paths[]] | length' "$repo/plan.json")
  echo "$paths store paths in $n layers"
  ((paths >= 200)) || { echo "closure has only $paths paths" >&2; return 1; }
  ((n <= 20)) || { echo "$n layers > max_layers 20" >&2; return 1; }
  local app; app=$(readlink "$repo/result")
  docker run --rm --network none --entrypoint "$app/bin/many-app" rules-image-nix/many:latest | grep -qx 'many app: 240 packages present'
}

# groups: libA and libB (and what only they need) share the layer named "libs".
nix_groups() {
  (cd "$nix_ws" && "$bazelw" build @diamond_grouped//:image) || return 1
  local repo; repo=$(nix_repo_dir "$nix_ws" diamond_grouped) || return 1
  jq -e '[.layers[] | select(.name == "libs") | .paths[]] | (map(test("-liba$")) | any) and (map(test("-libb$")) | any)' \
    "$repo/plan.json" >/dev/null || { jq -c '.layers[] | {name, paths}' "$repo/plan.json" >&2; return 1; }
  jq -r '.layers[] | "\(.name): \(.paths | map(sub("^/nix/store/[a-z0-9]{32}-"; "")) | join(" "))"' "$repo/plan.json"
}

# store_path: an existing store path (here the diamond app) as the image.
nix_store_path() {
  local app; app=$(readlink "$(nix_repo_dir "$nix_ws" diamond)/result") || return 1
  sed -i "s|@DIAMOND_APP@|$app|g" "$nix_ws/MODULE.bazel"
  (cd "$nix_ws" && "$bazelw" build @from_store_path//:image) || return 1
  local repo; repo=$(nix_repo_dir "$nix_ws" from_store_path)
  jq -e --arg app "$app" '[.layers[].paths[]] | index($app) != null' "$repo/plan.json" >/dev/null
}

# The store-reading layer actions run in Bazel's sandbox (forced here) and never remotely.
nix_layers_sandboxed() {
  local log="$work/nix-exec-log.json"
  (cd "$nix_ws" && "$bazelw" clean && "$bazelw" build --spawn_strategy=sandboxed \
    --execution_log_json_file="$log" @diamond//:image) || return 1
  local runners
  runners=$(jq -rs '[.[] | select(.mnemonic == "ImageNixLayer") | .runner] | unique | join(",")' "$log") || return 1
  [[ -n $runners && $runners != *local* && $runners == *sandbox* ]] ||
    { echo "ImageNixLayer actions ran with: ${runners:-none}" >&2; return 1; }
  local reqs
  reqs=$(cd "$nix_ws" && "$bazelw" aquery 'mnemonic("ImageNixLayer", @diamond//:all)' 2>/dev/null) || return 1
  reqs=$(grep -m1 'ExecutionInfo' <<<"$reqs")
  [[ $reqs == *no-remote-exec* && $reqs != *no-sandbox* ]] || { echo "execution info: $reqs" >&2; return 1; }
  echo "ImageNixLayer runner: $runners; $reqs"
}

nix_repo_stamp() { stat -c %Y.%i "$(nix_repo_dir "$nix_ws" diamond)/plan.json" 2>/dev/null; }

# The repository re-runs when a Nix file in srcs changes, and only then.
nix_rerun_on_change() {
  local before after
  before=$(nix_repo_stamp) || return 1
  sleep 1
  (cd "$nix_ws" && "$bazelw" shutdown && "$bazelw" build @diamond//:image) || return 1
  after=$(nix_repo_stamp)
  [[ $before == "$after" ]] || { echo "re-ran without a change" >&2; return 1; }
  echo "# edited by e2e" >>"$nix_ws/lib.nix"
  (cd "$nix_ws" && "$bazelw" build @diamond//:image) || return 1
  after=$(nix_repo_stamp)
  [[ $before != "$after" ]] || { echo "did not re-run after lib.nix changed" >&2; return 1; }
  echo "re-ran after lib.nix changed; not before"
}

# Same digests after `bazel clean --expunge`, and from a second checkout at another path.
nix_reproducible() {
  local digests=() i
  nix_digests() { echo "$(cat "$(nix_bin "$1" diamond)/image.digest") $(cat "$(nix_bin "$1" many)/image.digest")"; }
  (cd "$nix_ws" && "$bazelw" build @diamond//:image @many//:image) || return 1
  digests+=("$(nix_digests "$nix_ws")")
  (cd "$nix_ws" && "$bazelw" clean --expunge && "$bazelw" build @diamond//:image @many//:image) || return 1
  digests+=("$(nix_digests "$nix_ws")")
  local checkout="$work/nix-repro/another/path/rules_image"
  copy_checkout "$checkout" 077 || return 1
  local ws="$checkout/e2e/nix"
  sed -i "s|@RULES_IMAGE_PATH@|$checkout|" "$ws/MODULE.bazel"
  (umask 077 && cd "$ws" && "$checkout/bazelw" --output_base="$work/nix-repro/output_base" build @diamond//:image @many//:image) || return 1
  digests+=("$(cd "$ws" && nix_digests "$ws")")
  (cd "$ws" && "$checkout/bazelw" --output_base="$work/nix-repro/output_base" shutdown) >/dev/null 2>&1
  for i in 0 1 2; do echo "build $((i + 1)): ${digests[$i]}"; done
  [[ ${digests[0]} == "${digests[1]}" && ${digests[1]} == "${digests[2]}" ]]
}

# Mistakes: each fails, naming the nix.image and saying what is wrong.
nix_bad_case() {
  local repo=$1 expect=$2; shift 2
  local err
  if err=$(cd "$nix_ws" && "$bazelw" build "$@" "@$repo//:image" 2>&1); then
    echo "@$repo//:image built, expected a failure" >&2; return 1
  fi
  grep -qF "nix.image(name = \"$repo\")" <<<"$err" && grep -qF -- "$expect" <<<"$err" ||
    { echo "error does not say '$expect':" >&2; grep -A4 'Error in fail' <<<"$err" | head -8 >&2; return 1; }
  echo "@$repo: $(grep -m1 -o 'Error in fail: nix.image(name = .*' <<<"$err" | cut -c16-200)"
}
nix_bad_expression() { nix_bad_case bad_expression "this expression fails on purpose"; }
nix_bad_max_layers() { nix_bad_case bad_max_layers "max_layers must be at least 1"; }
nix_bad_store_path() { nix_bad_case bad_store_path "does not exist"; }
nix_not_installed() { nix_bad_case no_nix "apt-get install nix-bin" --repo_env=PATH=/nonexistent; }

# Layering quality: app v1 -> v2 (closures differ only in the app), figures from
# benchmarks/nix_layering.sh at max_layers 100 and 10. Prints; fails only if the figures cannot
# be produced.
nix_layering_figures() {
  local script="$repo_root/benchmarks/nix_layering.sh" v
  [[ -f $script ]] || { echo "$script is missing" >&2; return 1; }
  for v in v1 v2; do
    in_nix_rootfs bash -c 'cd "$1" && nix-build versions.nix -A "$2" --out-link "$3/nix-$2" >/dev/null 2>&1 &&
      nix --extra-experimental-features nix-command path-info -r --json "$(readlink "$3/nix-$2")" >"$3/nix-$2.json" 2>/dev/null' \
      _ "$repo_root/e2e/nix" "$v" "$work" || { echo "cannot build versions.nix $v" >&2; return 1; }
  done
  local max
  for max in 100 10; do   # 100: room for every path; 10: most paths must share layers
    bash "$script" "$work/nix-v1.json" "$(readlink "$work/nix-v1")" "$work/nix-v2.json" "$(readlink "$work/nix-v2")" "$max" || return 1
  done
}

nix_shutdown() {
  [[ -f $nix_ws/MODULE.bazel ]] && (cd "$nix_ws" && "$bazelw" shutdown) >/dev/null 2>&1
  return 0
}

# image_sbom of a Nix image: spdx-tools validates it; each store path of the closure is a
# package (name and version from its store name) whose files are listed, inside the package
# of the nix.image layer that holds it.
nix_sbom() {
  ensure_supply_chain_tools || return 1
  (cd "$nix_ws" && "$bazelw" build //:diamond_sbom) || return 1
  local sbom="$nix_ws/bazel-bin/diamond_sbom.spdx.json"
  "$spdx_validate" -i "$sbom" || return 1
  /usr/bin/python3 - "$sbom" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
packages = {p["SPDXID"]: p for p in doc["packages"]}
nix = {p["name"]: p for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-Nix-")}
for name in ("libcommon", "liba", "libb", "diamond-app"):
    assert name in nix, sorted(nix)
    assert nix[name]["comment"].startswith("/nix/store/"), nix[name]
contains = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in doc["relationships"] if r["relationshipType"] == "CONTAINS"}
common = nix["libcommon"]["SPDXID"]
layers = [packages[a]["name"] for a, b in contains if b == common]
assert len(layers) == 1 and layers[0].startswith("@diamond//:layer_"), layers
files = {f["SPDXID"]: f["fileName"] for f in doc["files"]}
in_common = [files[b] for a, b in contains if a == common]
assert any(f.endswith("/common.txt") for f in in_common), in_common
print("%d store-path packages, libcommon in %s: %s" % (len(nix), layers[0], in_common))
EOF
}

nix_checks=(
  "nix: diamond closure -> image -> bazel run load -> docker run|nix_diamond_load_and_run"
  "nix: every closure path in exactly one layer|nix_diamond_plan"
  "image_sbom of a Nix image: a package per store path, validated by spdx-tools|nix_sbom"
  "nix: skopeo copy, docker-archive, oci-image-tool, umoci unpack|nix_validate_layout"
  "nix: Attic example (/bin/atticd, mounted config, env secret)|nix_attic_example"
  "nix: 242-path closure with max_layers = 20|nix_many_max_layers"
  "nix: groups share a layer|nix_groups"
  "nix: layer actions sandboxed, never remote-executed|nix_layers_sandboxed"
  "nix: an existing store_path|nix_store_path"
  "nix: repository re-runs when (and only when) a Nix file changes|nix_rerun_on_change"
  "nix: bad expression shows Nix's error|nix_bad_expression"
  "nix: max_layers < 1|nix_bad_max_layers"
  "nix: store_path that does not exist|nix_bad_store_path"
  "nix: nix-build not installed|nix_not_installed"
  "nix: same digests after clean --expunge and from another checkout|nix_reproducible"
  "nix: layering figures (app v1 -> v2)|nix_layering_figures"
)
