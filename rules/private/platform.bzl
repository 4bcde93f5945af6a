"""Image platforms: the target platform as OCI os/architecture/variant, and THE matcher.

`select_platform` picks the image of an index for a wanted platform with the rules stated in
`platform_cases.bzl` (the tool's `Platform::select` follows the same rules and cases).
`image_manifest` uses it to pick the image of a `base` that is an index.
"""

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
        a platform().
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
    return platform(os, arch[0], arch[1])

# ------------------------------------------------------------------ platforms and the matcher

# The variant an image without one is for (as containerd assumes).
_DEFAULT_VARIANT = {"amd64": "v1", "arm64": "v8", "arm": "v7"}

# Architectures whose variants are numbered levels that run the code of every older level
# (amd64 microarchitecture levels, 32-bit arm versions) -> their oldest level.
_OLDEST_LEVEL = {"amd64": 1, "arm": 5}

def platform(os, architecture, variant = ""):
    """An image platform.

    Args:
        os: e.g. "linux".
        architecture: e.g. "arm64".
        variant: e.g. "v8", or "" for none.

    Returns:
        struct(os, architecture, variant), which `select_platform` and `platform_string` take
        (as they take ImageManifestInfo).
    """
    return struct(os = os, architecture = architecture, variant = variant or "")

def parse_platform(text):
    """Parses `os/architecture[/variant]`.

    Args:
        text: string.

    Returns:
        a platform(), or None when `text` has another shape.
    """
    parts = text.split("/")
    if len(parts) not in (2, 3) or "" in parts:
        return None
    return platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

def platform_string(p):
    """`os/architecture[/variant]`.

    Args:
        p: a platform(), or anything with os, architecture and variant (ImageManifestInfo).

    Returns:
        string.
    """
    return "/".join([p.os, p.architecture] + ([p.variant] if p.variant else []))

def _effective_variant(p):
    return p.variant or _DEFAULT_VARIANT.get(p.architecture, "")

def _level(variant):
    """The number of a `v<N>` variant, or None."""
    digits = variant[1:]
    if not variant.startswith("v") or not digits.isdigit():
        return None
    return int(digits.lstrip("0") or "0")

def _acceptable_variants(want):
    """The variants an image may have to run on `want`, best first."""
    own = _effective_variant(want)
    level = _level(own)
    oldest = _OLDEST_LEVEL.get(want.architecture)
    if level != None and oldest != None and level >= oldest:
        return ["v%d" % n for n in range(level, oldest - 1, -1)]
    return [own]

def _is_image(p):
    # Attestations (unknown/unknown) and descriptors without os or architecture are no images.
    return p.os != "" and p.os != "unknown" and p.architecture != ""

def select_platform(candidates, want):
    """The position of the image to use for `want` among `candidates`, or None.

    The rules (see platform_cases.bzl): os and architecture equal; a missing variant is the
    architecture's default one; older levels of amd64 and arm are accepted, the newest first;
    the first in order wins among equals; attestations never match.

    Args:
        candidates: list of platform()s or ImageManifestInfos, in index order.
        want: platform().

    Returns:
        int or None.
    """
    for variant in _acceptable_variants(want):
        for i, candidate in enumerate(candidates):
            if (_is_image(candidate) and candidate.os == want.os and
                candidate.architecture == want.architecture and
                _effective_variant(candidate) == variant):
                return i
    return None
