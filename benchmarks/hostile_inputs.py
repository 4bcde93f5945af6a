#!/usr/bin/env python3
"""Builds the hostile import inputs of the hardening issue (and an ordinary control), streaming:
nothing large is held in memory. Needs the zstd command.

usage: hostile_inputs.py OUT_DIR [CONTROL_MIB]

  row3.tar.zst   OCI tar whose first entry is a 1 GiB GNU long name (`L`)
  row4.tar.zst   OCI layout whose layer has a 1 GiB pax xattr record
  row5.tar.zst   128 x 8 MiB zero files under blobs/junk/ (and no index.json)
  row7/          OCI layout directory whose layer blob is a symlink to ../row7-outside
  row12.tar      Docker <= 24 save; a repeated layer is `layer.tar -> ../<first>/layer.tar`
  spool.tar      OCI layout whose zstd layer decompresses to 2 GiB of zeros
  control.tar    OCI layout with one ~CONTROL_MIB uncompressed layer of real bytes
"""
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

GIB = 1 << 30
MIB = 1 << 20
CHUNK = 4 * MIB


def header(name, size, flag=b"0", link=b"", gnu=False):
    """A 512-byte ustar (or GNU) header."""
    h = bytearray(512)
    name = name.encode() if isinstance(name, str) else name
    h[0 : len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    h[136:148] = b"00000000000\0"
    h[156:157] = flag
    h[157 : 157 + len(link)] = link
    h[257:265] = b"ustar  \0" if gnu else b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(n):
    return b"\0" * (-n % 512)


def repeat(out, byte, n):
    block = byte * CHUNK
    while n:
        k = min(n, CHUNK)
        out.write(block[:k])
        n -= k


class Zstd:
    """A file written through `zstd` (level 3, one thread)."""

    def __init__(self, path):
        self.p = subprocess.Popen(["zstd", "-q", "-f", "-3", "-T1", "-o", str(path)], stdin=subprocess.PIPE)

    def write(self, b):
        self.p.stdin.write(b)

    def close(self):
        self.p.stdin.close()
        if self.p.wait() != 0:
            sys.exit("zstd failed")


class Hashing:
    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        self.f.write(b)


def file_entry(out, name, data):
    out.write(header(name, len(data)) + data + pad(len(data)))


def end(out):
    out.write(b"\0" * 1024)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(CHUNK):
            h.update(b)
    return h.hexdigest(), os.path.getsize(path)


def desc(mt, digest, size):
    return {"mediaType": mt, "digest": "sha256:" + digest, "size": size}


def layout_dir(d, layers):
    """An OCI layout in directory d: layers is [(blob_path, media_type, diff_id)], blobs moved in."""
    blobs = d / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (d / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    descs = []
    for path, mt, diff_id in layers:
        digest, size = sha256_file(path)
        shutil.move(str(path), blobs / digest)
        descs.append(desc(mt, digest, size))
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + l[2] for l in layers]}}).encode()
    cd = hashlib.sha256(cfg).hexdigest()
    (blobs / cd).write_bytes(cfg)
    m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": desc("application/vnd.oci.image.config.v1+json", cd, len(cfg)), "layers": descs}).encode()
    md = hashlib.sha256(m).hexdigest()
    (blobs / md).write_bytes(m)
    (d / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc("application/vnd.oci.image.manifest.v1+json", md, len(m))]}))


def tar_tree(d, out):
    """A tar of directory d (entries relative to it; symlinks kept), streamed to out."""
    for root, dirs, files in os.walk(d):
        dirs.sort()
        for name in sorted(files) + [x for x in dirs if os.path.islink(os.path.join(root, x))]:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, d)
            if os.path.islink(p):
                out.write(header(rel, 0, b"2", os.readlink(p).encode()))
                continue
            size = os.path.getsize(p)
            out.write(header(rel, size))
            with open(p, "rb") as f:
                while b := f.read(CHUNK):
                    out.write(b)
            out.write(pad(size))
    end(out)


def tar_dir_to(d, path, zstd=False):
    f = Zstd(path) if zstd else open(path, "wb")
    tar_tree(d, f)
    f.close()


