"""image_manifest: an OCI image (config + manifest) from a base image and layers."""

load("//rules/private:image_args.bzl", "image_attr", "image_providers")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:platform.bzl", "PLATFORM_ATTRS", "oci_platform", "platform_string", "select_platform")
load("//rules/private:providers.bzl", "ImageIndexInfo", "ImageManifestInfo", "LayerInfo")
load("//rules/private:stamp.bzl", "STAMP_ATTRS", "should_stamp")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def _base_image(ctx, platform):
    """The base's ImageManifestInfo; for an index base, its image for the target platform."""
    base = ctx.attr.base
    if not base:
        return None
    if ImageManifestInfo in base:
        return base[ImageManifestInfo]
    index = base[ImageIndexInfo]
    chosen = select_platform(index.manifests, platform)
    if chosen == None:
        fail("%s: base %s is an image index with no image for the target platform %s; it has: %s" % (
            display_label(ctx.label),
            display_label(base.label),
            platform_string(platform),
            ", ".join([platform_string(image) for image in index.manifests]) or "no images",
        ))
    return index.manifests[chosen]

def _image_manifest_impl(ctx):
    platform = oci_platform(ctx)
    base = _base_image(ctx, platform)
    new_layers = [target[LayerInfo] for target in ctx.attr.layers]

    fragment = ctx.actions.declare_file(ctx.label.name + ".fragment.json")
    ctx.actions.write(fragment, json.encode({
        "os": platform.os,
        "architecture": platform.architecture,
        "variant": platform.variant,
        "entrypoint": ctx.attr.entrypoint or None,
        "cmd": ctx.attr.cmd or None,
        "env": ["%s=%s" % (k, v) for k, v in ctx.attr.env.items()],
        "working_dir": ctx.attr.working_dir,
        "user": ctx.attr.user,
        "labels": ctx.attr.labels,
        "annotations": ctx.attr.annotations,
        "exposed_ports": ctx.attr.exposed_ports,
        "volumes": ctx.attr.volumes,
        "stop_signal": ctx.attr.stop_signal,
        "created": ctx.attr.created or None,
        "layer_history": ["bazel build %s" % display_label(target.label) for target in ctx.attr.layers],
    }))

    manifest = ctx.actions.declare_file(ctx.label.name + ".manifest.json")
    config = ctx.actions.declare_file(ctx.label.name + ".config.json")
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    descriptor = ctx.actions.declare_file(ctx.label.name + ".descriptor.json")

    args = ctx.actions.args()
    args.add(label_arg(ctx.label))
    args.add("--config-fragment", fragment)
    inputs = [fragment] + [layer.metadata for layer in new_layers]
    if base:
        args.add("--base-manifest", base.manifest)
        args.add("--base-config", base.config)
        inputs += [base.manifest, base.config]
    args.add_all([layer.metadata for layer in new_layers], before_each = "--layer")
    args.add("--output-manifest", manifest)
    args.add("--output-config", config)
    args.add("--output-digest", digest)
    args.add("--output-descriptor", descriptor)
    templated = [ctx.attr.created] + ctx.attr.labels.values() + ctx.attr.annotations.values()
    if should_stamp(ctx) and any(["{" in v for v in templated]):
        # Only stamped builds read the status files, so unstamped ones stay cacheable.
        for status in [ctx.info_file, ctx.version_file]:
            args.add("--status-file", status)
            inputs.append(status)
    ctx.actions.run(
        executable = image_tool(ctx),
        arguments = ["manifest", args],
        inputs = inputs,
        outputs = [manifest, config, digest, descriptor],
        mnemonic = "ImageManifest",
        progress_message = "Assembling image manifest %{label}",
        toolchain = TOOLCHAIN_TYPE,
    )

    info = ImageManifestInfo(
        manifest = manifest,
        config = config,
        digest = digest,
        descriptor = descriptor,
        layers = (base.layers if base else []) + new_layers,
        os = platform.os,
        architecture = platform.architecture,
        variant = platform.variant,
    )

    return image_providers(ctx, info)

