//! Command-line interface (the contract with the Starlark rules) and dispatch.

use crate::compress::Compression;
use crate::layout::{ImageInput, Resolver};
use crate::load::Daemon;
use crate::{image, layer, layout, load};
use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rules-image-tool",
    version,
    about = "Byte-level worker of rules_image"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Bazel label of the target being built; prefixes every error message.
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a deterministic layer blob and its metadata JSON.
    Layer(LayerArgs),
    /// Assemble an image config and manifest.
    Manifest(ManifestArgs),
    /// Write an OCI image layout directory.
    Layout(LayoutArgs),
    /// Write one tar that is an OCI layout and `docker load` input.
    Tarball(TarballArgs),
    /// Stream the image into `docker load` or `podman load`.
    Load(LoadArgs),
}

#[derive(Args, Debug)]
pub struct LayerArgs {
    #[command(flatten)]
    pub common: Common,
    /// Layer blob to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Metadata JSON to write: diff_id, digest, media_type, size.
    #[arg(long)]
    pub metadata: PathBuf,
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: Compression,
    /// gzip 0-9 (default 6), zstd 1-22 (default 3); ignored for none.
    #[arg(long, allow_negative_numbers = true)]
    pub compression_level: Option<i32>,
    /// Mode override, `/dest=OCTAL`.
    #[arg(long = "mode")]
    pub modes: Vec<String>,
    /// `file|exec|symlink<TAB>/dest<TAB>src-or-target` or `dir<TAB>/dest`.
    pub entries: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ManifestArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long)]
    pub config_fragment: PathBuf,
    #[arg(long, requires = "base_config")]
    pub base_manifest: Option<PathBuf>,
    #[arg(long, requires = "base_manifest")]
    pub base_config: Option<PathBuf>,
    /// Layer metadata JSON, in layer order.
    #[arg(long = "layer")]
    pub layers: Vec<PathBuf>,
    #[arg(long)]
    pub output_manifest: PathBuf,
    #[arg(long)]
    pub output_config: PathBuf,
    #[arg(long)]
    pub output_digest: PathBuf,
    #[arg(long)]
    pub output_descriptor: PathBuf,
}

/// The image read by layout, tarball and load.
#[derive(Args, Debug)]
pub struct ImageArgs {
    #[arg(long)]
    pub manifest: PathBuf,
    #[arg(long)]
    pub config: PathBuf,
    /// Layer blobs, in manifest layer order.
    #[arg(long = "blob")]
    pub blobs: Vec<PathBuf>,
    /// Image reference to tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

impl ImageArgs {
    fn read(&self, resolver: &Resolver) -> Result<ImageInput> {
        let blobs = self
            .blobs
            .iter()
            .map(|b| resolver.resolve(b))
            .collect::<Result<Vec<_>>>()?;
        ImageInput::read(
            &resolver.resolve(&self.manifest)?,
            &resolver.resolve(&self.config)?,
            &blobs,
        )
    }
}

#[derive(Args, Debug)]
pub struct LayoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub image: ImageArgs,
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct TarballArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub image: ImageArgs,
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub image: ImageArgs,
    #[arg(long, value_enum)]
    pub daemon: Daemon,
    /// Input paths are rlocation paths, resolved through this program's runfiles.
    #[arg(long)]
    pub rlocation: bool,
}

impl Command {
    pub fn label(&self) -> Option<&str> {
        let c = match self {
            Command::Layer(a) => &a.common,
            Command::Manifest(a) => &a.common,
            Command::Layout(a) => &a.common,
            Command::Tarball(a) => &a.common,
            Command::Load(a) => &a.common,
        };
        c.label.as_deref()
    }

    pub fn run(self) -> Result<()> {
        match self {
            Command::Layer(a) => {
                layer::run(&layer::LayerOptions {
                    output: &a.output,
                    metadata: &a.metadata,
                    compression: a.compression,
                    level: a.compression_level,
                    modes: &a.modes,
                    entries: &a.entries,
                })?;
            }
            Command::Manifest(a) => {
                image::run(&image::ManifestOptions {
                    config_fragment: a.config_fragment,
                    base_manifest: a.base_manifest,
                    base_config: a.base_config,
                    layers: a.layers,
                    output_manifest: a.output_manifest,
                    output_config: a.output_config,
                    output_digest: a.output_digest,
                    output_descriptor: a.output_descriptor,
                })?;
            }
            Command::Layout(a) => {
                let img = a.image.read(&Resolver::new(false)?)?;
                layout::run_layout(&img, &a.image.tags, &a.output)?;
            }
            Command::Tarball(a) => {
                let img = a.image.read(&Resolver::new(false)?)?;
                layout::run_tarball(&img, &a.image.tags, &a.output)?;
            }
            Command::Load(a) => {
                let img = a.image.read(&Resolver::new(a.rlocation)?)?;
                load::run(a.daemon, &img, &a.image.tags)?;
            }
        }
        Ok(())
    }
}
