"""nix_layer: an image layer of Nix store paths, read from the local `/nix/store`."""

load("//rules/private:file_metadata.bzl", "file_metadata", "file_metadata_args")
load("//rules/private:labels.bzl", "display_label")
load("//rules/private:layer_action.bzl", "LAYER_ACTION_ATTRS", "compress_attr", "layer_args", "run_layer_action")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE")

visibility(["//rules/..."])

NIX_STORE = "/nix/store/"

# The layer actions read the Nix store of the machine they run on: never on a remote worker
# (whose store may lack the paths), but sandboxed (Bazel's sandboxes show /nix/store read-only;
# a hermetic one needs --sandbox_add_mount_pair=/nix/store) and cacheable, remotely too.
_STORE_READER = {"no-remote-exec": "1"}

def is_store_path(path):
    """Whether `path` is a top-level Nix store path, `/nix/store/<hash>-<name>`.

    Args:
        path: string.

    Returns:
        bool.
    """
    name = path[len(NIX_STORE):]
    return path.startswith(NIX_STORE) and name != "" and "/" not in name and "\t" not in path and "\n" not in path

def _check_store_path(ctx, path):
    if not is_store_path(path):
        fail("%s: %r is not a Nix store path (/nix/store/<hash>-<name>)" % (display_label(ctx.label), path))

def _nix_layer_impl(ctx):
    if not ctx.attr.store_paths and not ctx.attr.root_paths:
        fail("%s: nix_layer needs at least one entry in `store_paths` or `root_paths`" % display_label(ctx.label))
    layer = layer_args(ctx, ctx.attr.compress)
    args = layer.args
    owners = {}
    for path, owner in ctx.attr.owners.items():
        ids = owner.split(":")
        if len(ids) != 2 or not ids[0].isdigit() or not ids[1].isdigit():
            fail("%s: owner of %s must be numeric \"UID:GID\", got %r" % (display_label(ctx.label), path, owner))
        owners[path] = file_metadata(uid = int(ids[0]), gid = int(ids[1]), mode = ctx.attr.modes.get(path))
    modes = {p: m for p, m in ctx.attr.modes.items() if p not in owners}
    file_metadata_args(ctx, args, "", owners, modes)
    if not ctx.attr.link_duplicates:
        args.add("--no-link-duplicates")
    for path in ctx.attr.store_paths:
        _check_store_path(ctx, path)
        args.add("store\t" + path)
    for path in ctx.attr.root_paths:
        _check_store_path(ctx, path)
        args.add("root\t" + path)

    # No inputs: the store paths are named in the arguments, and a store path's content
    # never changes, so the action key still covers what is read.
    return run_layer_action(ctx, layer, depset(), "ImageNixLayer", "Writing Nix store layer %{label}", _STORE_READER)

nix_layer = rule(
    implementation = _nix_layer_impl,
    doc = """A reproducible image layer holding Nix store paths, read from the local `/nix/store`.

Written by `nix.image` into its repository, one per planned layer; usable by hand too:

```starlark
nix_layer(
    name = "busybox",
    store_paths = ["/nix/store/...-busybox-1.36.1"],   # at /nix/store/..., symlinks kept
    root_paths = ["/nix/store/...-env"],               # its contents copied to /
)
```

The store paths are not Bazel inputs: the action reads them from the machine it runs on, so
it is tagged `no-remote-exec`, and the paths must be in that machine's store (keep a GC root,
as `nix.image` does). It runs in Bazel's sandbox, which shows `/nix/store` read-only (with
`--experimental_use_hermetic_linux_sandbox`, add `--sandbox_add_mount_pair=/nix/store`). A
store path names its content, so the action key (the list of paths) is a sound cache key and
its result may be cached remotely. A remote worker could run it only with the same store
paths present (e.g. a shared, read-only `/nix/store`), which Bazel cannot check.
""",
    attrs = dict(LAYER_ACTION_ATTRS, **{
        "store_paths": attr.string_list(
            doc = "Store paths placed at their own path (/nix and /nix/store are added as directories).",
        ),
        "root_paths": attr.string_list(
            doc = "Store paths whose contents are copied to `/` (like dockerTools' `copyToRoot`).",
        ),
        "owners": attr.string_dict(
            doc = "Absolute path in the image -> \"UID:GID\" owning that entry (default 0:0).",
        ),
        "modes": attr.string_dict(
            doc = "Absolute path in the image -> octal mode (e.g. \"0755\") overriding that entry's mode.",
        ),
        "link_duplicates": attr.bool(
            default = True,
            doc = "Store files with the same bytes and metadata once, as hard links (see image_layer).",
        ),
        "compress": compress_attr("Compression of the layer blob."),
    }),
    toolchains = [TOOLCHAIN_TYPE],
)
