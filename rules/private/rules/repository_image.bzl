"""The rules that image repositories instantiate: `repository_image` and `repository_index`.

`images.pull`, `image_import` and `dockerfile.build` write one directory per image (see
`repo/repo_names.bzl`) and a BUILD file with one `repository_image` per image and, for an
index, one `repository_index` over them (written by `repo/image_repo.bzl`). A pulled image is
shallow: its layer blobs are fetched by actions, only when an action needs their bytes, and
pushes mount or copy them registry to registry. An imported image has every blob in the
repository, verified.
"""

load("//rules/private:labels.bzl", "label_arg")
load("//rules/private:providers.bzl", "ImageIndexInfo", "ImageManifestInfo", "LayerInfo")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

# Loaded by the BUILD files of generated image repositories.
visibility("public")

def _fetch_blob(ctx, source, layer):
    """Declares the blob of a shallow layer and the action that fetches it from `source`."""
    blob = ctx.actions.declare_file("%s/blobs/%s" % (ctx.label.name, layer["digest"].split(":")[-1]))
    args = ctx.actions.args()
    args.add(label_arg(ctx.label))
    args.add("--repository", source)
    args.add("--digest", layer["digest"])
    args.add("--size", str(layer["size"]))
    args.add("--output", blob)
    ctx.actions.run(
        executable = image_tool(ctx),
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
    return blob

def _repository_image_impl(ctx):
    source = ctx.attr.source or None
    blobs = {f.basename: f for f in ctx.files.blobs}  # a layer may appear twice in one image
    layers = []
    for i, layer in enumerate(json.decode(ctx.attr.layers)):
        hexdigest = layer["digest"].split(":")[-1]
        if hexdigest not in blobs:
            if not source:
                fail("%s: no blob for layer %s" % (ctx.label, layer["digest"]))
            blobs[hexdigest] = _fetch_blob(ctx, source, layer)
        metadata = ctx.actions.declare_file("%s/layer_%d.json" % (ctx.label.name, i))
        ctx.actions.write(metadata, json.encode(layer))
        layers.append(LayerInfo(
            blob = blobs[hexdigest],
            metadata = metadata,
            media_type = layer["media_type"],
            # Fetched by an action (cached like any other), or a file of the repository.
            in_remote_cache = not blobs[hexdigest].is_source,
            source = source,
            origin = ctx.attr.origin or None,
        ))
    platform = json.decode(ctx.attr.platform)
    return [
        DefaultInfo(files = depset([ctx.file.manifest, ctx.file.config])),
        ImageManifestInfo(
            manifest = ctx.file.manifest,
            config = ctx.file.config,
            digest = ctx.file.digest,
            descriptor = ctx.file.descriptor,
            layers = layers,
            os = platform["os"],
            architecture = platform["architecture"],
            variant = platform.get("variant", ""),
        ),
    ]

repository_image = rule(
    implementation = _repository_image_impl,
    doc = "An image that a repository rule wrote out (pulled, imported or built from a Dockerfile).",
    attrs = {
        "manifest": attr.label(allow_single_file = True, mandatory = True, doc = "The manifest."),
        "config": attr.label(allow_single_file = True, mandatory = True, doc = "The config."),
        "digest": attr.label(allow_single_file = True, mandatory = True, doc = "File with the manifest digest."),
        "descriptor": attr.label(allow_single_file = True, mandatory = True, doc = "The manifest's descriptor."),
        "layers": attr.string(mandatory = True, doc = "JSON list of {digest, diff_id, media_type, size}, in layer order."),
        "platform": attr.string(mandatory = True, doc = "JSON {os, architecture, variant?}."),
        "blobs": attr.label_list(
            allow_files = True,
            doc = "The layer blobs in the repository, named by their sha256 hex digest (imported images).",
        ),
        "origin": attr.string(
            doc = "Where the image comes from, as its layers' LayerInfo.origin (SBOMs): " +
                  "`REGISTRY/REPOSITORY@DIGEST`, or the repository rule and the digest.",
        ),
        "source": attr.string(
            doc = "`registry/repository` that layers not in `blobs` are fetched from, by an action " +
                  "and only when one needs their bytes (pulled images: shallow layers).",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)

def _repository_index_impl(ctx):
    return [
        DefaultInfo(files = depset([ctx.file.index])),
        ImageIndexInfo(
            index = ctx.file.index,
            digest = ctx.file.digest,
            manifests = [target[ImageManifestInfo] for target in ctx.attr.manifests],
        ),
    ]

repository_index = rule(
    implementation = _repository_index_impl,
    doc = "An image index that a repository rule wrote out, over one repository_image per platform.",
    attrs = {
        "index": attr.label(allow_single_file = True, mandatory = True, doc = "The index."),
        "digest": attr.label(allow_single_file = True, mandatory = True, doc = "File with the index digest."),
        "manifests": attr.label_list(
            mandatory = True,
            providers = [ImageManifestInfo],
            doc = "The index's images (repository_image targets), in index order.",
        ),
    },
)
