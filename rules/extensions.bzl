"""Module extensions of rules_image."""

load("//rules/private:tool_extension.bzl", _tool = "tool")

tool = _tool
