#!/usr/bin/env python3
"""Validates an OCI image layout's JSON documents against the image-spec JSON schemas.

usage: validate_schemas.py SCHEMA_DIR LAYOUT_DIR
Walks index.json -> manifests -> config and checks each against its schema; exits non-zero
with the failing document and reason.
"""
import json
import pathlib
import sys

import jsonschema

SCHEMAS = {
    "application/vnd.oci.image.index.v1+json": "image-index-schema.json",
    "application/vnd.oci.image.manifest.v1+json": "image-manifest-schema.json",
    "application/vnd.oci.image.config.v1+json": "config-schema.json",
}


def load_store(schema_dir):
    store = {}
    for path in schema_dir.glob("*.json"):
        doc = json.loads(path.read_text())
        # Schemas refer to each other relative to either of these bases.
        for base in ("https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/"):
            store[base + path.name] = doc
        if "id" in doc:
            store[doc["id"]] = doc
    return store


def validate(store, schema_dir, name, doc, label):
    schema = json.loads((schema_dir / name).read_text())
    resolver = jsonschema.RefResolver(
        base_uri="https://opencontainers.org/schema/image/" + name, referrer=schema, store=store
    )
    cls = jsonschema.validators.validator_for(schema)
    errors = sorted(cls(schema, resolver=resolver).iter_errors(doc), key=str)
    if errors:
        raise SystemExit(f"{label}: does not match {name}: {errors[0].message}")
    print(f"schema ok: {label} ({name})")


def blob(layout, digest):
    algo, hexdigest = digest.split(":", 1)
    return json.loads((layout / "blobs" / algo / hexdigest).read_bytes())


def main():
    schema_dir, layout = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    store = load_store(schema_dir)
    validate(store, schema_dir, "image-layout-schema.json", json.loads((layout / "oci-layout").read_text()), "oci-layout")
    index = json.loads((layout / "index.json").read_text())
    validate(store, schema_dir, "image-index-schema.json", index, "index.json")
    pending = [d for d in index["manifests"]]
    while pending:
        desc = pending.pop(0)
        doc = blob(layout, desc["digest"])
        media_type = doc.get("mediaType", desc["mediaType"])
        validate(store, schema_dir, SCHEMAS[media_type], doc, desc["digest"])
        if media_type.endswith("index.v1+json"):
            pending.extend(doc["manifests"])
        else:
            config = blob(layout, doc["config"]["digest"])
            validate(store, schema_dir, "config-schema.json", config, doc["config"]["digest"])


if __name__ == "__main__":
    main()
