"""image_index: a multi-platform OCI image (an image index over image_manifest targets)."""

load("//rules/private:image_args.bzl", "write_image_outputs")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:providers.bzl", "ImageIndexInfo", "ImageManifestInfo")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

_PLATFORMS = "//command_line_option:platforms"

def _platforms_transition_impl(settings, attr):
    if not attr.platforms:
        # No platforms: the manifests as given, in the current configuration.
        return {"0": {_PLATFORMS: settings[_PLATFORMS]}}
    return {
        str(i): {_PLATFORMS: [str(platform)]}
        for i, platform in enumerate(attr.platforms)
    }

_platforms_transition = transition(
    implementation = _platforms_transition_impl,
    inputs = [_PLATFORMS],
    outputs = [_PLATFORMS],
)

def _image_index_impl(ctx):
    if ctx.attr.platforms:
        split = ctx.split_attr.manifests
        targets = []
        for i in range(len(ctx.attr.platforms)):
            targets += split[str(i)]
    else:
        targets = ctx.attr.manifests
    if not targets:
        fail("%s: an image index needs at least one manifest" % display_label(ctx.label))
    manifests = [target[ImageManifestInfo] for target in targets]

    seen = {}
    for target, image in zip(targets, manifests):
        key = "%s/%s/%s" % (image.os, image.architecture, image.variant)
        if key in seen:
            fail("%s: %s and %s are both built for %s; an index holds one image per platform" %
                 (display_label(ctx.label), display_label(seen[key]), display_label(target.label), key.rstrip("/")))
        seen[key] = target.label

    index_file = ctx.actions.declare_file(ctx.label.name + ".index.json")
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    args = ctx.actions.args()
    args.add(label_arg(ctx.label))
    args.add_all([image.descriptor for image in manifests], before_each = "--child-descriptor")
    args.add_all(["%s=%s" % (k, v) for k, v in ctx.attr.annotations.items()], before_each = "--annotation")
    args.add("--output-index", index_file)
    args.add("--output-digest", digest)
    ctx.actions.run(
        executable = image_tool(ctx),
        arguments = ["index", args],
        inputs = [image.descriptor for image in manifests],
        outputs = [index_file, digest],
        mnemonic = "ImageIndex",
        progress_message = "Assembling image index %{label}",
        toolchain = TOOLCHAIN_TYPE,
    )
    info = ImageIndexInfo(index = index_file, digest = digest, manifests = manifests)

    # The whole index as an OCI layout directory and as one tarball, on request only.
    outputs = write_image_outputs(ctx, info)

    return [
        DefaultInfo(files = depset([index_file, digest])),
        OutputGroupInfo(
            oci_layout = depset([outputs.layout]),
            tarball = depset([outputs.tarball]),
            descriptors = depset([image.descriptor for image in manifests]),
        ),
        info,
    ]

image_index = rule(
    implementation = _image_index_impl,
    doc = """A multi-platform image: an OCI image index over single-platform images.

With `platforms`, each of `manifests` is built once per platform (a split transition on
`--platforms`), so one `image_manifest` whose layers `select()` on the cpu becomes one image
per platform. Without `platforms`, the index holds `manifests` as they are built (each in
the current configuration, e.g. image_manifest targets that are themselves pulled images).

Default outputs: the index (`<name>.index.json`) and its digest (`<name>.digest`). Output
groups: `oci_layout` (an OCI image layout directory with every blob of every platform),
`tarball` (the same as one tar) and `descriptors` (the children's descriptors). `image_push`
and `image_load` accept an image_index wherever they accept an image_manifest.

```starlark
image_index(
    name = "index",
    manifests = [":image"],
    platforms = ["//platforms:linux_amd64", "//platforms:linux_arm64"],
)
```

See docs/multiplatform.md.
""",
    attrs = {
        "manifests": attr.label_list(
            mandatory = True,
            providers = [ImageManifestInfo],
            cfg = _platforms_transition,
            doc = "The images of the index (image_manifest targets or anything providing " +
                  "ImageManifestInfo). With `platforms`, each is built once per platform, in " +
                  "the order of `platforms` (usually this list then has one entry). No two " +
                  "images may have the same os/architecture/variant.",
        ),
        "platforms": attr.label_list(
            doc = "Bazel platforms (`platform()` targets with @platforms//os and @platforms//cpu " +
                  "constraints) to build `manifests` for; the index lists them in this order. " +
                  "Empty: build `manifests` in the current configuration.",
        ),
        "annotations": attr.string_dict(doc = "Annotations of the index itself."),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
