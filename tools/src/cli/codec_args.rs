use crate::io::compress::{Codec, Compression};
use anyhow::Result;

/// How the layers a command writes are compressed: shared by `layer`, `layer-from-tar` and
/// `import --normalize`.
#[derive(clap::Args, Debug)]
pub struct CodecArgs {
    /// Compression of the layer blobs written.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: Compression,
    /// gzip 0-9 (default 6), zstd 1-22 (default 3); ignored for none.
    #[arg(long, allow_negative_numbers = true)]
    pub compression_level: Option<i32>,
    /// Compression threads (default: every core this process may use); the bytes are the same
    /// for any number.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl CodecArgs {
    pub fn codec(&self) -> Result<Codec> {
        Codec::new(self.compression, self.compression_level, self.threads)
    }
}
