use super::codec_args::CodecArgs;
use crate::build::layer::{self, LayerOptions};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Layer blob to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Metadata JSON to write: diff_id, digest, media_type, size.
    #[arg(long)]
    pub metadata: PathBuf,
    #[command(flatten)]
    pub codec: CodecArgs,
    /// Mode override, `/dest=OCTAL`.
    #[arg(long = "mode")]
    pub modes: Vec<String>,
    /// Numeric owner override, `/dest=UID:GID`.
    #[arg(long = "owner")]
    pub owners: Vec<String>,
    /// `file|exec|symlink<TAB>/dest<TAB>src-or-target`, `dir<TAB>/dest`,
    /// `group<TAB>/dest<TAB>package prefix<TAB>short_path<TAB>src` (a file of a multi-file
    /// target), or a Nix store path: `store<TAB>/nix/store/...` (at its own path) or
    /// `root<TAB>/nix/store/...` (its contents at `/`).
    pub entries: Vec<String>,
}

impl Args {
    pub fn run(self) -> Result<()> {
        layer::run(&LayerOptions {
            output: &self.output,
            metadata: &self.metadata,
            codec: self.codec.codec()?,
            modes: &self.modes,
            owners: &self.owners,
            entries: &self.entries,
        })
        .map(drop)
    }
}
