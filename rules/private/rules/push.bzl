"""image_push: `bazel run` pushes an image to one or more registries."""

load("//rules/private:image_args.bzl", "REMOTE_CACHE_ATTRS", "image_attr", "image_info", "launcher_image_args")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:launcher.bzl", "rlocation_path", "write_launcher")
load("//rules/private:providers.bzl", "ImageArtifactInfo", "ImagePushInfo")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def _destination(ctx, registry, repository):
    if not registry or not repository:
        fail("%s: a destination needs both a registry and a repository (got %r / %r)" %
             (display_label(ctx.label), registry, repository))
    return registry + "/" + repository

def _image_push_impl(ctx):
    tool = image_tool(ctx)

    destinations = []
    if ctx.attr.registry or ctx.attr.repository:
        destinations.append(_destination(ctx, ctx.attr.registry, ctx.attr.repository))
    for d in ctx.attr.destinations:
        if "/" not in d:
            fail("%s: destination %r must be REGISTRY/REPOSITORY" % (display_label(ctx.label), d))
        destinations.append(d)

    tags = ([ctx.attr.tag] if ctx.attr.tag else []) + ctx.attr.tag_list
    args = [label_arg(ctx.label)]
    for d in destinations:
        args += ["--default-destination", d]
    for t in tags:
        args += ["--default-tag", t]

    # Shallow layers of pulled images are named `remote:`: the push mounts or copies them from
    # their source registry, so their bytes are never downloaded here.
    image = launcher_image_args(ctx, image_info(ctx.attr.image), "push", remote = True)
    args += image.arguments
    files = [tool] + image.files

    # Tags may name workspace status keys ({STABLE_GIT_COMMIT}, {BUILD_TIMESTAMP}, ...).
    if any(["{" in t for t in tags]):
        for status in [ctx.info_file, ctx.version_file]:
            args += ["--status-file", rlocation_path(ctx, status)]
            files.append(status)

    # Attached after the image, as artifacts whose subject is its manifest.
    for r in ctx.attr.referrers:
        artifact = r[ImageArtifactInfo]
        args.append("--referrer=%s=%s" % (artifact.artifact_type, rlocation_path(ctx, artifact.file)))
        files.append(artifact.file)

    if ctx.attr.sign_key:
        args.append("--sign-key=" + ctx.attr.sign_key)
        if not ctx.attr.sign_transparency_log:
            args.append("--no-transparency-log")

    launcher = write_launcher(ctx, tool, "push", args)
    runfiles = ctx.runfiles(files = files)
    return [
        DefaultInfo(executable = launcher, runfiles = runfiles),
        ImagePushInfo(arguments = args, runfiles = runfiles),
    ]

image_push = rule(
    implementation = _image_push_impl,
    doc = """`bazel run` pushes the image: every blob the registry lacks, then the manifest by digest, then the tags.

```starlark
image_push(
    name = "push",
    image = ":image",
    registry = "ghcr.io",
    repository = "example/app",
    tag_list = ["latest", "{STABLE_GIT_COMMIT}", "sha-{IMAGE_DIGEST_SHORT}"],
    destinations = ["registry.internal.example:5000/deploy/app"],
)
```

`bazel run //app:push` pushes to every destination, reading each blob once and uploading only
what a registry is missing: HEAD, then a cross-repository mount when the blob is in another
repository of that registry, else an upload: one PUT up to 16 MiB, one streaming PATCH above
(largest blobs first, `--jobs` at a time); a PATCH cut off mid-way resumes at the offset the
registry reports having, in the same upload session. `--chunk-size BYTES` sends PATCH chunks of
that size instead, for registries or proxies that limit request bodies. The pushed bytes are
hashed on the way and must match the manifest; afterwards a HEAD checks what the registry holds.
A re-push of an unchanged image uploads nothing, and no tag moves unless every blob arrived. Layers of pulled base images are never downloaded: they are mounted (same registry)
or streamed registry to registry, verified on the way.

Override at run time: `bazel run //app:push -- --registry localhost:5000 --repository test/app --tag dev`
(`--registry`/`--repository` replace all destinations, `--tag` replaces the tags); also
`--summary-json FILE` (digest, references, bytes uploaded/skipped/mounted per destination),
`--jobs N`, `--chunk-size BYTES`, `--insecure-http`.

Credentials come from Docker's `config.json` (`auths`, `credsStore`, `credHelpers`) or
podman's `auth.json` (`REGISTRY_AUTH_FILE`). TLS is verified against the system roots and
`SSL_CERT_FILE`; plain HTTP is used only for loopback registries unless `-- --insecure-http`.
""",
    attrs = REMOTE_CACHE_ATTRS | {
        "image": image_attr(
            "The image to push: an image_manifest, or an image_index (pushed whole: " +
            "every platform's image, then the index by digest, then the tags, which " +
            "point at the index).",
        ),
        "registry": attr.string(doc = "Registry host[:port] of the main destination, e.g. \"ghcr.io\"."),
        "repository": attr.string(doc = "Repository of the main destination, e.g. \"example/app\"."),
        "destinations": attr.string_list(
            doc = "More destinations as \"REGISTRY/REPOSITORY\", pushed in the same run (e.g. a public and a private registry).",
        ),
        "referrers": attr.label_list(
            providers = [ImageArtifactInfo],
            doc = "Artifacts to attach to the pushed image (OCI 1.1 referrers): `image_sbom` and " +
                  "`image_provenance` targets. Each is pushed as an artifact manifest whose " +
                  "`subject` is the image, after it; on registries without the referrers API " +
                  "(distribution 2.8), the tag `sha256-<hex of the image digest>` lists them, " +
                  "as the distribution spec's fallback says.",
        ),
        "sign_key": attr.string(
            doc = "Sign each pushed image with cosign and this key: a key file (relative to where " +
                  "`bazel run` is started), or a cosign key URI such as `env://COSIGN_PRIVATE_KEY` " +
                  "or `awskms://...`. The key's password is read by cosign from `COSIGN_PASSWORD`; " +
                  "neither is ever in an action key or the output. The signature is pushed after " +
                  "the image and its referrers and before any tag. cosign comes from " +
                  "`RULES_IMAGE_COSIGN` or PATH (or `-- --cosign PATH`); also given at run time " +
                  "with `-- --sign-key KEY`.",
        ),
        "sign_transparency_log": attr.bool(
            default = True,
            doc = "Record signatures in the transparency log of cosign's signing config (the " +
                  "public Rekor by default, which needs the internet). False: no log, for private " +
                  "keys and registries (verify with `cosign verify --insecure-ignore-tlog`).",
        ),
        "tag": attr.string(doc = "A tag to push, e.g. \"latest\". See `tag_list` for templates."),
        "tag_list": attr.string_list(
            doc = "Tags to push. `{KEY}` is replaced by a workspace status value (build with " +
                  "`--stamp`), `{IMAGE_DIGEST}` by `sha256-<hex>` and `{IMAGE_DIGEST_SHORT}` by " +
                  "the first 12 hex digits of the manifest digest.",
        ),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
