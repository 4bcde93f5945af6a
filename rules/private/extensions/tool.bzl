"""The `tool` module extension: where the rules_image tool comes from."""

load("//rules/private/repo:repo_names.bzl", "SOURCE_TOOL_REPO", "TOOLCHAINS_REPO", "TOOL_NAME", "prebuilt_tool_repo")
load("//rules/private/repo:tool_repos.bzl", "PLATFORMS", "host_platform", "prebuilt_tool", "source_tool", "toolchains_repo")

visibility(["//rules/..."])

_DEFAULT_LOCK = Label("//tools:prebuilt.lock.json")

def lock_error(data):
    """What is wrong with a decoded lock file, or None.

    A lock file (written by tools/release.sh) maps each platform of PLATFORMS to its binary,
    or to null where a release has none:
    `{"version": "0.1.0", "binaries": {"x86_64-unknown-linux-gnu": {"urls": [...], "sha256": "..."}, ...}}`.

    Args:
        data: the lock file's JSON, decoded.

    Returns:
        string or None.
    """
    for platform, entry in data.get("binaries", {}).items():
        if platform not in PLATFORMS:
            return "unknown platform %r (known: %s)" % (platform, ", ".join(PLATFORMS.keys()))
        if entry == None:
            continue
        if type(entry) != "dict" or not entry.get("sha256") or not entry.get("urls"):
            return "entry %r needs `urls` and `sha256` (or null: no binary)" % platform
    return None

def _read_lock(mctx, lock):
    data = json.decode(mctx.read(mctx.path(lock)), default = None)
    if type(data) != "dict":
        fail("rules_image: %s is not a lock file (a JSON object; see tools/release.sh)" % lock)
    error = lock_error(data)
    if error:
        fail("rules_image: %s: %s" % (lock, error))
    return {platform: entry for platform, entry in data.get("binaries", {}).items() if entry != None}

def tool_plan(host, binaries, lock, build_from_source):
    """Where the tool for each platform comes from.

    Args:
        host: the PLATFORMS key of this machine.
        binaries: platform -> lock entry, for the platforms the lock has a binary for.
        lock: the lock file's label, as a string (for messages).
        build_from_source: whether the root module asked for a source build.

    Returns:
        struct(source: build the host's tool from source, prebuilt: platform -> lock entry,
        unavailable: platform -> why it has no binary).
    """
    if build_from_source:
        return struct(
            source = True,
            prebuilt = {},
            unavailable = {
                p: "the tool is built from source for this machine (%s) only" % host
                for p in PLATFORMS
                if p != host
            },
        )
    return struct(
        source = False,
        prebuilt = binaries,
        unavailable = {
            p: "the lock file %s has no binary for it" % lock
            for p in PLATFORMS
            if p not in binaries
        },
    )

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

    host = host_platform(mctx)
    binaries = {}
    if not build_from_source:
        binaries = _read_lock(mctx, lock or _DEFAULT_LOCK)
        if lock == None and host not in binaries:
            # No released binary for this machine (e.g. a development checkout): build it.
            build_from_source = True
    plan = tool_plan(host, binaries, str(lock) if lock else "@rules_image//tools:prebuilt.lock.json", build_from_source)

    tools = {}
    if plan.source:
        source_tool(name = SOURCE_TOOL_REPO)
        tools[host] = "@%s//:%s" % (SOURCE_TOOL_REPO, TOOL_NAME)
    for platform, entry in plan.prebuilt.items():
        repo = prebuilt_tool_repo(platform)
        prebuilt_tool(name = repo, urls = entry["urls"], sha256 = entry["sha256"])
        tools[platform] = "@%s//:%s" % (repo, TOOL_NAME)
    toolchains_repo(
        name = TOOLCHAINS_REPO,
        tools = tools,
        unavailable = plan.unavailable,
        host_tool = tools.get(host),
    )

tool = module_extension(
    implementation = _tool_impl,
    doc = """Provides the rules-image-tool binary as the toolchain `@rules_image//rules:toolchain_type`.

By default the binaries are downloaded from the URLs pinned (with sha256) in rules_image's
`tools/prebuilt.lock.json`, which a release fills (tools/release.sh); when that lock has no
binary for the host, the host's tool is built from source. One toolchain is registered per
platform of the lock (Linux and macOS, x86_64 and aarch64), matched against each action's
*exec* platform, so remote execution on Linux workers from a Mac gets the Linux binary. An
action whose exec platform has no binary fails, naming the platform.
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
