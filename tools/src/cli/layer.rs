use crate::build::layer::{self, LayerOptions};
use crate::io::compress::{Codec, Compression};
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
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: Compression,
    /// gzip 0-9 (default 6), zstd 1-22 (default 3); ignored for none.
    #[arg(long, allow_negative_numbers = true)]
    pub compression_level: Option<i32>,
    /// Compression threads (default: every core this process may use). The bytes are the same
    /// for any number.
    #[arg(long)]
    pub threads: Option<usize>,
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
            codec: Codec::new(self.compression, self.compression_level, self.threads)?,
            modes: &self.modes,
            owners: &self.owners,
            entries: &self.entries,
        })
        .map(drop)
    }
}
