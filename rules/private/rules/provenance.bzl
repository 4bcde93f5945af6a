"""image_provenance: SLSA provenance (an in-toto statement) of an image, from the Bazel graph."""

load("//rules/private:labels.bzl", "display_label", "label_arg", "repo_display_name")
load("//rules/private:providers.bzl", "ImageArtifactInfo", "ImageManifestInfo")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "bazel_version", "image_tool")

visibility(["//rules/..."])

_BuildInputsInfo = provider(
    doc = "What an image's targets were built from, collected by _build_inputs_aspect.",
    fields = {
        "sources": "depset of File: source files (not generated).",
        "base_images": "depset of string: origins of imported and pulled images.",
        "store_paths": "depset of string: Nix store paths in nix_layer targets.",
    },
)

# The attributes the aspect follows: those of rules_image's rules that lead to what an image
# is built from, and the usual ones of the rules that build what goes in (cc_*, genrule, ...).
_FOLLOWED = [
    "base",
    "data",
    "deps",
    "dockerfile",
    "hdrs",
    "image",
    "layers",
    "manifests",
    "src",
    "srcs",
    "tools",
    "runtime_deps",
    "exports",
    "embed",
]

def _build_inputs_aspect_impl(target, ctx):
    sources = []
    deps = []
    for name in _FOLLOWED:
        value = getattr(ctx.rule.attr, name, None)
        if type(value) == "dict":
            value = list(value.keys()) + list(value.values())
        elif type(value) != "list":
            value = [value]
        for d in value:
            if type(d) != "Target":
                continue
            if _BuildInputsInfo in d:
                deps.append(d[_BuildInputsInfo])
            else:
                # A file target (aspects only visit rules): the file itself, if a source.
                sources += [f for f in d.files.to_list() if f.is_source]
    base_images = []
    store_paths = []
    if ctx.rule.kind == "repository_image" and ctx.rule.attr.origin:
        base_images.append(ctx.rule.attr.origin)
    if ctx.rule.kind == "nix_layer":
        store_paths += ctx.rule.attr.store_paths
    return [_BuildInputsInfo(
        sources = depset(sources, transitive = [d.sources for d in deps]),
        base_images = depset(base_images, transitive = [d.base_images for d in deps]),
        store_paths = depset(store_paths, transitive = [d.store_paths for d in deps]),
    )]

_build_inputs_aspect = aspect(
    implementation = _build_inputs_aspect_impl,
    attr_aspects = _FOLLOWED,
    doc = "Collects the source files, base images and Nix store paths a target is built from.",
)

def _source_name(f):
    """A source file as users name it: `app/hello.c`, or `@repo//path` in another repository."""
    if not f.owner.repo_name:
        return f.short_path
    return "@%s//%s" % (repo_display_name(f.owner.repo_name), f.short_path.split("/", 2)[2])

def _source_arg(f):
    return "--source=%s=%s" % (_source_name(f), f.path)

_DOC = """SLSA provenance of an image, from the Bazel graph: `<name>.intoto.json`.

```starlark
image_provenance(
    name = "provenance",
    image = ":image",
)
```

The file is an in-toto Statement (v1) whose predicate is SLSA provenance v1:

- `subject`: the image, named by its label, with its manifest's sha256.
- `predicate.buildDefinition.resolvedDependencies`: every source file the image's targets
  were built from (the layers' files, the sources of the binaries in them, Dockerfiles and
  their contexts, found by following `srcs`, `deps`, `data`, `layers`, `base` and the like),
  each with its sha256 and named as in a label (`app/hello.c`, `@repo//path`); the base
  images its layers come from (`REGISTRY/REPOSITORY` with an `oci://` URI, or the repository
  rule that imported it, each with the manifest's sha256); and the Nix store paths of its Nix
  layers.
- `predicate.runDetails.builder`: rules_image and Bazel, with their versions.

No field depends on the time or the machine: the same build gives the same bytes. Files that
only the toolchains bring (compilers, the tool itself) are not listed.
"""

def _image_provenance_impl(ctx):
    image = ctx.attr.image[ImageManifestInfo]
    inputs = ctx.attr.image[_BuildInputsInfo]
    out = ctx.actions.declare_file(ctx.label.name + ".intoto.json")
    args = ctx.actions.args()
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    args.add(label_arg(ctx.label))
    args.add("--target", display_label(ctx.attr.image.label))
    args.add("--digest-file", image.digest)
    args.add_all(inputs.sources, map_each = _source_arg)
    args.add_all(inputs.base_images, format_each = "--base-image=%s")
    args.add_all(inputs.store_paths, format_each = "--store-path=%s")
    args.add("--bazel-version", bazel_version(ctx) or "unknown")
    args.add("--output", out)
    ctx.actions.run(
        executable = image_tool(ctx),
        arguments = ["provenance", args],
        inputs = depset([image.digest], transitive = [inputs.sources]),
        outputs = [out],
        mnemonic = "ImageProvenance",
        progress_message = "Writing the provenance of %s" % display_label(ctx.attr.image.label),
        toolchain = TOOLCHAIN_TYPE,
    )
    return [DefaultInfo(files = depset([out])), ImageArtifactInfo(file = out, artifact_type = "application/vnd.in-toto+json")]

image_provenance = rule(
    implementation = _image_provenance_impl,
    doc = _DOC,
    attrs = {
        "image": attr.label(
            mandatory = True,
            providers = [ImageManifestInfo],
            aspects = [_build_inputs_aspect],
            doc = "The image (ImageManifestInfo).",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)
