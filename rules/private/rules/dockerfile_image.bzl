"""dockerfile_image: a Dockerfile built as a Bazel action, on base images that are Bazel targets."""

load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")
load("//rules/private:image_args.bzl", "action_image_file", "image_providers")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:layer_action.bzl", "BLOB_EXTENSIONS", "LAYER_ACTION_ATTRS", "MEDIA_TYPES", "compress_attr", "kept_by_remote_cache")
load("//rules/private:providers.bzl", "ImageManifestInfo", "LayerInfo")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

_SCRATCH = "scratch"

def _context_path(ctx, root, f):
    """The path of `f` in the build context, whose root is the package-relative dir `root`."""
    path = f.short_path
    if path.startswith("../"):
        # A file of another repository: ../<repo>/<path>.
        path = path.split("/", 2)[2] if path.count("/") >= 2 else path
    elif ctx.label.package:
        pkg = ctx.label.package + "/"
        if not path.startswith(pkg):
            fail("%s: %s is not in this package, so it has no place in the context" % (ctx.label, f.short_path))
        path = path[len(pkg):]
    if root:
        if not path.startswith(root + "/"):
            fail("%s: srcs file %s is outside the context directory %r" % (ctx.label, f.short_path, root))
        path = path[len(root) + 1:]
    return path

def _dockerfile_image_impl(ctx):
    bases = {name: target[ImageManifestInfo] for name, target in ctx.attr.base.items()}
    if _SCRATCH in bases:
        fail("%s: \"scratch\" is no image to give in base: FROM scratch needs none" % ctx.label)
    final = ctx.attr.final_base
    if not final:
        if len(bases) != 1:
            fail("%s: set final_base: with %d bases, which one the final stage builds on is not clear" % (ctx.label, len(bases)))
        final = bases.keys()[0]
    if final != _SCRATCH and final not in bases:
        fail("%s: final_base %r is not a key of base (%s) nor \"scratch\"" % (ctx.label, final, ", ".join(sorted(bases.keys()))))
    base = bases.get(final)

    if ctx.attr.context_dir:
        root = "" if ctx.attr.context_dir == "." else ctx.attr.context_dir.rstrip("/")
    else:
        root = _context_path(ctx, "", ctx.file.dockerfile).rpartition("/")[0]

    prefix = ctx.label.name + ".dockerfile/"
    layer_blob = ctx.actions.declare_file(ctx.label.name + ".layer" + BLOB_EXTENSIONS[ctx.attr.compress])
    layer_metadata = ctx.actions.declare_file(ctx.label.name + ".layer.json")
    manifest = ctx.actions.declare_file(ctx.label.name + ".manifest.json")
    config = ctx.actions.declare_file(ctx.label.name + ".config.json")
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    descriptor = ctx.actions.declare_file(ctx.label.name + ".descriptor.json")

    args = ctx.actions.args()
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    args.add(label_arg(ctx.label))
    args.add("--dockerfile", ctx.file.dockerfile)
    inputs = [ctx.file.dockerfile]
    for f in ctx.files.srcs:
        args.add("--context-file", "%s=%s" % (_context_path(ctx, root, f), f.path))
        inputs.append(f)
    for i, name in enumerate(sorted(bases.keys())):
        child = action_image_file(ctx, bases[name], "%sbase_%d.json" % (prefix, i))
        args.add("--base", "%s=%s" % (name, child.file.path))
        inputs += [child.file] + child.inputs
    args.add("--final-base", final)
    for key in sorted(ctx.attr.build_args.keys()):
        args.add("--build-arg", "%s=%s" % (key, ctx.attr.build_args[key]))
    if ctx.attr.target:
        args.add("--target", ctx.attr.target)
    if ctx.attr.network == "host":
        args.add("--network")
    args.add("--source-date-epoch", str(ctx.attr.source_date_epoch))
    args.add("--compression", ctx.attr.compress)
    threads = ctx.attr._compress_threads[BuildSettingInfo].value
    if threads > 0:
        args.add("--threads", str(threads))
    args.add("--output-layer", layer_blob)
    args.add("--output-layer-metadata", layer_metadata)
    args.add("--output-manifest", manifest)
    args.add("--output-config", config)
    args.add("--output-digest", digest)
    args.add("--output-descriptor", descriptor)

    requirements = {"no-remote": "1"}
    if ctx.attr.network == "host":
        requirements["requires-network"] = "1"
    ctx.actions.run(
        executable = image_tool(ctx),
        arguments = ["dockerfile-build", args],
        inputs = inputs,
        outputs = [layer_blob, layer_metadata, manifest, config, digest, descriptor],
        mnemonic = "ImageDockerfile",
        progress_message = "Building Dockerfile %s for %%{label}" % ctx.file.dockerfile.short_path,
        execution_requirements = requirements,
        # Buildah and unshare are found on PATH.
        use_default_shell_env = True,
        toolchain = TOOLCHAIN_TYPE,
    )

    platform = base or (bases.values()[0] if bases else None)
    info = ImageManifestInfo(
        manifest = manifest,
        config = config,
        digest = digest,
        descriptor = descriptor,
        layers = (base.layers if base else []) + [LayerInfo(
            blob = layer_blob,
            metadata = layer_metadata,
            media_type = MEDIA_TYPES[ctx.attr.compress],
            in_remote_cache = kept_by_remote_cache(requirements),
            source = None,
            origin = display_label(ctx.label),
        )],
        os = platform.os if platform else "linux",
        architecture = platform.architecture if platform else "amd64",
        variant = platform.variant if platform else "",
    )
    return image_providers(ctx, info)

