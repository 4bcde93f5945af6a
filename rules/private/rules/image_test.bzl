"""image_test: a `bazel test` of an image's files and config, read from its layers (no container engine), and optionally of commands run in containers of it."""

load("//rules/private:image_args.bzl", "REMOTE_CACHE_ATTRS", "image_attr", "image_info", "is_index", "launcher_image_args")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:launcher.bzl", "rlocation_path", "write_launcher")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def _strings(what, value):
    """A string or a list of strings, as a list."""
    if type(value) == "string":
        return [value]
    if type(value) != "list":
        fail("%s must be a string or a list of strings, not %s" % (what, type(value)))
    return value

def file_assertion(
        absent = False,
        type = None,
        mode = None,
        uid = None,
        gid = None,
        uname = None,
        gname = None,
        size = None,
        link_target = None,
        contains = [],
        matches = []):
    """What must hold of one path of an image: a value of `image_test(files = {PATH: ...})`.

    With no argument, the path must exist. Every argument given is one assertion; the test
    reports each one that fails.

    ```starlark
    file_assertion(type = "file", mode = "0755", uid = 0)
    file_assertion(type = "symlink", link_target = "/app/server")
    file_assertion(contains = "listen 8080", matches = r"^version: \\d+")
    file_assertion(absent = True)
    ```

    Args:
        absent: the path must not exist (combined with nothing else).
        type: "file", "dir", "symlink", "hardlink" or "fifo". A hard link is a "file" too;
            "hardlink" asserts that the layer wrote the path as a link.
        mode: permission bits (with setuid, setgid, sticky) as an octal string, e.g. "0755"
            or "4755".
        uid: numeric owner.
        gid: numeric group.
        uname: owner name recorded in the layer (images built by rules_image record none: "").
        gname: group name recorded in the layer.
        size: size in bytes of a regular file.
        link_target: a symlink's target exactly as stored (e.g. "/app/server" or
            "../lib/x.so"), or the absolute path a hard link links to.
        contains: a string (or list of strings) the file's content must contain.
        matches: a regular expression (or a list), in Rust's `regex` syntax, that must match
            somewhere in the content; `(?m)` makes `^`/`$` match at lines.

    Returns:
        string: the assertion as JSON, for `image_test`'s `files`.
    """
    fields = {
        "absent": absent or None,
        "type": type,
        "mode": mode,
        "uid": uid,
        "gid": gid,
        "uname": uname,
        "gname": gname,
        "size": size,
        "link_target": link_target,
        "contains": _strings("contains", contains) or None,
        "matches": _strings("matches", matches) or None,
    }
    return json.encode({k: v for k, v in fields.items() if v != None})

def config_assertion(
        entrypoint = None,
        cmd = None,
        env = {},
        user = None,
        working_dir = None,
        exposed_ports = [],
        labels = {},
        platform = None):
    """What must hold of an image's config: the value of `image_test(config = ...)`.

    The names are image_manifest's. Lists and strings are compared whole (`cmd = []` asserts
    that there is none, `user = ""` that none is set); `env`, `labels` and `exposed_ports`
    list what must be present among possibly more.

    ```starlark
    config_assertion(entrypoint = ["/app/server"], env = {"PORT": "8080"}, user = "65534")
    ```

    Args:
        entrypoint: the exact entrypoint.
        cmd: the exact cmd.
        env: variables that must be set to these values (the last of duplicates counts).
        user: the exact user, e.g. "1000:1000".
        working_dir: the exact working directory.
        exposed_ports: ports that must be exposed, "8080/tcp" or "53/udp" ("8080" is tcp).
        labels: labels that must have these values.
        platform: "os/arch[/variant]" of the image, e.g. "linux/arm64"; a missing variant is
            the architecture's default (linux/arm64 is linux/arm64/v8).

    Returns:
        string: the assertions as JSON, for `image_test`'s `config`.
    """
    fields = {
        "entrypoint": entrypoint,
        "cmd": cmd,
        "env": env or None,
        "user": user,
        "working_dir": working_dir,
        "exposed_ports": exposed_ports or None,
        "labels": labels or None,
        "platform": platform,
    }
    return json.encode({k: v for k, v in fields.items() if v != None})

def _list(what, value):
    """A list of strings (a string is refused: it would be one argument, not words)."""
    if type(value) != "list":
        fail("%s must be a list of strings, not %s" % (what, type(value)))
    return value

