"""layer_from_tar: an existing tar (from rules_pkg, a genrule, a vendor) as an image layer."""

load("//rules/private:layer_action.bzl", "LAYER_ACTION_ATTRS", "compress_attr", "layer_args", "run_layer_action")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE")

visibility(["//rules/..."])

def _layer_from_tar_impl(ctx):
    layer = layer_args(ctx, ctx.attr.compress, ctx.attr.compression_level)
    layer.args.add("--src", ctx.file.src)
    if ctx.attr.keep:
        layer.args.add("--keep")
    else:
        layer.args.add("--source-date-epoch", str(ctx.attr.source_date_epoch))
    return run_layer_action(
        ctx,
        layer,
        depset([ctx.file.src]),
        "ImageLayerFromTar",
        "Writing layer %%{label} from %s" % ctx.file.src.short_path,
        command = "layer-from-tar",
    )

layer_from_tar = rule(
    implementation = _layer_from_tar_impl,
    doc = """An image layer from an existing tar, tar.gz or tar.zst (told apart by its first bytes).

```starlark
genrule(
    name = "vendor_tar",
    srcs = ["vendor/tool"],
    outs = ["vendor_src.tar.gz"],
    cmd = "tar -czf $@ -C $$(dirname $(location vendor/tool)) tool",
)

layer_from_tar(
    name = "vendor",
    src = ":vendor_tar",
)
```

Every entry passes the checks of `image_import`: no absolute paths or `..`, no device nodes,
no links or paths that climb out of the root or through symlinks, no duplicates, limits on
header extensions; a bad tar fails the build naming the entry, and leaves no output.

By default the tar is rewritten deterministically: entries sorted by path, mtimes clamped to
`source_date_epoch`, owners (uid/gid) and modes kept, user and group names dropped, hard
links led by their first path. So a tar made with today's timestamps gives the same layer
tomorrow. With `keep = True` the uncompressed tar is kept byte for byte (its diff_id is the
tar's sha256). Either way the blob is compressed anew with `compress`.

Outputs `<name>.tar.gz` (or `.tar.zst`, `.tar`) and `<name>.layer.json`; provides `LayerInfo`,
like `image_layer`.
""",
    attrs = dict(LAYER_ACTION_ATTRS, **{
        "src": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "The tar, tar.gz or tar.zst.",
        ),
        "keep": attr.bool(
            default = False,
            doc = "Keep the tar byte for byte (still checked) instead of rewriting it.",
        ),
        "source_date_epoch": attr.int(
            default = 0,
            doc = "When rewriting: entry mtimes later than this (seconds since the epoch) are clamped to it.",
        ),
        "compress": compress_attr("Compression of the layer blob."),
        "compression_level": attr.int(
            default = -1,
            doc = "Compression level (gzip 0-9, default 6; zstd 1-22, default 3). -1 uses the default.",
        ),
    }),
    toolchains = [TOOLCHAIN_TYPE],
)
