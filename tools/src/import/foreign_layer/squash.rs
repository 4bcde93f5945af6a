//! Squashing: several layers, applied in order over a lower image, as one normalized layer.
//!
//! A Dockerfile build adds one layer per committed stage in its chain of `FROM`s (a final
//! stage `FROM` an earlier stage adds two); `dockerfile_image` declares exactly one new layer
//! over its base, so the builder's new layers are merged here with the layer semantics of the
//! OCI image spec: a whiteout (`.wh.NAME`) removes what earlier layers of the set put at NAME
//! and stays in the result (it still hides NAME of the lower image), an opaque marker
//! (`.wh..wh..opq`) removes everything earlier layers put below its directory, and an entry
//! replaces the one at its path (a non-directory over a directory also removes its contents).
//! A whiteout and an entry at the same path may both end up in the result, which the spec
//! reads as "hide the lower one, then add this".
//!
//! Every source layer gets the checks of an import, and the result too (it is checked as one
//! layer: hard links after their targets, no path through a symlink).

use super::{Item, Kind, Layer, Normalize, read_layer};
use crate::build::layer::{LayerMetadata, write_layer};
use crate::io::compress::Decompressor;
use crate::io::output::parent_dir;
use crate::io::untrusted::shown;
use crate::oci::digest::Digest;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Reads `blobs` (in layer order, each checked as an import checks it) and writes the one
/// layer they amount to, normalized, to `output`. Returns the diff_id of every source layer
/// (to be checked against the config that lists them) and the written layer.
pub fn squash_layers(
    blobs: &[PathBuf],
    n: &Normalize,
    output: &Path,
) -> Result<(Vec<Digest>, LayerMetadata)> {
    let mut spools = Vec::new();
    let mut diff_ids = Vec::new();
    let mut merged = Merged::default();
    for (source, blob) in blobs.iter().enumerate() {
        let spool = tempfile::tempfile_in(parent_dir(output)).with_context(|| {
            format!(
                "cannot create a temporary file next to {}",
                output.display()
            )
        })?;
        let (diff_id, layer) = Decompressor::open(blob)
            .and_then(|d| read_layer(d, Some(&spool), n.max_layer_size))
            .with_context(|| format!("layer {}", blob.display()))?;
        merged
            .apply(source, layer)
            .with_context(|| format!("squashing layer {}", blob.display()))?;
        spools.push(spool);
        diff_ids.push(diff_id);
    }
    let mut layer = merged.finish()?;
    layer.check().context("the squashed layer")?;
    let (out, meta) = write_layer(output, n.codec, |w| {
        layer.write_tar(w, &spools, n.source_date_epoch).map(drop)
    })?;
    out.commit()?;
    Ok((diff_ids, meta))
}

/// An entry's identity: (source layer, position in it).
type Id = (usize, usize);

/// A hard link as it was when its layer was applied: the path of the inode it shares (the
/// end of its chain of links) and that inode's entry then, or None if the path was not in
/// the set (the lower image's).
struct Link {
    target: Vec<u8>,
    node: Option<(Id, Item)>,
}

#[derive(Default)]
struct Merged {
    items: BTreeMap<Vec<u8>, (Id, Item)>,
    links: HashMap<Vec<u8>, Link>,
    /// Entries of the layers applied so far, for positions across layers.
    offset: usize,
}

impl Merged {
    fn apply(&mut self, source: usize, layer: Layer) -> Result<()> {
        let count = layer.items.values().map(|i| i.index + 1).max().unwrap_or(0);
        // Removals first: a whiteout or an opaque marker applies to lower layers only.
        for key in layer.items.keys() {
            let (dir, name) = split(key);
            if name == OPAQUE {
                self.remove_below(dir);
            } else if let Some(hidden) = name.strip_prefix(WHITEOUT) {
                let mut path = dir.to_vec();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(hidden);
                self.items.remove(&path);
                self.links.remove(&path);
                self.remove_below(&path);
            }
        }
        // Where this layer's hard links lead, judged before its entries replace others.
        let mut links = Vec::new();
        for (key, item) in &layer.items {
            if let Kind::HardLink { target, .. } = &item.kind {
                links.push((key.clone(), self.resolve(&layer, source, target)));
            }
        }
        for (key, mut item) in layer.items {
            if !matches!(item.kind, Kind::Dir)
                && matches!(
                    self.items.get(&key),
                    Some((
                        _,
                        Item {
                            kind: Kind::Dir,
                            ..
                        }
                    ))
                )
            {
                self.remove_below(&key);
            }
            let id = (source, item.index);
            item.source = source;
            item.index += self.offset;
            self.links.remove(&key);
            self.items.insert(key, (id, item));
        }
        self.offset += count;
        for (key, link) in links {
            self.links.insert(key, link);
        }
        Ok(())
    }

    /// The end of the chain of links from `target` as layer `source` sees it: its own entries
    /// over those of the layers before it.
    fn resolve(&self, layer: &Layer, source: usize, target: &[u8]) -> Link {
        let mut cur = target.to_vec();
        loop {
            let node = match layer.items.get(&cur) {
                Some(item) => Some(((source, item.index), item.clone())),
                None => self.items.get(&cur).cloned(),
            };
            match node {
                Some((
                    _,
                    Item {
                        kind: Kind::HardLink { target, .. },
                        ..
                    },
                )) => cur = target,
                Some((id, item)) => {
                    return Link {
                        target: cur,
                        node: Some((id, item)),
                    };
                }
                None => {
                    return Link {
                        target: cur,
                        node: None,
                    };
                }
            }
        }
    }

    /// Removes every entry strictly below the directory `dir` ("" is the root).
    fn remove_below(&mut self, dir: &[u8]) {
        let mut prefix = dir.to_vec();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        let below: Vec<Vec<u8>> = self
            .items
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.items.remove(&k);
            self.links.remove(&k);
        }
    }

    /// The merged entries as one layer. A hard link whose inode was replaced or removed by a
    /// later layer of the set becomes a copy of the file it shared (it kept that content);
    /// one into the lower image stays a link, unless the set put something else there since.
    fn finish(mut self) -> Result<Layer> {
        for (key, link) in std::mem::take(&mut self.links) {
            let now = self.items_id(&link.target);
            let Some((_, item)) = self.items.get_mut(&key) else {
                continue;
            };
            match (&link.node, now) {
                (Some((id, _)), Some(n)) if *id == n => set_target(item, &link.target),
                (None, None) => set_target(item, &link.target),
                (Some((_, node)), _) => {
                    let (index, raw) = (item.index, item.raw.clone());
                    *item = Item {
                        index,
                        raw,
                        ..node.clone()
                    };
                }
                (None, Some(_)) => bail!(
                    "hard link \"{}\" shares the lower image's \"{}\", which a later layer replaced: it cannot be squashed",
                    shown(&item.raw),
                    shown(&link.target)
                ),
            }
        }
        Ok(Layer {
            items: self
                .items
                .into_iter()
                .map(|(k, (_, item))| (k, item))
                .collect(),
            links: HashMap::new(),
        })
    }

    fn items_id(&self, key: &[u8]) -> Option<Id> {
        self.items.get(key).map(|(id, _)| *id)
    }
}

fn set_target(item: &mut Item, target: &[u8]) {
    if let Kind::HardLink { target: t, .. } = &mut item.kind {
        *t = target.to_vec();
    }
}

/// (parent directory, base name) of a normalized path.
fn split(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().rposition(|&b| b == b'/') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => (b"", key),
    }
}

#[cfg(test)]
mod tests;