def run_assertion(
        command = [],
        entrypoint = None,
        exit_code = 0,
        stdout_contains = [],
        stdout_matches = [],
        stderr_contains = [],
        stderr_matches = [],
        user = None,
        env = {},
        working_dir = None,
        timeout = 60):
    """A command run in a container of the image, and what must hold of it: an item of `image_test(run = [...])`.

    The command runs as `docker run --rm --network none IMAGE COMMAND...` would run it: the
    image's entrypoint with `command` as its arguments (or the image's cmd), with no network.
    The exit code is always asserted (0 unless said); every substring and pattern given is
    one assertion more.

    ```starlark
    run_assertion(stdout_contains = "Hello, container!")
    run_assertion(command = ["--version"], stdout_matches = r"^v\\d+\\.\\d+")
    run_assertion(entrypoint = ["/bin/sh", "-c"], command = ["id -u"], user = "65534", stdout_contains = "65534")
    run_assertion(command = ["--bad-flag"], exit_code = 2, stderr_contains = "unknown flag")
    ```

    Args:
        command: the arguments after the image in `docker run`: they replace the image's cmd.
            Default: the image's cmd.
        entrypoint: replaces the image's entrypoint, e.g. `["/bin/sh", "-c"]`; as with
            `docker run --entrypoint`, the image's cmd is then not used either. `[]` runs
            `command` alone. Default: the image's entrypoint.
        exit_code: the exit code the command must exit with.
        stdout_contains: a string (or list of strings) its stdout must contain.
        stdout_matches: a regular expression (or a list), in Rust's `regex` syntax, that must
            match somewhere in its stdout; `(?m)` makes `^`/`$` match at lines.
        stderr_contains: a string (or list) its stderr must contain.
        stderr_matches: a regular expression (or a list) that must match in its stderr.
        user: the user to run as (`docker run --user`), e.g. "65534" or "app:app". Default:
            the image's.
        env: variables set in the container (`docker run --env`), over the image's.
        working_dir: the working directory (`docker run --workdir`). Default: the image's.
        timeout: seconds the command may run; then its container is removed and its
            assertions fail.

    Returns:
        string: the assertion as JSON, for `image_test`'s `run`.
    """
    fields = {
        "command": _list("command", command) or None,
        "entrypoint": _list("entrypoint", entrypoint) if entrypoint != None else None,
        "exit_code": exit_code,
        "stdout_contains": _strings("stdout_contains", stdout_contains) or None,
        "stdout_matches": _strings("stdout_matches", stdout_matches) or None,
        "stderr_contains": _strings("stderr_contains", stderr_contains) or None,
        "stderr_matches": _strings("stderr_matches", stderr_matches) or None,
        "user": user,
        "env": env or None,
        "working_dir": working_dir,
        "timeout": timeout,
    }
    return json.encode({k: v for k, v in fields.items() if v != None})

# What makes an attribute's JSON, for messages.
_MAKERS = {"config": "config_assertion()", "files": "file_assertion()", "run": "run_assertion()"}

def _object(ctx, attr, what, text):
    value = json.decode(text)
    if type(value) != "dict":
        fail("%s: %s must be a JSON object, as %s makes, not %r" % (
            display_label(ctx.label),
            what,
            _MAKERS[attr],
            text,
        ))
    return value

# A test that runs containers needs the engine's socket and state on this machine: it runs
# unsandboxed, never remotely (as the `local` tag would have it; testing.ExecutionInfo sets
# these for the test action, as tags would).
_RUN_REQUIREMENTS = {"no-sandbox": "1", "no-remote": "1", "requires-network": "1"}

# What the engine's CLI reads from the environment to find its daemon (or its own binary).
_RUN_ENV = [
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "CONTAINER_HOST",
    "CONTAINER_CONNECTION",
    "XDG_RUNTIME_DIR",
    "RULES_IMAGE_DOCKER",
    "RULES_IMAGE_PODMAN",
]

def _image_test_impl(ctx):
    tool = image_tool(ctx)
    image = image_info(ctx.attr.image)
    files = {path: _object(ctx, "files", "files[%r]" % path, a) for path, a in ctx.attr.files.items()}
    runs = [_object(ctx, "run", "run[%d]" % i, r) for i, r in enumerate(ctx.attr.run)]
    spec = {
        "image": display_label(ctx.attr.image.label),
        "files": files,
        "config": _object(ctx, "config", "config", ctx.attr.config or "{}"),
    }
    if runs:
        spec["run"] = runs
    spec_file = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec_file, json.encode(spec))
    args = [label_arg(ctx.label), "--spec", rlocation_path(ctx, spec_file)]
    if runs:
        args += ["--engine", ctx.attr.engine]
    if ctx.attr.platform:
        if not is_index(image):
            fail("%s: `platform` picks an image of an index, but %s is a single image" %
                 (display_label(ctx.label), display_label(ctx.attr.image.label)))
        args += ["--platform", ctx.attr.platform]

    # File assertions read every layer and `run` loads them all, so a pulled image's layers
    # are downloaded then (by the actions image_load uses); a test of the config alone needs
    # none of them.
    image_args = launcher_image_args(ctx, image, "image_test", remote = not files and not runs)
    args += image_args.arguments
    launcher = write_launcher(ctx, tool, "image-test", args)
    runfiles = ctx.runfiles(files = [tool, spec_file] + image_args.files)
    providers = [DefaultInfo(executable = launcher, runfiles = runfiles)]
    if runs:
        providers += [
            testing.ExecutionInfo(_RUN_REQUIREMENTS),
            RunEnvironmentInfo(inherited_environment = _RUN_ENV),
        ]
    return providers

