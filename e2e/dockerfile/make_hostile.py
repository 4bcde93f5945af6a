#!/usr/bin/env python3
"""Writes a corpus of hostile `docker save` tarballs for the importer's e2e check.

Each case is a well-formed docker-save archive (manifest.json, config with the right diff_ids)
whose single layer holds one hostile entry, or whose outer archive itself is hostile. Prints
one line per case: `<name>\t<text the importer's error must contain>`.

    make_hostile.py OUT_DIR [--only NAME]
"""

import hashlib
import io
import json
import sys
import tarfile


def entry(name, kind=tarfile.REGTYPE, data=b"", linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    info.mtime = 0
    info.linkname = linkname
    if kind == tarfile.REGTYPE:
        info.size = len(data)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, data)
    return buf.getvalue()


def docker_save(layer, outer_extra=()):
    """A legacy docker-save archive with one layer; `outer_extra` adds raw outer entries."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hostile"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{
        "Config": config_name,
        "RepoTags": ["hostile:latest"],
        "Layers": ["layer0/layer.tar"],
    }]).encode()
    outer = [
        entry(config_name, data=config),
        entry("layer0/", kind=tarfile.DIRTYPE),
        entry("layer0/layer.tar", data=layer),
        entry("manifest.json", data=manifest),
    ]
    return tar_bytes(list(outer) + list(outer_extra))


def file(name, data=b"x"):
    return entry(name, data=data)


CASES = {
    # name: (layer entries, expected error text, outer extra entries)
    "absolute": ([file("/etc/passwd")], "absolute path", ()),
    "escape": ([file("../../etc/passwd")], 'path contains ".."', ()),
    "hardlink_escape": (
        [entry("app/shadow", tarfile.LNKTYPE, linkname="../../etc/shadow")],
        'hard link to "../../etc/shadow" leads outside the root', ()),
    "symlink_escape": (
        [entry("app/", tarfile.DIRTYPE), entry("app/etc", tarfile.SYMTYPE, linkname="../../../etc")],
        'symbolic link to "../../../etc" leads outside the root', ()),
    "through_symlink": (
        [entry("x", tarfile.SYMTYPE, linkname="/etc"), file("x/passwd")],
        'path goes through the symbolic link "x"', ()),
    "char_device": ([entry("dev/null", tarfile.CHRTYPE)], "character device node is not allowed", ()),
    "block_device": ([entry("dev/sda", tarfile.BLKTYPE)], "block device node is not allowed", ()),
    "duplicate": ([file("a", b"1"), file("./a", b"2")], "duplicate entry", ()),
    "outer_escape": ([file("ok")], '"../evil"', [file("../evil")]),
}


def main():
    out = sys.argv[1]
    only = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--only" else None
    for name, (layer_entries, expected, outer_extra) in CASES.items():
        if only and name != only:
            continue
        with open("%s/%s.tar" % (out, name), "wb") as f:
            f.write(docker_save(tar_bytes(layer_entries), outer_extra))
        print("%s\t%s" % (name, expected))


if __name__ == "__main__":
    main()