dockerfile_image = rule(
    implementation = _dockerfile_image_impl,
    doc = """A Dockerfile built by a Bazel action, on base images that are Bazel targets.

```starlark
dockerfile_image(
    name = "web",
    dockerfile = "Dockerfile",
    srcs = glob(["src/**", "package.json"]),
    base = {
        "node:22": "@node//:image",       # FROM node:22 AS build
        "runtime": "//base:image",       # FROM runtime
    },
    final_base = "runtime",
)
```

Each key of `base` is an image name as the Dockerfile writes it in `FROM` (or
`COPY --from`), and its value is any target that provides an image: built by
`image_manifest`, pulled, imported, from Nix, or another `dockerfile_image`. The build
never pulls: a `FROM` that is not a key fails, naming the image. A change to a base
target, to the Dockerfile or to a file of `srcs` rebuilds the image, and only such a
change does.

The result is an image (ImageManifestInfo) whose layers are the final stage's base
layers, the same blobs as the base's (they are shared, never rewritten), and then one
new layer that holds everything the Dockerfile added. If the builder made several
layers (one per stage in a chain of `FROM`s), they are squashed with whiteouts kept.
That new layer is normalized: entries are sorted, mtimes are clamped to
`source_date_epoch`, and owner names are dropped. `created` and the new history entries
get `source_date_epoch` too. So two clean builds give the same digest whenever the
`RUN` steps write the same files. `SOURCE_DATE_EPOCH` is also passed as a build
argument.

Outputs: `<name>.manifest.json`, `.config.json`, `.digest`, `.layer.tar.gz`, and the
output groups `oci_layout` and `tarball`, as `image_manifest` has them.

**What the action needs on the machine:** Buildah (tested with 1.43) and `unshare`
(util-linux) on `PATH`, and root or a user namespace that lets Buildah unpack images
and chroot. Steps run with Buildah's chroot isolation in a private store (vfs) in the
action's sandbox; no daemon, no registry, and nothing is left behind. The action is
tagged `no-remote`, because a remote worker would need Buildah. With
`network = "none"` (the default) `RUN` steps get an empty network namespace; with
`network = "host"` they use the machine's network, and the action is tagged
`requires-network`.

For a Dockerfile whose inputs Bazel cannot see (bases only in a local engine's store,
`ADD https://...`), use the `dockerfile.build` module extension instead.
""",
    attrs = dict(LAYER_ACTION_ATTRS, **{
        "dockerfile": attr.label(mandatory = True, allow_single_file = True, doc = "The Dockerfile (a file or a rule's output)."),
        "srcs": attr.label_list(
            allow_files = True,
            doc = "The build context, file by file: nothing else is in it. Each file is at its path " +
                  "relative to `context_dir`. Modes are reduced to 0644 or 0755 and mtimes are set to " +
                  "`source_date_epoch`, so the checkout's umask and times never reach the image.",
        ),
        "context_dir": attr.string(
            doc = "The context's root, relative to this package. Default: the Dockerfile's directory. " +
                  "Use \".\" for the package.",
        ),
        "base": attr.string_keyed_label_dict(
            providers = [ImageManifestInfo],
            doc = "Dict from an image name as the Dockerfile writes it in `FROM` (or `COPY --from`) " +
                  "to a target that provides the image (ImageManifestInfo).",
        ),
        "final_base": attr.string(
            doc = "The key of `base` that the final stage (or `target`) builds on, or \"scratch\". " +
                  "If `base` has exactly one key, that key is the default. If the build turns out " +
                  "to be on another base, it fails and names the one it found.",
        ),
        "build_args": attr.string_dict(doc = "`--build-arg` values."),
        "target": attr.string(doc = "The stage to build (`--target`). Default: the last stage."),
        "network": attr.string(
            default = "none",
            values = ["none", "host"],
            doc = "\"none\": `RUN` steps have no network. \"host\": they use the machine's " +
                  "network, and the action is tagged `requires-network`.",
        ),
        "source_date_epoch": attr.int(
            default = 0,
            doc = "Time (seconds since the epoch) of the new layer's files (an upper bound), of " +
                  "`created` and of the new history entries.",
        ),
        "compress": compress_attr("Compression of the new layer."),
    }),
    toolchains = [TOOLCHAIN_TYPE],
)
