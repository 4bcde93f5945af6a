"""image_layer: a deterministic tar layer built from Bazel targets."""

load("//rules/private:file_metadata.bzl", "file_metadata_args")
load("//rules/private:labels.bzl", "display_label")
load("//rules/private:launcher.bzl", "runfiles_path")
load("//rules/private:layer_action.bzl", "LAYER_ACTION_ATTRS", "compress_attr", "layer_args", "run_layer_action")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE")

visibility(["//rules/..."])

def _runfile_entry(f):
    return runfiles_path(f) + "\t" + f.path

def _group_entry(f):
    return f.short_path + "\t" + f.path

def _symlink_entry(entry):
    return entry.path + "\t" + entry.target_file.path

def _check_dest(ctx, dest):
    if not dest.startswith("/"):
        fail("%s: image path %r must be absolute (start with '/')" % (display_label(ctx.label), dest))
    if "\t" in dest or "\n" in dest:
        fail("%s: image path %r contains a tab or newline" % (display_label(ctx.label), dest))

def _image_layer_impl(ctx):
    if not ctx.attr.srcs and not ctx.attr.symlinks:
        fail("%s: image_layer needs at least one entry in `srcs` or `symlinks`" % display_label(ctx.label))
    layer = layer_args(ctx, ctx.attr.compress, ctx.attr.compression_level)
    args = layer.args
    for dest in ctx.attr.modes:
        _check_dest(ctx, dest)
    file_metadata_args(ctx, args, ctx.attr.default_metadata, ctx.attr.file_metadata, ctx.attr.modes)
    if not ctx.attr.link_duplicates:
        args.add("--no-link-duplicates")

    inputs = []
    for dest, target in ctx.attr.srcs.items():
        _check_dest(ctx, dest)
        default = target[DefaultInfo]
        executable = default.files_to_run.executable

        # Source files report themselves as executable; only rule targets bring runfiles.
        if executable and not executable.is_source:
            # An executable brings its runfiles tree next to it, as `bazel run` lays it out,
            # so that it finds its data files inside the container exactly as it does there.
            args.add("exec\t%s\t%s" % (dest, executable.path))
            root = dest.rstrip("/") + ".runfiles/"
            runfiles = default.default_runfiles
            args.add_all(runfiles.files, map_each = _runfile_entry, format_each = "file\t" + root + "%s")
            args.add_all(runfiles.symlinks, map_each = _symlink_entry, format_each = "file\t" + root + "_main/%s")
            args.add_all(runfiles.root_symlinks, map_each = _symlink_entry, format_each = "file\t" + root + "%s")
            repo_mapping = getattr(default.files_to_run, "repo_mapping_manifest", None)
            if repo_mapping:
                args.add("file\t%s_repo_mapping\t%s" % (root, repo_mapping.path))
                inputs.append(depset([repo_mapping]))
            inputs.append(depset([executable]))
            inputs.append(runfiles.files)
            inputs.append(_symlink_targets(runfiles))
        else:
            # One file goes to `dest`; several become a directory `dest` (the tool decides, so the
            # depset is never flattened here). Files keep their path relative to the target's package.
            package = target.label.package
            prefix = (package + "/") if package else ""
            args.add_all(
                default.files,
                map_each = _group_entry,
                format_each = "group\t%s\t%s\t%%s" % (dest, prefix),
            )
            inputs.append(default.files)
    for dest, link_target in ctx.attr.symlinks.items():
        _check_dest(ctx, dest)
        args.add("symlink\t%s\t%s" % (dest, link_target))

    return run_layer_action(ctx, layer, depset(transitive = inputs), "ImageLayer", "Writing image layer %{label}")

def _symlink_targets(runfiles):
    # SymlinkEntry depsets cannot be mapped to their files without flattening; runfiles
    # symlink sets are small and rarely used, so this is the one place that does.
    return depset([e.target_file for e in runfiles.symlinks.to_list()] +
                  [e.target_file for e in runfiles.root_symlinks.to_list()])

