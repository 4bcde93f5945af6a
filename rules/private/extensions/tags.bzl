"""What the image extensions (images, nix, dockerfile) have in common: one repository per tag."""

visibility(["//rules/..."])

def repos_from_tags(mctx, tag_class, repository_rule, attrs):
    """Declares `repository_rule(name = tag.name, <attrs of the tag>)` for each `tag_class` tag of every module.

    Args:
        mctx: module_ctx.
        tag_class: the tag class's name, e.g. "pull".
        repository_rule: the repository rule to call.
        attrs: the attribute names passed on (the tag class's attributes but `name`).
    """
    for mod in mctx.modules:
        for tag in getattr(mod.tags, tag_class):
            repository_rule(name = tag.name, **{key: getattr(tag, key) for key in attrs})
