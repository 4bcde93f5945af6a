# End-to-end checks of image_import and dockerfile.build: real Docker engine, real Bazel,
# skopeo, umoci, a real registry. Sourced after lib.sh and checks.sh (for $work); each
# function is one `check` (the suite's table, dockerfile_checks, is at the end; see e2e/run.sh).
# Starts its own plain registry ("df", e2e/registry/registries.sh) on port base + 10.

df_ws="$work/dockerfile_ws"           # e2e/dockerfile/ws: image_import sources + reproducibility
df_example="$work/dockerfile_example" # a copy of examples/dockerfile (it gets edited)
df_registry_port=$((${REGISTRY_E2E_PORT_BASE:-5001} + 10))
df_registry="127.0.0.1:$df_registry_port"
df_tool="$repo_root/tools/target/release/rules-image-tool"

dockerfile_setup() {
  [[ -n ${registry_root:-} ]] || registry_init "$work/registries"
  registry_start df plain "$df_registry_port" || return 1
  rm -rf "$df_ws" "$df_example"
  cp -r "$repo_root/e2e/dockerfile/ws" "$df_ws" &&
    sed -i "s|@RULES_IMAGE_PATH@|$repo_root|" "$df_ws/MODULE.bazel" &&
    cp -r "$repo_root/examples/dockerfile" "$df_example" &&
    rm -f "$df_example"/bazel-* &&
    sed -i "s|path = \"../..\"|path = \"$repo_root\"|" "$df_example/MODULE.bazel" || return 1
  (cd "$repo_root/tools" && cargo build --release --locked 2>&1 | tail -1; exit "${PIPESTATUS[0]}")
}

dockerfile_shutdown() {
  local ws
  for ws in "$df_ws" "$df_example"; do
    [[ -f $ws/MODULE.bazel ]] && (cd "$ws" && "$bazelw" shutdown >/dev/null 2>&1)
  done
  return 0
}

