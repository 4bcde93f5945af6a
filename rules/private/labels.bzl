"""How rules name targets to people and to the tool: `display_label` and `label_arg`."""

visibility(["//rules/..."])

def display_label(label):
    """The label as users write it: `//pkg:name` in the main repository, `@repo//pkg:name` elsewhere.

    Args:
        label: Label.

    Returns:
        string.
    """
    if not label.repo_name:
        return "//%s:%s" % (label.package, label.name)
    return str(label)

def label_arg(label):
    """A single `--label=...` argument for the tool (one word, so it never reads as an @argfile).

    Args:
        label: Label.

    Returns:
        string.
    """
    return "--label=" + display_label(label)
