"""The `dockerfile` module extension: images built from Dockerfiles (`dockerfile.build`)."""

load("//rules/private/repo:dockerfile.bzl", "DOCKERFILE_ATTRS", "dockerfile_repo")
load(":tags.bzl", "repos_from_tags")

visibility(["//rules/..."])

def _dockerfile_impl(mctx):
    repos_from_tags(mctx, "build", dockerfile_repo, DOCKERFILE_ATTRS)

dockerfile = module_extension(
    implementation = _dockerfile_impl,
    doc = """Images built from Dockerfiles, as Bazel targets.

```starlark
dockerfile = use_extension("@rules_image//rules:extensions.bzl", "dockerfile")
dockerfile.build(
    name = "web",
    dockerfile = "//web:Dockerfile",
    build_args = {"NODE_ENV": "production"},
)
use_repo(dockerfile, "web")
```

Then `@web//:image` is an image (ImageManifestInfo) that `image_manifest(base = ...)`,
`image_push` and `image_load` take like any other. The build runs when the repository is
created: again only when the Dockerfile, a file of the context or an attribute changes. The
images named in `FROM` must be available to the builder (pulled, or loaded with a
rules_image `image_load` target before the build).
""",
    tag_classes = {
        "build": tag_class(
            doc = "Builds one Dockerfile and imports the resulting image.",
            attrs = dict(
                DOCKERFILE_ATTRS,
                name = attr.string(mandatory = True, doc = "Repository name; the image is `@<name>//:image`."),
            ),
        ),
    },
)
