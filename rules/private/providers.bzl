"""Providers shared by the rules_image rules."""

visibility(["//rules/..."])

LayerInfo = provider(
    doc = "One image layer: its blob and a small metadata file describing it.",
    fields = {
        "blob": "File: the layer blob (a tar, possibly compressed).",
        "metadata": "File: JSON with diff_id, digest, media_type and size of the blob.",
        "media_type": "string: the layer's OCI media type.",
        "source": "string or None: `registry/repository` holding this blob, for layers of pulled " +
                  "images. Pushes then mount or copy it from there, and `blob` (fetched by an " +
                  "action) is only built when an action needs the bytes.",
        "in_remote_cache": "bool: the blob is the output of an action whose result a remote cache " +
                           "keeps (not tagged `no-remote` or `no-cache`), so that with " +
                           "`@rules_image//rules:remote_cache` set, pushes and loads read it from " +
                           "the cache instead of taking it as a runfile.",
        "origin": "string or None: what made the layer, as SBOMs name it: the label of the rule " +
                  "that built it, or `REGISTRY/REPOSITORY@DIGEST` (pulled) or the repository rule " +
                  "and digest (imported, built from a Dockerfile) of the image it comes from.",
    },
)

ImageManifestInfo = provider(
    doc = "A single-platform OCI image: manifest, config and all of its layers, base layers first.",
    fields = {
        "manifest": "File: the OCI image manifest (canonical JSON).",
        "config": "File: the OCI image config (canonical JSON).",
        "digest": "File: `sha256:<hex>` of the manifest.",
        "descriptor": "File: OCI descriptor of the manifest, with its platform.",
        "layers": "list of LayerInfo: every layer of the image in manifest order, base layers first.",
        "os": "string: the image's operating system (OCI `os`).",
        "architecture": "string: the image's architecture (OCI `architecture`).",
        "variant": "string: the image's CPU variant, or empty.",
    },
)

ImageToolInfo = provider(
    doc = "The rules_image tool as carried by a toolchain of type @rules_image//rules:toolchain_type.",
    fields = {
        "tool": "File: the rules-image-tool executable.",
        "bazel_version": "string: the version of the Bazel that set the toolchain up (for provenance), or empty.",
    },
)

ImageIndexInfo = provider(
    doc = "A multi-platform OCI image: an image index over single-platform images.",
    fields = {
        "index": "File: the OCI image index (canonical JSON).",
        "digest": "File: `sha256:<hex>` of the index.",
        "manifests": "list of ImageManifestInfo: the index's images, in index order.",
    },
)

ImagePushInfo = provider(
    doc = "What an `image_push` target pushes, for `multi_deploy` to push it with others in one run.",
    fields = {
        "arguments": "list of string: the tool's `push` arguments (file arguments as rlocation paths).",
        "runfiles": "runfiles: the files those arguments name.",
    },
)

ImageArtifactInfo = provider(
    doc = "A file to attach to a pushed image as an OCI 1.1 artifact (a referrer): an SBOM, a provenance statement.",
    fields = {
        "file": "File: the artifact's content.",
        "artifact_type": "string: its media type, the artifact manifest's `artifactType` (e.g. `application/spdx+json`).",
    },
)
