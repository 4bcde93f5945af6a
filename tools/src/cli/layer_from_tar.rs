use super::codec_args::CodecArgs;
use crate::build::layer::from_tar::{self, FromTarOptions};
use crate::import::foreign_layer::DEFAULT_MAX_LAYER_SIZE;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The tar, tar.gz or tar.zst (told apart by its first bytes).
    #[arg(long)]
    pub src: PathBuf,
    /// Layer blob to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Metadata JSON to write: diff_id, digest, media_type, size.
    #[arg(long)]
    pub metadata: PathBuf,
    #[command(flatten)]
    pub codec: CodecArgs,
    /// Keep the tar byte for byte (still checked) instead of rewriting it deterministically.
    #[arg(long)]
    pub keep: bool,
    /// Without --keep: entry mtimes later than this (seconds since the epoch) are clamped to it.
    #[arg(long, default_value_t = 0)]
    pub source_date_epoch: u64,
    /// The most bytes a compressed tar may decompress to while it is rewritten.
    #[arg(long, default_value_t = DEFAULT_MAX_LAYER_SIZE)]
    pub max_layer_size: u64,
}

impl Args {
    pub fn run(self) -> Result<()> {
        from_tar::run(&FromTarOptions {
            src: &self.src,
            output: &self.output,
            metadata: &self.metadata,
            codec: self.codec.codec()?,
            keep: self.keep,
            source_date_epoch: self.source_date_epoch,
            max_layer_size: self.max_layer_size,
        })
        .map(drop)
    }
}
