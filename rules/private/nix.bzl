"""Images from Nix closures: the `nix.image` module extension, its repository rule and `nix_layer`.

The repository rule realises a Nix expression, file, flake or existing store path with the
host's Nix, reads the closure (`nix path-info -r --json`) and lets the tool plan at most
`max_layers` layers (`rules-image-tool nix-layers`). The generated BUILD file holds one
`nix_layer` per planned layer and an `image_manifest` over them, so a Nix closure is an
ordinary image Bazel can extend, load or push.

The layer actions read `/nix/store` directly (store paths are not Bazel inputs), so they run
locally and unsandboxed: `no-sandbox`, `no-remote`, `local`. Their action keys are the store
paths themselves, which Nix derives from everything that built them.
"""

load(":layer_action.bzl", "layer_args", "run_layer_action")
load(":toolchain.bzl", "TOOLCHAIN_TYPE")
load(":util.bzl", "display_label")

_HOST_TOOL = Label("@rules_image_toolchains//:host/rules-image-tool")

_STORE_DIR = "/nix/store/"

# The layer actions read the Nix store of the machine they run on.
_LOCAL_ONLY = {"no-sandbox": "1", "no-remote": "1", "local": "1"}

# ------------------------------------------------------------------------------ nix_layer

def _check_store_path(ctx, path):
    if not path.startswith(_STORE_DIR) or "/" in path[len(_STORE_DIR):] or "\t" in path or "\n" in path:
        fail("%s: %r is not a Nix store path (/nix/store/<hash>-<name>)" % (display_label(ctx.label), path))

