//! `layer`: a deterministic layer blob from files and Nix store paths, and its metadata.

mod encode;
pub mod from_tar;
pub mod metadata;
mod plan;

pub use encode::write_layer;
pub use plan::{Plan, normalize_image_path};

use crate::io::compress::Codec;
use crate::io::output;
use crate::oci::{Descriptor, Digest, json};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The descriptor's annotations: the TOC of a seekable (eStargz, zstd:chunked) blob.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
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
        let d = Descriptor::new(&self.media_type, self.digest, self.size);
        if self.annotations.is_empty() {
            d
        } else {
            d.with_annotations(self.annotations.clone())
        }
    }
}

pub struct LayerOptions<'a> {
    pub output: &'a Path,
    pub metadata: &'a Path,
    pub codec: Codec,
    /// `--default-metadata`: a `FileMetadata` JSON object for every entry given.
    pub default_metadata: Option<&'a str>,
    /// `--file-metadata`: `/path-or-pattern<TAB>FileMetadata JSON`.
    pub file_metadata: &'a [String],
    /// Store identical files once, as hard links (see `Plan::link_duplicates`).
    pub link_duplicates: bool,
    pub entries: &'a [String],
}

/// The `layer` subcommand: both outputs appear only if everything succeeded.
pub fn run(opts: &LayerOptions) -> Result<LayerMetadata> {
    let rules = metadata::MetadataRules::parse(opts.default_metadata, opts.file_metadata)?;
    let mut plan = Plan::build(opts.entries, &rules)?;
    if opts.link_duplicates {
        plan.link_duplicates()?;
    }
    let (blob, meta) = write_layer(opts.output, opts.codec, |w| plan.write_tar(w).map(drop))?;
    let meta_file = output::stage(opts.metadata, &meta.to_bytes())?;
    blob.commit()?;
    meta_file.commit()?;
    Ok(meta)
}

#[cfg(test)]
mod tests;
