"""Every name that two files of rules_image (or rules_image and the tool) must agree on.

A repository rule writes files and a BUILD file; build rules, launchers, e2e checks and users
refer to what it wrote by name. Those names are defined here, once:

| name | what it is | written by | read by |
| --- | --- | --- | --- |
| `apparent_name(rctx)` | the repository name the user gave (`name = ...` of `images.pull`, `image_import`, `dockerfile.build`, `nix.image`) | Bazel | error messages, the tool's `--label=@<name>`, dockerfile's build tag |
| `@<name>//:image` (`IMAGE_TARGET`) | the image, or for an index the whole index | every image repository | users (`base`, `image`) |
| `:image_<os>_<arch>[_<variant>]` (`platform_image_target`) | one image of an index | pull, import | users; `repository_index.manifests` |
| `:layer_<i>` (`layer_target`) | the i-th planned layer of a Nix image | nix | users; the Nix image's `layers` |
| `rules_image_toolchains` (`TOOLCHAINS_REPO`) | toolchains of the tool, `host/rules-image-tool` (`HOST_TOOL_PATH`) for repository rules | the `tool` extension | MODULE.bazel (`use_repo`, `register_toolchains`), `host_tool()` |
| `rules_image_tool_source`, `rules_image_tool_<triple>` | the tool built from source / a prebuilt binary | the `tool` extension | `rules_image_toolchains` |
| `manifest.json`, `config.json`, `layers.json`, `image.json` | one image directory: manifest, config, `[{digest, diff_id, media_type, size}]`, `{manifest_digest, platform, origin, ...}` | the tool (`pull`, `import`; `tools/src/repo_dir.rs`) | `image_repo.bzl`, e2e checks |
| `index.json`, `platforms.json` | an index directory: the index, `[{dir, os, architecture, variant?, digest}]` (one image directory `<dir>/` each) | the tool | `image_repo.bzl` |
| `digest`, `descriptor.json` | `sha256:<hex>` of the image (or index) of a directory, and an image's OCI descriptor with its platform | the tool | `image_repo.bzl`, `repository_image`, `repository_index` |
| `blobs/sha256/<hex>` (`blob_path`) | verified blobs of an imported image | the tool (`import`) | `repository_image.blobs` |
| `imported/` (`IMPORT_DIR`) | where `import` writes; pull writes to the repository root | `import.bzl` | `image_repo.bzl` |
| `closure.json`, `plan.json` | Nix closure (`nix path-info -r --json`) and the layer plan | nix | e2e checks, users (exported) |
| `*.bzl` labels (`PUBLIC_DEFS`, `REPOSITORY_RULES`, `TOOLCHAIN_RULES`) | what generated BUILD files load | generated BUILD files | Bazel |
"""

visibility(["//rules/..."])

# ------------------------------------------------------------------ the user's repository name

def repo_name_from_canonical(canonical_name):
    """The apparent name in a canonical repository name.

    `rules_image~~nix~web` (Bazel 7) and `rules_image++nix+web` (Bazel 8) are both `web`; so are
    `_main~_repo_rules~web` and `_main+_repo_rules+web` (`use_repo_rule`).

    Args:
        canonical_name: string, as in `rctx.attr.name`.

    Returns:
        string.
    """
    return canonical_name.replace("+", "~").split("~")[-1]

def apparent_name(rctx):
    """The name the user gave the repository (`rctx.attr.name` is the canonical name).

    Args:
        rctx: repository_ctx.

    Returns:
        string.
    """

    # `original_name` exists from Bazel 7.7 and 8.1 on.
    return getattr(rctx, "original_name", "") or repo_name_from_canonical(rctx.attr.name)

# ------------------------------------------------------------------ targets of image repositories

IMAGE_TARGET = "image"

def platform_image_target(platform_dir):
    """The target of one image of an index, from its directory name (`os_arch[_variant]`).

    Args:
        platform_dir: the `dir` of a platforms.json entry, e.g. `linux_arm64_v8`.

    Returns:
        string: e.g. `image_linux_arm64_v8`.
    """
    return IMAGE_TARGET + "_" + platform_dir

def layer_target(i):
    """The target of the i-th layer of a Nix image.

    Args:
        i: int, from 0.

    Returns:
        string.
    """
    return "layer_%d" % i

# ------------------------------------------------------------------ the tool's repositories

TOOL_NAME = "rules-image-tool"
TOOLCHAINS_REPO = "rules_image_toolchains"
HOST_TOOL_PATH = "host/" + TOOL_NAME
SOURCE_TOOL_REPO = "rules_image_tool_source"

def prebuilt_tool_repo(triple):
    """The repository of the prebuilt tool for a target triple.

    Args:
        triple: e.g. `x86_64-unknown-linux-gnu`.

    Returns:
        string.
    """
    return "rules_image_tool_" + triple.replace("-", "_")

# ------------------------------------------------------------------ files of image directories

MANIFEST_JSON = "manifest.json"
CONFIG_JSON = "config.json"
LAYERS_JSON = "layers.json"
IMAGE_JSON = "image.json"
INDEX_JSON = "index.json"
PLATFORMS_JSON = "platforms.json"
DIGEST_FILE = "digest"
DESCRIPTOR_JSON = "descriptor.json"
IMPORT_DIR = "imported/"

def blob_path(digest):
    """Where a verified blob lives, relative to the directory the tool imported into.

    Args:
        digest: `sha256:<hex>`.

    Returns:
        string: `blobs/sha256/<hex>`.
    """
    return "blobs/sha256/" + digest.split(":")[-1]

# ------------------------------------------------------------------ Nix repositories

CLOSURE_JSON = "closure.json"
PLAN_JSON = "plan.json"

# ------------------------------------------------------------------ what generated BUILD files load

PUBLIC_DEFS = "@rules_image//rules:defs.bzl"
REPOSITORY_RULES = "@rules_image//rules/private/rules:repository_image.bzl"
TOOLCHAIN_RULES = "@rules_image//rules/private:toolchain.bzl"