image_test = rule(
    implementation = _image_test_impl,
    doc = """A test of an image's files and config, read from its layers with no container engine; optionally, of commands run in containers of it.

```starlark
load("@rules_image//rules:defs.bzl", "config_assertion", "file_assertion", "image_test", "run_assertion")

image_test(
    name = "image_test",
    size = "small",
    image = ":image",
    files = {
        "/app/server": file_assertion(type = "file", mode = "0755", uid = 0),
        "/usr/bin/server": file_assertion(type = "symlink", link_target = "/app/server"),
        "/etc/secret": file_assertion(absent = True),
    },
    config = config_assertion(entrypoint = ["/app/server"], env = {"PORT": "8080"}),
)
```

`bazel test //app:image_test`. The layers are applied in order as a container runtime
applies them: whiteouts (`.wh.NAME`) and opaque directories (`.wh..wh..opq`) hide what lower
layers have, an entry replaces what is at its path (a directory over a directory keeps its
children), parents are followed through symlinks (`/lib/x` is `/usr/lib/x` when
`/lib -> usr/lib`), and a hard link is the file it links to. A path is asserted on as itself:
a symlink is not followed at the end of the path. Each layer's tar is checked against the
config's diff_id and read with the checks of `image_import`.

The test prints every failed assertion on its own line, naming the image, the path and the
layer that last wrote it (index in the manifest and digest), or removed it, e.g.

```
FAIL //app:image: /app/server: mode is 0644, want 0755 (written by layers[1] sha256:4af6...)
FAIL //app:image: /etc/secret: exists (a file), want absent (written by layers[0] sha256:9c1e...)
```

and fails; otherwise it prints how many assertions passed. An image_index is tested image by
image (every assertion on every image, named by platform), or only its image for `platform`.
File assertions read every layer, so the layers of a pulled base image are downloaded for the
test (config assertions alone download none).

`run` is the one part that needs a container engine: each `run_assertion` is a command run in
a container of the image, whose exit code and output are checked.

```starlark
image_test(
    name = "image_run_test",
    image = ":image",
    run = [
        run_assertion(stdout_contains = "listening on :8080", command = ["--dry-run"]),
        run_assertion(command = ["--bad-flag"], exit_code = 2, stderr_contains = "unknown flag"),
    ],
    tags = ["requires-docker"],  # a tag of your own, to select or skip such tests
)
```

The test loads the image into the engine (`engine`: Docker, or Podman) under a tag of its own
(`rules-image-test:<label>-<pid>-<time>`), as image_load does, runs each command with
`docker run --rm --network none --pull never`, and removes the tag afterwards. A failure names
the command as the container runs it, and what differed; the end of its stdout and stderr
follows:

```
FAIL //app:image: run[0] ["/app/server", "--dry-run"]: stdout does not contain "listening on :8080"
FAIL //app:image: run[1] ["/app/server", "--bad-flag"]: exit code is 0, want 2
```

With `run`, the test needs the engine on the machine that runs it: it runs unsandboxed and
never remotely (execution requirements `no-sandbox`, `no-remote`, `requires-network`), and
sees DOCKER_HOST, DOCKER_CONTEXT, DOCKER_CONFIG, CONTAINER_HOST and the like from Bazel's
environment. An image_index runs the image for this machine's platform (or for `platform`).
Without `run`, no engine is used.
""",
    attrs = REMOTE_CACHE_ATTRS | {
        "image": image_attr(
            "The image to test: an image_manifest, any target providing ImageManifestInfo " +
            "(images.pull, nix.image, dockerfile.build, image_import), or an image_index.",
        ),
        "platform": attr.string(
            doc = "For an image_index: test only its image for this platform, " +
                  "\"os/arch[/variant]\"; default: every image of the index. Not allowed for a " +
                  "single image.",
        ),
        "files": attr.string_dict(
            doc = "Absolute path in the image -> `file_assertion(...)`: what must hold of it.",
        ),
        "config": attr.string(
            doc = "`config_assertion(...)`: what must hold of the image's config (entrypoint, " +
                  "cmd, env, user, working_dir, exposed_ports, labels, platform).",
        ),
        "run": attr.string_list(
            doc = "`[run_assertion(...), ...]`: commands run, in this order, each in a new " +
                  "container of the image, and what must hold of each (exit code, stdout, " +
                  "stderr). Needs a container engine (`engine`) where the test runs; empty: " +
                  "none is used.",
        ),
        "engine": attr.string(
            default = "docker",
            values = ["docker", "podman"],
            doc = "With `run`: the engine that runs the containers, through its CLI (`docker` " +
                  "or `podman` on PATH; RULES_IMAGE_DOCKER / RULES_IMAGE_PODMAN name another " +
                  "binary).",
        ),
    },
    test = True,
    toolchains = [TOOLCHAIN_TYPE],
)
