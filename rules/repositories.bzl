"""Repository rules of rules_image, for `use_repo_rule` in MODULE.bazel.

```starlark
image_import = use_repo_rule("@rules_image//rules:repositories.bzl", "image_import")
image_import(name = "vendor_app", src = "//third_party:vendor_app.tar")
```
"""

load("//rules/private/repo:import.bzl", _image_import = "image_import")

image_import = _image_import