# The generated repository NAME of workspace WS (Bazel 7: ...~NAME, Bazel 8+: ...+NAME).
df_repo_dir() {
  local ob
  ob=$(cd "$1" && "$bazelw" info output_base 2>/dev/null) || return 1
  ls -d "$ob"/external/*[~+]"$2" 2>/dev/null | head -1
}

# --------------------------------------------------------------------------- the example chain

# //base:load (Nix -> image -> Docker), then //app:image builds the Dockerfile FROM it,
# imports it normalized and adds a Bazel layer; the result serves the dashboard in Docker.
df_example_chain() {
  docker rmi -f rules-image-example/busybox:1 rules-image-example/dashboard:latest >/dev/null 2>&1
  (cd "$df_example" && "$bazelw" run //base:load &&
    "$bazelw" build //app:image --output_groups=+oci_layout &&
    "$bazelw" run //app:load) || return 1
  local out
  out=$(docker run --rm --network none rules-image-example/dashboard:latest sh -c '
    httpd -p 8080 -h /srv/dashboard && sleep 0.3 &&
    wget -qO- http://127.0.0.1:8080/ && wget -qO- http://127.0.0.1:8080/config.json &&
    wget -qO- http://127.0.0.1:8080/build-info.json && echo "env=$DASHBOARD_ENV"') || return 1
  echo "$out"
  grep -q '<h1>Dashboard 1.4.0</h1>' <<<"$out" &&
    grep -qE '<script src="assets/app\.[0-9a-f]{12}\.js">' <<<"$out" &&
    grep -q '"environment":"production"' <<<"$out" &&
    grep -q '"built":"2026-01-01T00:00:00Z"' <<<"$out" &&
    grep -qx 'env=production' <<<"$out" || return 1
  local id config
  id=$(docker image inspect --format '{{.Id}}' rules-image-example/dashboard:latest)
  config=sha256:$(sha256sum "$df_example/bazel-bin/app/image.config.json" | cut -d' ' -f1)
  [[ $id == "$config" ]] || { echo "docker image id $id != config digest $config" >&2; return 1; }
}

# The layout passes skopeo (every digest) and umoci; every mtime of the normalized Dockerfile
# layers is clamped to source_date_epoch; created is fixed; no build-host fields are left.
df_example_validate() {
  local layout="$df_example/bazel-bin/app/image.oci_layout" bundle="$work/df-bundle"
  rm -rf "$work/df-copy" "$bundle"
  skopeo copy -q "oci:$layout:latest" "oci:$work/df-copy:latest" &&
    umoci unpack --image "$layout:latest" "$bundle" >/dev/null || return 1
  [[ -f $bundle/rootfs/srv/dashboard/index.html && -f $bundle/rootfs/srv/dashboard/config.json ]] ||
    { echo "dashboard files missing" >&2; return 1; }
  local newer
  newer=$(find "$bundle/rootfs" -newermt @1767225600 ! -path "$bundle/rootfs/srv/dashboard/config.json" \
    ! -path "$bundle/rootfs/srv/dashboard" ! -path "$bundle/rootfs/srv" | head -5)
  [[ -z $newer ]] || { echo "files newer than SOURCE_DATE_EPOCH: $newer" >&2; return 1; }
  local repo; repo=$(df_repo_dir "$df_example" dashboard) || return 1
  /usr/bin/python3 - "$repo/imported/config.json" "$repo/imported/manifest.json" <<'EOF'
import json, sys
config = json.load(open(sys.argv[1]))
manifest = json.load(open(sys.argv[2]))
assert config["created"] == "2026-01-01T00:00:00Z", config.get("created")
assert all(h.get("created") == "2026-01-01T00:00:00Z" for h in config["history"]), config["history"]
for field in ("container", "container_config"):
    assert field not in config, field
assert "Image" not in config.get("config", {}), config["config"]
assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
assert all(l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" for l in manifest["layers"])
print("created %s, %d layers, history %d entries" % (config["created"], len(manifest["layers"]), len(config["history"])))
EOF
}

df_example_push() {
  (cd "$df_example" && "$bazelw" run //app:push -- --registry "$df_registry") || return 1
  local want got
  want=$(cat "$df_example/bazel-bin/app/image.digest")
  got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$df_registry/rules-image-example/dashboard:latest") || return 1
  [[ $got == "$want" ]] || { echo "registry has $got, built $want" >&2; return 1; }
  rm -rf "$work/df-pulled"
  skopeo copy -q --src-tls-verify=false "docker://$df_registry/rules-image-example/dashboard:latest" "oci:$work/df-pulled:x"
}

# The Docker build re-runs when (and only when) the context changes; normalized, going back
# to the original context gives the original digest.
df_rebuild_on_change() {
  local repo digest0 mtime0
  repo=$(df_repo_dir "$df_example" dashboard) || return 1
  digest0=$(cat "$df_example/bazel-bin/app/image.digest")
  mtime0=$(stat -c %Y.%N "$repo/builder.txt") || return 1
  (cd "$df_example" && "$bazelw" shutdown && "$bazelw" build //app:image) || return 1
  [[ $(stat -c %Y.%N "$repo/builder.txt") == "$mtime0" ]] ||
    { echo "rebuilt without a change" >&2; return 1; }
  local css="$df_example/dashboard/src/style.css"
  cp "$css" "$work/style.css.orig"
  echo 'h1 { color: #036; }' >>"$css"
  (cd "$df_example" && "$bazelw" build //app:image) || return 1
  local digest1; digest1=$(cat "$df_example/bazel-bin/app/image.digest")
  [[ $digest1 != "$digest0" ]] || { echo "context change did not change the image" >&2; return 1; }
  cp "$work/style.css.orig" "$css"
  (cd "$df_example" && "$bazelw" build //app:image) || return 1
  local digest2; digest2=$(cat "$df_example/bazel-bin/app/image.digest")
  echo "original $digest0, edited $digest1, restored $digest2"
  [[ $digest2 == "$digest0" ]] || { echo "restored context gave another digest" >&2; return 1; }
}

# --------------------------------------------------------------------- image_import round trips

df_prepare_sources() {
  docker image inspect rules-image-example/app:latest >/dev/null 2>&1 ||
    (cd "$repo_root/examples" && "$bazelw" run //app:load) || return 1
  (cd "$repo_root/examples" && "$bazelw" build //app:image --output_groups=+tarball) || return 1
  rm -rf "$df_ws/layout/blobs" "$df_ws/layout/index.json" "$df_ws/layout/oci-layout"
  docker save -o "$df_ws/saved.tar" rules-image-example/app:latest &&
    skopeo copy -q "docker-archive:$df_ws/saved.tar" "oci:$df_ws/layout:v1" &&
    skopeo copy -q "docker-archive:$df_ws/saved.tar" "oci-archive:$df_ws/layout.tar:v1" &&
    cp "$repo_root/examples/bazel-bin/app/image.tar" "$df_ws/ours.tar"
}

# docker save -> image_import -> image_load -> docker run; the config is kept byte for byte,
# so Docker's image ID is unchanged; an image_manifest builds on the import.
df_import_docker_save() {
  df_prepare_sources || return 1
  docker rmi -f rules-image-e2e/imported:latest rules-image-e2e/on-imported:latest >/dev/null 2>&1
  (cd "$df_ws" && "$bazelw" run //:load_saved && "$bazelw" run //:load_on_saved) || return 1
  local out
  out=$(docker run --rm --network none rules-image-e2e/imported:latest) || return 1
  echo "$out"
  grep -q 'Hello, container!' <<<"$out" || return 1
  local id0 id1
  id0=$(docker image inspect --format '{{.Id}}' rules-image-example/app:latest)
  id1=$(docker image inspect --format '{{.Id}}' rules-image-e2e/imported:latest)
  [[ $id0 == "$id1" ]] || { echo "image ID changed: $id0 -> $id1" >&2; return 1; }
  out=$(docker run --rm --network none rules-image-e2e/on-imported:latest) &&
    grep -q 'Hello, container!' <<<"$out" || return 1
  docker image inspect --format '{{json .Config.Env}}' rules-image-e2e/on-imported:latest | grep -q 'IMPORTED=yes' || return 1
  # The layer added on top of the import is there (the image has no shell: copy it out).
  local c; c=$(docker create rules-image-e2e/on-imported:latest) || return 1
  out=$(docker cp "$c:/extra/note.txt" - | tar -xOf -); docker rm "$c" >/dev/null
  grep -q 'added by Bazel on top of an imported image' <<<"$out"
}

# The three other forms of the same image import to the manifest their source holds.
df_import_layouts() {
  (cd "$df_ws" && "$bazelw" build @layout//:image @layout_tar//:image @ours//:image) || return 1
  local layout_digest ours_digest
  layout_digest=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$df_ws/layout/index.json")
  ours_digest=$(cat "$repo_root/examples/bazel-bin/app/image.digest")
  local l lt o
  l=$(cat "$(df_repo_dir "$df_ws" layout)/imported/digest")
  lt=$(cat "$(df_repo_dir "$df_ws" layout_tar)/imported/digest")
  o=$(cat "$(df_repo_dir "$df_ws" ours)/imported/digest")
  echo "layout $l, oci-archive $lt, our tarball $o"
  [[ $l == "$layout_digest" && $lt == "$layout_digest" && $o == "$ours_digest" ]]
}

# skopeo's OCI layout -> image_import -> image_push; the registry serves the layout's manifest.
df_import_layout_push() {
  (cd "$df_ws" && "$bazelw" run //:push_layout -- --registry "$df_registry") || return 1
  local want got
  want=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$df_ws/layout/index.json")
  got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$df_registry/e2e/imported-layout:v1") || return 1
  [[ $got == "$want" ]] || { echo "registry has $got, layout has $want" >&2; return 1; }
  rm -rf "$work/df-layout-pulled"
  skopeo copy -q --src-tls-verify=false "docker://$df_registry/e2e/imported-layout:v1" "oci:$work/df-layout-pulled:x"
}

# An index layout (amd64, arm64, an attestation) imports as an index of two platforms; an
# image_manifest on it takes the amd64 image; pushing it gives the registry a 2-entry index.
df_import_index() {
  rm -rf "$df_ws/multi/blobs" "$df_ws/multi/index.json" "$df_ws/multi/oci-layout"
  /usr/bin/python3 "$repo_root/e2e/dockerfile/make_index_layout.py" "$df_ws/layout" "$df_ws/multi" || return 1
  (cd "$df_ws" && "$bazelw" build @multi//:image @multi//:image_linux_arm64_v8 //:on_multi &&
    "$bazelw" run //:push_multi -- --registry "$df_registry") || return 1
  local repo; repo=$(df_repo_dir "$df_ws" multi) || return 1
  /usr/bin/python3 - "$repo/imported/platforms.json" "$repo/imported/index.json" "$df_ws/bazel-bin/on_multi.manifest.json" \
    "$repo/imported/linux_amd64/manifest.json" <<'EOF' || return 1
import json, sys
platforms = json.load(open(sys.argv[1]))
index = json.load(open(sys.argv[2]))
on_multi = json.load(open(sys.argv[3]))
amd64 = json.load(open(sys.argv[4]))
assert [p["dir"] for p in platforms] == ["linux_amd64", "linux_arm64_v8"], platforms
assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"], index
assert on_multi["layers"][:-1] == amd64["layers"], "on_multi is not built on the amd64 image"
print("platforms:", ", ".join(p["dir"] for p in platforms), "- attestation skipped")
EOF
  local raw
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$df_registry/e2e/imported-index:v1") || return 1
  [[ $(jq '.manifests | length' <<<"$raw") == 2 ]] || { echo "registry index: $raw" >&2; return 1; }
  rm -rf "$work/df-index-pulled"
  skopeo copy -q --all --src-tls-verify=false "docker://$df_registry/e2e/imported-index:v1" "oci:$work/df-index-pulled:x"
}

# amd64 without a variant is amd64/v1 for import --platform, image_load's platform, base
# selection (an index entry that says v1, for a target platform that says nothing) and push.
df_platform_default_variant() {
  rm -rf "$df_ws/multi_v1/blobs" "$df_ws/multi_v1/index.json" "$df_ws/multi_v1/oci-layout"
  /usr/bin/python3 "$repo_root/e2e/dockerfile/make_index_layout.py" "$df_ws/layout" "$df_ws/multi_v1" v1 >/dev/null || return 1
  docker rmi -f rules-image-e2e/multi-amd64-v1:latest >/dev/null 2>&1
  (cd "$df_ws" && "$bazelw" build @multi_amd64_v1//:image //:on_multi_v1 &&
    "$bazelw" run //:load_multi_amd64_v1 &&
    "$bazelw" run //:push_multi_amd64_v1 -- --registry "$df_registry" &&
    "$bazelw" run //:push_on_multi_v1 -- --registry "$df_registry") || return 1
  docker run --rm --network none rules-image-e2e/multi-amd64-v1:latest | grep -q 'Hello, container!' || return 1
  local multi multi_v1 imported on_v1 amd64
  multi=$(df_repo_dir "$df_ws" multi) && multi_v1=$(df_repo_dir "$df_ws" multi_v1) &&
    imported=$(df_repo_dir "$df_ws" multi_amd64_v1) || return 1
  amd64=$(cat "$multi/imported/linux_amd64/digest")
  # The imported single platform is the index's amd64 image, byte for byte.
  [[ $(cat "$imported/imported/digest") == "$amd64" ]] || { echo "import --platform linux/amd64/v1 took another image" >&2; return 1; }
  # The base is the v1 entry's image (same layers as the amd64 image).
  jq -e --slurpfile base "$multi_v1/imported/linux_amd64_v1/manifest.json" '.layers[:-1] == $base[0].layers'     "$df_ws/bazel-bin/on_multi_v1.manifest.json" >/dev/null || { echo "on_multi_v1 is not built on the amd64/v1 image" >&2; return 1; }
  on_v1=$(cat "$df_ws/bazel-bin/on_multi_v1.digest")
  [[ "sha256:$(skopeo inspect --raw --tls-verify=false "docker://$df_registry/e2e/imported-amd64-v1:v1" | sha256sum | cut -d' ' -f1)" == "$amd64" ]] &&
    [[ "sha256:$(skopeo inspect --raw --tls-verify=false "docker://$df_registry/e2e/on-multi-v1:v1" | sha256sum | cut -d' ' -f1)" == "$on_v1" ]] ||
    { echo "the registry does not hold the pushed digests" >&2; return 1; }
  echo "amd64 (no variant) = amd64/v1: imported $amd64, based on $on_v1"
}

# normalize = True rewrites the layers (zstd here); the image still runs.
df_import_normalized() {
  docker rmi -f rules-image-e2e/imported-normalized:latest >/dev/null 2>&1
  (cd "$df_ws" && "$bazelw" run //:load_saved_normalized) || return 1
  docker run --rm --network none rules-image-e2e/imported-normalized:latest | grep -q 'Hello, container!' || return 1
  grep -q 'tar+zstd' "$(df_repo_dir "$df_ws" saved_normalized)/imported/manifest.json"
}

# ------------------------------------------------------------------ reproducible Dockerfile builds

# Builds @norm and @raw (the same Dockerfile, --no-cache) twice, a few seconds apart: the
# normalized digests are equal, Docker's own are not.
df_rebuild_reproducible() {
  docker image inspect rules-image-example/busybox:1 >/dev/null 2>&1 || { echo "needs //base:load of the example" >&2; return 1; }
  local round norm=() raw=()
  for round in 1 2; do
    (cd "$df_ws" && "$bazelw" build @norm//:image @raw//:image) || return 1
    norm+=("$(cat "$(df_repo_dir "$df_ws" norm)/imported/image.json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_digest"])')")
    raw+=("$(cat "$(df_repo_dir "$df_ws" raw)/imported/image.json" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_digest"])')")
    echo "round $round: normalized ${norm[-1]}, not normalized ${raw[-1]}"
    if ((round == 1)); then
      sleep 2
      (cd "$df_ws" && "$bazelw" clean --expunge) || return 1
    fi
  done
  [[ ${norm[0]} == "${norm[1]}" ]] || { echo "normalized rebuilds differ" >&2; return 1; }
  [[ ${raw[0]} != "${raw[1]}" ]] || { echo "raw rebuilds are identical: the test proves nothing" >&2; return 1; }
}

# The normalized Dockerfile image runs; the RUN step's deletion (a whiteout) took effect.
df_norm_runs() {
  docker rmi -f rules-image-e2e/df-norm:latest >/dev/null 2>&1
  (cd "$df_ws" && "$bazelw" run //:load_norm) || return 1
  local out
  out=$(docker run --rm --network none rules-image-e2e/df-norm:latest sh -c 'cat /data/copy.txt; readlink /data/generated/current; ls /data') || return 1
  echo "$out"
  grep -qx 'line 3' <<<"$out" && grep -qx 'lines.txt' <<<"$out" && ! grep -q greeting <<<"$out"
}

# The same FROM-scratch multi-stage Dockerfile built by Docker's legacy builder, BuildKit
# (buildx), Podman and Buildah (the last two exported as OCI archives): all import, the
# non-Docker ones run in Docker, and after normalization every builder gives the same layers.
# "auto" picks buildx here (a Docker engine answers and the plugin is installed).
df_every_builder() {
  local rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs b
  cp "$rootfs/bin/busybox" "$df_ws/scratch/busybox" || return 1
  for b in buildah buildx podman; do docker rmi -f "rules-image-e2e/scratch-$b:latest" >/dev/null 2>&1; done
  (cd "$df_ws" && "$bazelw" build @scratch_docker//:image @scratch_buildx//:image @scratch_podman//:image \
    @scratch_buildah//:image @scratch_auto//:image) || return 1
  local layers=()
  for b in docker buildx podman buildah auto; do
    local repo; repo=$(df_repo_dir "$df_ws" "scratch_$b") || return 1
    echo "scratch_$b: built by $(cat "$repo/builder.txt"), layers $(/usr/bin/python3 -c 'import json,sys; print(" ".join(l["diff_id"][7:19] for l in json.load(open(sys.argv[1]))))' "$repo/imported/layers.json")"
    layers+=("$(/usr/bin/python3 -c 'import json,sys; print(" ".join(l["diff_id"] for l in json.load(open(sys.argv[1]))))' "$repo/imported/layers.json")")
  done
  [[ $(cat "$(df_repo_dir "$df_ws" scratch_auto)/builder.txt") == docker-buildx ]] || { echo "auto did not pick buildx" >&2; return 1; }
  local l
  for l in "${layers[@]}"; do
    [[ $l == "${layers[0]}" ]] || { echo "layers differ between builders" >&2; return 1; }
  done
  for b in buildah buildx podman; do
    (cd "$df_ws" && "$bazelw" run "//:load_scratch_$b") || return 1
    docker run --rm --network none "rules-image-e2e/scratch-$b:latest" | grep -qx 'hello from a FROM-scratch multi-stage build' ||
      { echo "scratch-$b does not run" >&2; return 1; }
  done
}

# ------------------------------------------------------------------------------- hostile input

# Every case of the hostile corpus (make_hostile.py) is refused with its message; no output.
df_hostile_corpus() {
  local dir="$work/hostile" ok=0 name expect
  rm -rf "$dir"; mkdir -p "$dir"
  /usr/bin/python3 "$repo_root/e2e/dockerfile/make_hostile.py" "$dir" >"$dir/cases.tsv" || return 1
  while IFS=$'\t' read -r name expect; do
    if "$df_tool" import --src "$dir/$name.tar" --output-dir "$dir/$name.out" >"$dir/$name.log" 2>&1; then
      echo "$name: accepted" >&2; ok=1
    elif ! grep -qF -- "$expect" "$dir/$name.log"; then
      echo "$name: expected \"$expect\", got: $(cat "$dir/$name.log")" >&2; ok=1
    elif [[ -e $dir/$name.out ]]; then
      echo "$name: left output behind" >&2; ok=1
    else
      echo "refused $name: $(tail -1 "$dir/$name.log")"
    fi
  done <"$dir/cases.tsv"
  return $ok
}

# Through Bazel: the error names the image_import and the entry; nothing is built.
df_hostile_bazel() {
  /usr/bin/python3 "$repo_root/e2e/dockerfile/make_hostile.py" "$df_ws/hostile" --only escape >/dev/null || return 1
  local log
  if log=$(cd "$df_ws" && "$bazelw" build @hostile//:image 2>&1); then
    echo "hostile import was accepted" >&2; return 1
  fi
  grep -q 'image_import' <<<"$log" && grep -q '"../../etc/passwd"' <<<"$log" || { echo "$log" | tail -20 >&2; return 1; }
  echo "$log" | grep -m1 'etc/passwd'
}

# A failing build names the dockerfile.build and shows the builder's output; a builder that
# cannot build here is named. Neither leaves an image behind.
df_bad_builds() {
  local log
  if log=$(cd "$df_ws" && "$bazelw" build @broken//:image 2>&1); then
    echo "a failing Dockerfile built" >&2; return 1
  fi
  grep -q "dockerfile.build(name = \"broken\")" <<<"$log" && grep -q 'failed (exit' <<<"$log" &&
    grep -q 'RUN echo never' <<<"$log" || { echo "$log" | tail -20 >&2; return 1; }
  echo "$log" | grep -m1 'dockerfile.build'
  if log=$(cd "$df_ws" && "$bazelw" build --repo_env=DOCKER_HOST=unix:///nonexistent.sock @broken//:image 2>&1); then
    echo "a build without a Docker engine succeeded" >&2; return 1
  fi
  grep -q 'cannot reach a Docker engine' <<<"$log" || { echo "$log" | tail -20 >&2; return 1; }
  echo "$log" | grep -m1 'Docker engine'
  # A FROM image that is not loaded: the error says how to provide one.
  if log=$(cd "$df_ws" && "$bazelw" build @missing_base//:image 2>&1); then
    echo "a build FROM a missing image succeeded" >&2; return 1
  fi
  grep -q 'A FROM image is missing' <<<"$log" || { echo "$log" | tail -20 >&2; return 1; }
  echo "$log" | grep -m1 'A FROM image is missing'
}

# ------------------------------------------------- dockerfile_image: bases that are Bazel targets

df_targets="$df_ws/targets"

# The digest of //targets:NAME and its manifest's layer digests, after building it.
df_target_build() {
  local rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs
  [[ -f $df_targets/busybox ]] || cp "$rootfs/bin/busybox" "$df_targets/busybox" || return 1
  (cd "$df_ws" && "$bazelw" build "//targets:$1" --output_groups=+oci_layout) || return 1
  cat "$df_ws/bazel-bin/targets/$1.digest"
}

df_layer_digests() {
  /usr/bin/python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(open(sys.argv[1]))["layers"]))' "$1"
}

# A three-stage Dockerfile on a Bazel-built base: the result is the base's own layer blob plus
# one squashed layer (the base's /etc/motd whited out, a directory made and removed in between
# gone); skopeo and umoci read its layout; Docker runs it; FROM scratch gives one layer.
df_image_from_targets() {
  echo "base v1" >"$df_targets/version.txt" || return 1
  df_target_build multi >/dev/null && df_target_build from_scratch >/dev/null || return 1
  local bin="$df_ws/bazel-bin/targets" base_layers layers
  base_layers=$(df_layer_digests "$bin/base.manifest.json") && layers=$(df_layer_digests "$bin/multi.manifest.json") || return 1
  echo "base layers: $base_layers; image layers: $layers"
  [[ $layers == "$base_layers "* && $(wc -w <<<"$layers") -eq 2 ]] ||
    { echo "want the base's layer then one new layer" >&2; return 1; }
  [[ $(df_layer_digests "$bin/from_scratch.manifest.json" | wc -w) -eq 1 ]] || { echo "FROM scratch: want one layer" >&2; return 1; }
  local listing; listing=$(tar tzf "$bin/multi.layer.tar.gz") || return 1
  grep -qx 'etc/.wh.motd' <<<"$listing" && grep -qx 'srv/build.txt' <<<"$listing" &&
    ! grep -q 'scratchdir/f' <<<"$listing" || { echo "squashed layer: $listing" >&2; return 1; }
  rm -rf "$work/dfi-copy" "$work/dfi-bundle"
  skopeo copy -q "oci:$bin/multi.oci_layout:latest" "oci:$work/dfi-copy:latest" &&
    umoci unpack --image "$bin/multi.oci_layout:latest" "$work/dfi-bundle" >/dev/null || return 1
  [[ ! -e $work/dfi-bundle/rootfs/etc/motd && -f $work/dfi-bundle/rootfs/srv/greeting.txt ]] ||
    { echo "umoci: /etc/motd still there or greeting missing" >&2; return 1; }
  docker rmi -f rules-image-e2e/dockerfile-image:multi >/dev/null 2>&1
  (cd "$df_ws" && "$bazelw" run //targets:load_multi) || return 1
  local out; out=$(docker run --rm --network none rules-image-e2e/dockerfile-image:multi) || return 1
  echo "$out"
  grep -q 'Hello from a Dockerfile on a Bazel-built base' <<<"$out" && grep -qx 'built at 1700000000' <<<"$out" &&
    grep -qx 'base v1' <<<"$out" || return 1
  docker run --rm --network none rules-image-e2e/dockerfile-image:multi sh -c 'test ! -e /etc/motd && test ! -e /tmp/scratchdir'
}

# A change to the base target rebuilds the image on the new base's layer; going back gives
# the first digest again (the build is reproducible).
df_image_rebuilds_on_base_change() {
  local d0 d1 d2
  d0=$(df_target_build multi) || return 1
  echo "base v2" >"$df_targets/version.txt"
  d1=$(df_target_build multi) || return 1
  local bin="$df_ws/bazel-bin/targets"
  [[ $(df_layer_digests "$bin/multi.manifest.json") == "$(df_layer_digests "$bin/base.manifest.json") "* ]] ||
    { echo "rebuilt image is not on the new base" >&2; return 1; }
  (cd "$df_ws" && "$bazelw" run //targets:load_multi) || return 1
  docker run --rm --network none rules-image-e2e/dockerfile-image:multi | grep -qx 'base v2' || return 1
  echo "base v1" >"$df_targets/version.txt"
  d2=$(df_target_build multi) || return 1
  echo "v1 $d0, v2 $d1, v1 again $d2"
  [[ $d1 != "$d0" ]] || { echo "a new base did not change the image" >&2; return 1; }
  [[ $d2 == "$d0" ]] || { echo "the same inputs gave another digest" >&2; return 1; }
}

# The same workspace at another path, with its own output base (so a clean build): the same
# digest.
df_image_reproducible_elsewhere() {
  local other="$work/dockerfile_ws_elsewhere" d0 d1
  d0=$(cat "$df_ws/bazel-bin/targets/multi.digest") || return 1
  rm -rf "$other" && cp -r "$df_ws" "$other" && rm -f "$other"/bazel-* || return 1
  (cd "$other" && "$bazelw" build //targets:multi) || return 1
  d1=$(cat "$other/bazel-bin/targets/multi.digest")
  (cd "$other" && "$bazelw" shutdown >/dev/null 2>&1)
  echo "$df_ws: $d0; $other: $d1"
  [[ $d0 == "$d1" ]]
}

# A FROM that is not a base, and a final stage on another base than final_base: the target,
# the image and the base found are named; no output is left.
df_image_errors() {
  local log
  df_target_build base >/dev/null || return 1
  if log=$(cd "$df_ws" && "$bazelw" build //targets:unknown_from 2>&1); then
    echo "a FROM outside base built" >&2; return 1
  fi
  grep -q '//targets:unknown_from' <<<"$log" && grep -q 'elsewhere/not-a-base:1' <<<"$log" &&
    grep -q 'A FROM image is not one of the bases' <<<"$log" || { echo "$log" | tail -20 >&2; return 1; }
  echo "$log" | grep -m1 'not one of the bases'
  if log=$(cd "$df_ws" && "$bazelw" build //targets:wrong_final 2>&1); then
    echo "a final stage FROM scratch passed as FROM base" >&2; return 1
  fi
  grep -q '//targets:wrong_final' <<<"$log" &&
    grep -q 'final stage builds on none of the bases, not on "base"' <<<"$log" || { echo "$log" | tail -20 >&2; return 1; }
  echo "$log" | grep -m1 'final stage builds'
  [[ ! -e $df_ws/bazel-bin/targets/unknown_from.digest && ! -e $df_ws/bazel-bin/targets/wrong_final.digest ]] ||
    { echo "a failed build left outputs" >&2; return 1; }
}

# The example's Dockerfile on its Nix base as a Bazel target: no image in Docker first.
df_example_target_base() {
  docker rmi -f rules-image-example/dashboard:on-target >/dev/null 2>&1
  local had_base=0
  docker image inspect rules-image-example/busybox:1 >/dev/null 2>&1 && had_base=1
  docker rmi -f rules-image-example/busybox:1 >/dev/null 2>&1
  (cd "$df_example" && "$bazelw" run //app:load_on_target) || return 1
  local out
  out=$(docker run --rm --network none rules-image-example/dashboard:on-target sh -c '
    httpd -p 8080 -h /srv/dashboard && sleep 0.3 && wget -qO- http://127.0.0.1:8080/ &&
    wget -qO- http://127.0.0.1:8080/config.json && wget -qO- http://127.0.0.1:8080/build-info.json') || return 1
  echo "$out"
  grep -q '<h1>Dashboard 1.4.0</h1>' <<<"$out" && grep -q '"environment":"production"' <<<"$out" &&
    grep -q '"built":"2026-01-01T00:00:00Z"' <<<"$out" || return 1
  if ((had_base)); then (cd "$df_example" && "$bazelw" run //base:load >/dev/null) || return 1; fi
}

dockerfile_checks=(
  "dockerfile: example chain (Nix base -> docker build -> import -> Bazel layer) runs in Docker|df_example_chain"
  "dockerfile: example layout validates; mtimes clamped, created fixed|df_example_validate"
  "dockerfile: bazel run //app:push, registry serves the built digest|df_example_push"
  "dockerfile: rebuilt when (and only when) the context changes|df_rebuild_on_change"
  "image_import: docker save -> import -> load -> run, as a base|df_import_docker_save"
  "image_import: OCI layout dir and tar, our tarball keep their digests|df_import_layouts"
  "image_import: skopeo OCI layout -> import -> push|df_import_layout_push"
  "image_import: index (amd64, arm64, attestation) -> 2 platforms, base, push|df_import_index"
  "image_import, image_load, base selection, push: amd64 without a variant is amd64/v1|df_platform_default_variant"
  "image_import: normalize rewrites layers (zstd), image runs|df_import_normalized"
  "dockerfile: two --no-cache rebuilds: normalized equal, raw differ|df_rebuild_reproducible"
  "dockerfile: normalized image runs, whiteout applied|df_norm_runs"
  "dockerfile: one Dockerfile with docker-legacy, buildx, podman, buildah: same normalized layers|df_every_builder"
  "image_import: hostile tarball corpus refused|df_hostile_corpus"
  "image_import: hostile tarball through Bazel names the entry|df_hostile_bazel"
  "dockerfile: a failing build, no Docker engine, a missing FROM image: clear errors|df_bad_builds"
  "dockerfile_image: 3 stages on a Bazel-built base -> base blob + 1 squashed layer; skopeo, umoci, docker run|df_image_from_targets"
  "dockerfile_image: a changed base target rebuilds; same inputs, same digest|df_image_rebuilds_on_base_change"
  "dockerfile_image: the workspace at another path, clean: same digest|df_image_reproducible_elsewhere"
  "dockerfile_image: FROM outside base, final stage on another base: clear errors, no output|df_image_errors"
  "dockerfile_image: the example's Dockerfile on its Nix base target, no docker load first; served in Docker|df_example_target_base"
)