def main():
    out = pathlib.Path(sys.argv[1])
    control_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    out.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(dir=out))

    # Row 3: a 1 GiB GNU long name.
    z = Zstd(out / "row3.tar.zst")
    z.write(header("././@LongLink", GIB, b"L", gnu=True))
    repeat(z, b"a", GIB)
    file_entry(z, "index.json", b"{}")
    end(z)
    z.close()

    # Row 4: a layer with a 1 GiB pax xattr record, in a valid layout.
    layer = tmp / "row4-layer"
    z = Zstd(layer)
    h = Hashing(z)
    body_len = len(" SCHILY.xattr.user.big=\n") + GIB
    n = body_len + len(str(body_len))
    n = body_len + len(str(n))
    h.write(header("./PaxHeaders/f", n, b"x"))
    h.write(f"{n} SCHILY.xattr.user.big=".encode())
    repeat(h, b"v", GIB)
    h.write(b"\n" + pad(n))
    file_entry(h, "f", b"x")
    end(h)
    z.close()
    d = tmp / "row4"
    layout_dir(d, [(layer, "application/vnd.oci.image.layer.v1.tar+zstd", h.h.hexdigest())])
    tar_dir_to(d, out / "row4.tar.zst", zstd=True)

    # Row 5: 1 GiB of zero files under blobs/junk/.
    z = Zstd(out / "row5.tar.zst")
    file_entry(z, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    for i in range(128):
        z.write(header(f"blobs/junk/{i:03d}", 8 * MIB))
        repeat(z, b"\0", 8 * MIB)
    end(z)
    z.close()

    # Row 7: a layout directory whose layer blob is a symlink to a file outside it.
    layer_tar = io.BytesIO()
    file_entry(layer_tar, "etc/motd", b"hello\n")
    end(layer_tar)
    data = layer_tar.getvalue()
    (tmp / "l7").write_bytes(data)
    d = out / "row7"
    shutil.rmtree(d, ignore_errors=True)
    layout_dir(d, [(tmp / "l7", "application/vnd.oci.image.layer.v1.tar", hashlib.sha256(data).hexdigest())])
    blob = d / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()
    shutil.move(str(blob), out / "row7-outside")
    os.symlink(os.path.abspath(out / "row7-outside"), blob)

    # Row 12: Docker <= 24 save with a repeated layer linked to its first copy.
    d = tmp / "row12"
    d.mkdir()
    la, lb = io.BytesIO(), io.BytesIO()
    file_entry(la, "a", b"a\n")
    end(la)
    file_entry(lb, "b", b"b\n")
    end(lb)
    la, lb = la.getvalue(), lb.getvalue()
    ids = [hashlib.sha256(f"v1 id {i}".encode()).hexdigest() for i in range(3)]
    for i, data in enumerate([la, lb, None]):
        (d / ids[i]).mkdir()
        (d / ids[i] / "VERSION").write_text("1.0")
        (d / ids[i] / "json").write_text(json.dumps({"id": ids[i]}))
        if data is None:
            os.symlink(f"../{ids[0]}/layer.tar", d / ids[i] / "layer.tar")
        else:
            (d / ids[i] / "layer.tar").write_bytes(data)
    diff = [hashlib.sha256(x).hexdigest() for x in (la, lb, la)]
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + x for x in diff]}}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    (d / cfg_name).write_bytes(cfg)
    (d / "manifest.json").write_text(json.dumps([{"Config": cfg_name, "RepoTags": ["app:1"], "Layers": [f"{i}/layer.tar" for i in ids]}]))
    (d / "repositories").write_text("{}")
    tar_dir_to(d, out / "row12.tar")

    # The spool: a zstd layer of 2 GiB of zeros, in a layout tar.
    layer = tmp / "spool-layer"
    z = Zstd(layer)
    h = Hashing(z)
    h.write(header("zeros", 2 * GIB))
    repeat(h, b"\0", 2 * GIB)
    end(h)
    z.close()
    d = tmp / "spool"
    layout_dir(d, [(layer, "application/vnd.oci.image.layer.v1.tar+zstd", h.h.hexdigest())])
    tar_dir_to(d, out / "spool.tar")

    # Control: an ordinary ~1 GiB layer of real bytes.
    tree = tmp / "tree"
    subprocess.run([sys.executable, str(pathlib.Path(__file__).parent / "make_tree.py"), str(tree), str(control_mib)], check=True)
    layer = tmp / "control-layer"
    with open(layer, "wb") as f:
        h = Hashing(f)
        tar_tree(tree, h)
    shutil.rmtree(tree)
    d = tmp / "control"
    layout_dir(d, [(layer, "application/vnd.oci.image.layer.v1.tar", h.h.hexdigest())])
    tar_dir_to(d, out / "control.tar")

    shutil.rmtree(tmp)


main()
