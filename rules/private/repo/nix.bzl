"""The repository rule behind `nix.image`: a Nix closure as an image repository.

It realises a Nix expression, file, flake or existing store path with the host's Nix, reads
the closure (`nix path-info -r --json`) and lets the tool plan at most `max_layers` layers
(`rules-image-tool nix-layers`). The generated BUILD file holds one `nix_layer` per planned
layer and an `image_manifest` over them, so a Nix closure is an ordinary image Bazel can
extend, load or push. The layer actions read `/nix/store` directly; see `nix_layer`.
"""

load("//rules/private:layer_action.bzl", "compress_attr")
load("//rules/private/rules:manifest.bzl", "IMAGE_CONFIG_ATTRS")
load("//rules/private/rules:nix_layer.bzl", "NIX_STORE")
load(":repo_names.bzl", "CLOSURE_JSON", "IMAGE_TARGET", "PLAN_JSON", "PUBLIC_DEFS", "apparent_name", "layer_target")
load(":tool_repos.bzl", "host_tool")

visibility(["//rules/..."])

_INSTALL_HINT = ("install Nix (Debian/Ubuntu: `apt-get install nix-bin`; elsewhere " +
                 "https://nixos.org/download) and make sure nix-build is on the PATH Bazel sees")

_EXPERIMENTAL = ["--extra-experimental-features", "nix-command flakes"]

def _err(rctx, message):
    fail("nix.image(name = %r): %s" % (apparent_name(rctx), message))

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

def out_paths(stdout):
    """The store paths a Nix build printed, one a line.

    Args:
        stdout: string.

    Returns:
        list of strings.
    """
    return [line.strip() for line in stdout.splitlines() if line.strip().startswith(NIX_STORE)]

def flake_ref(flake, attribute):
    """The flake reference to build: `attribute`, if any, replaces the reference's fragment.

    Args:
        flake: e.g. "path:./nix#app".
        attribute: string or "".

    Returns:
        string.
    """
    if not attribute:
        return flake
    return flake.split("#", 1)[0] + "#" + attribute

def attrs_error(attrs):
    """What is wrong with a nix.image's attributes before anything runs, or None.

    Args:
        attrs: the attributes (rctx.attr, or a struct with the same fields).

    Returns:
        string or None.
    """
    sources = [s for s in [attrs.nix_file, attrs.expression, attrs.flake, attrs.store_path] if s]
    if len(sources) != 1:
        return "set exactly one of `nix_file`, `expression`, `flake` and `store_path`"
    if attrs.max_layers < 1:
        return "max_layers must be at least 1, got %d" % attrs.max_layers
    if attrs.copy_to_root and attrs.max_layers < 2:
        return "max_layers must be at least 2 with copy_to_root (one layer holds the copied roots)"
    return None

def _realise(rctx, nix_build, nix, attribute, link):
    """Builds `attribute` of the configured source; returns its output paths (a GC root at `link`)."""
    attr_args = ["-A", attribute] if attribute else []
    if rctx.attr.nix_file:
        nix_file = rctx.path(rctx.attr.nix_file)
        cmd = [nix_build, nix_file] + attr_args + ["--out-link", link]
        return out_paths(_run(rctx, "nix-build", cmd))
    if rctx.attr.expression:
        cmd = [nix_build, "-E", rctx.attr.expression] + attr_args + ["--out-link", link]
        return out_paths(_run(rctx, "nix-build -E", cmd, working_directory = str(rctx.workspace_root)))
    cmd = [nix] + _EXPERIMENTAL + ["build", flake_ref(rctx.attr.flake, attribute), "--out-link", link, "--print-out-paths"]
    return out_paths(_run(rctx, "nix build", cmd, working_directory = str(rctx.workspace_root)))

