"""Module extensions of rules_image: `tool` (the tool binary), `images` (base images from registries),
`nix` (images from Nix closures) and `dockerfile` (images built from Dockerfiles)."""

load("//rules/private:dockerfile.bzl", _dockerfile = "dockerfile")
load("//rules/private:nix.bzl", _nix = "nix")
load("//rules/private:pull.bzl", _images = "images")
load("//rules/private:tool_extension.bzl", _tool = "tool")

tool = _tool
images = _images
nix = _nix
dockerfile = _dockerfile
