"""Analysis tests of the tool arguments the rules write: layout action argv, launchers, child files, fetches."""

load("@bazel_skylib//lib:unittest.bzl", "analysistest", "asserts")
load("//rules:defs.bzl", "ImageManifestInfo")

def _action(env, mnemonic):
    actions = [a for a in analysistest.target_actions(env) if a.mnemonic == mnemonic]
    asserts.equals(env, 1, len(actions), "actions with mnemonic " + mnemonic)
    return actions[0] if actions else None

def _written(env, basename):
    """The content of the file the target under test writes with ctx.actions.write."""
    for action in analysistest.target_actions(env):
        if action.mnemonic == "FileWrite" and action.outputs.to_list()[0].basename == basename:
            return action.content
    asserts.true(env, False, "no FileWrite of " + basename)
    return ""

def _launcher_args(content):
    """The quoted words of a launcher's `exec "$tool" ...` line, between the command and "$@"."""
    exec_line = [line for line in content.splitlines() if line.startswith('exec "$tool" ')][0]
    return exec_line[len('exec "$tool" '):-len(' "$@"')]

def _runfiles(env):
    return [f.short_path for f in analysistest.target_under_test(env)[DefaultInfo].default_runfiles.files.to_list()]

# ---------------------------------------------------------------- layout and tarball actions

def _layout_argv_test_impl(ctx):
    env = analysistest.begin(ctx)
    image = analysistest.target_under_test(env)[ImageManifestInfo]
    for mnemonic, kind, output in [("ImageLayout", "layout", "app.oci_layout"), ("ImageTarball", "tarball", "app.tar")]:
        action = _action(env, mnemonic)
        if not action:
            continue
        asserts.equals(env, [
            kind,
            "--label=//rules/tests:app",
            "--manifest",
            image.manifest.path,
            "--config",
            image.config.path,
            "--blob",
            image.layers[0].blob.path,  # the pulled base layer: its fetched blob
            "--blob",
            image.layers[1].blob.path,
            "--output",
            "%s/rules/tests/%s" % (analysistest.target_bin_dir_path(env), output),
        ], action.argv[1:])
        asserts.equals(
            env,
            sorted([image.manifest.path, image.config.path] + [layer.blob.path for layer in image.layers]),
            sorted([f.path for f in action.inputs.to_list() if not f.basename.startswith("rules-image-tool")]),
        )
    return analysistest.end(env)

layout_argv_test = analysistest.make(_layout_argv_test_impl)

# ---------------------------------------------------------------- launchers

def _push_launcher_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(
        env,
        "push --rlocation '--label=//rules/tests:push_app' '--default-destination' 'registry.example/app' " +
        "'--default-destination' 'mirror.example/app' '--default-tag' 'v1' " +
        "'--manifest' '_main/rules/tests/app.manifest.json' '--config' '_main/rules/tests/app.config.json' " +
        "'--blob' 'remote:registry.example/base' '--blob' '_main/rules/tests/file_layer.tar.gz'",
        _launcher_args(_written(env, "push_app.sh")),
    )
    runfiles = _runfiles(env)
    asserts.true(env, "rules/tests/file_layer.tar.gz" in runfiles, "the local layer is in the runfiles")
    asserts.false(env, [f for f in runfiles if "/blobs/" in f], "a shallow layer's blob is not in the runfiles")
    return analysistest.end(env)

push_launcher_test = analysistest.make(_push_launcher_test_impl)

def _load_launcher_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(
        env,
        "load --rlocation '--label=//rules/tests:load_app' '--daemon' 'podman' '--tag' 'test/app:1' " +
        "'--manifest' '_main/rules/tests/app.manifest.json' '--config' '_main/rules/tests/app.config.json' " +
        "'--blob' '_main/rules/tests/pulled/blobs/%s' '--blob' '_main/rules/tests/file_layer.tar.gz'" % ("a" * 64),
        _launcher_args(_written(env, "load_app.sh")),
    )
    asserts.true(env, "rules/tests/pulled/blobs/" + "a" * 64 in _runfiles(env), "load needs the fetched blob")
    return analysistest.end(env)

