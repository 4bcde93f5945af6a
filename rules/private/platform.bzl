"""OCI os/architecture/variant of the target platform, from Bazel platform constraints."""

visibility(["//rules/..."])

# constraint attribute name -> (OCI field, value, variant)
_OS = {
    "_os_linux": "linux",
    "_os_windows": "windows",
    "_os_freebsd": "freebsd",
    "_os_macos": "darwin",
}

_CPU = {
    "_cpu_x86_64": ("amd64", ""),
    "_cpu_aarch64": ("arm64", "v8"),
    "_cpu_armv7": ("arm", "v7"),
    "_cpu_x86_32": ("386", ""),
    "_cpu_ppc64le": ("ppc64le", ""),
    "_cpu_s390x": ("s390x", ""),
    "_cpu_riscv64": ("riscv64", ""),
}

PLATFORM_ATTRS = {
    "_os_linux": attr.label(default = "@platforms//os:linux"),
    "_os_windows": attr.label(default = "@platforms//os:windows"),
    "_os_freebsd": attr.label(default = "@platforms//os:freebsd"),
    "_os_macos": attr.label(default = "@platforms//os:macos"),
    "_cpu_x86_64": attr.label(default = "@platforms//cpu:x86_64"),
    "_cpu_aarch64": attr.label(default = "@platforms//cpu:aarch64"),
    "_cpu_armv7": attr.label(default = "@platforms//cpu:armv7"),
    "_cpu_x86_32": attr.label(default = "@platforms//cpu:x86_32"),
    "_cpu_ppc64le": attr.label(default = "@platforms//cpu:ppc64le"),
    "_cpu_s390x": attr.label(default = "@platforms//cpu:s390x"),
    "_cpu_riscv64": attr.label(default = "@platforms//cpu:riscv64"),
}

def oci_platform(ctx):
    """Maps the target platform's os/cpu constraints to OCI platform fields.

    Args:
        ctx: rule context of a rule with PLATFORM_ATTRS.

    Returns:
        struct(os, architecture, variant)
    """
    os = None
    for attr_name, value in _OS.items():
        if ctx.target_platform_has_constraint(getattr(ctx.attr, attr_name)[platform_common.ConstraintValueInfo]):
            os = value
    arch = None
    for attr_name, value in _CPU.items():
        if ctx.target_platform_has_constraint(getattr(ctx.attr, attr_name)[platform_common.ConstraintValueInfo]):
            arch = value
    if os == None or arch == None:
        fail("%s: cannot tell the image's os/architecture from the target platform; build with a --platforms=... " % ctx.label +
             "that has @platforms//os and @platforms//cpu constraints (supported cpus: x86_64, aarch64, armv7, x86_32, ppc64le, s390x, riscv64)")
    return struct(os = os, architecture = arch[0], variant = arch[1])
