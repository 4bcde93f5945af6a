"""Repository rules that provide the rules_image tool: prebuilt (pinned) or built from source.

They also give repository rules the tool binary for the machine Bazel runs on: `host_tool`.
"""

load(":repo_names.bzl", "HOST_TOOL_PATH", "TOOLCHAINS_REPO", "TOOLCHAIN_RULES", "TOOL_NAME")

visibility(["//rules/..."])

# The binary for this machine, in the toolchains repository (MODULE.bazel `use_repo`s it).
_HOST_TOOL = Label("@%s//:%s" % (TOOLCHAINS_REPO, HOST_TOOL_PATH))

def host_tool(rctx):
    """The path of the rules-image-tool binary that runs on this machine, for repository rules.

    Args:
        rctx: repository_ctx.

    Returns:
        path.
    """
    return rctx.path(_HOST_TOOL)

# Bazel platform constraints of each platform a prebuilt binary may exist for.
PLATFORMS = {
    "x86_64-unknown-linux-gnu": ["@platforms//os:linux", "@platforms//cpu:x86_64"],
    "aarch64-unknown-linux-gnu": ["@platforms//os:linux", "@platforms//cpu:aarch64"],
    "x86_64-apple-darwin": ["@platforms//os:macos", "@platforms//cpu:x86_64"],
    "aarch64-apple-darwin": ["@platforms//os:macos", "@platforms//cpu:aarch64"],
}

def host_platform(rctx):
    """The PLATFORMS key of the machine a repository rule runs on.

    Args:
        rctx: repository_ctx or module_ctx.

    Returns:
        string: a target triple such as x86_64-unknown-linux-gnu.
    """
    arch = rctx.os.arch
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    name = rctx.os.name.lower()
    if name.startswith("linux"):
        return arch + "-unknown-linux-gnu"
    if name.startswith("mac"):
        return arch + "-apple-darwin"
    fail("rules_image: unsupported host OS %r" % rctx.os.name)

_BUILD_EXPORT = """\
exports_files(["{tool}"], visibility = ["//visibility:public"])
"""

def _prebuilt_tool_impl(rctx):
    rctx.download(
        url = rctx.attr.urls,
        output = TOOL_NAME,
        sha256 = rctx.attr.sha256,
        executable = True,
    )
    rctx.file("BUILD.bazel", _BUILD_EXPORT.format(tool = TOOL_NAME))

prebuilt_tool = repository_rule(
    implementation = _prebuilt_tool_impl,
    doc = "Downloads one prebuilt rules-image-tool binary, verified against its pinned sha256.",
    attrs = {
        "urls": attr.string_list(mandatory = True, doc = "Where to download the binary from."),
        "sha256": attr.string(mandatory = True, doc = "Expected sha256 of the binary."),
    },
)

def _find_cargo(rctx):
    cargo = rctx.os.environ.get("CARGO")
    if cargo:
        return rctx.path(cargo)
    found = rctx.which("cargo")
    if found:
        return found
    home = rctx.os.environ.get("CARGO_HOME") or (rctx.os.environ.get("HOME", "") + "/.cargo")
    candidate = rctx.path(home + "/bin/cargo")
    if candidate.exists:
        return candidate
    fail("rules_image: building the tool from source needs cargo (install Rust with rustup, or set CARGO), " +
         "or use the prebuilt tool: tool.prebuilt(...) in MODULE.bazel")

def _source_tool_impl(rctx):
    manifest = rctx.path(rctx.attr.cargo_toml)
    tools_dir = manifest.dirname

    # Rebuild exactly when the tool's sources change (Bazel >= 7.1 re-runs this rule then).
    rctx.watch(manifest)
    rctx.watch(tools_dir.get_child("Cargo.lock"))
    rctx.watch_tree(tools_dir.get_child("src"))

    # Cargo's target directory lives beside the repository, in the output base (nothing is
    # written outside it; `clean --expunge` removes it), so that dependencies are not rebuilt
    # every time this rule re-runs; cargo locks it against concurrent builds.
    # RULES_IMAGE_CARGO_TARGET_DIR shares one across output bases (bazelw sets it); keep that
    # apart from target dirs of builds made under another libc (e.g. outside a chroot):
    # cargo's fingerprints do not see the C toolchain, so their objects would be mixed.
    target_dir = rctx.os.environ.get("RULES_IMAGE_CARGO_TARGET_DIR")
    if not target_dir:
        target_dir = str(rctx.path(".").dirname.dirname) + "/rules_image_cargo_target"

    cargo = _find_cargo(rctx)
    rctx.report_progress("Building rules-image-tool with cargo")
    result = rctx.execute(
        [cargo, "build", "--release", "--locked", "--manifest-path", str(manifest), "--target-dir", target_dir],
        timeout = 3600,
        quiet = True,
    )
    if result.return_code != 0:
        fail("rules_image: cargo build of %s failed:\n%s%s" % (manifest, result.stdout, result.stderr))
    built = rctx.path(target_dir + "/release/" + TOOL_NAME)

    # Copy rather than link: a later cargo build must not change this repository's output.
    result = rctx.execute(["cp", str(built), TOOL_NAME])
    if result.return_code != 0:
        fail("rules_image: cannot copy %s: %s" % (built, result.stderr))
    rctx.file("BUILD.bazel", _BUILD_EXPORT.format(tool = TOOL_NAME))

