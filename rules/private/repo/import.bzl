"""The `image_import` repository rule: an image from an OCI layout or a docker-save tarball.

The repository rule runs `rules-image-tool import`, which verifies every digest, checks every
layer entry (no absolute or `..` paths, no escaping links, no device nodes, no duplicates) and,
with `normalize`, rewrites the layers deterministically. The verified blobs live in the
repository; the generated BUILD file makes them an ordinary image target. `dockerfile.build`
imports what its builder exported the same way (`import_image`).
"""

load("//rules/private:layer_action.bzl", "compress_attr")
load(":image_repo.bzl", "write_image_repo")
load(":repo_names.bzl", "IMPORT_DIR", "apparent_name")
load(":tool_repos.bzl", "host_tool")

visibility(["//rules/..."])

def import_command(tool, src, output_dir, attrs):
    """The `rules-image-tool import` command line.

    Args:
        tool: the tool's path.
        src: path of the layout directory or tarball.
        output_dir: where the tool writes the image directory.
        attrs: normalize, source_date_epoch, compress, platform and (image_import only) ref.

    Returns:
        list.
    """
    cmd = [tool, "import", "--src", str(src), "--output-dir", str(output_dir)]
    if attrs.normalize:
        cmd += ["--normalize", "--source-date-epoch", str(attrs.source_date_epoch), "--compression", attrs.compress]
    if getattr(attrs, "ref", ""):
        cmd += ["--ref", attrs.ref]
    if attrs.platform:
        cmd += ["--platform", attrs.platform]
    return cmd

def import_image(rctx, what, src):
    """Imports an OCI layout or docker-save tarball into the repository and writes BUILD.bazel.

    The options come from the rule's IMPORT_ATTRS.

    Args:
        rctx: the repository context.
        what: how errors and the BUILD header name the caller, e.g. `image_import(name = "x")`.
        src: path of the layout directory or tarball.
    """
    cmd = import_command(host_tool(rctx), src, rctx.path(IMPORT_DIR.rstrip("/")), rctx.attr)
    rctx.report_progress("Importing " + str(src))
    result = rctx.execute(cmd, timeout = 3600)
    if result.return_code != 0:
        fail("%s: cannot import %s:\n%s" % (what, src, result.stderr))

    # For an index, the tool prints the digest of the index it wrote (attestations dropped).
    write_image_repo(rctx, what, IMPORT_DIR)

def source_path(rctx, label, what):
    """The path of `label`; a label naming a layout's index.json or oci-layout stands for its directory.

    Args:
        rctx: the repository context.
        label: Label of a tarball, or of a file of an OCI layout.
        what: names the caller in errors.

    Returns:
        path.
    """
    path = rctx.path(label)
    if not path.exists:
        fail("%s: %s does not exist" % (what, label))
    if path.basename in ("index.json", "oci-layout") and path.dirname.get_child("oci-layout").exists:
        path = path.dirname
    return path

def watch_source(rctx, path):
    """Re-runs the repository rule when the file, or any file under the directory, changes.

    Args:
        rctx: the repository context.
        path: path.
    """
    if path.is_dir:
        if hasattr(rctx, "watch_tree"):
            rctx.watch_tree(path)
    elif hasattr(rctx, "watch"):
        rctx.watch(path)

def _image_import_impl(rctx):
    what = "image_import(name = %r)" % apparent_name(rctx)
    src = source_path(rctx, rctx.attr.src, what)
    watch_source(rctx, src)
    import_image(rctx, what, src)

IMPORT_ATTRS = {
    "normalize": attr.bool(
        default = False,
        doc = "Rewrite every layer deterministically (entries sorted, mtimes clamped to " +
              "`source_date_epoch`, owner names dropped, recompressed with `compress`) and fix " +
              "the config's `created`/history timestamps and build-host fields. The image then " +
              "gets new digests that depend only on its files.",
    ),
    "source_date_epoch": attr.int(
        default = 0,
        doc = "With `normalize`: seconds since 1970; later mtimes are clamped to it and " +
              "`created` is set to it.",
    ),
    "compress": compress_attr("With `normalize`: the compression of the rewritten layers (as image_layer's)."),
    "platform": attr.string(
        doc = "For an index: import only this platform (\"os/arch[/variant]\") as a single " +
              "image. By default every platform is imported (attestations are skipped).",
    ),
    "ref": attr.string(
        doc = "For a layout or tarball holding several images: the one to import, by " +
              "`org.opencontainers.image.ref.name` / `io.containerd.image.name` annotation " +
              "or docker RepoTag (e.g. \"app:1.0\").",
    ),
}

image_import = repository_rule(
    implementation = _image_import_impl,
    doc = """An image from an OCI image layout or a docker-save tarball, as a Bazel target.

Use it in MODULE.bazel:

```starlark
image_import = use_repo_rule("@rules_image//rules:repositories.bzl", "image_import")
image_import(
    name = "vendor_app",
    src = "//third_party/vendor_app:image.tar",   # docker save, or a tar of an OCI layout
)
```

Then `@vendor_app//:image` is an image (ImageManifestInfo), usable as `base` of an
image_manifest, pushable and loadable. For an index it is the whole index (ImageIndexInfo) and
`@vendor_app//:image_<os>_<arch>[_<variant>]` are its platforms (attestation manifests are skipped).

Accepted sources: an OCI image layout directory (name its `index.json` as `src`), a tar of
one (e.g. `skopeo copy ... oci-archive:x.tar`, `podman save --format oci-archive`), and
`docker save` tarballs in both forms (Docker <= 24 and the OCI-layout form of Docker >= 25).
Every blob is verified against its digest and every layer's diff_id against the config;
layer media types are kept unless `normalize` rewrites the layers. Layers are checked entry by
entry: absolute or `..` paths, hard links or relative symlinks that lead outside the root,
device nodes and duplicate entries are refused with an error naming the entry; whiteouts are
kept exactly. The repository is re-created when the source changes, and only then.
""",
    attrs = dict(IMPORT_ATTRS, src = attr.label(
        mandatory = True,
        doc = "The tarball, or the `index.json` of an OCI layout directory (the directory is imported).",
    )),
)
