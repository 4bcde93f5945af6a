use crate::provenance::{self, ProvenanceOptions};
use anyhow::{Result, anyhow};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image's label: the subject's name.
    #[arg(long)]
    pub target: String,
    /// The image's digest file (`sha256:<hex>` of its manifest).
    #[arg(long)]
    pub digest_file: PathBuf,
    /// `NAME=FILE`: a source file the image was built from (repeatable).
    #[arg(long = "source", value_parser = source)]
    pub sources: Vec<(String, PathBuf)>,
    /// A base image its layers come from: `REGISTRY/REPOSITORY@sha256:...` (repeatable).
    #[arg(long = "base-image")]
    pub base_images: Vec<String>,
    /// A Nix store path in its Nix layers (repeatable).
    #[arg(long = "store-path")]
    pub store_paths: Vec<String>,
    #[arg(long)]
    pub bazel_version: String,
    /// The in-toto statement to write.
    #[arg(long)]
    pub output: PathBuf,
}

fn source(s: &str) -> Result<(String, PathBuf)> {
    let (k, v) = s
        .rsplit_once('=')
        .ok_or_else(|| anyhow!("{s:?} is not NAME=FILE"))?;
    Ok((k.to_string(), PathBuf::from(v)))
}

impl Args {
    pub fn run(self) -> Result<()> {
        provenance::run(&ProvenanceOptions {
            target: &self.target,
            digest_file: &self.digest_file,
            sources: &self.sources,
            base_images: &self.base_images,
            store_paths: &self.store_paths,
            bazel_version: &self.bazel_version,
            output: &self.output,
        })
    }
}
