#!/usr/bin/env bash
# Builds a release of rules_image: the tool's binaries for every platform this machine can
# build, a lock file pinning them (URL + sha256), the module's source archive with that lock file
# in place of the empty one on main, and a Bazel Central Registry entry for the version.
#
#   tools/release.sh --url-base URL [--out DIR] [--version V] [--rev REV]
#
#   --url-base  where the binaries will be downloadable from, e.g.
#               https://github.com/OWNER/rules_image/releases/download/v0.1.0 (or file:///dir
#               for a local test: e2e/checks.sh's released_module_consumer does that)
#   --out       output directory (default dist/); it is emptied first
#   --version   release version (default: MODULE.bazel's); MODULE.bazel must say the same
#   --rev       git revision to archive (default HEAD; the work tree must then be clean)
#
# Output, in --out:
#   rules-image-tool-vV-<triple>       one binary per platform that could be built
#   prebuilt.lock.json                 every platform of rules/private/repo/tool_repos.bzl's
#                                      PLATFORMS: {urls, sha256}, or null where none was built
#   rules_image-vV.tar.gz              `git archive` of REV + the lock file, byte-reproducible
#   bcr/modules/rules_image/V/...      MODULE.bazel, source.json (integrity), presubmit.yml and
#                                      metadata.json, rendered from .bcr/*.template.json: a
#                                      registry usable with --registry=file://DIR/bcr
#
# Linux binaries are linked against glibc 2.17 (via cargo-zigbuild and Zig's glibc stubs), so
# they run on any glibc distribution of the last ten years; the script checks the symbol
# versions. Needs: cargo (rustup), `pip install ziglang`, `cargo install cargo-zigbuild`.
# aarch64 Linux needs `rustup target add aarch64-unknown-linux-gnu`; macOS binaries are built
# only on a Mac. Platforms that cannot be built here are listed as null in the lock file and
# reported; consumers on them get an error naming the platform (or build from source).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
out=$repo/dist url_base= version= rev=HEAD
while (($#)); do
  case $1 in
    --url-base) url_base=${2%/}; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --rev) rev=$2; shift 2 ;;
    *) echo "release.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "release.sh: error: $*" >&2; exit 1; }
log() { echo "release.sh: $*" >&2; }
[[ -n $url_base ]] || die "--url-base is required (where the binaries will be published)"

cd "$repo"
module_version=$(git show "$rev:MODULE.bazel" | sed -n 's/^ *version = "\(.*\)",$/\1/p' | head -1)
version=${version:-$module_version}
[[ $version == "$module_version" ]] || die "MODULE.bazel at $rev says version $module_version, not $version"
if [[ $rev == HEAD && -n $(git status --porcelain --untracked-files=no) ]]; then
  die "the work tree has uncommitted changes: commit them or pass --rev"
fi
# The Rust toolchain the project pins (bazelw, tools/bazel/rust.bzl).
rust_version=$(sed -n 's/^rust_version=\(.*\)$/\1/p' bazelw)
# Every platform a lock file may name, in tool_repos.bzl's order.
mapfile -t platforms < <(sed -n '/^PLATFORMS = {/,/^}/s/^ *"\([^"]*\)": \[.*/\1/p' rules/private/repo/tool_repos.bzl)
((${#platforms[@]} >= 4)) || die "cannot read PLATFORMS from rules/private/repo/tool_repos.bzl"

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd -P)
src=$out/.src
mkdir -p "$src"
git archive --format=tar "$rev" | tar -x -C "$src"
target_dir=${RELEASE_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rules_image/release-target}
installed_targets=$(rustup "+$rust_version" target list --installed 2>/dev/null || true)

# The newest glibc symbol version a binary needs.
max_glibc() {
  objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1
}

# Builds one platform's binary into $out; prints nothing and returns 1 when it cannot here.
build_platform() {
  local triple=$1 cargo_target built
  case $triple in
    *-linux-gnu)
      command -v cargo-zigbuild >/dev/null || { log "$triple: skipped: no cargo-zigbuild (cargo install cargo-zigbuild)"; return 1; }
      python3 -c 'import ziglang' 2>/dev/null || command -v zig >/dev/null ||
        { log "$triple: skipped: no Zig (pip install ziglang)"; return 1; }
      grep -qx "$triple" <<<"$installed_targets" ||
        { log "$triple: skipped: no Rust standard library for it (rustup +$rust_version target add $triple)"; return 1; }
      cargo_target=$triple.2.17
      # Registry sources appear in panic locations: the same path on every machine.
      export RUSTFLAGS="--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
      log "$triple: cargo zigbuild (glibc 2.17)"
      cargo "+$rust_version" zigbuild -q --release --locked --manifest-path "$src/tools/Cargo.toml" \
        --target "$cargo_target" --target-dir "$target_dir" >&2
      ;;
    *-apple-darwin)
      [[ $(uname -s) == Darwin ]] || { log "$triple: skipped: macOS binaries are built on a Mac"; return 1; }
      grep -qx "$triple" <<<"$installed_targets" ||
        { log "$triple: skipped: rustup +$rust_version target add $triple"; return 1; }
      cargo_target=$triple
      MACOSX_DEPLOYMENT_TARGET=11.0 cargo "+$rust_version" build -q --release --locked \
        --manifest-path "$src/tools/Cargo.toml" --target "$cargo_target" --target-dir "$target_dir" >&2
      ;;
    *) log "$triple: skipped: unknown kind of platform"; return 1 ;;
  esac
  built=$target_dir/$triple/release/rules-image-tool
  cp "$built" "$out/rules-image-tool-v$version-$triple"
  if [[ $triple == *-linux-gnu ]]; then
    local glibc
    glibc=$(max_glibc "$out/rules-image-tool-v$version-$triple")
    [[ $(printf '%s\n2.17\n' "$glibc" | sort -V | tail -1) == 2.17 ]] ||
      die "$triple: the binary needs glibc $glibc, more than 2.17"
    log "$triple: needs glibc >= $glibc"
  fi
  # Runs here if it is this machine's platform.
  if [[ $triple == "$(uname -m)-unknown-linux-gnu" ]]; then
    "$out/rules-image-tool-v$version-$triple" --version >&2 || die "$triple: the binary does not run here"
  fi
}

