use crate::build::index::{self, IndexOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Manifest descriptor JSON written by `manifest`, in index order.
    #[arg(long = "child-descriptor", required = true, num_args = 1..)]
    pub child_descriptors: Vec<PathBuf>,
    /// Index annotation `KEY=VALUE` (repeatable).
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    #[arg(long)]
    pub output_index: PathBuf,
    #[arg(long)]
    pub output_digest: PathBuf,
}

impl Args {
    pub fn run(self) -> Result<()> {
        index::run(&IndexOptions {
            child_descriptors: self.child_descriptors,
            annotations: self.annotations,
            output_index: self.output_index,
            output_digest: self.output_digest,
        })
    }
}
