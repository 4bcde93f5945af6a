"""Base images from registries: the `images.pull` module extension and the rule behind it.

Pulling is shallow: the repository holds only the manifest and config (fetched once, by
digest). Each layer's bytes are fetched by an action, so they are downloaded only when an
action really needs them (load, tarball, layout), and a push to another registry mounts or
copies them registry to registry instead.
"""

load(":image_repo.bzl", "IMAGE_FILE_ATTRS", "image_providers", "index_platform", "write_image_files")
load(":providers.bzl", "ImageIndexInfo", "ImageManifestInfo", "LayerInfo")
load(":toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")
load(":util.bzl", "label_arg")

_HOST_TOOL = Label("@rules_image_toolchains//:host/rules-image-tool")

def _pulled_image_impl(ctx):
    tool = image_tool(ctx)
    source = ctx.attr.registry + "/" + ctx.attr.repository
    layers = []
    fetched = {}  # digest -> File: a layer may appear twice in one image
    for i, layer in enumerate(json.decode(ctx.attr.layers)):
        hexdigest = layer["digest"].split(":")[-1]
        metadata = ctx.actions.declare_file("%s/layer_%d.json" % (ctx.label.name, i))
        ctx.actions.write(metadata, json.encode(layer))
        if hexdigest in fetched:
            layers.append(LayerInfo(blob = fetched[hexdigest], metadata = metadata, media_type = layer["media_type"], source = source))
            continue
        blob = ctx.actions.declare_file("%s/blobs/%s" % (ctx.label.name, hexdigest))
        fetched[hexdigest] = blob
        args = ctx.actions.args()
        args.add(label_arg(ctx.label))
        args.add("--repository", source)
        args.add("--digest", layer["digest"])
        args.add("--size", str(layer["size"]))
        args.add("--output", blob)
        ctx.actions.run(
            executable = tool,
            arguments = ["fetch-blob", args],
            outputs = [blob],
            mnemonic = "ImageFetchBlob",
            progress_message = "Fetching layer %s of %s" % (layer["digest"][:19], source),
            execution_requirements = {"requires-network": "1", "no-remote-exec": "1"},
            # Registry credentials are found through HOME / DOCKER_CONFIG / REGISTRY_AUTH_FILE:
            # pass them with --action_env when the base image is private.
            use_default_shell_env = True,
            toolchain = TOOLCHAIN_TYPE,
        )
        layers.append(LayerInfo(blob = blob, metadata = metadata, media_type = layer["media_type"], source = source))
    return image_providers(ctx, layers)

pulled_image = rule(
    implementation = _pulled_image_impl,
    doc = "An image pulled by `images.pull`: manifest and config in the repository, layers fetched on demand.",
    attrs = dict(
        IMAGE_FILE_ATTRS,
        registry = attr.string(mandatory = True, doc = "Registry the image came from."),
        repository = attr.string(mandatory = True, doc = "Repository the image came from."),
    ),
    toolchains = [TOOLCHAIN_TYPE],
)

def _pulled_index_impl(ctx):
    return [
        DefaultInfo(files = depset([ctx.file.index])),
        ImageIndexInfo(
            index = ctx.file.index,
            digest = ctx.file.digest,
            manifests = [target[ImageManifestInfo] for target in ctx.attr.manifests],
        ),
    ]

pulled_index = rule(
    implementation = _pulled_index_impl,
    doc = "An image index pulled by `images.pull`: the index as pulled and one pulled_image per platform.",
    attrs = {
        "index": attr.label(allow_single_file = True, mandatory = True, doc = "The index, as pulled."),
        "digest": attr.label(allow_single_file = True, mandatory = True, doc = "File with the index digest."),
        "manifests": attr.label_list(
            mandatory = True,
            providers = [ImageManifestInfo],
            doc = "The index's images (pulled_image targets), in index order.",
        ),
    },
)

_PULLED_IMAGE = """
pulled_image(
    name = {name},
    manifest = "{prefix}manifest.json",
    config = "{prefix}config.json",
    digest = "{prefix}digest",
    descriptor = "{prefix}descriptor.json",
    layers = {layers},
    platform = {platform},
    registry = {registry},
    repository = {repository},
    visibility = ["//visibility:public"],
)
"""

_BUILD = """\
load("@rules_image//rules/private:pull.bzl", "pulled_image")
""" + _PULLED_IMAGE

_BUILD_INDEX_HEADER = """\
load("@rules_image//rules/private:pull.bzl", "pulled_image", "pulled_index")
"""

_PULLED_INDEX = """
# The whole index (ImageIndexInfo): image_manifest(base = ...) picks the target platform's image.
pulled_index(
    name = "image",
    index = "index.json",
    digest = "digest",
    manifests = {manifests},
    visibility = ["//visibility:public"],
)
"""

