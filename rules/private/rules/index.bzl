"""image_index: a multi-platform OCI image (an image index over image_manifest targets)."""

load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:launcher.bzl", "rlocation_path")
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

def write_child_files(ctx, index, suffix, rlocation, remote):
    """Writes one child file per image of an index, as the tool's `--child` reads it.

    A child file is JSON `{"manifest": PATH, "config": PATH, "blobs": [PATH, ...]}` with the
    blobs in manifest layer order.

    Args:
        ctx: rule context.
        index: ImageIndexInfo.
        suffix: distinguishes these child files from other variants written by the same target.
        rlocation: write rlocation paths (for `bazel run` launchers) instead of exec paths.
        remote: name shallow layers of pulled images as `remote:REGISTRY/REPOSITORY` (their
            bytes are then not needed) instead of by their fetched blob.

    Returns:
        struct(children = list of File (the child files), inputs = list of File (everything
        the child files name)).
    """
    path = (lambda f: rlocation_path(ctx, f)) if rlocation else (lambda f: f.path)
    children = []
    inputs = []
    for i, image in enumerate(index.manifests):
        # In runfiles, the images of one index built for different platforms would collide
        # (same short paths from different configurations): each child's files are linked
        # under a directory of their own.
        own = (lambda f, name: _link(ctx, "%s.%s/%d/%s" % (ctx.label.name, suffix, i, name), f)) if rlocation else (lambda f, name: f)
        blobs = []
        for j, layer in enumerate(image.layers):
            if remote and layer.source:
                blobs.append("remote:" + layer.source)
            else:
                blob = own(layer.blob, "layer_%d_%s" % (j, layer.blob.basename))
                blobs.append(path(blob))
                inputs.append(blob)
        manifest = own(image.manifest, "manifest.json")
        config = own(image.config, "config.json")
        child = ctx.actions.declare_file("%s.%s/child_%d.json" % (ctx.label.name, suffix, i))
        ctx.actions.write(child, json.encode({
            "manifest": path(manifest),
            "config": path(config),
            "blobs": blobs,
        }))
        children.append(child)
        inputs += [manifest, config]
    return struct(children = children, inputs = inputs)

def _link(ctx, name, target):
    link = ctx.actions.declare_file(name)
    ctx.actions.symlink(output = link, target_file = target)
    return link

def _image_index_impl(ctx):
    tool = image_tool(ctx)
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
        executable = tool,
        arguments = ["index", args],
        inputs = [image.descriptor for image in manifests],
        outputs = [index_file, digest],
        mnemonic = "ImageIndex",
        progress_message = "Assembling image index %{label}",
        toolchain = TOOLCHAIN_TYPE,
    )
    info = ImageIndexInfo(index = index_file, digest = digest, manifests = manifests)

    # The whole index as an OCI layout directory and as one tarball, on request only.
    children = write_child_files(ctx, info, "children", rlocation = False, remote = False)
    layout = ctx.actions.declare_directory(ctx.label.name + ".oci_layout")
    tarball = ctx.actions.declare_file(ctx.label.name + ".tar")
    for kind, output in [("layout", layout), ("tarball", tarball)]:
        out_args = ctx.actions.args()
        out_args.add(label_arg(ctx.label))
        out_args.add("--index", index_file)
        out_args.add_all(children.children, before_each = "--child")
        out_args.add("--output", output.path if kind == "layout" else output)
        ctx.actions.run(
            executable = tool,
            arguments = [kind, out_args],
            inputs = [index_file] + children.children + children.inputs,
            outputs = [output],
            mnemonic = "ImageIndexLayout" if kind == "layout" else "ImageIndexTarball",
            progress_message = "Writing image index %s %%{label}" % kind,
            toolchain = TOOLCHAIN_TYPE,
        )

    return [
        DefaultInfo(files = depset([index_file, digest])),
        OutputGroupInfo(
            oci_layout = depset([layout]),
            tarball = depset([tarball]),
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
