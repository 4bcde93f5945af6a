# Remote cache and remote execution on a real REAPI engine: BuildGrid on loopback
# (e2e/remote/buildgrid.sh), Bazel in output bases of this suite's own.
#
# What is checked:
# - remote cache (examples//app:image, --remote_download_minimal): a clean client builds the
#   image from the cache alone without downloading any layer blob; the manifest action's
#   inputs are layer metadata, never blobs; the digest is the local build's.
# - remote execution (--remote_executor, cached results refused so every action runs on the
#   worker): the layer, import, manifest and index actions of three workspaces run remotely
#   and give the digests of a local build.
# - push and load from the CAS (--@rules_image//rules:remote_cache): the minimal client pushes
#   examples//app:image to a loopback registry and loads it into Docker with the layer read
#   from BuildGrid, never written to its disk; skopeo copies the pushed image back, verifying
#   every digest; image_test's file assertions read the layer from the CAS too; and after remote
#   execution, a clean minimal client pushes a two-platform index from the CAS.

source "$repo_root/e2e/remote/buildgrid.sh"

remote_port=${REMOTE_E2E_PORT:-50061}
remote_ob() { echo "$work/remote/output_base"; }
remote_flags=()

remote_setup() {
  remote_flags=(--remote_cache="grpc://127.0.0.1:$remote_port" --remote_download_minimal)
  registry_up || return 1
  (cd "$repo_root/examples" && "$bazelw" build //app:image) || return 1
  # PostgreSQL runs as its own user, whose data dir is under $work: it must get through.
  chmod o+x "$work" || return 1
  buildgrid_start "$work/remote" "$remote_port"
}

# bazel in examples/ on the remote suite's own output base.
remote_bazel() { (cd "$repo_root/examples" && "$bazelw" --output_base="$(remote_ob)" "$@"); }

# remote_exec_log NAME: the execution log of run NAME, as one JSON array.
remote_exec_log() { jq -s . "$work/remote/$1.exec.json"; }

# No layer blob under the remote output base's bazel-out.
remote_no_blob_on_client() {
  local blobs
  blobs=$(find -L "$(remote_ob)/execroot/_main/bazel-out" \( -name '*.tar.gz' -o -name '*.tar.zst' \) 2>/dev/null)
  [[ -z $blobs ]] || { echo "layer blobs on the client: $blobs" >&2; return 1; }
}

# A cold build fills the cache (the actions run here); its digest is the ordinary build's.
# It builds the push and load targets too, as a CI machine that fills a team's cache would:
# their actions that read layer bytes (the SBOM the push attaches) are then cache hits for a
# client, which needs no blob for them.
remote_cache_fill() {
  remote_bazel build "${remote_flags[@]}" "$(remote_cas_flag)" --execution_log_json_file="$work/remote/cold.exec.json" \
    --remote_grpc_log="$work/remote/cold.grpc" //app:image //app:push //app:load || return 1
  local want got
  want=$(cat "$repo_root/examples/bazel-bin/app/image.digest")
  got=$(cat "$(remote_ob)/execroot/_main/bazel-out/k8-fastbuild/bin/app/image.digest") || return 1
  [[ $got == "$want" ]] || { echo "remote-cache build gave $got, the ordinary build $want" >&2; return 1; }
  echo "digest $got; cold build, to the CAS:"
  python3 "$repo_root/e2e/remote/grpc_log_bytes.py" "$work/remote/cold.grpc"
}

# After `bazel clean`, every action is a cache hit, and with --remote_download_minimal no layer
# blob reaches the client; the manifest action's inputs are the layer's metadata, not its blob.
remote_cache_minimal_no_blobs() {
  remote_bazel clean || return 1
  remote_bazel build "${remote_flags[@]}" --execution_log_json_file="$work/remote/warm.exec.json" \
    --remote_grpc_log="$work/remote/warm.grpc" //app:image || return 1
  local log; log=$(remote_exec_log warm)
  jq -r '.[] | "\(.mnemonic): \(.runner), cache hit \(.cacheHit)"' <<<"$log"
  jq -e 'length > 0 and all(.[]; .cacheHit == true)' <<<"$log" >/dev/null || { echo "not every action was a cache hit" >&2; return 1; }
  remote_no_blob_on_client || return 1
  # The manifest action's inputs, from the cold build (where it ran): metadata, no blob.
  local inputs; inputs=$(remote_exec_log cold | jq -r '.[] | select(.mnemonic == "ImageManifest") | .inputs[].path')
  [[ -n $inputs ]] || { echo "no ImageManifest action in the log" >&2; return 1; }
  echo "ImageManifest inputs:"; sed 's/^/  /' <<<"$inputs"
  ! grep -E '\.tar(\.gz|\.zst)?$' <<<"$inputs" || { echo "the manifest action reads a layer blob" >&2; return 1; }
  echo "warm build after clean, from the CAS:"
  python3 "$repo_root/e2e/remote/grpc_log_bytes.py" "$work/remote/warm.grpc"
}

# --remote_download_toplevel brings the image's own files (manifest, config, digest), still
# no layer blob; the digest is the ordinary build's.
remote_cache_toplevel() {
  remote_bazel build --remote_cache="grpc://127.0.0.1:$remote_port" --remote_download_toplevel //app:image || return 1
  local bin; bin="$(remote_ob)/execroot/_main/bazel-out/k8-fastbuild/bin/app"
  [[ $(cat "$bin/image.digest") == "$(cat "$repo_root/examples/bazel-bin/app/image.digest")" ]] || return 1
  [[ ! -e $bin/app_layer.tar.gz ]] || { echo "the layer blob was downloaded" >&2; return 1; }
  echo "image.digest $(cat "$bin/image.digest"), no app_layer.tar.gz on the client"
}

# The workspaces of the remote execution checks: examples/ itself, or a copy of an e2e
# workspace pointing at this checkout (both placeholder conventions of theirs).
remote_exec_ws() {
  [[ $1 == examples ]] && { echo "$repo_root/examples"; return 0; }
  local ws="$work/remote/ws-$1"
  if [[ ! -d $ws ]]; then
    cp -r "$repo_root/e2e/$1" "$ws" && rm -f "$ws/checks.sh" &&
      sed -i -e "s|@RULES_IMAGE_PATH@|$repo_root|" -e "s|path = \"../..\"|path = \"$repo_root\"|" "$ws/MODULE.bazel" ||
      return 1
  fi
  echo "$ws"
}
remote_exec_output_bases=()

# remote_exec_same_digest WORKSPACE TARGET: TARGET built with remote execution, every action
# run on the worker (--noremote_accept_cached), has the digest of a local build; every image
# action (Image* mnemonics) ran remotely.
remote_exec_same_digest() {
  local name=$1 target=$2 ws
  ws=$(remote_exec_ws "$name") || return 1
  local ob="$work/remote/ob-exec-$name" log="$work/remote/exec-$name.exec.json"
  local pkg=${target#//}; pkg=${pkg%%:*}
  local digest_file="${pkg:+$pkg/}${target##*:}.digest"
  remote_exec_output_bases+=("$ws|$ob")
  (cd "$ws" && "$bazelw" build "$target") || return 1
  (cd "$ws" && "$bazelw" --output_base="$ob" build --remote_executor="grpc://127.0.0.1:$remote_port" \
    --remote_download_toplevel --noremote_accept_cached --execution_log_json_file="$log" "$target") || return 1
  local want got
  want=$(cat "$ws/bazel-bin/$digest_file") || return 1
  got=$(cat "$ob/execroot/_main/bazel-out/k8-fastbuild/bin/$digest_file") || return 1
  echo "actions (mnemonic runner):"
  jq -s -r '[.[] | "\(.mnemonic) \(.runner)"] | group_by(.) | .[] | "  \(length) \(.[0])"' "$log"
  jq -s -e '[.[] | select(.mnemonic | startswith("Image"))] | length > 0 and all(.[]; .runner == "remote")' \
    "$log" >/dev/null || { echo "an image action did not run on the remote worker" >&2; return 1; }
  [[ $got == "$want" ]] || { echo "remote execution gave $got, the local build $want" >&2; return 1; }
  echo "$target: $got, the local build's"
}

remote_cas_flag() { echo "--@rules_image//rules:remote_cache=grpc://127.0.0.1:$remote_port"; }

# `bazel run //app:push` on the --remote_download_minimal client with the remote_cache build
# setting: the push's runfiles name no blob, the layer is streamed from the CAS into the
# registry, skopeo copies the image back (verifying each digest), and the client's output base
# still holds no layer blob.
remote_push_from_cas() {
  local reg="127.0.0.1:$reg_port_plain" summary="$work/remote/push-cas.json"
  remote_bazel build "${remote_flags[@]}" "$(remote_cas_flag)" //app:push || return 1
  local manifest; manifest="$(remote_ob)/execroot/_main/bazel-out/k8-fastbuild/bin/app/push.sh.runfiles_manifest"
  [[ -s $manifest ]] || { echo "no runfiles manifest at $manifest" >&2; return 1; }
  ! grep -E '\.tar(\.gz|\.zst)? ' "$manifest" || { echo "a layer blob is a runfile of //app:push" >&2; return 1; }
  remote_bazel run "${remote_flags[@]}" "$(remote_cas_flag)" //app:push -- \
    --registry "$reg" --repository remote/cas --tag from-cas --summary-json "$summary" || return 1
  local want; want=$(cat "$repo_root/examples/bazel-bin/app/image.digest")
  jq . "$summary"
  [[ $(jq -r .digest "$summary") == "$want" ]] || { echo "pushed $(jq -r .digest "$summary"), want $want" >&2; return 1; }
  local layer_size; layer_size=$(jq '.layers[0].size' "$repo_root/examples/bazel-bin/app/image.manifest.json")
  jq -e --argjson n "$layer_size" '[.destinations[].bytes_uploaded] | add >= $n' "$summary" >/dev/null ||
    { echo "the layer ($layer_size bytes) was not uploaded" >&2; return 1; }
  rm -rf "$work/remote/pulled"
  skopeo copy -q --src-tls-verify=false "docker://$reg/remote/cas:from-cas" "oci:$work/remote/pulled:x" || return 1
  [[ $(jq -r '.manifests[0].digest' "$work/remote/pulled/index.json") == "$want" ]] || return 1
  remote_no_blob_on_client || return 1
  echo "pushed $want from the CAS; skopeo copied it back; no layer blob on the client"
}

# `bazel run //app:load` the same way: Docker gets the image with the layer read from the CAS,
# and runs it.
remote_load_from_cas() {
  docker rmi -f rules-image-example/app:latest >/dev/null 2>&1
  remote_bazel run "${remote_flags[@]}" "$(remote_cas_flag)" //app:load || return 1
  local out; out=$(docker run --rm --network none rules-image-example/app:latest) || return 1
  echo "$out"
  [[ $out == *"Hello, container!"* ]] || return 1
  remote_no_blob_on_client
}

# `bazel test //app:image_test` the same way: its file assertions read the layer from the CAS
# (the test ran, not a cached result), and the client still holds no layer blob.
remote_test_from_cas() {
  remote_bazel test "${remote_flags[@]}" "$(remote_cas_flag)" --test_output=errors \
    --execution_log_json_file="$work/remote/test.exec.json" //app:image_test || return 1
  jq -s -e 'any(.[]; .mnemonic == "TestRunner" and .cacheHit == false and .runner != "remote cache hit")' \
    "$work/remote/test.exec.json" >/dev/null || { echo "image_test did not run (a cached result?)" >&2; return 1; }
  echo "image_test ran and passed"
  remote_no_blob_on_client
}

# `bazel run //:push` of multiplatform's two-platform index on a clean --remote_download_minimal
# client of the remote executor (after its remote execution check): every image's layers are
# streamed from the CAS; skopeo copies the whole index back, verifying each digest; no layer
# blob reaches the client.
remote_push_index_from_cas() {
  local ws ob="$work/remote/ob-exec-multiplatform" reg="127.0.0.1:$reg_port_plain"
  local summary="$work/remote/push-index.json" pulled="$work/remote/pulled-index"
  ws=$(remote_exec_ws multiplatform) || return 1
  [[ -d $ob ]] || { echo "runs after the remote execution check of multiplatform" >&2; return 1; }
  local flags=(--remote_executor="grpc://127.0.0.1:$remote_port" --remote_download_minimal "$(remote_cas_flag)")
  # The index's digest, which remote_exec_same_digest found equal to the local build's.
  local want; want=$(cat "$ob/execroot/_main/bazel-out/k8-fastbuild/bin/index.digest") || return 1
  (cd "$ws" && "$bazelw" --output_base="$ob" clean) || return 1
  (cd "$ws" && "$bazelw" --output_base="$ob" run "${flags[@]}" //:push -- \
    --registry "$reg" --repository remote/index --tag from-cas --summary-json "$summary") || return 1
  [[ $(jq -r .digest "$summary") == "$want" ]] || { echo "pushed $(jq -r .digest "$summary"), want $want" >&2; return 1; }
  rm -rf "$pulled"
  skopeo copy -q --all --src-tls-verify=false "docker://$reg/remote/index:from-cas" "oci:$pulled:x" || return 1
  [[ $(jq -r '.manifests[0].digest' "$pulled/index.json") == "$want" ]] || { echo "skopeo copied another digest" >&2; return 1; }
  local blobs
  blobs=$(find -L "$ob/execroot/_main/bazel-out" \( -name '*.tar.gz' -o -name '*.tar.zst' \) 2>/dev/null)
  [[ -z $blobs ]] || { echo "layer blobs on the client: $blobs" >&2; return 1; }
  echo "pushed index $want from the CAS; skopeo copied it back (--all); no layer blob on the client"
}

remote_shutdown() {
  [[ -d $(remote_ob) ]] && remote_bazel shutdown >/dev/null 2>&1
  local e
  for e in "${remote_exec_output_bases[@]}"; do
    [[ -d ${e#*|} ]] && (cd "${e%%|*}" && "$bazelw" --output_base="${e#*|}" shutdown) >/dev/null 2>&1
    [[ ${e%%|*} == "$work"/* ]] && (cd "${e%%|*}" && "$bazelw" shutdown) >/dev/null 2>&1
  done
  buildgrid_stop
  return 0
}

remote_checks=(
  "remote cache (BuildGrid): a cold build fills it; same digest as the ordinary build|remote_cache_fill"
  "remote cache: after clean, all cache hits, no layer blob on the client; the manifest action reads no blob|remote_cache_minimal_no_blobs"
  "remote cache: --remote_download_toplevel brings the image files, not the layer blob|remote_cache_toplevel"
  "remote cache: bazel run //app:push streams the layer from the CAS (no blob runfile, none on the client); skopeo verifies|remote_push_from_cas"
  "remote cache: bazel run //app:load streams the layer from the CAS into Docker; the image runs|remote_load_from_cas"
  "remote cache: bazel test //app:image_test reads the layer from the CAS; no blob on the client|remote_test_from_cas"
  "remote execution: examples//app:image (cc, layer, manifest) on the worker, the local digest|remote_exec_same_digest examples //app:image"
  "remote execution: consumer //:image (genrules, layer_from_tar, metadata) on the worker, the local digest|remote_exec_same_digest consumer //:image"
  "remote execution: multiplatform //:index (two platforms' layers and manifests, the index) on the worker, the local digest|remote_exec_same_digest multiplatform //:index"
  "remote execution: bazel run //:push of that index on a clean minimal client streams every layer from the CAS; skopeo verifies|remote_push_index_from_cas"
)
