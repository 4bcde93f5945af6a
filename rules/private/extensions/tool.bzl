"""The `tool` module extension: where the rules_image tool comes from."""

load("//rules/private/repo:repo_names.bzl", "SOURCE_TOOL_REPO", "TOOLCHAINS_REPO", "TOOL_NAME", "prebuilt_tool_repo")
load("//rules/private/repo:tool_repos.bzl", "PLATFORMS", "host_platform", "prebuilt_tool", "source_tool", "toolchains_repo")

visibility(["//rules/..."])

_DEFAULT_LOCK = Label("//tools:prebuilt.lock.json")

def lock_error(data):
    """What is wrong with a decoded lock file, or None.

    Args:
        data: the lock file's JSON, decoded.

    Returns:
        string or None.
    """
    for platform, entry in data.get("binaries", {}).items():
        if platform not in PLATFORMS:
            return "unknown platform %r (known: %s)" % (platform, ", ".join(PLATFORMS.keys()))
        if not entry.get("sha256") or not entry.get("urls"):
            return "entry %r needs `urls` and `sha256`" % platform
    return None

def _read_lock(mctx, lock):
    data = json.decode(mctx.read(mctx.path(lock)))
    error = lock_error(data)
    if error:
        fail("rules_image: %s: %s" % (lock, error))
    return data.get("binaries", {})

def _tool_impl(mctx):
    # The root module decides; rules_image's own defaults apply otherwise.
    build_from_source = False
    lock = None
    for mod in mctx.modules:
        if not mod.is_root:
            continue
        for _ in mod.tags.build_from_source:
            build_from_source = True
        for tag in mod.tags.prebuilt:
            lock = tag.lock

    binaries = {}
    if not build_from_source:
        binaries = _read_lock(mctx, lock or _DEFAULT_LOCK)
        if lock == None and host_platform(mctx) not in binaries:
            # No released binary for this machine (e.g. a development checkout): build it.
            build_from_source = True

    tools = {}
    if build_from_source:
        source_tool(name = SOURCE_TOOL_REPO)
        tools[host_platform(mctx)] = "@%s//:%s" % (SOURCE_TOOL_REPO, TOOL_NAME)
    else:
        for platform, entry in binaries.items():
            repo = prebuilt_tool_repo(platform)
            prebuilt_tool(name = repo, urls = entry["urls"], sha256 = entry["sha256"])
            tools[platform] = "@%s//:%s" % (repo, TOOL_NAME)
    toolchains_repo(
        name = TOOLCHAINS_REPO,
        tools = tools,
        host_tool = tools.get(host_platform(mctx)),
    )

tool = module_extension(
    implementation = _tool_impl,
    doc = """Provides the rules-image-tool binary as the toolchain `@rules_image//rules:toolchain_type`.

By default the binary is downloaded from the URLs pinned (with sha256) in rules_image's
`tools/prebuilt.lock.json`; when that lock has no binary for the host, it is built from source.
The root module may choose explicitly:

```starlark
tool = use_extension("@rules_image//rules:extensions.bzl", "tool")
tool.build_from_source()                       # build tools/ with cargo (contributors, CI)
tool.prebuilt(lock = "//:my_tool.lock.json")   # or: pinned binaries from your own lock file
```
""",
    tag_classes = {
        "build_from_source": tag_class(
            doc = "Build the tool from rules_image's tools/ with cargo; rebuilt when its sources change.",
            attrs = {},
        ),
        "prebuilt": tag_class(
            doc = "Use prebuilt binaries pinned in a lock file: " +
                  "`{\"binaries\": {\"x86_64-unknown-linux-gnu\": {\"urls\": [...], \"sha256\": \"...\"}}}`.",
            attrs = {
                "lock": attr.label(mandatory = True, allow_single_file = [".json"], doc = "The lock file."),
            },
        ),
    },
)
