"""The repository rule behind `dockerfile.build`: a Dockerfile built and imported as an image.

It builds the Dockerfile with the builder found on the machine (Docker's legacy builder or
BuildKit through buildx, Podman or Buildah), exports the result as a tarball and imports it
like `image_import`. By default the import is normalized, so the same Dockerfile and context
give the same digest on every rebuild whenever the RUN steps produce the same files. The
repository is re-created when the Dockerfile, a file of the context or an attribute changes,
and only then.
"""

load(":import.bzl", "IMPORT_ATTRS", "import_image", "watch_source")
load(":repo_names.bzl", "apparent_name")

visibility(["//rules/..."])

_BUILDERS = ["auto", "docker", "docker-legacy", "docker-buildx", "podman", "buildah"]

# What builders print when a FROM image is neither local nor pullable.
_MISSING_BASE = [
    "pull access denied",  # legacy builder
    "failed to resolve source metadata",  # BuildKit
    "failed to create LLB definition",  # BuildKit, registry unreachable
    "initializing source docker://",  # Podman, Buildah
    "manifest unknown",
]

_MISSING_BASE_HINT = ("\nA FROM image is missing: it must be in the builder's image store or in a " +
                      "registry it can reach. For an image built by rules_image, `bazel run` its " +
                      "image_load target first (with `daemon = \"podman\"` for Podman and Buildah).")

def failure_hint(output):
    """A hint to add to a failed build's output, or "".

    Args:
        output: what the builder printed.

    Returns:
        string.
    """
    if [m for m in _MISSING_BASE if m in output]:
        return _MISSING_BASE_HINT
    return ""

def _run(rctx, what, cmd, env = {}, step = None):
    if step:
        rctx.report_progress(step)
    result = rctx.execute(cmd, environment = env, timeout = 7200, quiet = True)
    if result.return_code != 0:
        output = result.stdout[-4000:] + result.stderr[-8000:]
        fail("%s: `%s` failed (exit %d):\n%s%s" % (
            what,
            " ".join([str(c) for c in cmd]),
            result.return_code,
            output,
            failure_hint(output),
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

def build_flags(attrs, dockerfile, context):
    """The builder's flags after `build`: Dockerfile, options, build arguments, context.

    Args:
        attrs: target, platform, network, no_cache, build_args, normalize, source_date_epoch.
        dockerfile: the Dockerfile's path.
        context: the context directory's path.

    Returns:
        list of strings.
    """
    flags = ["-f", str(dockerfile)]
    if attrs.target:
        flags += ["--target", attrs.target]
    if attrs.platform:
        flags += ["--platform", attrs.platform]
    if attrs.network:
        flags += ["--network", attrs.network]
    if attrs.no_cache:
        flags.append("--no-cache")
    args = dict(attrs.build_args)
    if attrs.normalize and "SOURCE_DATE_EPOCH" not in args:
        args["SOURCE_DATE_EPOCH"] = str(attrs.source_date_epoch)
    for key in sorted(args):
        flags += ["--build-arg", "%s=%s" % (key, args[key])]
    return flags + [str(context)]

def builder_commands(builder, exe, tag, archive):
    """How `builder` builds, exports (to `archive`) and removes the image tagged `tag`.

    Args:
        builder: "docker-legacy", "docker-buildx", "podman" or "buildah".
        exe: the builder's executable.
        tag: the image's temporary tag.
        archive: where the export goes.

    Returns:
        struct(build = list, env = dict, export = list, remove = list); `build` takes the
        flags of build_flags after `-t tag`.
    """
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
    return struct(build = build, env = env, export = export, remove = remove)

def _dockerfile_repo_impl(rctx):
    name = apparent_name(rctx)
    what = "dockerfile.build(name = %r)" % name
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
    tag = "localhost/rules_image_dockerfile/%s:build" % name.lower()
    archive = rctx.path("build.tar")
    commands = builder_commands(builder, exe, tag, archive)
    _run(
        rctx,
        what,
        commands.build + ["-t", tag] + build_flags(rctx.attr, dockerfile, context),
        env = commands.env,
        step = "Building %s with %s" % (rctx.attr.dockerfile, builder),
    )
    _run(rctx, what, commands.export)
    rctx.execute(commands.remove)

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

# The attributes of a `dockerfile.build` tag (and of the repository rule, with IMPORT_ATTRS).
DOCKERFILE_ATTRS = dict(
    _BUILD_ATTRS,
    normalize = _NORMALIZE,
    source_date_epoch = IMPORT_ATTRS["source_date_epoch"],
    compress = IMPORT_ATTRS["compress"],
)

dockerfile_repo = repository_rule(
    implementation = _dockerfile_repo_impl,
    doc = "Builds a Dockerfile and imports the result; see `dockerfile.build`.",
    attrs = dict(IMPORT_ATTRS, **DOCKERFILE_ATTRS),
)
