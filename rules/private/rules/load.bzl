"""image_load: `bazel run` streams an image into a local Docker or Podman engine, or into containerd (only the layers it lacks)."""

load("//rules/private:image_args.bzl", "REMOTE_CACHE_ATTRS", "image_attr", "image_info", "is_index", "launcher_image_args")
load("//rules/private:labels.bzl", "display_label", "label_arg")
load("//rules/private:launcher.bzl", "write_launcher")
load("//rules/private:toolchain.bzl", "TOOLCHAIN_TYPE", "image_tool")

visibility(["//rules/..."])

def _image_load_impl(ctx):
    tool = image_tool(ctx)
    args = [label_arg(ctx.label), "--daemon", ctx.attr.daemon]
    if ctx.attr.namespace:
        if ctx.attr.daemon != "containerd":
            fail("%s: `namespace` is a containerd namespace; it needs daemon = \"containerd\"" %
                 display_label(ctx.label))
        args += ["--namespace", ctx.attr.namespace]
    if ctx.attr.tag:
        args += ["--tag", ctx.attr.tag]
    image = image_info(ctx.attr.image)
    if ctx.attr.platform:
        if not is_index(image):
            fail("%s: `platform` picks an image of an index, but %s is a single image" %
                 (display_label(ctx.label), display_label(ctx.attr.image.label)))
        args += ["--platform", ctx.attr.platform]

    # For an index, the tool loads the image for the host platform (or for `platform`);
    # every platform's files are in the runfiles.
    image_args = launcher_image_args(ctx, image, "load")
    args += image_args.arguments
    files = [tool] + image_args.files
    launcher = write_launcher(ctx, tool, "load", args)
    runfiles = ctx.runfiles(files = files)
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

image_load = rule(
    implementation = _image_load_impl,
    doc = """`bazel run` loads the image into a local container engine, streamed with no temporary file.

```starlark
image_load(name = "load", image = ":image", tag = "example/app:latest")
```

`bazel run //app:load` then `docker run --rm example/app:latest`. Extra arguments after `--`
are passed to the tool, e.g. `-- --tag other:tag`. Docker engines without zstd support get
zstd layers decompressed on the fly; the loaded image keeps its config, so its image ID is the
config digest.

With `daemon = "containerd"` only the layers containerd lacks are sent: the tool asks the
namespace's content store which of the image's layers it has (`ctr content ls -q
digest==...`), streams the image tarball without those into `ctr images import --platform
<the image's platform> -`, and prints what moved:

```
loaded docker.io/example/app:latest into containerd namespace default: 1 of 3 layers sent (4.20 MiB), 2 already present
```

containerd stores the blobs it reads, finds the others in its content store, unpacks the
image for ctr's default snapshotter (or `CONTAINERD_SNAPSHOTTER`), so `ctr run` and
Kubernetes can start it, and (containerd 2's ctr, which imports through the transfer service)
names it only once all of that succeeded: a failed load leaves no half-loaded tag. containerd names images in full, so a tag is qualified the way Docker
reads it (`example/app:latest` -> `docker.io/example/app:latest`, `app` ->
`docker.io/library/app:latest`; a registry host is kept), the names nerdctl and the CRI
show; a tag is required. `ctr` talks to containerd's socket, `/run/containerd/containerd.sock`
unless `CONTAINERD_ADDRESS` names another. At run time, `-- --namespace k8s.io` loads into
another namespace (the one Kubernetes' CRI uses) and `-- --summary-json FILE` writes the
figures as JSON.
""",
    attrs = REMOTE_CACHE_ATTRS | {
        "image": image_attr(
            "The image to load: an image_manifest (or any target providing " +
            "ImageManifestInfo), or an image_index, of which the image for the host " +
            "platform (or for `platform`) is loaded.",
        ),
        "platform": attr.string(
            doc = "For an image_index: the image to load, as \"os/arch[/variant]\" (e.g. " +
                  "\"linux/arm64\"); default: the host's platform. Not allowed for a single image.",
        ),
        "tag": attr.string(doc = "Reference the loaded image is tagged with, e.g. \"example/app:latest\"."),
        "daemon": attr.string(
            default = "docker",
            values = ["docker", "podman", "containerd"],
            doc = "Engine to load into: `docker load`, `podman load`, or containerd through " +
                  "`ctr images import`, sending only the layers its content store lacks. The " +
                  "CLI must be on PATH; override it with RULES_IMAGE_DOCKER / RULES_IMAGE_PODMAN " +
                  "/ RULES_IMAGE_CTR.",
        ),
        "namespace": attr.string(
            doc = "With daemon = \"containerd\": the namespace to load into, e.g. \"k8s.io\" " +
                  "for Kubernetes. Default: $CONTAINERD_NAMESPACE, else \"default\"; " +
                  "`-- --namespace NS` at run time replaces it.",
        ),
    },
    executable = True,
    toolchains = [TOOLCHAIN_TYPE],
)
