use super::image_args::TaggedImageArgs;
use crate::write::load::{self, Daemon};
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub image: TaggedImageArgs,
    #[arg(long, value_enum)]
    pub daemon: Daemon,
    /// With --index, the platform to load (os/arch[/variant]); default: this machine's.
    #[arg(long, requires = "index")]
    pub platform: Option<String>,
}

impl Args {
    pub fn run(self) -> Result<()> {
        load::run(
            self.daemon,
            self.image.read()?,
            self.platform.as_deref(),
            &self.image.tags,
        )
    }
}