def _pull_repo_impl(rctx):
    if not rctx.attr.digest.startswith("sha256:") or len(rctx.attr.digest) != 71:
        fail("images.pull(name = %r): `digest` must be a sha256:<64 hex> manifest or index digest, got %r" %
             (rctx.attr.name, rctx.attr.digest))
    reference = "%s/%s@%s" % (rctx.attr.registry, rctx.attr.repository, rctx.attr.digest)
    cmd = [rctx.path(_HOST_TOOL), "pull", "--image", reference, "--all-platforms", "--output-dir", "."]
    if rctx.attr.insecure_http:
        cmd.append("--insecure-http")
    rctx.report_progress("Pulling manifest and config of " + reference)
    result = rctx.execute(cmd, timeout = 600)
    if result.return_code != 0:
        fail("images.pull(name = %r): cannot pull %s%s:\n%s" % (
            rctx.attr.name,
            reference,
            " (tag %s)" % rctx.attr.tag if rctx.attr.tag else "",
            result.stderr,
        ))
    if not rctx.path("platforms.json").exists:
        # A single image.
        rctx.file("BUILD.bazel", _BUILD.format(**_pulled_image_files(rctx, "", "image", None)))
        return

    # An image index: one pulled_image per platform and `image`, the whole index.
    rctx.file("digest", rctx.attr.digest)
    children = json.decode(rctx.read("platforms.json"))
    build = [_BUILD_INDEX_HEADER]
    names = []
    for child in children:
        name = "image_" + child["dir"]
        names.append(name)
        build.append(_PULLED_IMAGE.format(**_pulled_image_files(rctx, child["dir"] + "/", name, index_platform(child))))
    build.append(_PULLED_INDEX.format(
        manifests = repr([":" + n for n in names]),
    ))
    rctx.file("BUILD.bazel", "\n".join(build))

def _pulled_image_files(rctx, prefix, name, platform):
    """Writes digest and descriptor.json of one pulled image under prefix; returns _PULLED_IMAGE fields."""
    image = write_image_files(rctx, prefix, platform)
    return {
        "name": repr(name),
        "prefix": prefix,
        "layers": repr(json.encode(image.layers)),
        "platform": repr(json.encode(image.platform)),
        "registry": repr(rctx.attr.registry),
        "repository": repr(rctx.attr.repository),
    }

pull_repo = repository_rule(
    implementation = _pull_repo_impl,
    doc = "Fetches the manifest and config of an image (or of every image of an index) by digest; see `images.pull`.",
    attrs = {
        "registry": attr.string(mandatory = True),
        "repository": attr.string(mandatory = True),
        "digest": attr.string(mandatory = True),
        "tag": attr.string(),
        "insecure_http": attr.bool(),
    },
)

def _images_impl(mctx):
    for mod in mctx.modules:
        for pull in mod.tags.pull:
            pull_repo(
                name = pull.name,
                registry = pull.registry,
                repository = pull.repository,
                digest = pull.digest,
                tag = pull.tag,
                insecure_http = pull.insecure_http,
            )

images = module_extension(
    implementation = _images_impl,
    doc = """Base images from registries, pinned by digest.

```starlark
images = use_extension("@rules_image//rules:extensions.bzl", "images")
images.pull(
    name = "distroless_static",
    registry = "gcr.io",
    repository = "distroless/static",
    digest = "sha256:...",   # required: what is built on
    tag = "nonroot",          # documentation only; `rules-image-tool resolve` prints a tag's digest
)
use_repo(images, "distroless_static")
```

Then `image_manifest(base = "@distroless_static//:image", ...)`. Only the manifest and config
are downloaded when the repository is created; no network is used on later builds.

For an index digest (a multi-platform image), every platform's manifest and config are
pulled: `@<name>//:image` is then the whole index (ImageIndexInfo; an image_manifest built on
it uses the image for its target platform, so one base serves every platform of an
image_index) and `@<name>//:image_<dir>` each platform's image (the names are listed in the
generated BUILD file, in index order).
""",
    tag_classes = {
        "pull": tag_class(
            doc = "Pulls one image, or for an index digest every image of the index.",
            attrs = {
                "name": attr.string(mandatory = True, doc = "Repository name; the image is `@<name>//:image`."),
                "registry": attr.string(mandatory = True, doc = "Registry host[:port], e.g. \"gcr.io\" or \"docker.io\"."),
                "repository": attr.string(mandatory = True, doc = "Repository, e.g. \"distroless/static\"."),
                "digest": attr.string(mandatory = True, doc = "sha256 digest of the manifest or index."),
                "tag": attr.string(doc = "The tag the digest was taken from; documentation only, never trusted."),
                "insecure_http": attr.bool(doc = "Allow plain HTTP to a non-loopback registry."),
            },
        ),
    },
)
