"""Helpers for images that repository rules write out (images.pull, image_import, dockerfile.build).

The tool leaves one directory per image (`manifest.json`, `config.json`, `layers.json`,
`image.json`); these helpers add the digest and descriptor files and turn the rule that
wraps them into an ImageManifestInfo.
"""

load(":providers.bzl", "ImageManifestInfo")

# Attributes of the rules that wrap a repository image (read by image_providers).
IMAGE_FILE_ATTRS = {
    "manifest": attr.label(allow_single_file = True, mandatory = True, doc = "The manifest."),
    "config": attr.label(allow_single_file = True, mandatory = True, doc = "The config."),
    "digest": attr.label(allow_single_file = True, mandatory = True, doc = "File with the manifest digest."),
    "descriptor": attr.label(allow_single_file = True, mandatory = True, doc = "The manifest's descriptor."),
    "layers": attr.string(mandatory = True, doc = "JSON list of {digest, diff_id, media_type, size}, in layer order."),
    "platform": attr.string(mandatory = True, doc = "JSON {os, architecture, variant}."),
}

def write_image_files(rctx, prefix, platform = None):
    """Writes `<prefix>digest` and `<prefix>descriptor.json` for the image the tool wrote under prefix.

    Args:
        rctx: the repository context.
        prefix: the image's directory in the repository, with a trailing slash (or "").
        platform: {os, architecture, variant?} from the index; None reads it from the config.

    Returns:
        struct(layers = the decoded layers.json, platform = the platform dict).
    """
    layers = json.decode(rctx.read(prefix + "layers.json"))
    image = json.decode(rctx.read(prefix + "image.json"))
    manifest = rctx.read(prefix + "manifest.json")
    if platform == None:
        config = json.decode(rctx.read(prefix + "config.json"))
        platform = {k: config[k] for k in ("os", "architecture", "variant") if config.get(k)}
    rctx.file(prefix + "digest", image["manifest_digest"])
    rctx.file(prefix + "descriptor.json", json.encode({
        "digest": image["manifest_digest"],
        "mediaType": json.decode(manifest).get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
        "platform": platform,
        "size": len(manifest),
    }))
    return struct(layers = layers, platform = platform)

def image_providers(ctx, layers):
    """DefaultInfo and ImageManifestInfo of a rule with manifest, config, digest, descriptor and platform attributes.

    Args:
        ctx: the rule context.
        layers: list of LayerInfo, in manifest order.

    Returns:
        list of providers.
    """
    platform = json.decode(ctx.attr.platform)
    return [
        DefaultInfo(files = depset([ctx.file.manifest, ctx.file.config])),
        ImageManifestInfo(
            manifest = ctx.file.manifest,
            config = ctx.file.config,
            digest = ctx.file.digest,
            descriptor = ctx.file.descriptor,
            layers = layers,
            os = platform["os"],
            architecture = platform["architecture"],
            variant = platform.get("variant", ""),
        ),
    ]

def index_platform(child):
    """The platform dict of one platforms.json entry."""
    platform = {"os": child["os"], "architecture": child["architecture"]}
    if child.get("variant"):
        platform["variant"] = child["variant"]
    return platform
