use super::image_args::TaggedImageArgs;
use crate::write::layout;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub image: TaggedImageArgs,
    #[arg(long)]
    pub output: PathBuf,
}

impl Args {
    pub fn run(self) -> Result<()> {
        layout::run(&self.image.read()?, &self.image.tags, &self.output)
    }
}
