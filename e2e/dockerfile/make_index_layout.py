#!/usr/bin/env python3
"""Turns a single-image OCI layout into a multi-platform one, as BuildKit writes them.

The output layout's index.json points (ref "v1") to an image index with three entries: the
source image (linux/amd64), the same layers under an arm64 config (linux/arm64/v8), and an
attestation manifest (platform unknown/unknown, in-toto layer) that refers to the amd64 image.

    make_index_layout.py SRC_LAYOUT OUT_LAYOUT [AMD64_VARIANT]

With AMD64_VARIANT (e.g. v1) the amd64 entry names that variant; without, it has none.
"""

import hashlib
import json
import os
import shutil
import sys

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def path(self, digest):
        return os.path.join(self.root, "blobs", "sha256", digest.split(":")[1])

    def read(self, digest):
        with open(self.path(digest), "rb") as f:
            return f.read()

    def write(self, data, media_type, **extra):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(self.path(digest), "wb") as f:
            f.write(data)
        return dict({"mediaType": media_type, "digest": digest, "size": len(data)}, **extra)


def main():
    src, out = Layout(sys.argv[1]), Layout(sys.argv[2])
    with open(os.path.join(src.root, "index.json")) as f:
        top = json.load(f)["manifests"][0]
    for name in os.listdir(os.path.join(src.root, "blobs", "sha256")):
        shutil.copy(os.path.join(src.root, "blobs", "sha256", name), os.path.join(out.root, "blobs", "sha256", name))

    amd64 = json.loads(src.read(top["digest"]))
    config = json.loads(src.read(amd64["config"]["digest"]))
    amd64_platform = {"os": "linux", "architecture": "amd64"}
    if len(sys.argv) > 3:
        amd64_platform["variant"] = sys.argv[3]
    amd64_desc = dict(top, platform=amd64_platform)
    amd64_desc.pop("annotations", None)

    arm_config = dict(config, architecture="arm64", variant="v8")
    arm64 = dict(amd64, config=out.write(canonical(arm_config), OCI_CONFIG))
    arm64_desc = out.write(canonical(arm64), OCI_MANIFEST, platform={"os": "linux", "architecture": "arm64", "variant": "v8"})

    statement = out.write(canonical({"_type": "https://in-toto.io/Statement/v0.1", "subject": []}),
                          "application/vnd.in-toto+json",
                          annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})
    attestation = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": out.write(b"{}", OCI_CONFIG),
        "layers": [statement],
    }
    attestation_desc = out.write(canonical(attestation), OCI_MANIFEST,
                                 platform={"os": "unknown", "architecture": "unknown"},
                                 annotations={"vnd.docker.reference.digest": amd64_desc["digest"],
                                              "vnd.docker.reference.type": "attestation-manifest"})

    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [amd64_desc, arm64_desc, attestation_desc]}
    index_desc = out.write(canonical(index), OCI_INDEX, annotations={"org.opencontainers.image.ref.name": "v1"})
    with open(os.path.join(out.root, "index.json"), "wb") as f:
        f.write(canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [index_desc]}))
    with open(os.path.join(out.root, "oci-layout"), "wb") as f:
        f.write(canonical({"imageLayoutVersion": "1.0.0"}))
    print(index_desc["digest"])


if __name__ == "__main__":
    main()
