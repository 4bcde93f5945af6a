# Shared helpers for the e2e scripts: machine setup, a Docker engine, test bookkeeping and the
# suite runner (see run.sh). Sourced, not executed.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bazelw="$repo_root/bazelw"
# Everything a run makes goes here; removed at exit unless E2E_KEEP=1.
work=$(mktemp -d /tmp/rules_image_e2e.XXXXXX)

say() { printf '\n=== %s\n' "$*" >&2; }

# Debian packages the e2e checks use on the host (validators, Docker engine, debootstrap for bazelw).
# Python scripts that need a module run with Debian's /usr/bin/python3, which these packages serve.
host_packages=(
  docker.io skopeo umoci oci-image-tool python3-jsonschema
  golang-github-opencontainers-image-spec-dev debootstrap zstd pigz
  runc   # the runtime of the containerd checks' containers (bookworm's, as docker.io's)
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

# The validators of supply-chain outputs, from PyPI, pinned, in a virtualenv of their own in the
# cache (installed once): spdx-tools (pyspdxtools parses and validates SPDX documents:
# image_sbom) and in-toto-attestation (the in-toto Statement and SLSA provenance protobufs:
# image_provenance).
supply_chain_venv=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/supply-chain-tools-1
spdx_validate=$supply_chain_venv/bin/pyspdxtools
supply_chain_python=$supply_chain_venv/bin/python
ensure_supply_chain_tools() {
  [[ -x $spdx_validate && -x $supply_chain_python ]] && return 0
  say "installing spdx-tools 0.8.5 and in-toto-attestation 0.9.3 (PyPI) into $supply_chain_venv"
  rm -rf "$supply_chain_venv" && python3 -m venv "$supply_chain_venv" &&
    "$supply_chain_venv/bin/pip" install -q spdx-tools==0.8.5 in-toto-attestation==0.9.3 ||
    { rm -rf "$supply_chain_venv"; return 1; }
}

# validate_provenance FILE: parses FILE as an in-toto Statement v1 whose predicate is SLSA
# provenance v1, with the attestation framework's own protobufs (unknown fields are errors),
# and runs its validation.
validate_provenance() {
  "$supply_chain_python" - "$1" <<'EOF'
import json, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
doc = json.load(open(sys.argv[1]))
pb = json_format.ParseDict(doc, statement_pb2.Statement())
Statement.copy_from_pb(pb).validate()
assert pb.predicate_type == "https://slsa.dev/provenance/v1", pb.predicate_type
json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
print("valid in-toto statement, SLSA provenance v1: %d resolved dependencies" % len(doc["predicate"]["buildDefinition"]["resolvedDependencies"]))
EOF
}

# What tools/release.sh builds with: Zig (its glibc 2.17 stubs) from PyPI, cargo-zigbuild from
# crates.io; pinned, installed once.
ensure_release_tools() {
  python3 -c 'import ziglang' 2>/dev/null || { say "installing ziglang"; pip install -q ziglang==0.17.1 || return 1; }
  command -v cargo-zigbuild >/dev/null 2>&1 || [[ -x $HOME/.cargo/bin/cargo-zigbuild ]] ||
    { say "installing cargo-zigbuild"; cargo install -q --locked cargo-zigbuild --version 0.24.1 || return 1; }
}

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
  answers_within dockerd "$dir/dockerd.log" 30 docker info
}

stop_docker() { stop_started started_dockerd_pid; }

