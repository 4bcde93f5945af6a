#!/usr/bin/env bash
# Self-test of verify_lazy: reference blobs from stargz-snapshotter's writers (and
# containers/storage's zstd:chunked writer) pass; a flipped byte in a file's compressed chunk,
# a wrong TOC digest or manifest checksum, and a tar that differs each fail.
#   e2e/lazy_pull/selftest.sh [-k]   (-k: keep the work directory)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
source "$repo_root/benchmarks/peer_tools.sh"
source "$here/tools.sh"

keep=false
[[ ${1:-} == -k ]] && keep=true
work=$(mktemp -d /tmp/lazy_pull_selftest.XXXXXX)
$keep || trap 'rm -rf "$work"' EXIT

ensure_lazy_verifier || exit 1
ensure_lazy_cs_writer || exit 1
v=$LAZY_VERIFIER
failures=0
echo "Debian packages: $(lazy_verifier_versions | paste -sd, - | sed 's/,/, /g')"

# expect_ok WHAT CMD...: CMD succeeds; its summary is shown.
expect_ok() {
  local what=$1; shift
  local out
  if out=$("$@" 2>&1); then
    echo "ok: $what"; sed 's/^/    /' <<<"$out"
  else
    echo "FAIL: $what: should pass"; sed 's/^/    /' <<<"$out"; failures=$((failures + 1))
  fi
}

# expect_fail WHAT PATTERN CMD...: CMD exits non-zero, saying PATTERN (an ERE).
expect_fail() {
  local what=$1 pattern=$2; shift 2
  local out
  if out=$("$@" 2>&1); then
    echo "FAIL: $what: should fail"; sed 's/^/    /' <<<"$out"; failures=$((failures + 1))
  elif ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "FAIL: $what: failed without saying /$pattern/"; sed 's/^/    /' <<<"$out"; failures=$((failures + 1))
  else
    echo "ok: $what fails"; grep -E 'FAIL|note' <<<"$out" | sed 's/^/    /'
  fi
}

# flip_in_chunk BLOB TOC_JSON FILE OUT: OUT is BLOB with one byte flipped in the middle of the
# compressed bytes of FILE's second chunk (its first if it has one).
flip_in_chunk() {
  local blob=$1 toc=$2 file=$3 out=$4 start end
  start=$(jq --arg f "$file" '[.entries[] | select(.name == $f and (.type == "chunk" or .type == "reg"))
    | select(.offset > 0)] | (if length > 1 then .[1] else .[0] end) | .offset' "$toc")
  end=$(jq --argjson s "$start" '[.entries[] | select(.offset > $s) | .offset] | min' "$toc")
  [[ $start =~ ^[0-9]+$ && $end =~ ^[0-9]+$ ]] || { echo "no chunk of $file in $toc" >&2; return 1; }
  python3 - "$blob" "$out" $(((start + end) / 2)) <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); i = int(sys.argv[3]); b[i] ^= 0x55
open(sys.argv[2], 'wb').write(b)
EOF
  echo "    (flipped byte $(((start + end) / 2)) of $file's chunk at [$start,$end))"
}

