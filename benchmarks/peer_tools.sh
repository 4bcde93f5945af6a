# Peer tools from Debian unstable, sourced by benchmarks (to compare against) and e2e checks (to
# load into): each package downloaded once with apt inside bazelw's Debian unstable rootfs and
# unpacked into the cache. Their Go binaries are static enough to run on the host.
peer_cache=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/peer-tools

# peer_unpack NAME PROBE PKG...: the files of the packages under $peer_cache/NAME, unless
# $peer_cache/NAME/PROBE is there already.
peer_unpack() {
  local name=$1 probe=$2; shift 2
  [[ -e $peer_cache/$name/$probe ]] && return 0
  local rootfs=${RULES_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image}/rootfs
  [[ -d $rootfs ]] || { echo "no bazelw rootfs to fetch $* with (run ./bazelw once)" >&2; return 1; }
  local dl=/tmp/rules_image_peer_$name
  # apt's lists may be older than the archive: then it is asked again, once.
  unshare --mount --propagation private bash -c '
    rootfs=$1 dl=$2; shift 2
    mount -t proc proc "$rootfs/proc" && mount --rbind /dev "$rootfs/dev" &&
      chroot "$rootfs" bash -c "rm -rf $dl && mkdir -p $dl && cd $dl &&
        { apt-get download -q \"\$@\" >/dev/null 2>&1 || { apt-get update -qq && apt-get download -q \"\$@\" >/dev/null; }; }" _ "$@"
  ' _ "$rootfs" "$dl" "$@" || { echo "cannot download $*" >&2; return 1; }
  rm -rf "$peer_cache/$name"; mkdir -p "$peer_cache/$name"
  local deb
  for deb in "$rootfs$dl"/*.deb; do dpkg -x "$deb" "$peer_cache/$name" || return 1; done
  rm -rf "${rootfs:?}$dl"
  [[ -e $peer_cache/$name/$probe ]] || { echo "$* has no $probe" >&2; return 1; }
}

# crane (go-containerregistry) on PATH: from PATH if there, else Debian's.
ensure_crane() {
  command -v crane >/dev/null 2>&1 && return 0
  peer_unpack crane usr/bin/crane crane || return 1
  export PATH="$peer_cache/crane/usr/bin:$PATH"
}