load_launcher_test = analysistest.make(_load_launcher_test_impl)

def _load_from_cas_launcher_test_impl(ctx):
    env = analysistest.begin(ctx)

    # Both layers are outputs of cacheable actions (a fetch and a layer action): read from the
    # cache by digest, neither is a runfile.
    asserts.equals(
        env,
        "load --rlocation '--label=//rules/tests:load_app' '--daemon' 'podman' '--tag' 'test/app:1' " +
        "'--remote-cache=grpcs://cache.example:443' '--remote-instance-name=main' " +
        "'--manifest' '_main/rules/tests/app.manifest.json' '--config' '_main/rules/tests/app.config.json' " +
        "'--blob' 'cas:' '--blob' 'cas:'",
        _launcher_args(_written(env, "load_app.sh")),
    )
    runfiles = _runfiles(env)
    asserts.false(env, [f for f in runfiles if "/blobs/" in f or f.endswith(".tar.gz")], "no layer blob is a runfile")
    asserts.true(env, "rules/tests/app.manifest.json" in runfiles, "the manifest is a runfile")
    return analysistest.end(env)

load_from_cas_launcher_test = analysistest.make(_load_from_cas_launcher_test_impl, config_settings = {
    str(Label("//rules:remote_cache")): "grpcs://cache.example:443",
    str(Label("//rules:remote_instance_name")): "main",
})

def _load_containerd_launcher_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(
        env,
        "load --rlocation '--label=//rules/tests:load_containerd' '--daemon' 'containerd' " +
        "'--namespace' 'k8s.io' '--tag' 'test/app:1' " +
        "'--manifest' '_main/rules/tests/app.manifest.json' '--config' '_main/rules/tests/app.config.json' " +
        "'--blob' '_main/rules/tests/pulled/blobs/%s' '--blob' '_main/rules/tests/file_layer.tar.gz'" % ("a" * 64),
        _launcher_args(_written(env, "load_containerd.sh")),
    )
    return analysistest.end(env)

load_containerd_launcher_test = analysistest.make(_load_containerd_launcher_test_impl)

def _push_index_test_impl(ctx):
    env = analysistest.begin(ctx)
    asserts.equals(
        env,
        "push --rlocation '--label=//rules/tests:push_index' '--default-destination' 'registry.example/index' " +
        "'--index' '_main/rules/tests/two_platforms.index.json' " +
        "'--child' '_main/rules/tests/push_index.push_children/child_0.json' " +
        "'--child' '_main/rules/tests/push_index.push_children/child_1.json'",
        _launcher_args(_written(env, "push_index.sh")),
    )
    for i in [0, 1]:
        own = "_main/rules/tests/push_index.push_children/%d/" % i
        asserts.equals(
            env,
            {
                "manifest": own + "manifest.json",
                "config": own + "config.json",
                "blobs": ["remote:registry.example/base", own + "layer_1_file_layer.tar.gz"],
            },
            json.decode(_written(env, "child_%d.json" % i)),
        )
    return analysistest.end(env)

push_index_test = analysistest.make(_push_index_test_impl)

def _image_test_launcher(env, name, blob, spec, engine = ""):
    asserts.equals(
        env,
        "image-test --rlocation '--label=//rules/tests:%s' '--spec' '_main/rules/tests/%s.spec.json' " % (name, name) +
        engine +
        "'--manifest' '_main/rules/tests/app.manifest.json' '--config' '_main/rules/tests/app.config.json' " +
        "'--blob' '%s' '--blob' '_main/rules/tests/file_layer.tar.gz'" % blob,
        _launcher_args(_written(env, name + ".sh")),
    )
    asserts.equals(env, spec, json.decode(_written(env, name + ".spec.json")))
    runfiles = _runfiles(env)
    asserts.true(env, "rules/tests/%s.spec.json" % name in runfiles, "the spec is in the runfiles")
    return runfiles