source_tool = repository_rule(
    implementation = _source_tool_impl,
    doc = "Builds rules-image-tool from this repository's tools/ with cargo; re-runs when its sources change.",
    attrs = {
        "cargo_toml": attr.label(
            default = Label("//tools:Cargo.toml"),
            doc = "Cargo.toml of the tool's package.",
        ),
    },
    environ = ["CARGO", "CARGO_HOME", "RULES_IMAGE_CARGO_TARGET_DIR"],
)

_TOOLCHAIN = """\
image_toolchain(
    name = "{name}_impl",
    tool = "{tool}",
    bazel_version = {bazel_version},
)

toolchain(
    name = "{name}",
    exec_compatible_with = {constraints},
    toolchain = ":{name}_impl",
    toolchain_type = "@rules_image//rules:toolchain_type",
)
"""

_UNAVAILABLE = """\
image_toolchain_unavailable(
    name = "{name}_impl",
    platform = "{name}",
    reason = {reason},
)

toolchain(
    name = "{name}",
    exec_compatible_with = {constraints},
    toolchain = ":{name}_impl",
    toolchain_type = "@rules_image//rules:toolchain_type",
)
"""

def toolchains_build_file(tools, unavailable, exports_host_tool, bazel_version = ""):
    """The BUILD file of the toolchains repository.

    Every platform of PLATFORMS gets one toolchain, matched against the *exec* platform of each
    action: the binary for that platform, or one that fails analysis with `unavailable`'s
    reason, so that an action meant for a platform without a binary names that platform instead
    of Bazel's generic "no matching toolchains".

    Args:
        tools: platform triple -> label of the tool binary for it.
        unavailable: platform triple -> why there is no binary for it.
        exports_host_tool: whether the repository holds HOST_TOOL_PATH for repository rules.
        bazel_version: the running Bazel's version, which the toolchains carry (provenance).

    Returns:
        string.
    """
    content = ['load("%s", "image_toolchain", "image_toolchain_unavailable")\n' % TOOLCHAIN_RULES]
    if exports_host_tool:
        content.append('exports_files(["%s"], visibility = ["//visibility:public"])\n' % HOST_TOOL_PATH)
    for platform in PLATFORMS:
        if platform in tools:
            content.append(_TOOLCHAIN.format(name = platform, tool = tools[platform], constraints = repr(PLATFORMS[platform]), bazel_version = repr(bazel_version)))
        elif platform in unavailable:
            content.append(_UNAVAILABLE.format(name = platform, reason = repr(unavailable[platform]), constraints = repr(PLATFORMS[platform])))
    return "\n".join(content)

def _toolchains_repo_impl(rctx):
    # The binary for this machine, for repository rules (e.g. pulling base images).
    if rctx.attr.host_tool:
        rctx.symlink(rctx.path(rctx.attr.host_tool), HOST_TOOL_PATH)
    rctx.file("BUILD.bazel", toolchains_build_file(
        rctx.attr.tools,
        rctx.attr.unavailable,
        rctx.attr.host_tool != None,
        # Known to repository rules only; image_provenance names the builder's Bazel by it.
        bazel_version = native.bazel_version,
    ))

toolchains_repo = repository_rule(
    implementation = _toolchains_repo_impl,
    doc = "Declares one toolchain per platform: its rules-image-tool binary, or a clear error where there is none.",
    attrs = {
        "tools": attr.string_dict(doc = "Platform triple -> label of the tool binary."),
        "unavailable": attr.string_dict(doc = "Platform triple -> why no binary exists for it (shown when an action needs it)."),
        "host_tool": attr.label(doc = "The tool binary that runs on this machine, if there is one."),
    },
)