lock_entries=()
for triple in "${platforms[@]}"; do
  if build_platform "$triple"; then
    sha=$(sha256sum "$out/rules-image-tool-v$version-$triple" | cut -d' ' -f1)
    lock_entries+=("$triple" "$url_base/rules-image-tool-v$version-$triple" "$sha")
  else
    lock_entries+=("$triple" "" "")
  fi
done
python3 - "$version" "$out/prebuilt.lock.json" "${lock_entries[@]}" <<'EOF'
import json, sys
version, path, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
binaries = {}
for i in range(0, len(rest), 3):
    triple, url, sha = rest[i:i + 3]
    binaries[triple] = {"urls": [url], "sha256": sha} if url else None
lock = {
    "comment": "rules-image-tool binaries of this release, pinned by sha256 (tools/release.sh); null: none for that platform.",
    "version": version,
    "binaries": binaries,
}
with open(path, "w") as f:
    json.dump(lock, f, indent=2)
    f.write("\n")
EOF
[[ -n $(jq -r '.binaries | to_entries[] | select(.value != null) | .key' "$out/prebuilt.lock.json") ]] ||
  die "no binary could be built on this machine"

# The module archive: REV's files, the lock file in place, times and owners fixed to the
# commit's, so that the same REV and binaries give the same archive (BCR pins its sha256).
prefix=rules_image-v$version
cp "$out/prebuilt.lock.json" "$src/tools/prebuilt.lock.json"
mv "$src" "$out/$prefix"
commit_time=$(git log -1 --format=%ct "$rev")
tar -C "$out" --sort=name --mtime="@$commit_time" --owner=0 --group=0 --numeric-owner \
  --mode='u+rw,go-w,a+rX' --format=pax --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
  -cf - "$prefix" | gzip -n -9 >"$out/$prefix.tar.gz"
integrity="sha256-$(openssl dgst -sha256 -binary "$out/$prefix.tar.gz" | base64 -w0)"

# The BCR entry, rendered from the templates that the Publish to BCR app reads as well.
bcr=$out/bcr/modules/rules_image
mkdir -p "$bcr/$version"
cp "$out/$prefix/MODULE.bazel" "$bcr/$version/MODULE.bazel"
cp "$out/$prefix/.bcr/presubmit.yml" "$bcr/$version/presubmit.yml"
jq --arg url "$url_base/$prefix.tar.gz" --arg integrity "$integrity" --arg prefix "$prefix" \
  '.url = $url | .integrity = $integrity | .strip_prefix = $prefix' \
  "$out/$prefix/.bcr/source.template.json" >"$bcr/$version/source.json"
jq --arg v "$version" '.versions = [$v]' "$out/$prefix/.bcr/metadata.template.json" >"$bcr/metadata.json"
echo '{"mirrors": [], "module_base_path": ""}' >"$out/bcr/bazel_registry.json"
rm -rf "${out:?}/$prefix"

log "wrote $out:"
(cd "$out" && find . -type f | sort | sed 's/^\.\//  /') >&2
jq -r '.binaries | to_entries[] | "  \(.key): \(if .value then .value.sha256 else "none" end)"' "$out/prebuilt.lock.json" >&2
