# Peer tools the benchmarks compare against, sourced: `ensure_crane` puts crane (go-containerregistry,
# Debian unstable's package) on PATH: from PATH if there, else downloaded once with apt inside
# bazelw's Debian unstable rootfs and unpacked into the cache (a static-enough Go binary that
# runs on the host).
peer_cache=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/peer-tools
ensure_crane() {
  command -v crane >/dev/null 2>&1 && return 0
  if [[ ! -x $peer_cache/crane/usr/bin/crane ]]; then
    local rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs
    [[ -d $rootfs ]] || { echo "no bazelw rootfs to fetch crane with (run ./bazelw once)" >&2; return 1; }
    unshare --mount --propagation private bash -c '
      mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" &&
        chroot "$1" bash -c "rm -f /tmp/crane_*.deb && cd /tmp && apt-get download -q crane >/dev/null"
    ' _ "$rootfs" || { echo "cannot download crane" >&2; return 1; }
    mkdir -p "$peer_cache/crane"
    dpkg -x "$rootfs"/tmp/crane_*.deb "$peer_cache/crane"
  fi
  export PATH="$peer_cache/crane/usr/bin:$PATH"
}
