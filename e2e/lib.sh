# Shared helpers for the e2e scripts: machine setup, a Docker engine, and test bookkeeping.
# Sourced, not executed.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bazelw="$repo_root/bazelw"

say() { printf '\n=== %s\n' "$*" >&2; }

# Debian packages the e2e checks use on the host (validators, Docker engine, debootstrap for bazelw).
# Python scripts that need a module run with Debian's /usr/bin/python3, which these packages serve.
host_packages=(
  docker.io skopeo umoci oci-image-tool python3-jsonschema
  golang-github-opencontainers-image-spec-dev debootstrap zstd pigz
)

# Installs what is missing of the given Debian packages. Needs root and Debian's archive.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  say "installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_host_packages() { ensure_packages "${host_packages[@]}"; }

# Starts dockerd unless one answers already; sets started_dockerd_pid when we started it.
started_dockerd_pid=
ensure_docker() {
  docker info >/dev/null 2>&1 && return 0
  local dir=${RULES_IMAGE_DOCKERD_DIR:-/tmp/rules_image_dockerd}
  mkdir -p "$dir"
  say "starting dockerd (state in $dir)"
  setsid dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
    --data-root="$dir/data" --exec-root="$dir/exec" --pidfile="$dir/dockerd.pid" \
    >"$dir/dockerd.log" 2>&1 &
  started_dockerd_pid=$!
  local i
  for i in $(seq 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  tail -20 "$dir/dockerd.log" >&2
  echo "dockerd did not start" >&2
  return 1
}

stop_docker() {
  if [[ -n $started_dockerd_pid ]]; then
    kill "$started_dockerd_pid" 2>/dev/null || true
    wait "$started_dockerd_pid" 2>/dev/null || true
    started_dockerd_pid=
  fi
}

# Test bookkeeping: every check is `check "name" command...`; a summary line ends the run.
passed=0
failed=0
failed_names=()
check() {
  local name=$1; shift
  if "$@"; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "FAIL $name"
  fi
}

summary() {
  local n
  for n in "${failed_names[@]}"; do echo "failed: $n"; done
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

# Runs a command inside bazelw's Debian rootfs (where `bazel run` targets run), e.g. podman.
in_rootfs() {
  local rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs
  unshare --mount --propagation private bash -c '
    rootfs=$1; shift
    mount -t proc proc "$rootfs/proc" && mount --rbind /dev "$rootfs/dev" &&
      mount --rbind /sys "$rootfs/sys" && mount --rbind /run "$rootfs/run" && exec chroot "$rootfs" "$@"
  ' _ "$rootfs" "$@"
}
