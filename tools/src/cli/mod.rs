//! The command line: the contract with the Starlark rules. One file per command; each parses
//! its arguments and calls one operation of the tool.

mod codec_args;
mod deploy;
mod dockerfile_build;
mod fetch_blob;
mod image_args;
mod image_test;
mod import;
mod index;
mod layer;
mod layer_from_tar;
mod layout;
mod load;
mod manifest;
mod nix_layers;
mod provenance;
mod pull;
mod push;
mod referrers;
mod resolve;
mod sbom;
mod tarball;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rules-image-tool",
    version,
    about = "Byte-level worker of rules_image"
)]
pub struct Cli {
    /// Bazel label of the target being built; prefixes every error message.
    #[arg(long, global = true)]
    pub label: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a deterministic layer blob and its metadata JSON.
    Layer(layer::Args),
    /// A layer from an existing tar, tar.gz or tar.zst: checked, rewritten deterministically
    /// (or kept byte for byte), compressed anew.
    LayerFromTar(layer_from_tar::Args),
    /// Assemble an image config and manifest.
    Manifest(manifest::Args),
    /// Assemble a multi-platform OCI image index from manifest descriptors.
    Index(index::Args),
    /// Write an OCI image layout directory.
    Layout(layout::Args),
    /// Write one tar that is an OCI layout and `docker load` input.
    Tarball(tarball::Args),
    /// Stream the image into `docker load` or `podman load`, or into `ctr images import`
    /// without the layers containerd already has.
    Load(load::Args),
    /// Push the image to registries: blobs, then the manifest by digest, then tags.
    Push(push::Args),
    /// Push many images and indexes in one run (each distinct blob once); tags only after
    /// every image arrived everywhere.
    Deploy(deploy::Args),
    /// Fetch an image's manifest and config (by digest) from a registry.
    Pull(pull::Args),
    /// Download one blob, verified.
    FetchBlob(fetch_blob::Args),
    /// Print the digest a tag currently points to.
    Resolve(resolve::Args),
    /// Plan the layers of a Nix closure from `nix path-info -r --json`.
    NixLayers(nix_layers::Args),
    /// Check assertions on an image's files and config, read from its layers (image_test).
    ImageTest(image_test::Args),
    /// Import an image from an OCI image layout or a `docker save` tarball, verified, into a
    /// repository directory (the shape `pull --all-platforms` writes), with the layer blobs.
    Import(import::Args),
    /// Build a Dockerfile with Buildah on images given as bases; the result is the final
    /// stage's base plus one normalized layer (dockerfile_image).
    DockerfileBuild(dockerfile_build::Args),
    /// Write an SPDX 2.3 SBOM of what the image holds: every file left after its layers are
    /// applied, with SHA-1 and SHA-256, grouped by layer origin and Nix store path.
    Sbom(sbom::Args),
    /// Write an in-toto statement with SLSA provenance for an image, from its Bazel build:
    /// sources with their digests, base images, Nix store paths, builder versions.
    Provenance(provenance::Args),
    /// List an image's OCI 1.1 referrers (SBOMs, provenance, signatures): from the registry's
    /// referrers API, or its fallback tag.
    Referrers(referrers::Args),
}

impl Command {
    pub fn run(self) -> Result<()> {
        match self {
            Command::Layer(a) => a.run(),
            Command::LayerFromTar(a) => a.run(),
            Command::Manifest(a) => a.run(),
            Command::Index(a) => a.run(),
            Command::Layout(a) => a.run(),
            Command::Tarball(a) => a.run(),
            Command::Load(a) => a.run(),
            Command::Push(a) => a.run(),
            Command::Deploy(a) => a.run(),
            Command::Pull(a) => a.run(),
            Command::FetchBlob(a) => a.run(),
            Command::Resolve(a) => a.run(),
            Command::NixLayers(a) => a.run(),
            Command::ImageTest(a) => a.run(),
            Command::Import(a) => a.run(),
            Command::DockerfileBuild(a) => a.run(),
            Command::Sbom(a) => a.run(),
            Command::Provenance(a) => a.run(),
            Command::Referrers(a) => a.run(),
        }
    }
}
