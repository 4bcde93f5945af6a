"""image_sbom: an SPDX 2.3 SBOM of what an image holds, from its layers."""

load("//rules/private:image_args.bzl", "action_image_args")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:providers.bzl", "ImageArtifactInfo", "ImageManifestInfo")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def _image_sbom_impl(ctx):
    image = ctx.attr.image[ImageManifestInfo]
    out = ctx.actions.declare_file(ctx.label.name + ".spdx.json")
    image_args = action_image_args(ctx, image)
    args = ctx.actions.args()
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    args.add(label_arg(ctx.label))
    args.add_all(image_args.arguments)
    args.add("--name", ctx.attr.document_name or display_label(ctx.attr.image.label))
    for layer in image.layers:
        args.add("--layer-origin=" + (layer.origin or ""))
    args.add("--created", str(ctx.attr.created))
    args.add("--output", out)
    ctx.actions.run(
        executable = image_tool(ctx),
        arguments = ["sbom", args],
        inputs = image_args.files,
        outputs = [out],
        mnemonic = "ImageSbom",
        progress_message = "Writing the SBOM of %s" % display_label(ctx.attr.image.label),
        toolchain = TOOLCHAIN_TYPE,
    )
    return [DefaultInfo(files = depset([out])), ImageArtifactInfo(file = out, artifact_type = "application/spdx+json")]

image_sbom = rule(
    implementation = _image_sbom_impl,
    doc = """An SPDX 2.3 SBOM (JSON) of what an image really holds: `<name>.spdx.json`.

```starlark
image_sbom(
    name = "sbom",
    image = ":image",
)
```

The image's layers are applied as a container runtime applies them (whiteouts, opaque
directories, hard links), and every regular file left is listed with its SHA-1 and SHA-256:
a file that an upper layer replaced or removed is not. Files are grouped into packages by
origin:

- each layer is a package named by what made it: the Bazel target that built it
  (`//app:app_layer`, a `nix_layer`, a `dockerfile_image`), or the image it comes from
  (`REGISTRY/REPOSITORY@DIGEST` for a pulled base, the repository rule and digest for an
  imported one); its version is the layer's digest;
- each Nix store path below `/nix/store` is a package of its own, with the name and version
  of its store path name, contained in its layer's package;
- the image is the package the document describes, its version the manifest digest.

The document is reproducible: `created` is `created` (the epoch by default) and the namespace
is derived from the manifest digest, so the same image gives the same bytes. Licenses are
`NOASSERTION`: they are not in the image.

A pulled base's layers are downloaded for this (its files are read).
""",
    attrs = {
        "image": attr.label(
            mandatory = True,
            providers = [ImageManifestInfo],
            doc = "The image (a single-platform image; for an index, one of its platforms' images).",
        ),
        "document_name": attr.string(doc = "The document's and the image package's name. Default: the image's label."),
        "created": attr.int(
            default = 0,
            doc = "The document's creation time, seconds since the epoch (default: the epoch, so the bytes never change).",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
