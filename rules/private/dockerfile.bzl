"""Images from Dockerfiles: the `dockerfile.build` module extension and its repository rule.

The repository rule builds the Dockerfile with the builder found on the machine (Docker's
legacy builder or BuildKit through buildx, Podman or Buildah), exports the result as a
tarball and imports it like `image_import`. By default the import is normalized, so the same
Dockerfile and context give the same digest on every rebuild whenever the RUN steps produce
the same files. The repository is re-created when the Dockerfile, a file of the context or an
attribute changes, and only then.
"""

load(":import.bzl", "IMPORT_ATTRS", "import_image", "watch_source")

_BUILDERS = ["auto", "docker", "docker-legacy", "docker-buildx", "podman", "buildah"]

# What builders print when a FROM image is neither local nor pullable.
_MISSING_BASE = [
    "pull access denied",  # legacy builder
    "failed to resolve source metadata",  # BuildKit
    "failed to create LLB definition",  # BuildKit, registry unreachable
    "initializing source docker://",  # Podman, Buildah
    "manifest unknown",
]

def _run(rctx, what, cmd, env = {}, step = None):
    if step:
        rctx.report_progress(step)
    result = rctx.execute(cmd, environment = env, timeout = 7200, quiet = True)
    if result.return_code != 0:
        output = result.stdout[-4000:] + result.stderr[-8000:]
        hint = ""
        if [m for m in _MISSING_BASE if m in output]:
            hint = ("\nA FROM image is missing: it must be in the builder's image store or in a " +
                    "registry it can reach. For an image built by rules_image, `bazel run` its " +
                    "image_load target first (with `daemon = \"podman\"` for Podman and Buildah).")
        fail("%s: `%s` failed (exit %d):\n%s%s" % (
            what,
            " ".join([str(c) for c in cmd]),
            result.return_code,
            output,
            hint,
        ))
    return result

def _works(rctx, cmd):
    return rctx.execute(cmd, timeout = 60).return_code == 0

def _detect_builder(rctx, what, wanted):
    """Returns (builder, executable) for `wanted`, checking that it can build here."""
    docker = rctx.which("docker")
    podman = rctx.which("podman")
    buildah = rctx.which("buildah")
    docker_ok = docker and _works(rctx, [docker, "version", "--format", "{{.Server.Version}}"])
    buildx_ok = docker_ok and _works(rctx, [docker, "buildx", "version"])
    if wanted == "auto":
        if docker_ok:
            return ("docker-buildx" if buildx_ok else "docker-legacy", docker)
        if podman and _works(rctx, [podman, "info"]):
            return ("podman", podman)
        if buildah and _works(rctx, [buildah, "version"]):
            return ("buildah", buildah)
        fail("%s: no container builder found: need a running Docker engine (`docker version` " % what +
             "reaches the daemon), Podman or Buildah on PATH of the machine running Bazel")
    if wanted.startswith("docker"):
        if not docker_ok:
            fail("%s: builder %r: `docker version` cannot reach a Docker engine (is dockerd running, DOCKER_HOST set?)" % (what, wanted))
        if wanted == "docker":
            return ("docker-buildx" if buildx_ok else "docker-legacy", docker)
        if wanted == "docker-buildx" and not buildx_ok:
            fail("%s: builder \"docker-buildx\": `docker buildx version` fails; install the buildx plugin or use \"docker-legacy\"" % what)
        return (wanted, docker)
    exe = podman if wanted == "podman" else buildah
    if not exe:
        fail("%s: builder %r is not on PATH" % (what, wanted))
    return (wanted, exe)

def _build_flags(rctx, dockerfile, context):
    flags = ["-f", str(dockerfile)]
    if rctx.attr.target:
        flags += ["--target", rctx.attr.target]
    if rctx.attr.platform:
        flags += ["--platform", rctx.attr.platform]
    if rctx.attr.network:
        flags += ["--network", rctx.attr.network]
    if rctx.attr.no_cache:
        flags.append("--no-cache")
    args = dict(rctx.attr.build_args)
    if rctx.attr.normalize and "SOURCE_DATE_EPOCH" not in args:
        args["SOURCE_DATE_EPOCH"] = str(rctx.attr.source_date_epoch)
    for key in sorted(args):
        flags += ["--build-arg", "%s=%s" % (key, args[key])]
    return flags + [str(context)]

