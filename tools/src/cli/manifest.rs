use super::image_args::ImageOutputArgs;
use crate::build::manifest::{self, ManifestOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The config fragment `image_manifest` writes.
    #[arg(long)]
    pub config_fragment: PathBuf,
    #[arg(long, requires = "base_config")]
    pub base_manifest: Option<PathBuf>,
    #[arg(long, requires = "base_manifest")]
    pub base_config: Option<PathBuf>,
    /// Layer metadata JSON, in layer order.
    #[arg(long = "layer")]
    pub layers: Vec<PathBuf>,
    #[command(flatten)]
    pub outputs: ImageOutputArgs,
    /// Bazel workspace status files (`KEY value` lines), given when stamping: `{KEY}` in
    /// `created`, label and annotation values is filled from them.
    #[arg(long = "status-file")]
    pub status_files: Vec<PathBuf>,
}

impl Args {
    pub fn run(self) -> Result<()> {
        manifest::run(&ManifestOptions {
            config_fragment: self.config_fragment,
            base_manifest: self.base_manifest,
            base_config: self.base_config,
            layers: self.layers,
            outputs: self.outputs.outputs(),
            status_files: self.status_files,
        })
        .map(drop)
    }
}