# answers_within NAME LOG SECONDS COMMAND...: waits for COMMAND to succeed; else LOG's end, an
# error.
answers_within() {
  local name=$1 log=$2 n=$(($3 * 2)) i; shift 3
  for ((i = 0; i < n; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  tail -20 "$log" >&2
  echo "$name did not answer within $((n / 2)) s (log: $log)" >&2
  return 1
}

# stop_started VAR: stops the daemon whose pid VAR holds (if we started one) and clears VAR.
stop_started() {
  local -n pid=$1
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}

# containerd 2 (Debian unstable's; bookworm has 1.6) for the containerd checks: its package
# unpacked into the peer-tools cache (benchmarks/peer_tools.sh), its binaries copied under
# $work so that `bazel run` in bazelw's rootfs (which sees /tmp) can run ctr. Its root, state
# and socket are under $work too, apart from the Docker engine's containerd, and it runs in a
# private mount namespace, so the snapshots it mounts never show on the host.
containerd_dir=$work/containerd
containerd_socket=$containerd_dir/containerd.sock
started_containerd_pid=
ensure_containerd() {
  [[ -n $started_containerd_pid ]] && return 0
  source "$repo_root/benchmarks/peer_tools.sh"
  peer_unpack containerd usr/bin/containerd containerd || return 1
  mkdir -p "$containerd_dir/bin"
  cp "$peer_cache"/containerd/usr/bin/{containerd,containerd-shim-runc-v2,ctr} "$containerd_dir/bin/" || return 1
  # Kubernetes' CRI and NRI are not needed to import and run images.
  cat >"$containerd_dir/config.toml" <<TOML
version = 3
root = "$containerd_dir/root"
state = "$containerd_dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"]
[grpc]
  address = "$containerd_socket"
[ttrpc]
  address = "$containerd_socket.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "$containerd_dir/opt"
[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = "$containerd_dir/opt/image-verifier/bin"
TOML
  say "starting containerd $("$containerd_dir/bin/containerd" --version | awk '{print $3}') (state in $containerd_dir)"
  # The shim is found on PATH; runc is the host's.
  PATH="$containerd_dir/bin:$PATH" setsid unshare --mount --propagation private \
    "$containerd_dir/bin/containerd" --config "$containerd_dir/config.toml" >"$containerd_dir/containerd.log" 2>&1 &
  started_containerd_pid=$!
  answers_within containerd "$containerd_dir/containerd.log" 30 ctr_e2e version
}

# ctr of that containerd.
ctr_e2e() { CONTAINERD_ADDRESS=$containerd_socket "$containerd_dir/bin/ctr" "$@"; }

stop_containerd() { stop_started started_containerd_pid; }

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

# A suite is a table of checks, an array <suite>_checks of "description|function [args...]"
# entries, with an optional <suite>_setup (run first; if it fails, that is one failed check and
# the suite's checks are skipped) and <suite>_shutdown (run by e2e_cleanup at exit).
# run_suite SUITE [FUNCTION...] runs the whole table, or the entries whose function is named.
suites_started=()
run_suite() {
  local suite=$1; shift
  local -n table="${suite}_checks"
  suites_started+=("$suite")
  if declare -F "${suite}_setup" >/dev/null; then
    say "$suite: setup"
    "${suite}_setup" || { check "$suite: setup" false; return 0; }
  fi
  local entry name fn w wanted
  for entry in "${table[@]}"; do
    name=${entry%%|*}; fn=${entry#*|}
    if (($# > 0)); then
      wanted=0
      for w in "$@"; do [[ ${fn%% *} == "$w" ]] && wanted=1; done
      ((wanted)) || continue
    fi
    say "$name"
    # shellcheck disable=SC2086
    check "$name" $fn
  done
}

# Stops what the suites started, the registries, and the containerd and Docker engine we
# started; removes $work.
e2e_cleanup() {
  local suite
  for suite in "${suites_started[@]}"; do
    declare -F "${suite}_shutdown" >/dev/null && "${suite}_shutdown"
  done
  declare -F registry_stop_all >/dev/null && registry_stop_all
  stop_containerd
  stop_docker
  if [[ ${E2E_KEEP:-} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

summary() {
  local n
  for n in "${failed_names[@]}"; do echo "failed: $n"; done
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

# Runs a command inside bazelw's Debian rootfs (where `bazel run` targets run), e.g. podman.
# This machine's cgroups are "hybrid" (v1 controllers and a v2 hierarchy at
# /sys/fs/cgroup/unified), which crun refuses; unmounted in this private namespace, crun sees
# plain cgroup v1 and podman can run containers.
in_rootfs() {
  local rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs
  unshare --mount --propagation private bash -c '
    rootfs=$1; shift
    mount --bind "$rootfs" "$rootfs" && mount -t proc proc "$rootfs/proc" && mount --rbind /dev "$rootfs/dev" &&
      mount --rbind /sys "$rootfs/sys" && mount --rbind /run "$rootfs/run" &&
      { ! mountpoint -q "$rootfs/sys/fs/cgroup/unified" || umount -l "$rootfs/sys/fs/cgroup/unified"; } &&
      exec chroot "$rootfs" env PODMAN_IGNORE_CGROUPSV1_WARNING=1 "$@"
  ' _ "$rootfs" "$@"
}
