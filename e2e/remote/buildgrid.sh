# A real REAPI engine on loopback for the remote cache and remote execution checks: BuildGrid
# (PyPI) serving CAS, ByteStream, ActionCache, Execution and Bots on 127.0.0.1:PORT (config:
# e2e/remote/buildgrid.yml), its scheduler's PostgreSQL (BuildGrid's Execution service takes no
# other database), and one buildbox-worker running actions with buildbox-run-hosttools.
# Sourced after e2e/lib.sh (answers_within), not executed.
#
#   buildgrid_start WORKDIR PORT   installs what is missing, starts the three, waits until the
#                                  server answers and the worker has a bot session; logs,
#                                  storage and pid files under WORKDIR
#   buildgrid_stop                 stops what buildgrid_start started (by pid), waits for them
#
# Why each piece comes from where it does:
# - BuildGrid 0.9.1 needs Python >= 3.13 (this machine's /usr/bin/python3 is 3.11): the venv is
#   made with the first of BUILDGRID_PYTHON, python3.13/python3.14 on PATH, pyenv's 3.13+.
# - BuildGrid has no bot of its own since 0.2 ("bgd bot" was removed; its docs point to
#   buildbox-worker). buildbox (C++) is packaged only in Debian unstable (1.4.x), built against
#   unstable's glibc and gRPC, so the worker runs chrooted in a minimal unstable rootfs of its
#   own, provisioned once into the cache, in a private mount namespace (shares the network).
# - PostgreSQL is bookworm's, run as the postgres user on a Unix socket only (no TCP port).

buildgrid_version=0.9.1
buildgrid_cache=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}
buildgrid_venv=$buildgrid_cache/buildgrid-$buildgrid_version
# The worker's rootfs packages: buildbox, and the C toolchain that Bazel's autoconfigured cc
# toolchain names (/usr/bin/gcc, unstable's, as in bazelw's rootfs) for remote C/C++ actions.
buildbox_packages=(buildbox build-essential)
# Bump when buildbox_packages changes.
buildbox_rootfs=$buildgrid_cache/buildbox-rootfs-2
buildgrid_config=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/buildgrid.yml

buildgrid_say() { printf '\n=== %s\n' "$*" >&2; }

# A Python >= 3.13 for BuildGrid's venv.
buildgrid_python() {
  local p
  for p in ${BUILDGRID_PYTHON:-} python3.13 python3.14 "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3; do
    [[ -n $p ]] && command -v "$p" >/dev/null 2>&1 || continue
    "$p" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null && { command -v "$p"; return 0; }
  done
  echo "BuildGrid $buildgrid_version needs Python >= 3.13: none found (set BUILDGRID_PYTHON)" >&2
  return 1
}

ensure_buildgrid() {
  [[ -x $buildgrid_venv/bin/bgd ]] && return 0
  local python
  python=$(buildgrid_python) || return 1
  buildgrid_say "installing BuildGrid $buildgrid_version (PyPI) with $python into $buildgrid_venv"
  rm -rf "$buildgrid_venv" && "$python" -m venv "$buildgrid_venv" &&
    "$buildgrid_venv/bin/pip" install -q "buildgrid==$buildgrid_version" ||
    { rm -rf "$buildgrid_venv"; return 1; }
}

# PostgreSQL's server binaries (bookworm: 15).
buildgrid_pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [[ -x $d/postgres ]] && { echo "$d"; return 0; }; done
  return 1
}

ensure_buildgrid_postgres() {
  buildgrid_pg_bin >/dev/null && return 0
  buildgrid_say "installing postgresql"
  # The package would create and start a cluster of its own on port 5432: not wanted.
  mkdir -p /etc/postgresql-common
  [[ -f /etc/postgresql-common/createcluster.conf ]] ||
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# The worker's rootfs: Debian unstable, minbase, buildbox_packages. The archive is bazelw's.
ensure_buildbox_rootfs() {
  [[ -f $buildbox_rootfs/.done ]] && return 0
  command -v debootstrap >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  } || return 1
  local mirror tmp=$buildbox_rootfs.partial
  mirror=$(BAZELW_PRINT_DEBIAN_MIRROR=1 "$(dirname "$buildgrid_config")/../../bazelw") || return 1
  buildgrid_say "provisioning buildbox (Debian unstable) into $buildbox_rootfs (once)"
  rm -rf "$tmp" && mkdir -p "$tmp" || return 1
  unshare --mount --propagation private bash -euo pipefail -c '
    tmp=$1 mirror=$2; shift 2
    debootstrap --variant=minbase --include=ca-certificates sid "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
      { tail -20 "$tmp.log" >&2; exit 1; }
    cp /etc/resolv.conf "$tmp/etc/resolv.conf"
    echo "Acquire::Check-Valid-Until \"false\";" >"$tmp/etc/apt/apt.conf.d/99rules-image"
    mount -t proc proc "$tmp/proc"
    chroot "$tmp" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y -qq --no-install-recommends "$@" >>"$tmp.log" 2>&1 ||
      { tail -20 "$tmp.log" >&2; exit 1; }
    chroot "$tmp" apt-get clean
  ' _ "$tmp" "$mirror" "${buildbox_packages[@]}" || { rm -rf "$tmp"; return 1; }
  rm -f "$tmp.log"
  touch "$tmp/.done" && rm -rf "$buildbox_rootfs" && mv "$tmp" "$buildbox_rootfs"
}

