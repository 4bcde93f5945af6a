use crate::nix::{self, NixLayersOptions, layering::Algorithm};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output of `nix path-info -r --json [--json-format N] ROOTS...`.
    #[arg(long)]
    pub path_info: PathBuf,
    /// Store paths whose closure goes in the image (repeatable; full path or base name).
    #[arg(long = "root", required = true, num_args = 1..)]
    pub roots: Vec<String>,
    /// Total number of layers, explicit groups included.
    #[arg(long, default_value_t = 100)]
    pub max_layers: usize,
    /// An explicit layer, `NAME=PATH[,PATH...]`: these paths and their closures, first.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    #[arg(long, value_enum, default_value = "rules_image")]
    pub algorithm: Algorithm,
    /// Plan JSON to write; standard output if not given.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl Args {
    pub fn run(self) -> Result<()> {
        nix::run(&NixLayersOptions {
            path_info: &self.path_info,
            roots: &self.roots,
            max_layers: self.max_layers,
            groups: &self.groups,
            algorithm: self.algorithm,
            output: self.output.as_deref(),
        })
    }
}
