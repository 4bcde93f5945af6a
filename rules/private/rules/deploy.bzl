"""multi_deploy: `bazel run` pushes many images and indexes in one run."""

load("//rules/private:labels.bzl", "label_arg")
load("//rules/private:launcher.bzl", "rlocation_path", "write_launcher")
load("//rules/private:providers.bzl", "ImagePushInfo")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def _multi_deploy_impl(ctx):
    tool = image_tool(ctx)
    args = [label_arg(ctx.label)]
    files = [tool]
    runfiles = []
    for i, target in enumerate(ctx.attr.pushes):
        push = target[ImagePushInfo]

        # One file per push with its arguments, one per line: the tool parses each like the
        # push's own command line, so a push deploys the same alone or here.
        spec = ctx.actions.declare_file("%s.push_%d.args" % (ctx.label.name, i))
        ctx.actions.write(spec, "\n".join(["--rlocation"] + push.arguments) + "\n")
        args += ["--push", rlocation_path(ctx, spec)]
        files.append(spec)
        runfiles.append(push.runfiles)
    launcher = write_launcher(ctx, tool, "deploy", args)
    return [DefaultInfo(
        executable = launcher,
        runfiles = ctx.runfiles(files = files).merge_all(runfiles),
    )]

multi_deploy = rule(
    implementation = _multi_deploy_impl,
    doc = """`bazel run` pushes several `image_push` targets in one run, as one deployment.

```starlark
multi_deploy(
    name = "deploy",
    pushes = ["//frontend:push", "//backend:push", "//backend:push_index"],
)
```

Every distinct blob of all the images is one piece of work, for every destination of every
push that needs it: read once, skipped where present, mounted within a registry, and uploaded
in parallel with the rest (`-- --jobs N`, default 4). Only when every blob arrived everywhere
are the manifests pushed by digest, and the tags last: if anything fails, no tag moves at any
destination. Each push keeps its own destinations and tags (`{KEY}` from the workspace status
under `--stamp`); the per-push overrides of `image_push` (`--registry`, `--tag`) do not apply
here. Prints one line per image and destination; `-- --summary-json FILE` writes what was
pushed where (`pushes[].destinations[]`, with per-destination byte counts).
""",
    attrs = {
        "pushes": attr.label_list(
            providers = [ImagePushInfo],
            mandatory = True,
            doc = "The `image_push` targets to push together.",
        ),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
