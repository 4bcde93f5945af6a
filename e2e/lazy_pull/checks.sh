# Lazily pullable layers: examples//app:image_estargz and :image_zstd_chunked, checked by the
# formats' reference readers and by podman (partial pulls from the plain registry) and Docker.
#
# Who proves what here:
#   verify_lazy (stargz-snapshotter's estargz library, Debian's Go sources)  both formats valid:
#       TOC digest, every chunk's digest and bytes; zstd:chunked's tar-split rebuilds the tar.
#   podman 5.8 (containers/storage)   zstd:chunked lazily: "Retrieved partial blob", HTTP 206
#       ranges, a second image fetches only its new file. eStargz: podman refuses partial
#       pulls by default (no tar-split, so the diff_id cannot be checked); with
#       insecure_allow_unpredictable_image_contents it pulls ours partially too.
#   containerd 2, Docker 20.10          run them as ordinary gzip / zstd layers (Docker 20.10
#       pulls no zstd layer, so only the eStargz image there).
#   stargz-snapshotter itself (containerd-stargz-grpc) is not packaged by Debian: not run.
# Needs the registry suite's registries (registry_up).

source "$repo_root/benchmarks/peer_tools.sh"
source "$repo_root/e2e/lazy_pull/tools.sh"

lazy_bin() { echo "$repo_root/examples/bazel-bin/app/$1"; }
lazy_rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs
lazy_reg() { echo "127.0.0.1:$reg_port_plain"; }

