#!/usr/bin/env python3
"""Helper of nix_layering.sh.

compare MAX R1 R2 P1 P2   prints the figures for rules_image plans R1 -> R2 and popularity
                          plans P1 -> P2 (nix-layers output JSON).
synth DIR                 writes two synthetic closures, v1.json and v2.json (the shape of
                          `nix path-info -r --json` from Nix >= 2.19), and prints the
                          nix_layering.sh arguments for them.
"""
import hashlib
import json
import os
import random
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def shared(v1, v2):
    """(shared bytes, total bytes) of v2's layers; shared = same path set as a v1 layer."""
    old = {frozenset(layer["paths"]) for layer in v1["layers"]}
    total = sum(layer["size"] for layer in v2["layers"])
    same = sum(layer["size"] for layer in v2["layers"] if frozenset(layer["paths"]) in old)
    return same, total


def mib(n):
    return n / (1 << 20)


def compare(max_layers, r1, r2, p1, p2):
    print(f"max_layers {max_layers}")
    print(f"{'algorithm':<12} {'layers v1':>9} {'layers v2':>9} {'v2 MiB':>9} "
          f"{'shared MiB':>10} {'shared':>7} {'to push MiB':>11}")
    shares = {}
    for name, a, b in (("rules_image", r1, r2), ("popularity", p1, p2)):
        v1, v2 = load(a), load(b)
        same, total = shared(v1, v2)
        share = same / total if total else 0.0
        shares[name] = share
        print(f"{name:<12} {len(v1['layers']):>9} {len(v2['layers']):>9} {mib(total):>9.1f} "
              f"{mib(same):>10.1f} {share:>7.1%} {mib(total - same):>11.1f}")
    if shares["popularity"] > 0:
        ratio = shares["rules_image"] / shares["popularity"]
        print(f"ratio rules_image/popularity (shared share): {ratio:.2f}x")
    else:
        print("ratio rules_image/popularity (shared share): popularity shares nothing")


def store_path(name):
    h = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"/nix/store/{h}-{name}"


def synth(out_dir):
    """A closure shaped like a Python web service on nixpkgs: a base (glibc, gcc libs, bash,
    coreutils, openssl, ...), python, ~150 python packages with internal dependencies, and
    the app. v2 changes the app and bumps two packages (new hashes for them and for every
    path that depends on them), as a typical release does."""
    rng = random.Random(7)
    base = [("libgcc", 9 << 20, []), ("glibc", 30 << 20, ["libgcc"]),
            ("zlib", 1 << 19, ["glibc"]), ("bash", 2 << 20, ["glibc"]),
            ("coreutils", 8 << 20, ["glibc"]), ("openssl", 7 << 20, ["glibc"]),
            ("sqlite", 2 << 20, ["glibc", "zlib"]), ("libffi", 1 << 17, ["glibc"]),
            ("tzdata", 3 << 20, []), ("ncurses", 3 << 20, ["glibc"]),
            ("readline", 1 << 20, ["ncurses"]), ("expat", 1 << 18, ["glibc"]),
            ("mailcap", 1 << 16, []), ("xz", 1 << 20, ["glibc"]), ("bzip2", 1 << 18, ["glibc"]),
            ("python3", 95 << 20, ["glibc", "openssl", "bash", "zlib", "sqlite", "libffi",
                                   "readline", "expat", "mailcap", "xz", "bzip2", "tzdata"])]
    pkgs = []
    for i in range(150):
        deps = ["python3"] + [f"py-{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))]
        size = int(rng.lognormvariate(13, 1.6))
        pkgs.append((f"py-{i}", size, deps))
    top = [f"py-{i}" for i in range(110, 150)]

    def closure(version, bumped):
        renamed = {}

        def name(n):
            return renamed.get(n, n)

        # Bumped packages and everything depending on them get new names (new hashes).
        nodes = {n: (s, d) for n, s, d in base + pkgs}
        changed = set(bumped)
        grew = True
        while grew:
            grew = False
            for n, (_, d) in nodes.items():
                if n not in changed and any(x in changed for x in d):
                    changed.add(n)
                    grew = True
        for n in changed:
            renamed[n] = f"{n}-{version}"
        app = f"app-{version}"
        info = {}
        for n, (s, d) in nodes.items():
            info[store_path(name(n))] = {
                "narSize": s,
                "references": sorted(store_path(name(x)) for x in d + [n]),
            }
        info[store_path(app)] = {
            "narSize": 3 << 20,
            "references": sorted(store_path(name(x)) for x in top + ["bash"]),
        }
        return info, store_path(app)

    os.makedirs(out_dir, exist_ok=True)
    args = []
    for version, bumped in (("v1", []), ("v2", ["py-131", "py-144"])):
        info, root = closure(version, bumped)
        path = os.path.join(out_dir, f"{version}.json")
        with open(path, "w") as f:
            json.dump(info, f, indent=1, sort_keys=True)
        args += [path, root]
    print(" ".join(args))


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "compare":
        compare(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "synth":
        synth(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