def _existing_store_path(rctx, nix_store, path, link):
    if not path.startswith(NIX_STORE) or not rctx.path(path).exists:
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
    error = attrs_error(rctx.attr)
    if error:
        _err(rctx, error)
    reserved = 1 if rctx.attr.copy_to_root else 0

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
    rctx.file(CLOSURE_JSON, closure)

    cmd = [
        host_tool(rctx),
        "nix-layers",
        "--label=@" + apparent_name(rctx),
        "--path-info",
        CLOSURE_JSON,
        "--max-layers",
        str(rctx.attr.max_layers - reserved),
        "--algorithm",
        rctx.attr.algorithm,
        "--output",
        PLAN_JSON,
    ]
    for root in all_roots:
        cmd += ["--root", root]
    for name, paths in groups:
        cmd += ["--group", "%s=%s" % (name, ",".join(paths))]
    _run(rctx, "rules-image-tool nix-layers", cmd)
    plan = json.decode(rctx.read(PLAN_JSON))
    rctx.file("BUILD.bazel", nix_build_file(apparent_name(rctx), rctx.attr, plan, root_copies))

def nix_build_file(name, attrs, plan, root_copies):
    """The BUILD file of a nix.image repository: one nix_layer per planned layer, then the image.

    Args:
        name: the repository's apparent name.
        attrs: the nix.image attributes (compress, algorithm and IMAGE_CONFIG_ATTRS).
        plan: the decoded plan.json of `rules-image-tool nix-layers`.
        root_copies: store paths whose contents the last layer copies to `/`.

    Returns:
        string.
    """
    layers = [
        struct(
            comment = "%s: %d paths, %d bytes" % (layer["name"], len(layer["paths"]), layer["size"]),
            store_paths = layer["paths"],
            root_paths = [],
        )
        for layer in plan["layers"]
    ]
    if root_copies:
        layers.append(struct(comment = "copy_to_root", store_paths = [], root_paths = root_copies))
    out = [
        "# Generated by rules_image's nix.image(name = %r): %d store paths, %d bytes, %d layers (%s)." % (
            name,
            plan.get("paths", 0),
            plan.get("bytes", 0),
            len(layers),
            plan.get("algorithm", attrs.algorithm),
        ),
        'load("%s", "image_manifest", "nix_layer")' % PUBLIC_DEFS,
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
        'exports_files(["%s", "%s"])' % (CLOSURE_JSON, PLAN_JSON),
        "",
    ]
    names = []
    for i, layer in enumerate(layers):
        names.append(":" + layer_target(i))
        out.append("# " + layer.comment)
        out.append("nix_layer(")
        out.append("    name = %r," % layer_target(i))
        if layer.store_paths:
            out.append("    store_paths = %s," % _list(layer.store_paths))
        if layer.root_paths:
            out.append("    root_paths = %s," % _list(layer.root_paths))
        if attrs.compress != "gzip":
            out.append("    compress = %r," % attrs.compress)
        out.append(")")
        out.append("")
    out.append("image_manifest(")
    out.append("    name = %r," % IMAGE_TARGET)
    out.append("    layers = %s," % _list(names))
    for key in IMAGE_CONFIG_ATTRS:
        value = getattr(attrs, key)
        if value:
            out.append("    %s = %s," % (key, _list(value) if type(value) == "list" else repr(value)))
    out.append(")")
    return "\n".join(out) + "\n"

def _list(items):
    if len(items) <= 1:
        return repr(items)
    return "[\n" + "".join(["        %r,\n" % i for i in items]) + "    ]"

NIX_IMAGE_ATTRS = {
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
    "compress": compress_attr("Compression of the layer blobs."),
    "timeout": attr.int(default = 3600, doc = "Seconds each Nix command may take."),
}

# The image's config, as image_manifest's (a Nix image has no base to inherit from).
NIX_IMAGE_ATTRS.update(IMAGE_CONFIG_ATTRS)

nix_image_repo = repository_rule(
    implementation = _nix_image_repo_impl,
    doc = "Builds a Nix closure and plans its layers; see `nix.image`.",
    attrs = NIX_IMAGE_ATTRS,
    environ = ["NIX_PATH"],
)
