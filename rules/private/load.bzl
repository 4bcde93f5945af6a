"""image_load: `bazel run` streams an image into a local Docker or Podman engine."""

load(":launcher.bzl", "rlocation_path", "write_launcher")
load(":manifest.bzl", "image_inputs")
load(":providers.bzl", "ImageManifestInfo")
load(":toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")
load(":util.bzl", "label_arg")

def _image_load_impl(ctx):
    image = ctx.attr.image[ImageManifestInfo]
    tool = image_tool(ctx)
    args = [label_arg(ctx.label), "--daemon", ctx.attr.daemon]
    if ctx.attr.tag:
        args += ["--tag", ctx.attr.tag]
    args += ["--manifest", rlocation_path(ctx, image.manifest)]
    args += ["--config", rlocation_path(ctx, image.config)]
    for layer in image.layers:
        args += ["--blob", rlocation_path(ctx, layer.blob)]
    launcher = write_launcher(ctx, tool, "load", args)
    runfiles = ctx.runfiles(files = [tool] + image_inputs(image))
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

image_load = rule(
    implementation = _image_load_impl,
    doc = """`bazel run` loads the image into a local container engine, streamed with no temporary file.

```starlark
image_load(name = "load", image = ":image", tag = "example/app:latest")
```

`bazel run //app:load` then `docker run --rm example/app:latest`. Extra arguments after `--`
are passed to the tool, e.g. `-- --tag other:tag`.
""",
    attrs = {
        "image": attr.label(
            mandatory = True,
            providers = [ImageManifestInfo],
            doc = "The image to load (an image_manifest or any target providing ImageManifestInfo).",
        ),
        "tag": attr.string(doc = "Reference the loaded image is tagged with, e.g. \"example/app:latest\"."),
        "daemon": attr.string(
            default = "docker",
            values = ["docker", "podman"],
            doc = "Engine to load into: `docker load` or `podman load` (the CLI must be on PATH; " +
                  "override with RULES_IMAGE_DOCKER / RULES_IMAGE_PODMAN).",
        ),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
