use super::push;
use crate::input::Resolver;
use crate::registry::push::{PushSettings, deploy};
use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A file with one `image_push` target's arguments (one per line, as its launcher passes
    /// them); repeatable, one per image or index to push.
    #[arg(long = "push", required = true)]
    pub pushes: Vec<PathBuf>,
    /// The --push files are rlocation paths, resolved through this program's runfiles.
    #[arg(long)]
    pub rlocation: bool,
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Blobs uploaded at a time, across all images and destinations.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// As for `push`: PATCH chunks of this many bytes (0: one streaming PATCH per large blob).
    #[arg(long, default_value_t = 0)]
    pub chunk_size: u64,
    /// Allow plain http to non-loopback registries.
    #[arg(long)]
    pub insecure_http: bool,
}

/// One `--push` file: the `push` command's arguments and the target's label.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct PushLine {
    #[arg(long)]
    label: Option<String>,
    #[command(flatten)]
    push: push::Args,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let resolver = Resolver::new(self.rlocation)?;
        let mut jobs = Vec::new();
        for file in &self.pushes {
            let path = resolver.resolve(file)?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read push arguments {}", path.display()))?;
            let line = PushLine::try_parse_from(text.lines())
                .with_context(|| format!("push arguments {}", path.display()))?;
            let label = line.label.clone().unwrap_or_default();
            jobs.push(line.push.job(&label).with_context(|| label.clone())?);
        }
        deploy(
            &jobs,
            &PushSettings {
                summary_json: self.summary_json.map(|p| resolver.user_path(p)),
                jobs: self.jobs,
                chunk_size: self.chunk_size,
                insecure_http: self.insecure_http,
            },
        )
    }
}