# A sample layer: the root and nested directories, a symlink, a hard link, an empty file, a
# 9 MiB file (3 chunks of 4 MiB in eStargz, a run of zeros), an xattr, a long name, setuid, a fifo, a
# sub-second mtime and a zero one, owners with names.
python3 - "$work/sample.tar" <<'EOF'
import io, random, sys, tarfile
rnd = random.Random(42)
def add(tf, name, typ=tarfile.REGTYPE, data=b'', mode=0o644, mtime=1700000000, linkname='',
        uid=0, gid=0, uname='root', gname='root', pax=None):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.linkname = typ, mode, mtime, linkname
    ti.uid, ti.gid, ti.uname, ti.gname = uid, gid, uname, gname
    ti.pax_headers = pax or {}
    ti.size = len(data) if typ == tarfile.REGTYPE else 0
    tf.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as tf:
    add(tf, './', tarfile.DIRTYPE, mode=0o755)
    add(tf, 'etc/', tarfile.DIRTYPE, mode=0o755)
    add(tf, 'etc/hostname', data=b'sample\n')
    add(tf, 'etc/empty')
    add(tf, 'etc/xattr.conf', data=b'has an xattr\n', pax={'SCHILY.xattr.user.comment': 'hello'})
    add(tf, 'etc/subsecond', data=b'mtime has a fraction\n', pax={'mtime': '1700000000.25'})
    add(tf, 'usr/', tarfile.DIRTYPE, mode=0o755, mtime=0)
    add(tf, 'usr/bin/', tarfile.DIRTYPE, mode=0o755)
    big = rnd.randbytes(3 << 20) + bytes(1 << 20) + b'A' * (2 << 20) + rnd.randbytes(3 << 20)
    add(tf, 'usr/bin/big', data=big, mode=0o755, uid=1000, gid=1000, uname='user', gname='user')
    add(tf, 'usr/bin/big-link', tarfile.LNKTYPE, linkname='usr/bin/big')
    add(tf, 'usr/bin/sh', tarfile.SYMTYPE, mode=0o777, linkname='big')
    add(tf, 'usr/bin/setuid', data=b'#!/bin/sh\n', mode=0o4755)
    add(tf, 'usr/share/doc/' + 'long-name-' * 12 + '.txt', data=b'a name past 100 bytes\n')
    add(tf, 'run/', tarfile.DIRTYPE, mode=0o755)
    add(tf, 'run/fifo', tarfile.FIFOTYPE, mode=0o600)
EOF
echo "sample layer: $(tar -tvf "$work/sample.tar" | wc -l) entries, $(stat -c %s "$work/sample.tar") bytes"

# --- eStargz, from estargz.Build.
cd "$work" || exit 1
"$v" make-estargz sample.tar e.blob > e.json || exit 1
echo "make-estargz: $(jq -c .annotations e.json)"
etoc=$(jq -r '.annotations["containerd.io/snapshot/stargz/toc.digest"]' e.json)
gzip -dc e.blob > e.tar && tar -xOf e.tar stargz.index.json > e.toc.json || exit 1
expect_ok "estargz: the library's blob" "$v" estargz e.blob "$etoc" e.tar
[[ $(jq -r '.annotations["io.containers.estargz.uncompressed-size"]' e.json) == $(stat -c %s e.tar) ]] &&
  echo "ok: uncompressed-size is the gunzipped size" || { echo "FAIL: uncompressed-size"; failures=$((failures + 1)); }
flip_in_chunk e.blob e.toc.json usr/bin/big e.bad.blob &&
  expect_fail "estargz: a flipped byte in usr/bin/big's 2nd chunk" 'usr/bin/big' "$v" estargz e.bad.blob "$etoc" e.tar
expect_fail "estargz: a wrong TOC digest" 'annotation says' \
  "$v" estargz e.blob "sha256:$(printf x | sha256sum | cut -d' ' -f1)" e.tar
python3 - e.tar e.other.tar <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read(); i = b.index(b'sample\n'); open(sys.argv[2], 'wb').write(b[:i] + b'Sample\n' + b[i+7:])
EOF
expect_fail "estargz: a tar whose etc/hostname differs" 'etc/hostname' "$v" estargz e.blob "$etoc" e.other.tar

# --- zstd:chunked, from estargz.Build with zstdchunked.Compressor (40-byte footer, no tar-split).
"$v" make-zstd-chunked sample.tar z.blob > z.json || exit 1
echo "make-zstd-chunked: $(jq -c .annotations z.json)"
zsum=$(jq -r '.annotations["io.containers.zstd-chunked.manifest-checksum"]' z.json)
zpos=$(jq -r '.annotations["io.containers.zstd-chunked.manifest-position"]' z.json)
zstd -qdc z.blob > z.tar && "$v" layout z.blob z.toc.json > z.layout || exit 1
expect_ok "zstd-chunked: the library's blob" "$v" zstd-chunked z.blob "$zsum" "$zpos" - z.tar
flip_in_chunk z.blob z.toc.json usr/bin/big z.bad.blob &&
  expect_fail "zstd-chunked: a flipped byte in usr/bin/big's 2nd chunk" 'usr/bin/big' "$v" zstd-chunked z.bad.blob "$zsum" "$zpos" - z.tar
