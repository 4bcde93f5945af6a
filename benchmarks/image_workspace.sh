# Sourced by benchmarks/incremental.sh, push.sh and remote.sh: the benchmark image's
# workspace and a loopback registry to push it to.

# image_workspace WS SIZE_MIB MODULE REGISTRY REPOSITORY: a workspace at WS (using this
# checkout, $repo) whose //:image has four data layers of about SIZE_MIB/4 MiB of real bytes
# each (benchmarks/make_tree.py) and a small app layer of main.txt, and //:push pushes it to
# REGISTRY/REPOSITORY:latest.
image_workspace() {
  local ws=$1 size_mib=$2 module=$3 registry=$4 repository=$5 tree i=0
  tree=$(mktemp -d "$ws.tree.XXXXXX")
  mkdir -p "$ws"
  python3 "$repo/benchmarks/make_tree.py" "$tree" "$size_mib" >/dev/null
  while read -r f; do
    mkdir -p "$ws/data$((i % 4))"
    mv "$f" "$ws/data$((i % 4))/"
    i=$((i + 1))
  done < <(find "$tree" -type f | sort)
  rm -rf "$tree"
  echo "v1" >"$ws/main.txt"
  cat >"$ws/MODULE.bazel" <<MODULE
module(name = "$module")

bazel_dep(name = "rules_image", version = "0.1.0")
local_path_override(module_name = "rules_image", path = "$repo")
MODULE
  {
    echo 'load("@rules_image//rules:defs.bzl", "image_layer", "image_manifest", "image_push")'
    for d in 0 1 2 3; do
      printf 'filegroup(name = "files%d", srcs = glob(["data%d/**"]))\n' "$d" "$d"
      printf 'image_layer(name = "data%d", srcs = {"/data": ":files%d"})\n' "$d" "$d"
    done
    cat <<BUILD
image_layer(name = "app", srcs = {"/app/main.txt": "main.txt"})
image_manifest(name = "image", layers = [":data0", ":data1", ":data2", ":data3", ":app"])
image_push(name = "push", image = ":image", registry = "$registry", repository = "$repository", tag = "latest")
BUILD
  } >"$ws/BUILD.bazel"
}

# registry_serve DIR PORT: distribution's registry on 127.0.0.1:PORT with its storage in DIR,
# in the background (its pid appended to the caller's `pids`), once it answers.
registry_serve() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:%s}\n' \
    "$dir" "$port" >"$dir.yml"
  docker-registry serve "$dir.yml" >"$dir.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "the registry on port $port did not answer (see $dir.log)" >&2
  return 1
}
