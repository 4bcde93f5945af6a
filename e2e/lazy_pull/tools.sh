# The lazy-pull verifier (verify_lazy.go): Go from Debian unstable, built in GOPATH mode against
# Debian's packaged sources of stargz-snapshotter's estargz library and its dependencies.
# Sourced after benchmarks/peer_tools.sh (for peer_unpack and $peer_cache).

lazy_pull_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Everything the build reads: Go 1.27 (compiler, then the standard library's sources) and the
# -dev packages of estargz, estargz/zstdchunked, tar-split's asm and their imports.
lazy_verifier_packages=(
  golang-1.27-go golang-1.27-src
  golang-github-containerd-stargz-snapshotter-dev
  golang-github-klauspost-compress-dev golang-github-cespare-xxhash-v2-dev
  golang-github-opencontainers-go-digest-dev
  golang-github-vbatts-tar-split-dev
  golang-golang-x-sync-dev
)
# One file of each, to tell an unpacked set from an older, smaller one.
lazy_verifier_probes=(
  usr/lib/go-1.27/bin/go usr/share/go-1.27/src/archive/tar/reader.go
  usr/share/gocode/src/github.com/containerd/stargz-snapshotter/estargz/zstdchunked/zstdchunked.go
  usr/share/gocode/src/github.com/klauspost/compress/zstd/decoder.go
  usr/share/gocode/src/github.com/cespare/xxhash/v2/xxhash.go
  usr/share/gocode/src/github.com/opencontainers/go-digest/digest.go
  usr/share/gocode/src/github.com/vbatts/tar-split/tar/asm/assemble.go
  usr/share/gocode/src/golang.org/x/sync/errgroup/errgroup.go
)

# lazy_go DIR ARGS...: Debian's go, in GOPATH mode, on the sources unpacked in DIR.
lazy_go() {
  local dir=$1; shift
  env GO111MODULE=off GOROOT="$dir/usr/lib/go-1.27" GOPATH="$dir/usr/share/gocode" \
    GOCACHE="$dir/gocache" GOENV=off GOFLAGS= GOTOOLCHAIN=local GOPROXY=off GOTELEMETRY=off \
    CGO_ENABLED=0 "$dir/usr/lib/go-1.27/bin/go" "$@"
}

# ensure_lazy_verifier: $LAZY_VERIFIER is verify_lazy, built once per version of its source.
ensure_lazy_verifier() {
  local dir=$peer_cache/lazy-verifier src=$lazy_pull_dir/verify_lazy.go probe key
  peer_unpack lazy-verifier "${lazy_verifier_probes[0]}" "${lazy_verifier_packages[@]}" || return 1
  for probe in "${lazy_verifier_probes[@]}"; do
    [[ -e $dir/$probe ]] && continue
    rm -rf "$dir"
    peer_unpack lazy-verifier "${lazy_verifier_probes[0]}" "${lazy_verifier_packages[@]}" || return 1
    break
  done
  for probe in "${lazy_verifier_probes[@]}"; do
    [[ -e $dir/$probe ]] || { echo "lazy-verifier: no $probe in ${lazy_verifier_packages[*]}" >&2; return 1; }
  done
  key=$( { sha256sum < "$src"; printf '%s\n' "${lazy_verifier_packages[@]}"; } | sha256sum | cut -d' ' -f1)
  if [[ ! -x $dir/bin/verify_lazy || $(cat "$dir/bin/verify_lazy.key" 2>/dev/null) != "$key" ]]; then
    mkdir -p "$dir/bin" || return 1
    lazy_go "$dir" build -trimpath -o "$dir/bin/verify_lazy.$BASHPID" "$src" || {
      echo "lazy-verifier: cannot build $src" >&2; rm -f "$dir/bin/verify_lazy.$BASHPID"; return 1; }
    mv -f "$dir/bin/verify_lazy.$BASHPID" "$dir/bin/verify_lazy" && echo "$key" > "$dir/bin/verify_lazy.key" || return 1
  fi
  export LAZY_VERIFIER=$dir/bin/verify_lazy
}

# containers/storage's own zstd:chunked writer (containers_storage/make_zstd_chunked.go), for
# verify_lazy's self-test and for comparing layouts: it needs the packages above and these.
lazy_cs_writer_packages=(
  golang-github-containers-storage-dev
  golang-github-json-iterator-go-dev golang-github-modern-go-concurrent-dev golang-github-modern-go-reflect2-dev
  golang-github-klauspost-pgzip-dev golang-github-sirupsen-logrus-dev golang-github-ulikunitz-xz-dev
  golang-golang-x-sys-dev golang-github-moby-sys-dev golang-github-docker-go-units-dev
  golang-github-opencontainers-specs-dev
)

# ensure_lazy_cs_writer: $LAZY_CS_WRITER is make_zstd_chunked, built once per version of its source.
ensure_lazy_cs_writer() {
  ensure_lazy_verifier || return 1
  local dir=$peer_cache/lazy-verifier-cs go=$peer_cache/lazy-verifier src=$lazy_pull_dir/containers_storage/make_zstd_chunked.go key
  peer_unpack lazy-verifier-cs usr/share/gocode/src/go.podman.io/storage/pkg/chunked/compressor/compressor.go \
    "${lazy_cs_writer_packages[@]}" || return 1
  key=$( { sha256sum < "$src"; printf '%s\n' "${lazy_verifier_packages[@]}" "${lazy_cs_writer_packages[@]}"; } | sha256sum | cut -d' ' -f1)
  if [[ ! -x $dir/bin/make_zstd_chunked || $(cat "$dir/bin/make_zstd_chunked.key" 2>/dev/null) != "$key" ]]; then
    mkdir -p "$dir/bin" || return 1
    # Go and the shared packages from lazy-verifier, containers/storage and the rest from here.
    env GO111MODULE=off GOROOT="$go/usr/lib/go-1.27" GOPATH="$go/usr/share/gocode:$dir/usr/share/gocode" \
      GOCACHE="$go/gocache" GOENV=off GOFLAGS= GOTOOLCHAIN=local GOPROXY=off GOTELEMETRY=off CGO_ENABLED=0 \
      "$go/usr/lib/go-1.27/bin/go" build -trimpath -o "$dir/bin/make_zstd_chunked.$BASHPID" "$src" || {
      echo "lazy-verifier: cannot build $src" >&2; rm -f "$dir/bin/make_zstd_chunked.$BASHPID"; return 1; }
    mv -f "$dir/bin/make_zstd_chunked.$BASHPID" "$dir/bin/make_zstd_chunked" &&
      echo "$key" > "$dir/bin/make_zstd_chunked.key" || return 1
  fi
  export LAZY_CS_WRITER=$dir/bin/make_zstd_chunked
}

# lazy_verifier_versions: "package version" for each package unpacked (from its Debian changelog).
lazy_verifier_versions() {
  local d p
  for d in "$peer_cache/lazy-verifier" "$peer_cache/lazy-verifier-cs"; do
    for p in "$d"/usr/share/doc/*/changelog.Debian.gz; do
      [[ -e $p ]] || continue
      echo "$(basename "$(dirname "$p")") $(zcat "$p" | head -1 | sed 's/^[^(]*(\([^)]*\)).*/\1/')"
    done
  done
}
