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
    /// Metadata of every entry given (not of implicit parent directories): a JSON object
    /// with any of mode, uid, gid, uname, gname, mtime, pax_records, capabilities.
    #[arg(long)]
    pub default_metadata: Option<String>,
    /// Metadata of a path or glob pattern, `/path<TAB>JSON` (patterns and then paths
    /// override the default, field by field).
    #[arg(long = "file-metadata")]
    pub file_metadata: Vec<String>,
    /// Keep identical files as separate copies instead of hard links to the first.
    #[arg(long)]
    pub no_link_duplicates: bool,
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
            default_metadata: self.default_metadata.as_deref(),
            file_metadata: &self.file_metadata,
            link_duplicates: !self.no_link_duplicates,
            entries: &self.entries,
        })
        .map(drop)
    }
}
