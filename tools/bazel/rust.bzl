"""A rules_rust toolchain over a pinned rustup toolchain, for `//tools:rules-image-tool`.

Contributors already have rustup (the tool's `cargo test` and `tool.build_from_source()` need it),
and rules_rust 0.54.1 cannot download Rust 1.95 with checksums (its table stops at 1.82), so
the Bazel build uses the same toolchain as cargo: `$RUSTUP_HOME/toolchains/<version>-<triple>`
(`rustup toolchain install <version>`), checked to be exactly that version. Bazel hashes every
file of it that an action reads, so a changed toolchain re-runs the actions.

This is a dev dependency of rules_image: consumers of the rules never load it.
"""

_VERSION = "1.95.0"

_TRIPLES = {
    ("linux", "x86_64"): "x86_64-unknown-linux-gnu",
    ("linux", "aarch64"): "aarch64-unknown-linux-gnu",
    ("mac", "x86_64"): "x86_64-apple-darwin",
    ("mac", "aarch64"): "aarch64-apple-darwin",
}

_BUILD = """\
load("@rules_rust//rust:toolchain.bzl", "rust_stdlib_filegroup", "rust_toolchain")

package(default_visibility = ["//visibility:public"])

filegroup(name = "rustc", srcs = ["bin/rustc"])

filegroup(name = "rustdoc", srcs = ["bin/rustdoc"])

filegroup(name = "cargo", srcs = ["bin/cargo"])

filegroup(name = "clippy_driver_bin", srcs = ["bin/clippy-driver"])

filegroup(name = "cargo_clippy_bin", srcs = ["bin/cargo-clippy"])

filegroup(name = "rustfmt_bin", srcs = ["bin/rustfmt"])

filegroup(
    name = "rustc_lib",
    srcs = glob(
        [
            "lib/*{dylib_ext}*",
            "lib/rustlib/{triple}/codegen-backends/*{dylib_ext}",
            "lib/rustlib/{triple}/bin/rust-lld",
            "lib/rustlib/{triple}/lib/*{dylib_ext}*",
        ],
        allow_empty = True,
    ),
)

rust_stdlib_filegroup(
    name = "rust_std",
    srcs = glob(
        [
            "lib/rustlib/{triple}/lib/*.rlib",
            # Rust >= 1.91 keeps the full metadata of std next to stub rlibs.
            "lib/rustlib/{triple}/lib/*.rmeta",
            "lib/rustlib/{triple}/lib/*{dylib_ext}*",
            "lib/rustlib/{triple}/lib/*.a",
            "lib/rustlib/{triple}/lib/self-contained/**",
        ],
        allow_empty = True,
    ),
)

rust_toolchain(
    name = "rust_toolchain",
    rust_doc = ":rustdoc",
    rust_std = ":rust_std",
    rustc = ":rustc",
    rustc_lib = ":rustc_lib",
    cargo = ":cargo",
    clippy_driver = ":clippy_driver_bin",
    cargo_clippy = ":cargo_clippy_bin",
    rustfmt = ":rustfmt_bin",
    allocator_library = "@rules_rust//ffi/cc/allocator_library",
    binary_ext = "",
    staticlib_ext = ".a",
    dylib_ext = "{dylib_ext}",
    stdlib_linkflags = {stdlib_linkflags},
    default_edition = "2024",
    exec_triple = "{triple}",
    target_triple = "{triple}",
)

toolchain(
    name = "toolchain",
    exec_compatible_with = {constraints},
    target_compatible_with = {constraints},
    toolchain = ":rust_toolchain",
    toolchain_type = "@rules_rust//rust:toolchain_type",
)
"""

def _rustup_toolchain_impl(rctx):
    os = "mac" if rctx.os.name.lower().startswith("mac") else rctx.os.name.lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(rctx.os.arch, rctx.os.arch)
    triple = _TRIPLES.get((os, arch))
    if not triple:
        fail("rules_image: no Rust toolchain mapping for %s/%s" % (rctx.os.name, rctx.os.arch))
    home = rctx.os.environ.get("RUSTUP_HOME") or (rctx.os.environ.get("HOME", "") + "/.rustup")
    root = rctx.path("%s/toolchains/%s-%s" % (home, rctx.attr.version, triple))
    rustc = root.get_child("bin").get_child("rustc")
    if not rustc.exists:
        fail("rules_image: //tools:rules-image-tool needs Rust %s from rustup: run `rustup toolchain install %s` (looked for %s)" %
             (rctx.attr.version, rctx.attr.version, rustc))
    result = rctx.execute([rustc, "--version"])
    if result.return_code != 0 or not result.stdout.startswith("rustc %s " % rctx.attr.version):
        fail("rules_image: %s is not Rust %s: %s%s" % (rustc, rctx.attr.version, result.stdout, result.stderr))
    rctx.symlink(root.get_child("bin"), "bin")
    rctx.symlink(root.get_child("lib"), "lib")
    mac = os == "mac"
    constraints = [
        "@platforms//os:" + ("macos" if mac else "linux"),
        "@platforms//cpu:" + arch,
    ]
    rctx.file("BUILD.bazel", _BUILD.format(
        triple = triple,
        dylib_ext = ".dylib" if mac else ".so",
        stdlib_linkflags = repr(["-lSystem", "-lresolv"] if mac else ["-ldl", "-lpthread"]),
        constraints = repr(constraints),
    ))

rustup_toolchain = repository_rule(
    implementation = _rustup_toolchain_impl,
    doc = "A rules_rust toolchain over `$RUSTUP_HOME/toolchains/<version>-<host triple>`.",
    attrs = {"version": attr.string(default = _VERSION, doc = "Exact Rust version (`rustc --version`).")},
    environ = ["HOME", "RUSTUP_HOME"],
    local = True,
)

def _rust_dev_impl(_mctx):
    rustup_toolchain(name = "rust_rustup_toolchain")

rust_dev = module_extension(
    implementation = _rust_dev_impl,
    doc = "Creates @rust_rustup_toolchain (see rustup_toolchain).",
)