lazy_setup() {
  registry_up || return 1
  ensure_lazy_verifier || return 1
  (cd "$repo_root/examples" && "$bazelw" build //app:image_estargz //app:image_zstd_chunked //app:image_zstd_chunked_v2)
}

# lazy_layer IMAGE: the manifest's one layer descriptor (JSON); lazy_blob IMAGE: its blob, the
# output of :app_layer_<format> (checked to be the descriptor's digest).
lazy_layer() { jq -c '.layers[0]' "$(lazy_bin "$1.manifest.json")"; }
lazy_blob() {
  local blob=$(lazy_bin "app_layer_${1#image_}").tar.gz
  [[ $1 == *zstd* ]] && blob=${blob%.gz}.zst
  [[ $(lazy_layer "$1" | jq -r .digest) == "sha256:$(sha256sum <"$blob" | cut -d' ' -f1)" ]] || { echo "$blob is not $1's layer" >&2; return 1; }
  echo "$blob"
}

# The eStargz layer: gzip media type, the TOC digest and uncompressed size annotations, and
# the estargz library opens it, verifies the TOC digest and every chunk, and finds the tar's
# files (a plain gunzip of the blob) in it.
lazy_estargz_verifies() {
  local layer blob; layer=$(lazy_layer image_estargz) && blob=$(lazy_blob image_estargz) || return 1
  echo "$layer" | jq .
  jq -e '.mediaType == "application/vnd.oci.image.layer.v1.tar+gzip"' <<<"$layer" >/dev/null || return 1
  gunzip -c "$blob" >"$work/estargz.tar" || return 1
  [[ $(jq -r '.annotations["io.containers.estargz.uncompressed-size"]' <<<"$layer") == "$(stat -c %s "$work/estargz.tar")" ]] ||
    { echo "uncompressed-size annotation is not the tar's size" >&2; return 1; }
  # The diff_id is the tar's, TOC entry included.
  local diff_id; diff_id=$(jq -r '.rootfs.diff_ids[0]' "$(lazy_bin image_estargz.config.json)")
  [[ $diff_id == "sha256:$(sha256sum <"$work/estargz.tar" | cut -d' ' -f1)" ]] || { echo "diff_id $diff_id is not the tar's" >&2; return 1; }
  "$LAZY_VERIFIER" estargz "$blob" "$(jq -r '.annotations["containerd.io/snapshot/stargz/toc.digest"]' <<<"$layer")" "$work/estargz.tar" || return 1
  # And it does reject: a TOC digest that is not the blob's.
  ! "$LAZY_VERIFIER" estargz "$blob" "sha256:$(printf x | sha256sum | cut -d' ' -f1)" "$work/estargz.tar" 2>/dev/null
}

# The zstd:chunked layer: zstd media type, containers/storage's three annotations; the TOC
# and tar-split check out, every file's frame decompresses to its bytes, and the tar-split
# rebuilds the plain tar (= what zstd -d gives) byte for byte. The diff_id is the plain tar's.
lazy_zstd_chunked_verifies() {
  local layer blob; layer=$(lazy_layer image_zstd_chunked) && blob=$(lazy_blob image_zstd_chunked) || return 1
  echo "$layer" | jq .
  jq -e '.mediaType == "application/vnd.oci.image.layer.v1.tar+zstd"' <<<"$layer" >/dev/null || return 1
  zstd -dcq "$blob" >"$work/zstd-chunked.tar" || return 1
  local a=io.github.containers.zstd-chunked
  ann() { jq -r --arg k "$a.$1" '.annotations[$k]' <<<"$layer"; }
  "$LAZY_VERIFIER" zstd-chunked "$blob" "$(ann manifest-checksum)" "$(ann manifest-position)" "$(ann tarsplit-position)" "$work/zstd-chunked.tar" || return 1
  # The plain zstd image's layer has the same diff_id: only the framing differs.
  (cd "$repo_root/examples" && "$bazelw" build //app:image) || return 1
  local plain chunked
  plain=$(jq -r '.rootfs.diff_ids[0]' "$(lazy_bin image.config.json)")
  chunked=$(jq -r '.rootfs.diff_ids[0]' "$(lazy_bin image_zstd_chunked.config.json)")
  [[ $chunked == "sha256:$(sha256sum <"$work/zstd-chunked.tar" | cut -d' ' -f1)" && $chunked == "$plain" ]] ||
    { echo "zstd:chunked diff_id $chunked, tar's, gzip image's $plain differ" >&2; return 1; }
  ! "$LAZY_VERIFIER" zstd-chunked "$blob" "sha256:$(printf x | sha256sum | cut -d' ' -f1)" "$(ann manifest-position)" "$(ann tarsplit-position)" "$work/zstd-chunked.tar" 2>/dev/null
}

# The bytes do not depend on the compression thread count.
lazy_same_bytes_any_threads() {
  local t digests=()
  for t in 1 2 0; do
    (cd "$repo_root/examples" && "$bazelw" build --@rules_image//rules:compress_threads=$t //app:image_estargz //app:image_zstd_chunked) || return 1
    digests+=("$(cat "$(lazy_bin image_estargz.digest)") $(cat "$(lazy_bin image_zstd_chunked.digest)")")
    echo "threads $t: ${digests[-1]}"
  done
  [[ ${digests[0]} == "${digests[1]}" && ${digests[1]} == "${digests[2]}" ]]
}

lazy_push() {
  local name
  for name in estargz zstd_chunked zstd_chunked_v2; do
    (cd "$repo_root/examples" && "$bazelw" run "//app:push_$name" -- --registry "$(lazy_reg)") || return 1
  done
}

# lazy_podman STORE [OPTIONS] -- PODMAN_ARGS...: podman in bazelw's rootfs on a store of its
# own (/tmp/rules-image-lazy-STORE there), partial pulls on; OPTIONS are more pull_options.
lazy_podman() {
  local store=$1 extra=; shift
  [[ $1 != -- ]] && { extra=", $1"; shift; }
  shift
  local dir=/tmp/rules-image-lazy-$store
  if [[ ! -f $lazy_rootfs$dir/storage.conf ]]; then
    mkdir -p "$lazy_rootfs$dir"
    cat >"$lazy_rootfs$dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$dir/graph"
runroot = "$dir/run"
[storage.options]
pull_options = {enable_partial_images = "true", use_hard_links = "false"$extra}
EOF
  fi
  in_rootfs env CONTAINERS_STORAGE_CONF="$dir/storage.conf" podman "$@"
}
lazy_podman_reset() {
  local s
  for s in "$@"; do
    [[ -d $lazy_rootfs/tmp/rules-image-lazy-$s ]] || continue
    lazy_podman "$s" -- system reset --force >/dev/null 2>&1
    rm -rf "${lazy_rootfs:?}/tmp/rules-image-lazy-$s"
  done
}

# The registry's access log: bytes it sent for BLOB in 206 (range) and 200 (whole) replies.
lazy_served() {
  local blob=$1 status=$2
  grep -F "/blobs/$blob HTTP" "$registry_root/plain/log" | grep -F '"GET ' |
    awk -v s="$status" '$9 == s { n += $10 } END { print n + 0 }'
}

# podman pulls the zstd:chunked image partially (its differ reads our TOC: "Retrieved partial
# blob", every blob request a range), runs it, and its image ID is our config's digest.
lazy_podman_zstd_chunked() {
  lazy_push || return 1
  lazy_podman_reset zc
  local ref blob log=$work/podman-zc.log
  ref=$(lazy_reg)/rules-image-example/app:zstd-chunked; blob=$(lazy_layer image_zstd_chunked | jq -r .digest)
  lazy_podman zc -- pull --log-level=debug --tls-verify=false "$ref" >"$log" 2>&1 || { tail -20 "$log" >&2; return 1; }
  grep -F 'Created zstd:chunked differ' "$log" && grep -F "Retrieved partial blob $blob" "$log" ||
    { echo "podman did not pull $blob partially" >&2; grep -iE 'differ|partial' "$log" >&2; return 1; }
  echo "registry sent $(lazy_served "$blob" 206) bytes in ranges, $(lazy_served "$blob" 200) whole, of $(lazy_layer image_zstd_chunked | jq .size)"
  (($(lazy_served "$blob" 200) == 0 && $(lazy_served "$blob" 206) > 0)) || return 1
  local out id
  out=$(lazy_podman zc -- run --rm --network none "$ref") || return 1
  echo "$out"; grep -qx 'Hello, container!' <<<"$out" || return 1
  id=$(lazy_podman zc -- image inspect --format '{{.Id}}' "$ref") || return 1
  [[ $id == "$(sha256sum <"$(lazy_bin image_zstd_chunked.config.json)" | cut -d' ' -f1)" ]] ||
    { echo "podman image id $id is not the config's digest" >&2; return 1; }
}

# Lazy pulling proper: with :image_zstd_chunked in the store, :image_zstd_chunked_v2 (the same
# binary and one new file, in a layer of its own) costs only its TOC and the new file's frame.
lazy_podman_fetches_only_new_files() {
  local ref blob size sent
  ref=$(lazy_reg)/rules-image-example/app:zstd-chunked-v2; blob=$(lazy_layer image_zstd_chunked_v2 | jq -r .digest)
  size=$(lazy_layer image_zstd_chunked_v2 | jq .size)
  lazy_podman zc -- pull --log-level=debug --tls-verify=false "$ref" >"$work/podman-zc2.log" 2>&1 || { tail -20 "$work/podman-zc2.log" >&2; return 1; }
  grep -qF "Retrieved partial blob $blob" "$work/podman-zc2.log" || { echo "not a partial pull" >&2; return 1; }
  sent=$(lazy_served "$blob" 206)
  echo "v2's layer: $size bytes; the registry sent $sent ($((100 * sent / size))%)"
  ((sent * 10 < size)) || { echo "podman fetched more than a tenth of the layer" >&2; return 1; }
  # The frame it did fetch holds the new file's bytes.
  local cid notice
  cid=$(lazy_podman zc -- create "$ref") || return 1
  notice=$(lazy_podman zc -- cp "$cid:/app/NOTICE" - | tar -xO) || return 1
  lazy_podman zc -- rm "$cid" >/dev/null
  [[ $notice == "$(cat "$repo_root/examples/app/message_v2.txt")" ]] || { echo "/app/NOTICE differs: $notice" >&2; return 1; }
  lazy_podman zc -- run --rm --network none "$ref" | grep -qx 'Hello, container!'
}

# eStargz in podman: by default a whole pull (containers/storage will not pull eStargz
# partially without a tar-split), and the image runs; with its insecure opt-in, a partial
# pull through our TOC, and the image runs too.
lazy_podman_estargz() {
  lazy_push || return 1
  lazy_podman_reset es es-insecure
  local ref blob; ref=$(lazy_reg)/rules-image-example/app:estargz; blob=$(lazy_layer image_estargz | jq -r .digest)
  lazy_podman es -- pull --log-level=debug --tls-verify=false "$ref" >"$work/podman-es.log" 2>&1 || { tail -20 "$work/podman-es.log" >&2; return 1; }
  grep -F "Could not create estargz differ" "$work/podman-es.log" | sed 's/.*msg=//'
  lazy_podman es -- run --rm --network none "$ref" | grep -qx 'Hello, container!' || return 1
  [[ $(lazy_podman es -- image inspect --format '{{.Id}}' "$ref") == "$(sha256sum <"$(lazy_bin image_estargz.config.json)" | cut -d' ' -f1)" ]] || return 1
  lazy_podman es-insecure 'insecure_allow_unpredictable_image_contents = "true"' -- pull --log-level=debug --tls-verify=false "$ref" >"$work/podman-es2.log" 2>&1 ||
    { tail -20 "$work/podman-es2.log" >&2; return 1; }
  grep -F 'Created eStargz differ' "$work/podman-es2.log" && grep -qF "Retrieved partial blob $blob" "$work/podman-es2.log" || return 1
  lazy_podman es-insecure -- run --rm --network none "$ref" | grep -qx 'Hello, container!'
}

# Engines that know neither format read both as ordinary layers: containerd 2 pulls both from
# the registry and runs them; Docker (20.10 here, which pulls no zstd layers at all) pulls and
# runs the eStargz image.
lazy_engines_run() {
  lazy_push || return 1
  ensure_containerd || return 1
  local tag ref
  for tag in estargz zstd-chunked; do
    ref=$(lazy_reg)/rules-image-example/app:$tag
    ctr_e2e -n lazy images rm "$ref" >/dev/null 2>&1
    ctr_e2e -n lazy images pull --plain-http "$ref" >/dev/null || { echo "containerd cannot pull $tag" >&2; return 1; }
    ctr_run_prints lazy "$ref" 'built by Bazel, shipped by rules_image' || { echo "$tag does not run in containerd" >&2; return 1; }
  done
  ref=$(lazy_reg)/rules-image-example/app:estargz
  docker rmi -f "$ref" >/dev/null 2>&1
  docker pull -q "$ref" >/dev/null && docker run --rm --network none "$ref" | grep -qx 'Hello, container!' ||
    { echo "the eStargz image does not run in Docker" >&2; return 1; }
  echo "estargz: runs in Docker"
}

lazy_shutdown() {
  lazy_podman_reset zc es es-insecure
  local tag
  docker rmi -f "$(lazy_reg)/rules-image-example/app:estargz" >/dev/null 2>&1
  return 0
}

# The verifier fails when it should: reference blobs of the formats' own writers pass, and
# corrupt ones (a flipped byte, a wrong digest, a different tar) fail.
lazy_verifier_selftest() { bash "$repo_root/e2e/lazy_pull/selftest.sh"; }

lazy_checks=(
  "lazy pull: verify_lazy passes the reference writers' blobs and rejects corrupted ones|lazy_verifier_selftest"
  "lazy pull: the eStargz layer verifies with the estargz library (TOC digest, every chunk, the tar's files)|lazy_estargz_verifies"
  "lazy pull: the zstd:chunked layer verifies (TOC, frames, tar-split rebuilds the tar); diff_id unchanged|lazy_zstd_chunked_verifies"
  "lazy pull: same eStargz and zstd:chunked bytes with 1, 2 and every compression thread|lazy_same_bytes_any_threads"
  "lazy pull: podman pulls zstd:chunked partially (ranges only), runs it; image id = config digest|lazy_podman_zstd_chunked"
  "lazy pull: podman then fetches only the new file of a second zstd:chunked image|lazy_podman_fetches_only_new_files"
  "lazy pull: podman pulls eStargz whole by default, partially with its insecure opt-in; both run|lazy_podman_estargz"
  "lazy pull: containerd 2 pulls and runs both, Docker the eStargz one|lazy_engines_run"
)
