use super::image_args::TaggedImageArgs;
use crate::write::tarball;
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
        tarball::run(&self.image.read()?, &self.image.tags, &self.output)
    }
}
