use super::codec_args::CodecArgs;
use super::image_args::ImageOutputArgs;
use crate::dockerfile::{self, DockerfileOptions};
use crate::import::foreign_layer::{DEFAULT_MAX_LAYER_SIZE, Normalize};
use anyhow::{Result, anyhow};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub dockerfile: PathBuf,
    /// `PATH=FILE`: FILE is the context's PATH (repeatable; the context holds nothing else).
    #[arg(long = "context-file", value_parser = pair::<PathBuf>)]
    pub context: Vec<(String, PathBuf)>,
    /// `NAME=CHILD_FILE`: the image NAME of the Dockerfile's FROM lines (child file:
    /// `{"manifest", "config", "blobs"}`).
    #[arg(long = "base", value_parser = pair::<PathBuf>)]
    pub bases: Vec<(String, PathBuf)>,
    /// The base the final stage builds on (a NAME of --base), or `scratch`.
    #[arg(long)]
    pub final_base: String,
    /// `KEY=VALUE` (repeatable).
    #[arg(long = "build-arg", value_parser = pair::<String>)]
    pub build_args: Vec<(String, String)>,
    /// The stage to build; default the last.
    #[arg(long)]
    pub target: Option<String>,
    /// Let RUN steps use the machine's network (default: none).
    #[arg(long)]
    pub network: bool,
    /// The Buildah executable.
    #[arg(long, default_value = "buildah")]
    pub buildah: PathBuf,
    #[command(flatten)]
    pub codec: CodecArgs,
    /// The new layer's mtimes are clamped to this, and new history entries get it.
    #[arg(long, default_value_t = 0)]
    pub source_date_epoch: u64,
    #[arg(long, default_value_t = DEFAULT_MAX_LAYER_SIZE)]
    pub max_layer_size: u64,
    #[arg(long)]
    pub output_layer: PathBuf,
    #[arg(long)]
    pub output_layer_metadata: PathBuf,
    #[command(flatten)]
    pub outputs: ImageOutputArgs,
}

fn pair<T: From<String>>(s: &str) -> Result<(String, T)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("{s:?} is not NAME=VALUE"))?;
    Ok((k.to_string(), T::from(v.to_string())))
}

impl Args {
    pub fn run(self) -> Result<()> {
        let codec = self.codec.codec()?;
        dockerfile::run(&DockerfileOptions {
            buildah: &self.buildah,
            dockerfile: &self.dockerfile,
            context: &self.context,
            bases: &self.bases,
            final_base: &self.final_base,
            build_args: &self.build_args,
            target: self.target.as_deref(),
            network: self.network,
            normalize: Normalize {
                source_date_epoch: self.source_date_epoch,
                codec,
                max_layer_size: self.max_layer_size,
            },
            output_layer: &self.output_layer,
            output_layer_metadata: &self.output_layer_metadata,
            outputs: self.outputs.outputs(),
        })
        .map(drop)
    }
}
