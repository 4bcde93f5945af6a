use crate::registry::pull;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `REGISTRY/REPOSITORY@sha256:HEX`
    #[arg(long)]
    pub image: String,
    /// Platform chosen from an index: os/arch[/variant].
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
    /// If the digest is an index: write every platform's image (see `repo_dir`) instead of
    /// choosing one platform.
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
    #[arg(long)]
    pub output_dir: PathBuf,
    #[arg(long)]
    pub insecure_http: bool,
}

impl Args {
    pub fn run(self) -> Result<()> {
        pull::run_pull(
            &self.image,
            &self.platform,
            self.all_platforms,
            &self.output_dir,
            self.insecure_http,
        )
    }
}
