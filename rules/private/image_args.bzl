"""Provider -> tool arguments, once: how the tool is told which files make an image or an index.

A single image (ImageManifestInfo) is `--manifest M --config C --blob B...` (blobs in layer
order). An index (ImageIndexInfo) is `--index I --child F...`, where each child file is JSON
`{"manifest": PATH, "config": PATH, "blobs": [PATH, ...]}` for one image of the index.
Paths are exec paths for actions and rlocation paths for `bazel run` launchers; where the
command allows it (push), a shallow layer of a pulled image is `remote:REGISTRY/REPOSITORY`
instead, so that its bytes are never needed. With `@rules_image//rules:remote_cache` set, a
launcher names a layer blob that a remote cache keeps `cas:` (read from that cache by digest,
so it is not a runfile and `--remote_download_minimal` never downloads it).

`write_image_outputs` is the one place that writes an image's or index's `oci_layout` and
`tarball` output groups; `image_providers` returns a built image's providers with them.
"""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load(":labels.bzl", "label_arg")
load(":launcher.bzl", "rlocation_path")
load(":providers.bzl", "ImageIndexInfo", "ImageManifestInfo")
load(":toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def image_info(target):
    """The image a target provides: its ImageIndexInfo, or else its ImageManifestInfo.

    Args:
        target: a target of an `image` attribute (providers = [[ImageManifestInfo], [ImageIndexInfo]]).

    Returns:
        ImageIndexInfo or ImageManifestInfo.
    """
    if ImageIndexInfo in target:
        return target[ImageIndexInfo]
    return target[ImageManifestInfo]

def image_attr(doc, mandatory = True):
    """An attribute naming an image or an index (read it with `image_info`).

    Args:
        doc: the attribute's doc.
        mandatory: whether it must be set.

    Returns:
        attr.label.
    """
    return attr.label(mandatory = mandatory, providers = [[ImageManifestInfo], [ImageIndexInfo]], doc = doc)

def is_index(image):
    """Whether an ImageManifestInfo or ImageIndexInfo is an index.

    Args:
        image: ImageManifestInfo or ImageIndexInfo.

    Returns:
        bool.
    """
    return hasattr(image, "manifests")

def action_image_args(ctx, image):
    """The arguments naming a whole image or index for an action, by exec path.

    Args:
        ctx: rule context (child files of an index are declared under `<name>.children/`).
        image: ImageManifestInfo or ImageIndexInfo.

    Returns:
        struct(arguments = list of strings, files = list of File: the action's inputs).
    """
    return _image_args(ctx, image, _exec_path, ctx.label.name + ".children", remote = False, link = False)

def launcher_image_args(ctx, image, command, remote = False):
    """The arguments naming a whole image or index for a launcher, by rlocation path.

    Args:
        ctx: rule context (child files and links are declared under `<name>.<command>_children/`).
        image: ImageManifestInfo or ImageIndexInfo.
        command: the tool's subcommand the launcher runs.
        remote: name shallow layers of pulled images `remote:REGISTRY/REPOSITORY`.

    Returns:
        struct(arguments = list of strings, files = list of File: the runfiles they name).
    """
    path = lambda f: rlocation_path(ctx, f)
    cache = remote_cache_args(ctx)
    result = _image_args(ctx, image, path, "%s.%s_children" % (ctx.label.name, command), remote = remote, link = True, cas = bool(cache))
    return struct(arguments = cache + result.arguments, files = result.files)

REMOTE_CACHE_ATTRS = {
    "_remote_cache": attr.label(default = "//rules:remote_cache"),
    "_remote_instance_name": attr.label(default = "//rules:remote_instance_name"),
}

def remote_cache_args(ctx):
    """The tool's `--remote-cache` arguments from the build settings, or [] when none is set.

    Args:
        ctx: rule context with REMOTE_CACHE_ATTRS.

    Returns:
        list of string.
    """
    endpoint = ctx.attr._remote_cache[BuildSettingInfo].value
    if not endpoint:
        return []
    args = ["--remote-cache=" + endpoint]
    instance = ctx.attr._remote_instance_name[BuildSettingInfo].value
    if instance:
        args.append("--remote-instance-name=" + instance)
    return args

def _exec_path(f):
    return f.path

def _image_args(ctx, image, path, children_dir, remote, link, cas = False):
    if is_index(image):
        children = _write_child_files(ctx, image, path, children_dir, remote, link, cas)
        arguments = ["--index", path(image.index)]
        for child in children.files:
            arguments += ["--child", path(child)]
        return struct(arguments = arguments, files = [image.index] + children.files + children.inputs)
    blobs = _blobs(image, path, remote, cas = cas)
    arguments = ["--manifest", path(image.manifest), "--config", path(image.config)]
    for blob in blobs.paths:
        arguments += ["--blob", blob]
    return struct(arguments = arguments, files = [image.manifest, image.config] + blobs.files)

def _blobs(image, path, remote, own = None, cas = False):
    """The blob arguments of one image (in layer order) and the files they name.

    `own(file, name)`, if given, gives the file to name instead of a layer's blob. With `cas`,
    blobs a remote cache keeps are `cas:` and name no file.
    """
    paths = []
    files = []
    for j, layer in enumerate(image.layers):
        if remote and layer.source:
            paths.append("remote:" + layer.source)
            continue
        if cas and layer.in_remote_cache:
            paths.append("cas:")
            continue
        blob = own(layer.blob, "layer_%d_%s" % (j, layer.blob.basename)) if own else layer.blob
        paths.append(path(blob))
        files.append(blob)
    return struct(paths = paths, files = files)

def _write_child_files(ctx, index, path, children_dir, remote, link, cas):
    """Writes one child file per image of an index.

    With `link`, each child's files are first linked under a directory of their own: in
    runfiles, the images of one index built for different platforms would otherwise collide
    (same short paths from different configurations).

    Returns:
        struct(files = the child files, inputs = every file they name).
    """
    children = []
    inputs = []
    for i, image in enumerate(index.manifests):
        own = _linker(ctx, "%s/%d/" % (children_dir, i)) if link else _same
        child = _child_file(ctx, image, "%s/child_%d.json" % (children_dir, i), path, remote, own, cas)
        children.append(child.file)
        inputs += child.inputs
    return struct(files = children, inputs = inputs)

def _child_file(ctx, image, name, path, remote, own, cas = False):
    blobs = _blobs(image, path, remote, own, cas)
    manifest = own(image.manifest, "manifest.json")
    config = own(image.config, "config.json")
    child = ctx.actions.declare_file(name)
    ctx.actions.write(child, json.encode({
        "manifest": path(manifest),
        "config": path(config),
        "blobs": blobs.paths,
    }))
    return struct(file = child, inputs = blobs.files + [manifest, config])

def action_image_file(ctx, image, name):
    """One image as a child file (`{"manifest", "config", "blobs"}`, exec paths), for an action.

    For commands that take several images, each by one file argument (`dockerfile-build --base`).

    Args:
        ctx: rule context.
        image: ImageManifestInfo.
        name: the child file to declare.

    Returns:
        struct(file = File, inputs = list of File: the child file's files, not itself).
    """
    return _child_file(ctx, image, name, _exec_path, False, _same)

def _same(f, _name):
    return f

def _linker(ctx, directory):
    def link(f, name):
        out = ctx.actions.declare_file(directory + name)
        ctx.actions.symlink(output = out, target_file = f)
        return out

    return link

def write_image_outputs(ctx, image):
    """Writes `<name>.oci_layout` (an OCI image layout directory) and `<name>.tar` (the same as one tar).

    Both hold every blob, so the outputs go into output groups, built only on request.

    Args:
        ctx: rule context of a rule with the rules_image toolchain.
        image: ImageManifestInfo or ImageIndexInfo.

    Returns:
        struct(layout = File, tarball = File).
    """
    what = "image index" if is_index(image) else "image"
    mnemonic = "ImageIndex" if is_index(image) else "Image"
    image_args = action_image_args(ctx, image)
    layout = ctx.actions.declare_directory(ctx.label.name + ".oci_layout")
    tarball = ctx.actions.declare_file(ctx.label.name + ".tar")
    for kind, output in [("layout", layout), ("tarball", tarball)]:
        args = ctx.actions.args()
        args.add(label_arg(ctx.label))
        args.add_all(image_args.arguments)
        args.add("--output", output.path)
        ctx.actions.run(
            executable = image_tool(ctx),
            arguments = [kind, args],
            inputs = image_args.files,
            outputs = [output],
            mnemonic = mnemonic + kind.capitalize(),
            progress_message = "Writing %s %s %%{label}" % (what, kind),
            toolchain = TOOLCHAIN_TYPE,
        )
    return struct(layout = layout, tarball = tarball)

def image_providers(ctx, info):
    """The providers of a rule that builds one image: its files, its output groups, `info`.

    Args:
        ctx: rule context of a rule with the rules_image toolchain.
        info: the image's ImageManifestInfo.

    Returns:
        [DefaultInfo, OutputGroupInfo, ImageManifestInfo]
    """

    # The whole image as an OCI layout directory and as one tarball that `docker load`
    # accepts and that is an OCI layout too; built only on request (output groups).
    outputs = write_image_outputs(ctx, info)
    return [
        DefaultInfo(files = depset([info.manifest, info.config, info.digest])),
        OutputGroupInfo(
            oci_layout = depset([outputs.layout]),
            tarball = depset([outputs.tarball]),
            descriptor = depset([info.descriptor]),
        ),
        info,
    ]
