use super::image_args::ImageArgs;
use crate::input::Input;
use crate::sbom::{self, SbomOptions};
use anyhow::{Result, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub image: ImageArgs,
    /// How the document names the image (its label).
    #[arg(long)]
    pub name: String,
    /// What made each layer, in layer order: a Bazel label, or the image it comes from.
    #[arg(long = "layer-origin")]
    pub origins: Vec<String>,
    /// The document's creation time, seconds since the epoch.
    #[arg(long, default_value_t = 0)]
    pub created: u64,
    /// The SPDX JSON document to write.
    #[arg(long)]
    pub output: PathBuf,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let Input::Image(image) = self.image.read(&self.image.resolver()?)? else {
            bail!("an SBOM is written for one image; give one platform's image of the index");
        };
        sbom::run(
            &image,
            &SbomOptions {
                name: &self.name,
                origins: &self.origins,
                created: self.created,
                output: &self.output,
            },
        )
    }
}