def _dockerfile_repo_impl(rctx):
    what = "dockerfile.build(name = %r)" % rctx.attr.image_name
    dockerfile = rctx.path(rctx.attr.dockerfile)
    if not dockerfile.exists:
        fail("%s: Dockerfile %s does not exist" % (what, rctx.attr.dockerfile))
    context = rctx.path(rctx.attr.context) if rctx.attr.context else dockerfile.dirname
    if not context.exists:
        fail("%s: context %s does not exist" % (what, rctx.attr.context))
    if not context.is_dir:
        context = context.dirname

    # Re-run when (and only when) the Dockerfile or a file of the context changes.
    watch_source(rctx, dockerfile)
    watch_source(rctx, context)

    builder, exe = _detect_builder(rctx, what, rctx.attr.builder)
    tag = "localhost/rules_image_dockerfile/%s:build" % rctx.attr.image_name.lower()
    archive = rctx.path("build.tar")
    flags = _build_flags(rctx, dockerfile, context)
    env = {}
    if builder.startswith("docker"):
        if builder == "docker-legacy":
            build, env = [exe, "build"], {"DOCKER_BUILDKIT": "0"}
        else:
            build = [exe, "buildx", "build", "--load"]
        export = [exe, "save", "-o", archive, tag]
        remove = [exe, "rmi", "--no-prune", tag]  # keeps the build cache (untagged parents)
    elif builder == "podman":
        build = [exe, "build"]
        export = [exe, "save", "--format", "oci-archive", "-o", archive, tag]
        remove = [exe, "rmi", tag]
    else:
        # --layers: one layer per step, as the other builders do (Buildah squashes by default).
        build = [exe, "build", "--layers"]
        export = [exe, "push", tag, "oci-archive:%s" % archive]
        remove = [exe, "rmi", tag]
    _run(rctx, what, build + ["-t", tag] + flags, env = env, step = "Building %s with %s" % (rctx.attr.dockerfile, builder))
    _run(rctx, what, export)
    rctx.execute(remove)

    import_image(rctx, what, archive)
    rctx.delete(archive)
    rctx.file("builder.txt", builder + "\n")

_BUILD_ATTRS = {
    "dockerfile": attr.label(mandatory = True, doc = "The Dockerfile."),
    "context": attr.label(
        doc = "The build context: a directory, or a file whose directory is the context. " +
              "Default: the Dockerfile's directory.",
    ),
    "target": attr.string(doc = "The stage to build (`--target`); default the last stage."),
    "build_args": attr.string_dict(doc = "Build arguments (`--build-arg KEY=VALUE`)."),
    "platform": attr.string(doc = "Platform to build for (`--platform os/arch[/variant]`); default the builder's."),
    "builder": attr.string(
        default = "auto",
        values = _BUILDERS,
        doc = "Which builder runs the build: \"docker\" (buildx when installed, else the legacy " +
              "builder), \"docker-legacy\", \"docker-buildx\", \"podman\", \"buildah\", or " +
              "\"auto\" (the first of docker, podman, buildah that works here).",
    ),
    "network": attr.string(doc = "Network mode of RUN steps (`--network`), e.g. \"none\"."),
    "no_cache": attr.bool(doc = "Do not use the builder's layer cache (`--no-cache`)."),
}

_NORMALIZE = attr.bool(
    default = True,
    doc = "Rewrite the built image deterministically (on by default): layer entries " +
          "sorted, mtimes clamped to `source_date_epoch`, owner names dropped, layers " +
          "recompressed with `compress`, `created`/history timestamps set to " +
          "`source_date_epoch`, and build-host fields (container ID, parent image ID) " +
          "removed. `SOURCE_DATE_EPOCH` is also passed as a build argument.",
)

dockerfile_repo = repository_rule(
    implementation = _dockerfile_repo_impl,
    doc = "Builds a Dockerfile and imports the result; see `dockerfile.build`.",
    attrs = dict(
        IMPORT_ATTRS,
        image_name = attr.string(mandatory = True, doc = "The name given to dockerfile.build."),
        normalize = _NORMALIZE,
        **_BUILD_ATTRS
    ),
)

def _dockerfile_impl(mctx):
    for mod in mctx.modules:
        for build in mod.tags.build:
            dockerfile_repo(
                name = build.name,
                image_name = build.name,
                dockerfile = build.dockerfile,
                context = build.context,
                target = build.target,
                build_args = build.build_args,
                platform = build.platform,
                builder = build.builder,
                network = build.network,
                no_cache = build.no_cache,
                normalize = build.normalize,
                source_date_epoch = build.source_date_epoch,
                compress = build.compress,
            )

_TAG_ATTRS = dict(
    _BUILD_ATTRS,
    name = attr.string(mandatory = True, doc = "Repository name; the image is `@<name>//:image`."),
    normalize = _NORMALIZE,
    source_date_epoch = IMPORT_ATTRS["source_date_epoch"],
    compress = IMPORT_ATTRS["compress"],
)

dockerfile = module_extension(
    implementation = _dockerfile_impl,
    doc = """Images built from Dockerfiles, as Bazel targets.

```starlark
dockerfile = use_extension("@rules_image//rules:extensions.bzl", "dockerfile")
dockerfile.build(
    name = "web",
    dockerfile = "//web:Dockerfile",
    build_args = {"NODE_ENV": "production"},
)
use_repo(dockerfile, "web")
```

Then `@web//:image` is an image (ImageManifestInfo) that `image_manifest(base = ...)`,
`image_push` and `image_load` take like any other. The build runs when the repository is
created: again only when the Dockerfile, a file of the context or an attribute changes. The
images named in `FROM` must be available to the builder (pulled, or loaded with a
rules_image `image_load` target before the build).
""",
    tag_classes = {
        "build": tag_class(
            doc = "Builds one Dockerfile and imports the resulting image.",
            attrs = _TAG_ATTRS,
        ),
    },
)
