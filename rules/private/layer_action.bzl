"""The one action that writes a layer, shared by image_layer and nix_layer."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load(":labels.bzl", "display_label", "label_arg")
load(":providers.bzl", "LayerInfo")
load(":toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

# The layer media type of each `compress` value: eStargz is gzip and zstd:chunked is zstd to
# every reader; their TOCs are found through the descriptor's annotations.
MEDIA_TYPES = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "estargz": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd:chunked": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}

# The file name ending of a layer blob, by `compress` value.
BLOB_EXTENSIONS = {"gzip": ".tar.gz", "zstd": ".tar.zst", "estargz": ".tar.gz", "zstd:chunked": ".tar.zst", "none": ".tar"}

def compress_attr(doc):
    """The `compress` attribute of everything that writes layers.

    "gzip" (the default), "zstd", "none", or a seekable format for lazy pulling: "estargz"
    (gzip with stargz-snapshotter's TOC) or "zstd:chunked" (zstd with containers/storage's TOC).

    Args:
        doc: the attribute's doc.

    Returns:
        attr.string.
    """
    values = MEDIA_TYPES.keys()
    return attr.string(default = "gzip", values = values, doc = doc + " One of %s." % ", ".join(["`%s`" % v for v in values]))

# The private attributes of every rule that writes layers (add them to its attrs).
LAYER_ACTION_ATTRS = {
    "_compress_threads": attr.label(
        default = Label("//rules:compress_threads"),
        providers = [BuildSettingInfo],
        doc = "--@rules_image//rules:compress_threads: compression threads (0: every core).",
    ),
}

def layer_args(ctx, compress, compression_level = -1):
    """Declares a layer's outputs and starts the tool's arguments (entries follow).

    Args:
        ctx: rule context.
        compress: a `compress` value (see compress_attr).
        compression_level: level, or -1 for the tool's default.

    Returns:
        struct(blob, metadata, args, compress)
    """
    blob = ctx.actions.declare_file(ctx.label.name + BLOB_EXTENSIONS[compress])
    metadata = ctx.actions.declare_file(ctx.label.name + ".layer.json")
    args = ctx.actions.args()
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    args.add(label_arg(ctx.label))
    args.add("--output", blob)
    args.add("--metadata", metadata)
    args.add("--compression", compress)
    if compression_level >= 0:
        args.add("--compression-level", str(compression_level))
    threads = ctx.attr._compress_threads[BuildSettingInfo].value
    if threads > 0:
        args.add("--threads", str(threads))
    return struct(blob = blob, metadata = metadata, args = args, compress = compress)

def kept_by_remote_cache(execution_requirements):
    """Whether a remote cache keeps the outputs of an action with these requirements.

    Args:
        execution_requirements: the action's dict, or None.

    Returns:
        bool.
    """
    tags = execution_requirements or {}
    return not any([t in tags for t in ("no-remote", "no-cache", "no-remote-cache", "local")])

def run_layer_action(ctx, layer, inputs, mnemonic, progress_message, execution_requirements = None, command = "layer"):
    """Runs `rules-image-tool layer` (or `command`) and returns the layer's providers.

    Args:
        ctx: rule context.
        layer: the struct from layer_args, its entries added.
        inputs: depset of input files.
        mnemonic: action mnemonic.
        progress_message: action progress message.
        execution_requirements: optional dict.
        command: the tool's subcommand: "layer" or "layer-from-tar".

    Returns:
        [DefaultInfo, LayerInfo]
    """
    ctx.actions.run(
        executable = image_tool(ctx),
        arguments = [command, layer.args],
        inputs = inputs,
        outputs = [layer.blob, layer.metadata],
        mnemonic = mnemonic,
        progress_message = progress_message,
        execution_requirements = execution_requirements,
        toolchain = TOOLCHAIN_TYPE,
    )
    return [
        DefaultInfo(files = depset([layer.blob, layer.metadata])),
        LayerInfo(
            blob = layer.blob,
            metadata = layer.metadata,
            media_type = MEDIA_TYPES[layer.compress],
            in_remote_cache = kept_by_remote_cache(execution_requirements),
            source = None,
            origin = display_label(ctx.label),
        ),
    ]
