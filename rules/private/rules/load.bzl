"""image_load: `bazel run` streams an image into a local Docker or Podman engine."""

load("//rules/private:image_args.bzl", "image_attr", "image_info", "is_index", "launcher_image_args")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:launcher.bzl", "write_launcher")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def _image_load_impl(ctx):
    tool = image_tool(ctx)
    args = [label_arg(ctx.label), "--daemon", ctx.attr.daemon]
    if ctx.attr.tag:
        args += ["--tag", ctx.attr.tag]
    image = image_info(ctx.attr.image)
    if ctx.attr.platform:
        if not is_index(image):
            fail("%s: `platform` picks an image of an index, but %s is a single image" %
                 (display_label(ctx.label), display_label(ctx.attr.image.label)))
        args += ["--platform", ctx.attr.platform]

    # For an index, the tool loads the image for the host platform (or for `platform`);
    # every platform's files are in the runfiles.
    image_args = launcher_image_args(ctx, image, "load")
    args += image_args.arguments
    files = [tool] + image_args.files
    launcher = write_launcher(ctx, tool, "load", args)
    runfiles = ctx.runfiles(files = files)
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

image_load = rule(
    implementation = _image_load_impl,
    doc = """`bazel run` loads the image into a local container engine, streamed with no temporary file.

```starlark
image_load(name = "load", image = ":image", tag = "example/app:latest")
```

`bazel run //app:load` then `docker run --rm example/app:latest`. Extra arguments after `--`
are passed to the tool, e.g. `-- --tag other:tag`. Docker engines without zstd support get
zstd layers decompressed on the fly; the loaded image keeps its config, so its image ID is the
config digest.
""",
    attrs = {
        "image": image_attr(
            "The image to load: an image_manifest (or any target providing " +
            "ImageManifestInfo), or an image_index, of which the image for the host " +
            "platform (or for `platform`) is loaded.",
        ),
        "platform": attr.string(
            doc = "For an image_index: the image to load, as \"os/arch[/variant]\" (e.g. " +
                  "\"linux/arm64\"); default: the host's platform. Not allowed for a single image.",
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
