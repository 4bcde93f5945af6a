# Multi-platform image checks: image_index over one image_manifest built for linux/amd64 and
# linux/arm64 (a split transition), validated by skopeo, pushed to a loopback registry, loaded
# into Docker, rebuilt from scratch for reproducibility, and pulled back as a base image.
# Sourced after e2e/lib.sh (and, for the registry checks, e2e/registry/registries.sh +
# checks.sh with registry_e2e_setup done); each function is one `check`.
#
# The suite (see run.sh): multiplatform_checks at the end, multiplatform_setup starts the
# registries, multiplatform_shutdown stops the Bazel servers the checks started.

mp_ws() { echo "$work/multiplatform"; }
mp_bin() { echo "$(mp_ws)/bazel-bin/$1"; }
mp_reg() { echo "127.0.0.1:$reg_port_plain"; }

# Copies the workspace and builds the index with its layout and tarball.
mp_build() {
  local ws; ws=$(mp_ws)
  rm -rf "$ws"; cp -r "$repo_root/e2e/multiplatform" "$ws"
  rm -f "$ws/checks.sh"
  sed -i "s|@RULES_IMAGE_PATH@|$repo_root|" "$ws/MODULE.bazel"
  (cd "$ws" && "$bazelw" build //:index //:load //:push --output_groups=+oci_layout,+tarball) || return 1
  echo "index digest: $(cat "$(mp_bin index.digest)")"
  cat "$(mp_bin index.digest)" >"$work/multiplatform-digest"
}

# sha256 of stdin as sha256:<hex>.
mp_sha() { sha256sum | sed 's/^/sha256:/; s/ .*//'; }
# A blob of the layout by digest.
mp_blob() { cat "$(mp_bin index.oci_layout)/blobs/sha256/${1#sha256:}"; }

# The layout holds our index (same digest): two manifests, amd64 then arm64, layers differ.
mp_layout_index() {
  local layout raw digest
  layout=$(mp_bin index.oci_layout)
  digest=$(cat "$(mp_bin index.digest)")
  raw=$(skopeo inspect --raw "oci:$layout") || return 1
  [[ $(printf '%s' "$raw" | mp_sha) == "$digest" ]] ||
    { echo "skopeo's raw index is not $digest" >&2; printf '%s\n' "$raw" | head -c 600 >&2; return 1; }
  cmp -s <(printf '%s' "$raw") "$(mp_bin index.index.json)" || { echo "layout index differs from index.index.json" >&2; return 1; }
  jq -e '.mediaType == "application/vnd.oci.image.index.v1+json" and (.manifests | length) == 2
    and .manifests[0].platform.architecture == "amd64" and .manifests[1].platform.architecture == "arm64"
    and .manifests[0].platform.os == "linux" and .manifests[1].platform.os == "linux"' <<<"$raw" >/dev/null ||
    { echo "unexpected index: $raw" >&2; return 1; }
  local m0 m1 l0 l1
  m0=$(jq -r '.manifests[0].digest' <<<"$raw"); m1=$(jq -r '.manifests[1].digest' <<<"$raw")
  l0=$(mp_blob "$m0" | jq -c '[.layers[].digest]') || return 1
  l1=$(mp_blob "$m1" | jq -c '[.layers[].digest]') || return 1
  echo "amd64 layers $l0"; echo "arm64 layers $l1"
  [[ $(jq 'length' <<<"$l0") == 2 && $(jq 'length' <<<"$l1") == 2 ]] || { echo "expected 2 layers each" >&2; return 1; }
  # The shared layer is the same blob; the per-platform layer differs.
  [[ $(jq -r '.[0]' <<<"$l0") == $(jq -r '.[0]' <<<"$l1") ]] || { echo "shared layer differs" >&2; return 1; }
  [[ $(jq -r '.[1]' <<<"$l0") != $(jq -r '.[1]' <<<"$l1") ]] || { echo "per-platform layers are identical" >&2; return 1; }
  # Each child's config says its platform.
  local c0 c1
  c0=$(mp_blob "$m0" | jq -r .config.digest); c1=$(mp_blob "$m1" | jq -r .config.digest)
  [[ $(mp_blob "$c0" | jq -r .architecture) == amd64 && $(mp_blob "$c1" | jq -r .architecture) == arm64 ]] ||
    { echo "child configs have the wrong architecture" >&2; return 1; }
}

# skopeo copy --all reads and verifies every blob of every platform; the copy keeps our index.
mp_skopeo_copy_all() {
  rm -rf "$work/mp-copy"
  skopeo copy -q --all "oci:$(mp_bin index.oci_layout)" "oci:$work/mp-copy:latest" || return 1
  [[ $(skopeo inspect --raw "oci:$work/mp-copy:latest" | mp_sha) == "$(cat "$(mp_bin index.digest)")" ]] ||
    { echo "copied index has another digest" >&2; return 1; }
  # The tarball is an OCI archive of the same index.
  [[ $(skopeo inspect --raw "oci-archive:$(mp_bin index.tar)" | mp_sha) == "$(cat "$(mp_bin index.digest)")" ]] ||
    { echo "tarball's index has another digest" >&2; return 1; }
}

# bazel run //:push to the loopback registry; skopeo copies every platform back, same index digest.
mp_push() {
  local reg digest ref
  reg=$(mp_reg); digest=$(cat "$(mp_bin index.digest)"); ref="docker://$reg/multiplatform/app"
  (cd "$(mp_ws)" && "$bazelw" run //:push -- --registry "$reg") || return 1
  [[ $(skopeo inspect --raw --tls-verify=false "$ref:latest" | mp_sha) == "$digest" ]] ||
    { echo "registry's :latest is not $digest" >&2; return 1; }
  rm -rf "$work/mp-pulled"
  skopeo copy -q --all --src-tls-verify=false "$ref@$digest" "oci:$work/mp-pulled:latest" || return 1
  [[ $(skopeo inspect --raw "oci:$work/mp-pulled:latest" | mp_sha) == "$digest" ]] ||
    { echo "copied-back index has another digest" >&2; return 1; }
  # Each platform is served under its own digest too.
  skopeo inspect --raw --tls-verify=false --override-arch arm64 "$ref@$(jq -r '.manifests[1].digest' "$(mp_bin index.index.json)")" |
    jq -e '.layers | length == 2' >/dev/null
}

# bazel run //:load loads the host's (amd64) image; docker runs the amd64 binary.
mp_load_and_run() {
  docker rmi -f multiplatform/app:test >/dev/null 2>&1 || true
  (cd "$(mp_ws)" && "$bazelw" run //:load) || return 1
  local out
  out=$(docker run --rm --network none multiplatform/app:test) || return 1
  echo "$out"
  [[ $out == "$(printf 'hello from the amd64 image\ndata for amd64')" ]] || return 1
  [[ $(docker image inspect --format '{{.Architecture}}' multiplatform/app:test) == amd64 ]]
}

# Two clean builds (fresh output bases) give the same index digest.
mp_reproducible() {
  local i digests=()
  for i in 1 2; do
    (cd "$(mp_ws)" && "$bazelw" --output_base="$work/mp-ob-$i" build //:index) || return 1
    digests+=("$(cat "$(mp_bin index.digest)")")
    echo "build $i: ${digests[-1]}"
  done
  [[ ${digests[0]} == "${digests[1]}" && ${digests[0]} == "$(cat "$work/multiplatform-digest")" ]] ||
    { echo "digests differ: ${digests[*]} vs $(cat "$work/multiplatform-digest")" >&2; return 1; }
}

# images.pull of the pushed index: an image_manifest on it for amd64 starts with the amd64
# image's layers; for arm64 with the arm64 image's.
mp_index_base() {
  local ws digest
  ws=$(mp_ws); digest=$(cat "$work/multiplatform-digest")
  grep -q pushed_index "$ws/MODULE.bazel" || cat >>"$ws/MODULE.bazel" <<EOM

images = use_extension("@rules_image//rules:extensions.bzl", "images")
images.pull(
    name = "pushed_index",
    registry = "$(mp_reg)",
    repository = "multiplatform/app",
    digest = "$digest",
    tag = "latest",
)
use_repo(images, "pushed_index")
EOM
  local arch i
  for arch in amd64 arm64; do
    [[ $arch == amd64 ]] && i=0 || i=1
    (cd "$ws" && "$bazelw" build //on_index:image --platforms="//platforms:linux_$arch") || return 1
    local want got
    want=$(mp_blob "$(jq -r ".manifests[$i].digest" "$(mp_bin index.index.json)")" | jq -c '[.layers[].digest]')
    got=$(jq -c '[.layers[].digest][:2]' "$(mp_bin on_index/image.manifest.json)")
    [[ $want == "$got" ]] || { echo "$arch: base layers $got, want $want" >&2; return 1; }
    [[ $(jq -r .architecture "$(mp_bin on_index/image.config.json)") == "$arch" ]] || return 1
    echo "$arch: on the index's $arch image: $got"
  done
  # The generated repository names one repository_image per platform.
  (cd "$ws" && "$bazelw" query '@pushed_index//:all' 2>/dev/null) | sort
}

# A platform the base index lacks is an analysis error naming the target, base and platforms.
mp_index_base_missing_platform() {
  local err
  if err=$(cd "$(mp_ws)" && "$bazelw" build --nobuild //on_index:image --platforms=//platforms:linux_s390x 2>&1); then
    echo "built for linux/s390x on an index without it" >&2; return 1
  fi
  local want
  for want in "//on_index:image" "pushed_index//:image" "linux/s390x" "linux/amd64" "linux/arm64"; do
    grep -qF -- "$want" <<<"$err" || { echo "error does not mention $want:" >&2; grep -A2 'Error in fail' <<<"$err" >&2; return 1; }
  done
  grep -m1 'Error in fail' <<<"$err" | cut -c1-300
}

multiplatform_checks=(
  "multiplatform: build image_index (amd64 + arm64), layout, tarball|mp_build"
  "multiplatform: skopeo inspect --raw: 2 manifests, amd64 then arm64, layers differ|mp_layout_index"
  "multiplatform: skopeo copy --all verifies every digest|mp_skopeo_copy_all"
  "multiplatform: bazel run push; skopeo copy --all back, same index digest|mp_push"
  "multiplatform: bazel run load picks amd64; docker run|mp_load_and_run"
  "multiplatform: same index digest from two fresh output bases|mp_reproducible"
  "multiplatform: images.pull of the index as a base, per platform|mp_index_base"
  "multiplatform: clear error for a platform the base index lacks|mp_index_base_missing_platform"
)

multiplatform_setup() { registry_up; }

multiplatform_shutdown() {
  local ws i
  ws=$(mp_ws)
  [[ -f $ws/MODULE.bazel ]] || return 0
  (cd "$ws" && "$bazelw" shutdown) >/dev/null 2>&1
  for i in 1 2; do
    [[ -d $work/mp-ob-$i ]] && (cd "$ws" && "$bazelw" --output_base="$work/mp-ob-$i" shutdown) >/dev/null 2>&1
  done
  return 0
}