# The config attributes, also those of `nix.image`, which passes them to its image_manifest.
IMAGE_CONFIG_ATTRS = {
    "entrypoint": attr.string_list(doc = "Entrypoint. Over a base image, setting it also clears the base's `cmd` (as Docker does)."),
    "cmd": attr.string_list(doc = "Default arguments (Cmd)."),
    "env": attr.string_dict(doc = "Environment variables; over a base image, they replace its variables of the same name."),
    "working_dir": attr.string(doc = "Working directory of the container process."),
    "user": attr.string(doc = "User (and group) the process runs as, e.g. \"1000:1000\" or \"nobody\"."),
    "labels": attr.string_dict(
        doc = "Config labels; over a base image, merged over its labels. Values may name workspace " +
              "status keys, `{STABLE_GIT_COMMIT}`, filled in when stamping (see `stamp`); unstamped " +
              "they keep their text.",
    ),
}

_ATTRS = dict(
    {
        "base": image_attr(
            "Image to build on: its layers come first and its config is the starting point. " +
            "Any target providing ImageManifestInfo (e.g. another image_manifest), or an " +
            "image index (ImageIndexInfo: an image_index, or `images.pull` of an index " +
            "digest), of which the image for the target platform is used (see " +
            "docs/multiplatform.md for how it is chosen); the build fails if the index has none.",
            mandatory = False,
        ),
        "layers": attr.label_list(
            providers = [LayerInfo],
            doc = "Layers to add on top of the base, in order (image_layer or nix_layer targets).",
        ),
    },
    **IMAGE_CONFIG_ATTRS
)
_ATTRS.update({
    "annotations": attr.string_dict(doc = "Manifest annotations; values may name workspace status keys, as `labels`."),
    "exposed_ports": attr.string_list(doc = "Exposed ports, e.g. [\"8080/tcp\"]; merged with the base's."),
    "volumes": attr.string_list(doc = "Volume mount points; merged with the base's."),
    "stop_signal": attr.string(doc = "Signal that stops the container, e.g. \"SIGTERM\"."),
    "created": attr.string(
        doc = "Creation time (RFC 3339) of the config and of the new layers' history; default " +
              "1970-01-01T00:00:00Z so builds are reproducible. A workspace status template such as " +
              "`{BUILD_TIMESTAMP}` or `{SOURCE_DATE_EPOCH}` (seconds become RFC 3339) is filled in " +
              "when stamping and is the epoch otherwise.",
    ),
})
_ATTRS.update(STAMP_ATTRS)

image_manifest = rule(
    implementation = _image_manifest_impl,
    doc = """A single-platform OCI image: a config and a manifest over base layers plus new layers.

The os/architecture/variant come from the target platform (`@platforms//os:*`,
`@platforms//cpu:*`). The config starts from the base's: `env` replaces base variables of the
same name in place and appends new ones, `labels` are merged over the base's, `exposed_ports`
and `volumes` are merged with the base's, `entrypoint`, `cmd`, `working_dir`, `user` and
`stop_signal` replace the base's when set.

Default outputs are small: `<name>.manifest.json`, `<name>.config.json`, `<name>.digest`.
Output groups: `oci_layout` (`<name>.oci_layout/`, an OCI image layout with ref name
`latest`), `tarball` (`<name>.tar`, which `docker load` accepts and which is also an OCI
layout) and `descriptor`. Provides `ImageManifestInfo`.

Stamping: with `bazel build --stamp` (or `stamp = 1`), `{KEY}` in `created`, `labels` and
`annotations` is replaced by that key of the workspace status (`--workspace_status_command`;
Bazel's own `BUILD_TIMESTAMP`, `BUILD_USER`, ...). Without it nothing reads the status, so the
image and its digest are the same on every build and cache hits survive new commits.

```starlark
image_manifest(
    name = "image",
    base = "//base:image",
    layers = [":app_layer"],
    entrypoint = ["/app/server"],
    env = {"PORT": "8080"},
    labels = {"org.opencontainers.image.revision": "{STABLE_GIT_COMMIT}"},  # stamped builds only
    created = "{BUILD_TIMESTAMP}",                                         # the epoch unless stamped
)
```
""",
    attrs = dict(_ATTRS, **PLATFORM_ATTRS),
    toolchains = [TOOLCHAIN_TYPE],
)
