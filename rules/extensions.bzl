"""Module extensions of rules_image: `tool` (the tool binary), `images` (base images from registries),
`nix` (images from Nix closures) and `dockerfile` (images built from Dockerfiles).

```starlark
images = use_extension("@rules_image//rules:extensions.bzl", "images")
```

Each tag of `images`, `nix` and `dockerfile` creates one repository whose `//:image` is an
ordinary image target (an index for multi-platform images). Guides: docs/nix.md,
docs/dockerfile.md, docs/multiplatform.md.
"""

load("//rules/private/extensions:dockerfile.bzl", _dockerfile = "dockerfile")
load("//rules/private/extensions:images.bzl", _images = "images")
load("//rules/private/extensions:nix.bzl", _nix = "nix")
load("//rules/private/extensions:tool.bzl", _tool = "tool")

tool = _tool
images = _images
nix = _nix
dockerfile = _dockerfile
