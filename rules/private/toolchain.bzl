"""The toolchain that carries the rules_image tool binary."""

load(":providers.bzl", "ImageToolInfo")

# Loaded by the BUILD file of the generated @rules_image_toolchains repository.
visibility("public")

TOOLCHAIN_TYPE = "@rules_image//rules:toolchain_type"

def _image_toolchain_impl(ctx):
    tool = ctx.executable.tool
    return [
        platform_common.ToolchainInfo(image_tool = ImageToolInfo(tool = tool)),
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
    },
)

def image_tool(ctx):
    """Returns the tool File of the resolved rules_image toolchain.

    Args:
        ctx: the rule context of a rule that declares TOOLCHAIN_TYPE.

    Returns:
        File: the rules-image-tool executable.
    """
    return ctx.toolchains[TOOLCHAIN_TYPE].image_tool.tool
