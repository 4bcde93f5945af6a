use super::codec_args::CodecArgs;
use crate::import::{self, ImportOptions, foreign_layer::Normalize};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image: an OCI image layout (a directory, or a tar of one: plain, gzip or zstd) or a
    /// `docker save` tarball (Docker <= 24 `manifest.json` form, or Docker >= 25 OCI form).
    #[arg(long)]
    pub src: PathBuf,
    /// Repository directory to write (replaced atomically; see `repo_dir`), with the layer
    /// blobs in blobs/sha256/.
    #[arg(long)]
    pub output_dir: PathBuf,
    /// Rewrite layers (entry mtimes clamped to --source-date-epoch, recompressed) and write
    /// the config, manifests and index anew, canonical and without build-host timestamps.
    #[arg(long)]
    pub normalize: bool,
    /// With --normalize: seconds since the Unix epoch for mtimes and `created` timestamps.
    #[arg(long, default_value_t = 0)]
    pub source_date_epoch: u64,
    /// With --normalize: how the rewritten layers are compressed.
    #[command(flatten)]
    pub codec: CodecArgs,
    /// With --normalize: the most bytes a compressed layer may decompress to (it is spooled
    /// to disk while it is rewritten); a larger one is refused.
    #[arg(long, default_value_t = import::foreign_layer::DEFAULT_MAX_LAYER_SIZE)]
    pub max_layer_size: u64,
    /// The image to import when the source holds several: an index.json
    /// `org.opencontainers.image.ref.name` or `io.containerd.image.name` (or its tag part),
    /// or a docker-save RepoTag (`repo:tag`; `repo` means `repo:latest`).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// Import only this platform (os/arch[/variant]) of an index, as a single image; without
    /// it every platform of an index is imported (attestations are skipped).
    #[arg(long)]
    pub platform: Option<String>,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let normalize = if self.normalize {
            Some(Normalize {
                source_date_epoch: self.source_date_epoch,
                codec: self.codec.codec()?,
                max_layer_size: self.max_layer_size,
            })
        } else {
            None
        };
        let top = import::run(&ImportOptions {
            src: &self.src,
            output_dir: &self.output_dir,
            reference: self.reference.as_deref(),
            platform: self.platform.as_deref(),
            normalize,
        })?;
        println!("{top}");
        Ok(())
    }
}
