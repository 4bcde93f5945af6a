"""The repository rule behind `images.pull`: an image (or index) from a registry, by digest.

Pulling is shallow: the repository holds only the manifests and configs (fetched once, by
digest). Each layer's bytes are fetched by an action, so they are downloaded only when an
action really needs them (load, tarball, layout), and a push to another registry mounts or
copies them registry to registry instead.
"""

load(":image_repo.bzl", "write_image_repo")
load(":repo_names.bzl", "apparent_name")
load(":tool_repos.bzl", "host_tool")

visibility(["//rules/..."])

PULL_ATTRS = {
    "registry": attr.string(mandatory = True, doc = "Registry host[:port], e.g. \"gcr.io\" or \"docker.io\"."),
    "repository": attr.string(mandatory = True, doc = "Repository, e.g. \"distroless/static\"."),
    "digest": attr.string(mandatory = True, doc = "sha256 digest of the manifest or index."),
    "tag": attr.string(doc = "The tag the digest was taken from; documentation only, never trusted."),
    "insecure_http": attr.bool(doc = "Allow plain HTTP to a non-loopback registry."),
}

def digest_error(digest):
    """What is wrong with a pinned digest, or None.

    Args:
        digest: string.

    Returns:
        string or None.
    """
    if not digest.startswith("sha256:") or len(digest) != 71:
        return "`digest` must be a sha256:<64 hex> manifest or index digest, got %r" % digest
    return None

def _pull_repo_impl(rctx):
    what = "images.pull(name = %r)" % apparent_name(rctx)
    error = digest_error(rctx.attr.digest)
    if error:
        fail("%s: %s" % (what, error))
    reference = "%s/%s@%s" % (rctx.attr.registry, rctx.attr.repository, rctx.attr.digest)
    cmd = [host_tool(rctx), "pull", "--image", reference, "--all-platforms", "--output-dir", "."]
    if rctx.attr.insecure_http:
        cmd.append("--insecure-http")
    rctx.report_progress("Pulling manifest and config of " + reference)
    result = rctx.execute(cmd, timeout = 600)
    if result.return_code != 0:
        fail("%s: cannot pull %s%s:\n%s" % (
            what,
            reference,
            " (tag %s)" % rctx.attr.tag if rctx.attr.tag else "",
            result.stderr,
        ))
    source = rctx.attr.registry + "/" + rctx.attr.repository
    write_image_repo(rctx, what, "", source = source)

pull_repo = repository_rule(
    implementation = _pull_repo_impl,
    doc = "Fetches the manifest and config of an image (or of every image of an index) by digest; see `images.pull`.",
    attrs = PULL_ATTRS,
)