image_layer = rule(
    implementation = _image_layer_impl,
    doc = """A reproducible image layer (a tar blob) from Bazel targets, symlinks and directories.

Entries are sorted, ancestor directories are added once (0755), timestamps are 0 and owners
root, so the same inputs give the same digest on any machine. Files are 0755 when executable
(the executable of an executable target, or a program: an ELF binary or a `#!` script) and
0644 otherwise. The execute bit on disk is not read, because Bazel does not track it (every
action output is 0555, and a remote worker sees every input as executable), so a layer built
remotely is the layer built locally. `modes`, `default_metadata` and `file_metadata` change modes, owners, names, times, extended attributes and file
capabilities. Files with the same bytes and metadata are stored once, as hard links
(`link_duplicates`).

```starlark
image_layer(
    name = "app_layer",
    srcs = {
        "/app/server": "//server",          # an executable: its runfiles go to /app/server.runfiles
        "/etc/app/config.yaml": "config.yaml",
        "/srv/static": ":static_files",     # several files: a directory
    },
    symlinks = {"/usr/bin/server": "/app/server"},
)

image_layer(
    name = "server_layer",
    srcs = {"/app/server": "//server", "/app/etc": ":config_files"},
    default_metadata = file_metadata(uid = 1000, gid = 1000, uname = "app", gname = "app"),
    file_metadata = {
        "/app/server": file_metadata(mode = "0750", capabilities = ["cap_net_bind_service"]),
        "/app/etc/**/*.key": file_metadata(mode = "0400"),
    },
)
```

Outputs: `<name>.tar.gz` (or `.tar.zst`, `.tar`) and `<name>.layer.json` (`diff_id`, `digest`,
`media_type`, `size`); provides `LayerInfo`. The tar is PAX, with mtime 0, uid/gid 0 and no
user or group names, and gzip has a fixed header, so the same inputs give the same bytes under
any checkout path, umask or user. Gzip compresses 1 MiB blocks on every core the action may use
(`--@rules_image//rules:compress_threads=N` sets the count): a gzip layer's bytes are a function
of the level and that block size, never of the thread count.

The build fails, leaving no output, on: an image path that is not absolute or escapes the
root with `..`; two sources for one image path (after normalising `//` and `.`); a file used
as a directory; invalid metadata, metadata for a path not in the layer or a pattern that
matches nothing; a missing source; an empty layer.
""",
    attrs = dict(LAYER_ACTION_ATTRS, **{
        "srcs": attr.string_keyed_label_dict(
            doc = "Absolute path in the image -> target. A target with one file puts it at the " +
                  "path; with several files, the path is a directory holding them at their paths " +
                  "relative to the target's package; a directory output (tree artifact) is copied " +
                  "recursively. An executable target also brings its runfiles tree to `<path>.runfiles`.",
            allow_files = True,
        ),
        "symlinks": attr.string_dict(
            doc = "Absolute path in the image -> symlink target (stored verbatim, never resolved).",
        ),
        "modes": attr.string_dict(
            doc = "Absolute path in the image -> octal mode (e.g. \"0700\") overriding the default mode of that entry " +
                  "(shorthand for a `file_metadata` entry with only a mode).",
        ),
        "default_metadata": attr.string(
            doc = "`file_metadata(...)` for every entry of `srcs` and `symlinks` and their contents (not for the " +
                  "parent directories the layer adds on its own, which stay root-owned 0755). Its `mode` applies to " +
                  "regular files only.",
        ),
        "file_metadata": attr.string_dict(
            doc = "Absolute path or glob pattern in the image -> `file_metadata(...)`, overriding the defaults field " +
                  "by field: patterns in the order given, then exact paths. In a pattern `*` and `?` match within one " +
                  "path component and `**` across components (`/app/**/*.so`). An exact path must be in the layer " +
                  "(implicit parent directories included) and a pattern must match something.",
        ),
        "link_duplicates": attr.bool(
            default = True,
            doc = "Store regular files that have the same bytes, mode and metadata once: the first (in path order) " +
                  "as a file, the others as hard links to it. Engines extract them as hard links, so a container " +
                  "writing to one copy may, on some storage drivers, see the change at the others; set False for " +
                  "files that are modified at run time.",
        ),
        "compress": compress_attr("Compression of the layer blob."),
        "compression_level": attr.int(
            default = -1,
            doc = "Compression level (gzip 0-9, default 6; zstd 1-22, default 3). -1 uses the default.",
        ),
    }),
    toolchains = [TOOLCHAIN_TYPE],
)