def _nix_layer_impl(ctx):
    if not ctx.attr.store_paths and not ctx.attr.root_paths:
        fail("%s: nix_layer needs at least one entry in `store_paths` or `root_paths`" % display_label(ctx.label))
    layer = layer_args(ctx, ctx.attr.compress)
    args = layer.args
    for path, owner in ctx.attr.owners.items():
        args.add("--owner", "%s=%s" % (path, owner))
    for path, mode in ctx.attr.modes.items():
        args.add("--mode", "%s=%s" % (path, mode))
    for path in ctx.attr.store_paths:
        _check_store_path(ctx, path)
        args.add("store\t" + path)
    for path in ctx.attr.root_paths:
        _check_store_path(ctx, path)
        args.add("root\t" + path)

    # No inputs: the store paths are named in the arguments, and a store path's content
    # never changes, so the action key still covers what is read.
    return run_layer_action(ctx, layer, depset(), "ImageNixLayer", "Writing Nix store layer %{label}", _LOCAL_ONLY)

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
it is tagged `no-sandbox`, `no-remote` and `local`, and the paths must be in that machine's
store (keep a GC root, as `nix.image` does). A store path names its content, so the action
key (the list of paths) is a sound cache key.
""",
    attrs = {
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
        "compress": attr.string(
            default = "gzip",
            values = ["gzip", "zstd", "none"],
            doc = "Compression of the layer blob.",
        ),
    },
    toolchains = [TOOLCHAIN_TYPE],
)

# ------------------------------------------------------------------------------ repository rule

_INSTALL_HINT = ("install Nix (Debian/Ubuntu: `apt-get install nix-bin`; elsewhere " +
                 "https://nixos.org/download) and make sure nix-build is on the PATH Bazel sees")

_EXPERIMENTAL = ["--extra-experimental-features", "nix-command flakes"]

def _err(rctx, message):
    fail("nix.image(name = %r): %s" % (rctx.attr.original_name or rctx.attr.name, message))

def _run(rctx, what, cmd, working_directory = ""):
    result = rctx.execute(cmd, timeout = rctx.attr.timeout, working_directory = working_directory)
    if result.return_code != 0:
        _err(rctx, "%s failed (exit %d):\n  %s\n%s" % (
            what,
            result.return_code,
            " ".join([str(c) for c in cmd]),
            result.stderr.strip(),
        ))
    return result.stdout

def _which(rctx, name):
    found = rctx.which(name)
    if not found:
        _err(rctx, "`%s` not found: %s" % (name, _INSTALL_HINT))
    return found

def _out_paths(stdout):
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith(_STORE_DIR)]

def _flake_base(flake):
    return flake.split("#", 1)[0]

def _realise(rctx, nix_build, nix, attribute, link):
    """Builds `attribute` of the configured source; returns its output paths (a GC root at `link`)."""
    attr_args = ["-A", attribute] if attribute else []
    if rctx.attr.nix_file:
        nix_file = rctx.path(rctx.attr.nix_file)
        cmd = [nix_build, nix_file] + attr_args + ["--out-link", link]
        return _out_paths(_run(rctx, "nix-build", cmd))
    if rctx.attr.expression:
        cmd = [nix_build, "-E", rctx.attr.expression] + attr_args + ["--out-link", link]
        return _out_paths(_run(rctx, "nix-build -E", cmd, working_directory = str(rctx.workspace_root)))

    # A flake: the attribute (if any) replaces the fragment of the reference.
    ref = rctx.attr.flake
    if attribute:
        ref = _flake_base(ref) + "#" + attribute
    cmd = [nix] + _EXPERIMENTAL + ["build", ref, "--out-link", link, "--print-out-paths"]
    return _out_paths(_run(rctx, "nix build", cmd, working_directory = str(rctx.workspace_root)))

def _existing_store_path(rctx, nix_store, path, link):
    if not path.startswith(_STORE_DIR) or not rctx.path(path).exists:
        _err(rctx, "store path %r does not exist on this machine (build or copy it into the store first)" % path)

    # Registers a GC root so that `nix-collect-garbage` keeps it while this repository exists.
    _run(rctx, "nix-store --realise", [nix_store, "--realise", path, "--add-root", link, "--indirect"])
    return [path]

def _resolve(rctx, nix_build, nix, nix_store, entry, link):
    """An attribute path or a store path (for groups and copy_to_root) -> store paths."""
    if entry.startswith("/"):
        return _existing_store_path(rctx, nix_store, entry, link)
    if rctx.attr.store_path:
        _err(rctx, "%r: with `store_path`, groups and copy_to_root take store paths only" % entry)
    return _realise(rctx, nix_build, nix, entry, link)

def _nix_image_repo_impl(rctx):
    sources = [s for s in [rctx.attr.nix_file, rctx.attr.expression, rctx.attr.flake, rctx.attr.store_path] if s]
    if len(sources) != 1:
        _err(rctx, "set exactly one of `nix_file`, `expression`, `flake` and `store_path`")
    if rctx.attr.max_layers < 1:
        _err(rctx, "max_layers must be at least 1, got %d" % rctx.attr.max_layers)
    reserved = 1 if rctx.attr.copy_to_root else 0
    if rctx.attr.max_layers - reserved < 1:
        _err(rctx, "max_layers must be at least 2 with copy_to_root (one layer holds the copied roots)")

    # Re-run when (and only when) the Nix files change: they are watched, nothing else is read.
    watched = ([rctx.attr.nix_file] if rctx.attr.nix_file else []) + rctx.attr.srcs
    for label in watched:
        path = rctx.path(label)
        if hasattr(rctx, "watch"):
            rctx.watch(path)

    nix_build = _which(rctx, "nix-build")
    nix_store = _which(rctx, "nix-store")
    nix = _which(rctx, "nix")

    rctx.report_progress("Building the Nix closure")
    if rctx.attr.store_path:
        roots = _existing_store_path(rctx, nix_store, rctx.attr.store_path, "result")
    else:
        roots = _realise(rctx, nix_build, nix, rctx.attr.attribute, "result")
    if not roots:
        _err(rctx, "the build printed no store path")

    groups = []
    for i, (name, entries) in enumerate(rctx.attr.groups.items()):
        paths = []
        for j, entry in enumerate(entries):
            paths += _resolve(rctx, nix_build, nix, nix_store, entry, "gcroot-group-%d-%d" % (i, j))
        groups.append((name, paths))
    root_copies = []
    for i, entry in enumerate(rctx.attr.copy_to_root):
        root_copies += _resolve(rctx, nix_build, nix, nix_store, entry, "gcroot-root-%d" % i)

    # The closure of everything the image holds; copy_to_root contents usually point into it.
    all_roots = roots + [p for p in root_copies if p not in roots]
    closure = _run(rctx, "nix path-info", [nix] + _EXPERIMENTAL + ["path-info", "-r", "--json"] + all_roots)
    rctx.file("closure.json", closure)

    cmd = [
        rctx.path(_HOST_TOOL),
        "nix-layers",
        "--label=@" + (rctx.attr.original_name or rctx.attr.name),
        "--path-info",
        "closure.json",
        "--max-layers",
        str(rctx.attr.max_layers - reserved),
        "--algorithm",
        rctx.attr.algorithm,
        "--output",
        "plan.json",
    ]
    for root in all_roots:
        cmd += ["--root", root]
    for name, paths in groups:
        cmd += ["--group", "%s=%s" % (name, ",".join(paths))]
    _run(rctx, "rules-image-tool nix-layers", cmd)
    plan = json.decode(rctx.read("plan.json"))

    layers = []
    for layer in plan["layers"]:
        layers.append(struct(comment = "%s: %d paths, %d bytes" % (layer["name"], len(layer["paths"]), layer["size"]), store_paths = layer["paths"], root_paths = []))
    if root_copies:
        layers.append(struct(comment = "copy_to_root", store_paths = [], root_paths = root_copies))

    rctx.file("BUILD.bazel", _build_file(rctx, layers, plan))

def _build_file(rctx, layers, plan):
    out = [
        "# Generated by rules_image's nix.image(name = %r): %d store paths, %d bytes, %d layers (%s)." % (
            rctx.attr.original_name or rctx.attr.name,
            plan.get("paths", 0),
            plan.get("bytes", 0),
            len(layers),
            plan.get("algorithm", rctx.attr.algorithm),
        ),
        'load("@rules_image//rules/private:nix.bzl", "nix_layer")',
        'load("@rules_image//rules/private:manifest.bzl", "image_manifest")',
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
        'exports_files(["closure.json", "plan.json"])',
        "",
    ]
    names = []
    for i, layer in enumerate(layers):
        name = "layer_%d" % i
        names.append(":" + name)
        out.append("# " + layer.comment)
        out.append("nix_layer(")
        out.append("    name = %r," % name)
        if layer.store_paths:
            out.append("    store_paths = %s," % _list(layer.store_paths))
        if layer.root_paths:
            out.append("    root_paths = %s," % _list(layer.root_paths))
        if rctx.attr.compress != "gzip":
            out.append("    compress = %r," % rctx.attr.compress)
        out.append(")")
        out.append("")
    out.append("image_manifest(")
    out.append('    name = "image",')
    out.append("    layers = %s," % _list(names))
    for key in ["entrypoint", "cmd"]:
        value = getattr(rctx.attr, key)
        if value:
            out.append("    %s = %s," % (key, _list(value)))
    for key in ["env", "labels"]:
        value = getattr(rctx.attr, key)
        if value:
            out.append("    %s = %s," % (key, repr(value)))
    for key in ["working_dir", "user"]:
        value = getattr(rctx.attr, key)
        if value:
            out.append("    %s = %r," % (key, value))
    out.append(")")
    return "\n".join(out) + "\n"

def _list(items):
    if len(items) <= 1:
        return repr(items)
    return "[\n" + "".join(["        %r,\n" % i for i in items]) + "    ]"

_COMMON_ATTRS = {
    "nix_file": attr.label(
        allow_single_file = [".nix"],
        doc = "A .nix file to build with `nix-build` (its `attribute`, or the whole file). " +
              "Files it imports belong in `srcs`.",
    ),
    "expression": attr.string(
        doc = "A Nix expression to build with `nix-build -E`, evaluated in the root module's " +
              "directory (so `import ./nix/app.nix` works). List the files it reads in `srcs`.",
    ),
    "flake": attr.string(
        doc = "A flake reference to build with `nix build`, e.g. \"path:./nix#app\" (relative to " +
              "the root module's directory). Needs the `flakes` experimental feature (turned on " +
              "for these calls). List the flake's files in `srcs`.",
    ),
    "store_path": attr.string(
        doc = "An existing store path (e.g. from `nix build --print-out-paths` or a substituter): " +
              "it and its closure become the image. The repository keeps a GC root for it.",
    ),
    "attribute": attr.string(
        doc = "Attribute to build (`-A` of nix-build; with `flake`, replaces the reference's fragment).",
    ),
    "srcs": attr.label_list(
        allow_files = True,
        doc = "The Nix files (and anything else) the build reads. The repository is rebuilt " +
              "when one of them, or `nix_file`, changes, and only then.",
    ),
    "max_layers": attr.int(
        default = 100,
        doc = "Most layers the image may have (groups and the copy_to_root layer count).",
    ),
    "groups": attr.string_list_dict(
        doc = "Layer name -> attributes or store paths whose closures (minus what an earlier " +
              "group took) share one layer; group layers come first. E.g. " +
              "{\"runtime\": [\"glibc\", \"openssl\"]}.",
    ),
    "copy_to_root": attr.string_list(
        doc = "Attributes or store paths whose contents are copied to `/` in one extra layer, e.g. " +
              "a `buildEnv` with `bin/` symlinks into the store. Their closures join the image.",
    ),
    "algorithm": attr.string(
        default = "rules_image",
        values = ["rules_image", "popularity"],
        doc = "Layering algorithm of `rules-image-tool nix-layers`: `popularity` is nixpkgs' " +
              "buildLayeredImage; `rules_image` (default) puts the application alone in the last " +
              "layer and places dependencies independently of it, so an update touches fewer layers.",
    ),
    "compress": attr.string(
        default = "gzip",
        values = ["gzip", "zstd", "none"],
        doc = "Compression of the layer blobs.",
    ),
    "entrypoint": attr.string_list(doc = "Entrypoint of the image."),
    "cmd": attr.string_list(doc = "Default arguments (Cmd)."),
    "env": attr.string_dict(doc = "Environment variables."),
    "working_dir": attr.string(doc = "Working directory of the container process."),
    "user": attr.string(doc = "User (and group) the process runs as, e.g. \"1000:1000\"."),
    "labels": attr.string_dict(doc = "Config labels."),
    "timeout": attr.int(default = 3600, doc = "Seconds each Nix command may take."),
}

nix_image_repo = repository_rule(
    implementation = _nix_image_repo_impl,
    doc = "Builds a Nix closure and plans its layers; see `nix.image`.",
    attrs = dict(_COMMON_ATTRS, original_name = attr.string(doc = "The name given to nix.image.")),
    environ = ["NIX_PATH"],
)

# ------------------------------------------------------------------------------ extension

def _nix_impl(mctx):
    for mod in mctx.modules:
        for tag in mod.tags.image:
            kwargs = {key: getattr(tag, key) for key in _COMMON_ATTRS.keys()}
            nix_image_repo(name = tag.name, original_name = tag.name, **kwargs)

nix = module_extension(
    implementation = _nix_impl,
    doc = """Images from Nix closures, built with the Nix installed on the machine running Bazel.

```starlark
nix = use_extension("@rules_image//rules:extensions.bzl", "nix")
nix.image(
    name = "server_nix",
    nix_file = "//nix:server.nix",      # or expression = "...", flake = "...", store_path = "/nix/store/..."
    attribute = "server",
    srcs = ["//nix:server.nix", "//nix:lib.nix"],   # re-built when these change
    max_layers = 50,
    copy_to_root = ["rootEnv"],         # its bin/... lands at /bin/...
    entrypoint = ["/bin/server"],
)
use_repo(nix, "server_nix")
```

`@server_nix//:image` is an image (use it as a `base`, load or push it) and
`@server_nix//:layer_<i>` its layers. The store paths are read from the local `/nix/store`
by actions tagged `local`/`no-remote`; see docs/nix.md for remote execution.
""",
    tag_classes = {
        "image": tag_class(
            doc = "One image from a Nix closure; the repository `@<name>` has `//:image` and `//:layer_<i>`.",
            attrs = dict(_COMMON_ATTRS, name = attr.string(mandatory = True, doc = "Repository name.")),
        ),
    },
)
