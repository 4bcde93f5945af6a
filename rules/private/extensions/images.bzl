"""The `images` module extension: base images from registries, pinned by digest (`images.pull`)."""

load("//rules/private/repo:pull.bzl", "PULL_ATTRS", "pull_repo")
load(":tags.bzl", "repos_from_tags")

visibility(["//rules/..."])

def _images_impl(mctx):
    repos_from_tags(mctx, "pull", pull_repo, PULL_ATTRS)

images = module_extension(
    implementation = _images_impl,
    doc = """Base images from registries, pinned by digest.

```starlark
images = use_extension("@rules_image//rules:extensions.bzl", "images")
images.pull(
    name = "distroless_static",
    registry = "gcr.io",
    repository = "distroless/static",
    digest = "sha256:...",   # required: what is built on
    tag = "nonroot",          # documentation only; `rules-image-tool resolve` prints a tag's digest
)
use_repo(images, "distroless_static")
```

`docker.io` works as a registry; single-component repositories there get `library/`.
Content is verified against the digest. Docker schema 2 layer media types become their OCI
equivalents in images built on the base (the bytes are the same).

Then `image_manifest(base = "@distroless_static//:image", ...)`. Only the manifest and config
are downloaded when the repository is created; no network is used on later builds. Layers are
fetched by build actions when one needs their bytes (`image_load`, the `tarball` and
`oci_layout` output groups); `image_push` to another registry mounts or copies them registry to
registry instead.

For an index digest (a multi-platform image), every platform's manifest and config are
pulled: `@<name>//:image` is then the whole index (ImageIndexInfo; an image_manifest built on
it uses the image for its target platform, so one base serves every platform of an
image_index) and `@<name>//:image_<os>_<arch>[_<variant>]` each platform's image (listed in
the generated BUILD file, in index order).
""",
    tag_classes = {
        "pull": tag_class(
            doc = "Pulls one image, or for an index digest every image of the index.",
            attrs = dict(
                PULL_ATTRS,
                name = attr.string(mandatory = True, doc = "Repository name; the image is `@<name>//:image`."),
            ),
        ),
    },
)
