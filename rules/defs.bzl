"""Build rules of rules_image: layers, images, indexes, `bazel run` targets that push and load them, and `bazel test` targets that check them.

```starlark
load("@rules_image//rules:defs.bzl", "dockerfile_image", "file_metadata", "image_index", "image_layer", "image_load", "image_manifest", "image_provenance", "image_push", "image_sbom", "image_test", "layer_from_tar", "multi_deploy")
load("@rules_image//rules:defs.bzl", "config_assertion", "file_assertion", "run_assertion")  # image_test's assertions
```

Images built by other means come in through `dockerfile_image` (a Dockerfile on base targets),
the module extensions (`images.pull`,
`nix.image`, `dockerfile.build`: see extensions.md) and `image_import` (repositories.md);
each is an ordinary target that `image_manifest(base = ...)`, `image_push` and `image_load`
take. The providers are public for rules that consume or produce images.
"""

load("//rules/private:file_metadata.bzl", _file_metadata = "file_metadata")
load("//rules/private:providers.bzl", _ImageArtifactInfo = "ImageArtifactInfo", _ImageIndexInfo = "ImageIndexInfo", _ImageManifestInfo = "ImageManifestInfo", _ImagePushInfo = "ImagePushInfo", _LayerInfo = "LayerInfo")
load("//rules/private/rules:deploy.bzl", _multi_deploy = "multi_deploy")
load("//rules/private/rules:dockerfile_image.bzl", _dockerfile_image = "dockerfile_image")
load("//rules/private/rules:image_test.bzl", _config_assertion = "config_assertion", _file_assertion = "file_assertion", _image_test = "image_test", _run_assertion = "run_assertion")
load("//rules/private/rules:index.bzl", _image_index = "image_index")
load("//rules/private/rules:layer.bzl", _image_layer = "image_layer")
load("//rules/private/rules:layer_from_tar.bzl", _layer_from_tar = "layer_from_tar")
load("//rules/private/rules:load.bzl", _image_load = "image_load")
load("//rules/private/rules:manifest.bzl", _image_manifest = "image_manifest")
load("//rules/private/rules:nix_layer.bzl", _nix_layer = "nix_layer")
load("//rules/private/rules:provenance.bzl", _image_provenance = "image_provenance")
load("//rules/private/rules:push.bzl", _image_push = "image_push")
load("//rules/private/rules:sbom.bzl", _image_sbom = "image_sbom")

dockerfile_image = _dockerfile_image
file_metadata = _file_metadata
image_index = _image_index
image_layer = _image_layer
image_manifest = _image_manifest
image_load = _image_load
image_provenance = _image_provenance
image_push = _image_push
image_sbom = _image_sbom
image_test = _image_test
file_assertion = _file_assertion
config_assertion = _config_assertion
run_assertion = _run_assertion
layer_from_tar = _layer_from_tar
multi_deploy = _multi_deploy
nix_layer = _nix_layer
LayerInfo = _LayerInfo
ImageManifestInfo = _ImageManifestInfo
ImageIndexInfo = _ImageIndexInfo
ImagePushInfo = _ImagePushInfo
ImageArtifactInfo = _ImageArtifactInfo