# The last buildgrid_start's state directory (WORKDIR/buildgrid), for buildgrid_stop.
buildgrid_dir=


# buildgrid_start WORKDIR PORT
buildgrid_start() {
  local work=$1 port=$2
  [[ -n $work && $port =~ ^[0-9]+$ ]] || { echo "usage: buildgrid_start WORKDIR PORT" >&2; return 2; }
  ensure_buildgrid && ensure_buildgrid_postgres && ensure_buildbox_rootfs || return 1
  local dir pg_bin
  mkdir -p "$work" && dir=$(cd "$work" && pwd -P)/buildgrid || return 1
  pg_bin=$(buildgrid_pg_bin) || return 1
  rm -rf "$dir" && mkdir -p "$dir/pg" "$dir/cas" "$dir/worker" || return 1
  buildgrid_dir=$dir
  # PostgreSQL runs as postgres (it refuses root): it must reach its directory, so WORKDIR and
  # the state directory may be traversed (not listed) by others.
  chmod o+x "$work" "$dir" && chown postgres: "$dir/pg" || return 1
  local as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups)
  "${as_postgres[@]}" "$pg_bin/initdb" -D "$dir/pg/data" -U bgd -A trust -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1 || { tail -20 "$dir/initdb.log" >&2; return 1; }
  buildgrid_say "BuildGrid $buildgrid_version on 127.0.0.1:$port (state in $dir)"
  # Unix socket only; a throwaway database needs no durability.
  setsid "${as_postgres[@]}" "$pg_bin/postgres" -D "$dir/pg/data" -k "$dir/pg" -c listen_addresses= \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 \
    >"$dir/postgres.log" 2>&1 &
  echo $! >"$dir/postgres.pid"
  answers_within postgres "$dir/postgres.log" 30 "$pg_bin/pg_isready" -q -h "$dir/pg" -U bgd -d postgres || return 1
  "$pg_bin/createdb" -h "$dir/pg" -U bgd bgd && {
    "$buildgrid_venv/bin/bgd" migrate apply "postgresql+psycopg://bgd@/bgd?host=$dir/pg" >"$dir/migrate.log" 2>&1 ||
      { tail -20 "$dir/migrate.log" >&2; false; }
  } || return 1

  BUILDGRID_PORT=$port BUILDGRID_WORK=$dir setsid "$buildgrid_venv/bin/bgd" server start "$buildgrid_config" \
    >"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"
  answers_within "BuildGrid server" "$dir/server.log" 60 \
    "$buildgrid_venv/bin/bgd" capabilities --remote "http://127.0.0.1:$port" || return 1

  # The worker, chrooted in the buildbox rootfs (private mount namespace; the host's network).
  # It stages each action's inputs under $dir/worker (bind-mounted at the same path) and runs
  # the action's command there with buildbox-run-hosttools: no sandbox, the rootfs's tools.
  setsid unshare --mount --propagation private bash -c '
    rootfs=$1 dir=$2; shift 2
    mount --bind "$rootfs" "$rootfs" && mount -t proc proc "$rootfs/proc" && mount --rbind /dev "$rootfs/dev" &&
      mkdir -p "$rootfs$dir" && mount --bind "$dir" "$rootfs$dir" &&
      exec chroot "$rootfs" "$@"
  ' _ "$buildbox_rootfs" "$dir" /usr/bin/buildbox-worker \
    --bots-remote="http://127.0.0.1:$port" --cas-remote="http://127.0.0.1:$port" \
    --request-timeout=30 --concurrent-jobs="$(nproc)" \
    --platform OSFamily=linux --platform ISA=x86-64 \
    --buildbox-run=/usr/bin/buildbox-run-hosttools \
    --runner-arg=--disable-localcas --runner-arg=--workspace-path="$dir/worker" \
    rules-image-e2e-worker >"$dir/worker.log" 2>&1 &
  echo $! >"$dir/worker.pid"
  # The worker is ready when the server has its bot session.
  answers_within buildbox-worker "$dir/worker.log" 30 buildgrid_has_bot "$dir" || return 1
}

buildgrid_has_bot() {
  local pg_bin n
  pg_bin=$(buildgrid_pg_bin) || return 1
  n=$("$pg_bin/psql" -h "$1/pg" -U bgd -d bgd -tAc "select count(*) from bots") && ((n > 0))
}

# buildgrid_stop [WORKDIR]: stops the worker, the server and PostgreSQL of the last
# buildgrid_start (or of WORKDIR's), by their pids; waits up to 10 s for each, then kills it.
buildgrid_stop() {
  local dir=${1:+$1/buildgrid} name pid i
  dir=${dir:-$buildgrid_dir}
  [[ -n $dir && -d $dir ]] || return 0
  for name in worker server postgres; do
    pid=$(cat "$dir/$name.pid" 2>/dev/null) || continue
    [[ $pid =~ ^[0-9]+$ ]] || continue
    # postgres: SIGINT is its fast shutdown.
    if [[ $name == postgres ]]; then kill -INT "$pid" 2>/dev/null; else kill -TERM "$pid" 2>/dev/null; fi
    for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "$name ($pid) did not stop: killed" >&2; kill -KILL "$pid" 2>/dev/null; }
    wait "$pid" 2>/dev/null
    rm -f "$dir/$name.pid"
  done
  [[ $dir == "$buildgrid_dir" ]] && buildgrid_dir=
  return 0
}
