"""Module extensions of rules_image: `tool` (the tool binary) and `images` (base images from registries)."""

load("//rules/private:pull.bzl", _images = "images")
load("//rules/private:tool_extension.bzl", _tool = "tool")

tool = _tool
images = _images
