"""The toolchain that carries the rules_image tool binary."""

load(":providers.bzl", "ImageToolInfo")

# Loaded by the BUILD file of the generated @rules_image_toolchains repository.
visibility("public")

TOOLCHAIN_TYPE = "@rules_image//rules:toolchain_type"

def _image_toolchain_impl(ctx):
    tool = ctx.executable.tool
    return [
        platform_common.ToolchainInfo(image_tool = ImageToolInfo(tool = tool, bazel_version = ctx.attr.bazel_version)),
        DefaultInfo(files = depset([tool])),
    ]

image_toolchain = rule(
    implementation = _image_toolchain_impl,
    doc = "Declares a rules_image tool binary for use in a `toolchain()` of type `@rules_image//rules:toolchain_type`.",
    attrs = {
        "tool": attr.label(
            doc = "The rules-image-tool executable for the execution platform.",
            mandatory = True,
            executable = True,
            allow_single_file = True,
            cfg = "exec",
        ),
        "bazel_version": attr.string(doc = "The Bazel version of the build (for provenance); empty if unknown."),
    },
)

def _image_toolchain_unavailable_impl(ctx):
    fail(("rules_image: no rules-image-tool binary for the exec platform %s: %s. " +
          "On a machine of that platform, build it from source with `tool.build_from_source()` " +
          "(MODULE.bazel; needs cargo), or pin binaries you built with tools/release.sh in a lock " +
          "file of your own: `tool.prebuilt(lock = \"//:tool.lock.json\")`.") % (ctx.attr.platform, ctx.attr.reason))

image_toolchain_unavailable = rule(
    implementation = _image_toolchain_unavailable_impl,
    doc = """Stands for a platform without a rules-image-tool binary: analysing it fails with a message
naming the platform and how to get a binary. Used by the generated toolchains repository, so an
action whose exec platform has no binary fails clearly rather than with "no matching toolchains".""",
    attrs = {
        "platform": attr.string(mandatory = True, doc = "The target triple of the platform, e.g. aarch64-apple-darwin."),
        "reason": attr.string(mandatory = True, doc = "Why there is no binary, e.g. the lock file that lacks one."),
    },
)

def bazel_version(ctx):
    """The Bazel version the rules_image toolchain was set up by (empty if unknown).

    Args:
        ctx: the rule context of a rule that declares TOOLCHAIN_TYPE.

    Returns:
        string.
    """
    return ctx.toolchains[TOOLCHAIN_TYPE].image_tool.bazel_version or ""

def image_tool(ctx):
    """Returns the tool File of the resolved rules_image toolchain.

    Args:
        ctx: the rule context of a rule that declares TOOLCHAIN_TYPE.

    Returns:
        File: the rules-image-tool executable.
    """
    return ctx.toolchains[TOOLCHAIN_TYPE].image_tool.tool
