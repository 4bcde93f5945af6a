//! The arguments that name an image or index on disk, shared by layout, tarball, load and push.

use crate::build::manifest::ImageOutputs;
use crate::input::{Input, InputFiles, Resolver};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    #[arg(long, required_unless_present = "index")]
    pub manifest: Option<PathBuf>,
    #[arg(long, required_unless_present = "index")]
    pub config: Option<PathBuf>,
    /// Layer blobs in manifest layer order: a file, or (for push) `remote:REGISTRY/REPOSITORY`
    /// for a layer that is only in that repository.
    #[arg(long = "blob")]
    pub blobs: Vec<String>,
    /// A multi-platform image: this OCI index, with --child files instead of
    /// --manifest/--config/--blob.
    #[arg(long, conflicts_with_all = ["manifest", "config", "blobs"], requires = "children")]
    pub index: Option<PathBuf>,
    /// Child file (`{"manifest", "config", "blobs"}`) of each index entry, in index order.
    #[arg(long = "child", requires = "index")]
    pub children: Vec<PathBuf>,
    /// Path arguments are rlocation paths, resolved through this program's runfiles.
    #[arg(long)]
    pub rlocation: bool,
}

/// An image to write out, and the references it is tagged with there.
#[derive(clap::Args, Debug)]
pub struct TaggedImageArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Image reference to tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

impl TaggedImageArgs {
    pub fn read(&self) -> Result<Input> {
        self.image.read(&self.image.resolver()?)
    }
}

impl ImageArgs {
    pub fn resolver(&self) -> Result<Resolver> {
        Resolver::new(self.rlocation)
    }

    /// Reads and checks the image or index.
    pub fn read(&self, resolver: &Resolver) -> Result<Input> {
        let single = match (&self.manifest, &self.config) {
            (Some(m), Some(c)) => Some((m.as_path(), c.as_path(), self.blobs.as_slice())),
            _ => None,
        };
        let index = self.index.as_deref().map(|i| (i, self.children.as_slice()));
        Input::read(&InputFiles::new(single, index, resolver)?)
    }
}

/// Where a command that builds an image writes its manifest, config, digest and descriptor.
#[derive(clap::Args, Debug)]
pub struct ImageOutputArgs {
    #[arg(long)]
    pub output_manifest: PathBuf,
    #[arg(long)]
    pub output_config: PathBuf,
    #[arg(long)]
    pub output_digest: PathBuf,
    #[arg(long)]
    pub output_descriptor: PathBuf,
}

impl ImageOutputArgs {
    pub fn outputs(self) -> ImageOutputs {
        ImageOutputs {
            manifest: self.output_manifest,
            config: self.output_config,
            digest: self.output_digest,
            descriptor: self.output_descriptor,
        }
    }
}
