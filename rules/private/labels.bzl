"""How rules name targets to people and to the tool: `display_label` and `label_arg`."""

visibility(["//rules/..."])

def repo_display_name(canonical):
    """The name of a repository as users know it, the same under every Bazel version.

    Canonical names are Bazel's internals and differ between versions: a module is `mod~` (7) or
    `mod+` (8 and later), an extension's repository `mod~~ext~repo` or `mod++ext+repo`. This
    keeps the module's name, or the name the extension gave the repository (the one `use_repo`
    imports). Image bytes (layer history) contain it, so a digest never depends on the Bazel
    version.

    Args:
        canonical: a canonical repository name, as Label.repo_name gives it.

    Returns:
        string.
    """
    parts = canonical.replace("+", "~").split("~")
    if len(parts) == 1:
        return canonical
    if len(parts) == 2:
        return parts[0]
    return parts[-1]

def display_label(label):
    """The label as users write it: `//pkg:name` in the main repository, `@repo//pkg:name` elsewhere.

    Args:
        label: Label.

    Returns:
        string.
    """
    if not label.repo_name:
        return "//%s:%s" % (label.package, label.name)
    return "@%s//%s:%s" % (repo_display_name(label.repo_name), label.package, label.name)

def label_arg(label):
    """A single `--label=...` argument for the tool (one word, so it never reads as an @argfile).

    Args:
        label: Label.

    Returns:
        string.
    """
    return "--label=" + display_label(label)
