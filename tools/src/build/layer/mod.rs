//! `layer`: a deterministic layer blob from files and Nix store paths, and its metadata.

mod encode;
pub mod from_tar;
mod plan;

pub use encode::write_layer;
pub use plan::{Plan, normalize_image_path};

use crate::io::compress::Codec;
use crate::io::output;
use crate::oci::{Descriptor, Digest, json};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A layer's metadata file (`<name>.layer.json`), also the entries of a repository image's
/// `layers.json`: what `manifest` needs of a layer without reading its blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerMetadata {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// sha256 of the blob.
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

impl LayerMetadata {
    pub fn read(path: &Path) -> Result<LayerMetadata> {
        json::read(path, "layer metadata")
    }

    /// The metadata file's bytes: canonical JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = json::canonical(self);
        out.push(b'\n');
        out
    }

    /// The blob's descriptor in a manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, self.digest, self.size)
    }
}

pub struct LayerOptions<'a> {
    pub output: &'a Path,
    pub metadata: &'a Path,
    pub codec: Codec,
    pub modes: &'a [String],
    pub owners: &'a [String],
    pub entries: &'a [String],
}

/// The `layer` subcommand: both outputs appear only if everything succeeded.
pub fn run(opts: &LayerOptions) -> Result<LayerMetadata> {
    let plan = Plan::build(opts.entries, opts.modes, opts.owners)?;
    let (blob, meta) = write_layer(opts.output, opts.codec, |w| plan.write_tar(w).map(drop))?;
    let meta_file = output::stage(opts.metadata, &meta.to_bytes())?;
    blob.commit()?;
    meta_file.commit()?;
    Ok(meta)
}

#[cfg(test)]
mod tests;