def _image_test_config_test_impl(ctx):
    env = analysistest.begin(ctx)
    runfiles = _image_test_launcher(env, "test_app_config", "remote:registry.example/base", {
        "image": "//rules/tests:app",
        "files": {},
        "config": {"user": "root"},
    })
    asserts.false(env, [f for f in runfiles if "/blobs/" in f], "a config test fetches no layer")

    # A test without `run` uses no engine: sandboxed, remote if so configured, as any test.
    target = analysistest.target_under_test(env)
    asserts.false(env, testing.ExecutionInfo in target, "no execution requirements")
    asserts.false(env, RunEnvironmentInfo in target, "no inherited environment")
    return analysistest.end(env)

image_test_config_test = analysistest.make(_image_test_config_test_impl)

def _image_test_files_test_impl(ctx):
    env = analysistest.begin(ctx)
    runfiles = _image_test_launcher(env, "test_app_files", "_main/rules/tests/pulled/blobs/" + "a" * 64, {
        "image": "//rules/tests:app",
        "files": {"/etc/file.txt": {"mode": "0644"}},
        "config": {},
    })
    asserts.true(env, "rules/tests/pulled/blobs/" + "a" * 64 in runfiles, "file assertions need the fetched base layer")
    return analysistest.end(env)

image_test_files_test = analysistest.make(_image_test_files_test_impl)

def _image_test_run_test_impl(ctx):
    env = analysistest.begin(ctx)
    runfiles = _image_test_launcher(
        env,
        "test_app_run",
        "_main/rules/tests/pulled/blobs/" + "a" * 64,
        {
            "image": "//rules/tests:app",
            "files": {},
            "config": {},
            "run": [
                {"exit_code": 0, "stdout_contains": ["hi"], "timeout": 60},
                {"command": ["x"], "entrypoint": [], "exit_code": 2, "timeout": 5},
            ],
        },
        engine = "'--engine' 'podman' ",
    )
    asserts.true(env, "rules/tests/pulled/blobs/" + "a" * 64 in runfiles, "loading needs the fetched base layer")
    target = analysistest.target_under_test(env)
    asserts.equals(
        env,
        {"no-sandbox": "1", "no-remote": "1", "requires-network": "1"},
        target[testing.ExecutionInfo].requirements,
    )
    inherited = target[RunEnvironmentInfo].inherited_environment
    for var in ["DOCKER_HOST", "CONTAINER_HOST", "RULES_IMAGE_PODMAN"]:
        asserts.true(env, var in inherited, var + " is inherited")
    return analysistest.end(env)

image_test_run_test = analysistest.make(_image_test_run_test_impl)

# ---------------------------------------------------------------- repository_image

def _shallow_fetch_test_impl(ctx):
    env = analysistest.begin(ctx)
    image = analysistest.target_under_test(env)[ImageManifestInfo]
    fetch = _action(env, "ImageFetchBlob")  # one action, though the layer is listed twice
    if fetch:
        asserts.equals(env, [
            "fetch-blob",
            "--label=//rules/tests:pulled_twice",
            "--repository",
            "registry.example/base",
            "--digest",
            "sha256:" + "a" * 64,
            "--size",
            "3",
            "--output",
            image.layers[0].blob.path,
        ], fetch.argv[1:])
    asserts.equals(env, 2, len(image.layers))
    asserts.equals(env, image.layers[0].blob, image.layers[1].blob)
    asserts.equals(env, ["registry.example/base", "registry.example/base"], [layer.source for layer in image.layers])
    asserts.equals(env, ("linux", "amd64", ""), (image.os, image.architecture, image.variant))
    return analysistest.end(env)

shallow_fetch_test = analysistest.make(_shallow_fetch_test_impl)
