"""Targets the tests analyse."""

load("//rules/private/rules:repository_image.bzl", "repository_image")

def fixture_repository_image(name, layers, source = ""):
    """A `manual` repository_image of linux/amd64 over placeholder files (analysis never reads them).

    Args:
        name: the target's name.
        layers: its `layers` JSON.
        source: `registry/repository` of its layers (a pulled image), or "" (an imported one).
    """
    repository_image(
        name = name,
        config = "testdata/config.json",
        descriptor = "testdata/descriptor.json",
        digest = "testdata/digest",
        layers = layers,
        manifest = "testdata/manifest.json",
        platform = '{"os": "linux", "architecture": "amd64"}',
        source = source,
        tags = ["manual"],
    )
