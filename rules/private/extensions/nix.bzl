"""The `nix` module extension: images from Nix closures (`nix.image`)."""

load("//rules/private/repo:nix.bzl", "NIX_IMAGE_ATTRS", "nix_image_repo")
load(":tags.bzl", "repos_from_tags")

visibility(["//rules/..."])

def _nix_impl(mctx):
    repos_from_tags(mctx, "image", nix_image_repo, NIX_IMAGE_ATTRS)

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
            attrs = dict(NIX_IMAGE_ATTRS, name = attr.string(mandatory = True, doc = "Repository name.")),
        ),
    },
)