expect_fail "zstd-chunked: a wrong manifest checksum" 'annotation says' \
  "$v" zstd-chunked z.blob "sha256:$(printf x | sha256sum | cut -d' ' -f1)" "$zpos" - z.tar
python3 - z.tar z.other.tar <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read(); i = b.index(b'sample\n'); open(sys.argv[2], 'wb').write(b[:i] + b'Sample\n' + b[i+7:])
EOF
expect_fail "zstd-chunked: a tar whose etc/hostname differs" 'etc/hostname' "$v" zstd-chunked z.blob "$zsum" "$zpos" - z.other.tar

# --- zstd:chunked, from containers/storage's writer (64-byte footer, tar-split).
"$LAZY_CS_WRITER" sample.tar c.blob > c.json || exit 1
echo "containers/storage: $(jq -c .annotations c.json)"
csum=$(jq -r '.annotations["io.github.containers.zstd-chunked.manifest-checksum"]' c.json)
cpos=$(jq -r '.annotations["io.github.containers.zstd-chunked.manifest-position"]' c.json)
ctpos=$(jq -r '.annotations["io.github.containers.zstd-chunked.tarsplit-position"]' c.json)
zstd -qdc c.blob > c.tar && "$v" layout c.blob c.toc.json > c.layout || exit 1
cmp -s c.tar sample.tar && echo "ok: containers/storage's blob decompresses to the sample tar" ||
  { echo "FAIL: containers/storage's blob does not decompress to the sample tar"; failures=$((failures + 1)); }
expect_ok "zstd-chunked: containers/storage's blob" "$v" zstd-chunked c.blob "$csum" "$cpos" "$ctpos" c.tar
flip_in_chunk c.blob c.toc.json usr/bin/big c.bad.blob &&
  expect_fail "zstd-chunked: a flipped byte in usr/bin/big's 2nd chunk (containers/storage)" 'usr/bin/big' \
    "$v" zstd-chunked c.bad.blob "$csum" "$cpos" "$ctpos" c.tar
expect_fail "zstd-chunked: a wrong manifest checksum (containers/storage)" 'annotation says' \
  "$v" zstd-chunked c.blob "sha256:$(printf x | sha256sum | cut -d' ' -f1)" "$cpos" "$ctpos" c.tar
expect_fail "zstd-chunked: without the tar-split position the TOC asks for" 'tar-split offset' \
  "$v" zstd-chunked c.blob "$csum" "$cpos" - c.tar
python3 - c.tar c.other.tar <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read(); i = b.index(b'sample\n'); open(sys.argv[2], 'wb').write(b[:i] + b'Sample\n' + b[i+7:])
EOF
expect_fail "zstd-chunked: a tar whose etc/hostname differs (containers/storage)" 'etc/hostname' \
  "$v" zstd-chunked c.blob "$csum" "$cpos" "$ctpos" c.other.tar
# Only a header field the TOC does not record (etc/hostname's owner name): tar-split catches it.
python3 - c.tar c.uname.tar <<'EOF'
import sys, tarfile
b = bytearray(open(sys.argv[1], 'rb').read())
h = next(m for m in tarfile.open(sys.argv[1]) if m.name == 'etc/hostname').offset
b[h+265:h+297] = b'toor'.ljust(32, b'\0'); b[h+148:h+156] = b' ' * 8
b[h+148:h+156] = b'%06o\0 ' % sum(b[h:h+512])
open(sys.argv[2], 'wb').write(b)
EOF
expect_fail "zstd-chunked: a tar that differs only in etc/hostname's uname" 'rebuilt from the tar-split' \
  "$v" zstd-chunked c.blob "$csum" "$cpos" "$ctpos" c.uname.tar
head -c -1024 c.tar > c.short.tar
expect_fail "zstd-chunked: a tar without its end-of-archive" 'goes on past the end' \
  "$v" zstd-chunked c.blob "$csum" "$cpos" "$ctpos" c.short.tar

$keep && echo "work directory: $work"
if ((failures)); then echo "selftest: $failures FAILED"; exit 1; fi
echo "selftest: all passed"
