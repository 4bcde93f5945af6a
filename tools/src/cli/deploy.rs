use super::push;
use crate::input::Resolver;
use crate::registry::push::deploy;
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
    #[command(flatten)]
    pub settings: push::SettingsArgs,
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
            let job = line
                .push
                .image
                .resolver()
                .and_then(|r| line.push.job(&label, &r));
            jobs.push(job.with_context(|| label.clone())?);
        }
        deploy(&jobs, &self.settings.settings(&resolver))
    }
}
