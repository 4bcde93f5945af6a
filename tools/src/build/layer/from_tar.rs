//! `layer-from-tar`: an existing tar, tar.gz or tar.zst (from rules_pkg, a genrule, a vendor)
//! as a layer. Its entries pass the same checks as an imported layer's
//! (`import::foreign_layer`); by default the tar is rewritten deterministically (entries sorted,
//! mtimes clamped, owners and modes kept, names dropped), or with `keep` copied byte for byte.
//! Either way it is compressed anew with the chosen codec.

use super::LayerMetadata;
use crate::import::foreign_layer::{self, Normalize};
use crate::io::compress::Codec;
use crate::io::output;
use anyhow::Result;
use std::path::Path;

pub struct FromTarOptions<'a> {
    pub src: &'a Path,
    pub output: &'a Path,
    pub metadata: &'a Path,
    pub codec: Codec,
    /// Copy the tar as it is instead of rewriting it.
    pub keep: bool,
    /// With rewriting: entry mtimes later than this are clamped to it.
    pub source_date_epoch: u64,
    pub max_layer_size: u64,
}

/// Writes the layer and its metadata; both appear only if everything succeeded.
pub fn run(o: &FromTarOptions) -> Result<LayerMetadata> {
    let (_, meta) = if o.keep {
        foreign_layer::copy_layer(o.src, o.codec, o.output)?
    } else {
        let n = Normalize {
            source_date_epoch: o.source_date_epoch,
            codec: o.codec,
            max_layer_size: o.max_layer_size,
        };
        foreign_layer::normalize_layer(o.src, &n, o.output)?
    };
    output::stage(o.metadata, &meta.to_bytes())?.commit()?;
    Ok(meta)
}
