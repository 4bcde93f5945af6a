use super::image_args::TaggedImageArgs;
use crate::write::load::{self, Daemon, LoadOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub image: TaggedImageArgs,
    #[arg(long, value_enum)]
    pub daemon: Daemon,
    /// With --index, the platform to load (os/arch[/variant]); default: this machine's.
    #[arg(long, requires = "index")]
    pub platform: Option<String>,
    /// containerd: the namespace to load into (default: $CONTAINERD_NAMESPACE, else
    /// `default`); the last one given counts, so a run-time one replaces the target's.
    #[arg(long, overrides_with = "namespace")]
    pub namespace: Option<String>,
    /// containerd: write what was sent (references, layers sent and present, bytes) as JSON.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let resolver = self.image.image.resolver()?;
        let summary_json = self.summary_json.map(|p| resolver.user_path(p));
        load::run(
            &LoadOptions {
                daemon: self.daemon,
                platform: self.platform.as_deref(),
                tags: &self.image.tags,
                namespace: self.namespace.as_deref(),
                summary_json: summary_json.as_deref(),
            },
            self.image.read()?,
        )
    }
}
