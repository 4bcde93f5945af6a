use crate::registry::pull;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `REGISTRY/REPOSITORY`
    #[arg(long)]
    pub repository: String,
    #[arg(long)]
    pub digest: String,
    /// The blob's size in bytes, at most 1 TiB.
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=pull::MAX_BLOB))]
    pub size: u64,
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long)]
    pub insecure_http: bool,
}

impl Args {
    pub fn run(self) -> Result<()> {
        pull::run_fetch_blob(
            &self.repository,
            &self.digest,
            self.size,
            &self.output,
            self.insecure_http,
        )
    }
}
