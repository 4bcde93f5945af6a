#!/usr/bin/env python3
"""Makes a benchmark tree of about SIZE_MIB: many small files and a few large ones.

Content is real bytes from /usr (binaries, libraries, text) so compression behaves as on real
layers. usage: make_tree.py DIR SIZE_MIB
"""
import os
import pathlib
import sys

out, size = pathlib.Path(sys.argv[1]), int(sys.argv[2]) * 1024 * 1024


def corpus():
    """Yields chunks of real files from /usr, cycling forever."""
    while True:
        for root, _dirs, names in os.walk("/usr"):
            for name in sorted(names):
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read(8 << 20)
                except OSError:
                    continue
                if data:
                    yield data


chunks = corpus()
written = 0
# Two thirds in 4 large files, one third in small files of 1-64 KiB.
large_total = size * 2 // 3
for i in range(4):
    target = large_total // 4
    path = out / "large" / f"blob{i}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        n = 0
        while n < target:
            data = next(chunks)[: target - n]
            f.write(data)
            n += len(data)
    written += target
i = 0
while written < size:
    data = next(chunks)
    for start in range(0, len(data), 48 * 1024):
        piece = data[start : start + 1024 + (i * 7919) % (63 * 1024)]
        path = out / "small" / f"d{i // 500:03d}" / f"f{i:06d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(piece)
        if i % 3 == 0:
            path.chmod(0o755)
        written += len(piece)
        i += 1
        if written >= size:
            break
