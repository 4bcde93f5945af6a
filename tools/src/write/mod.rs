//! Writing an image or index out of the build: an OCI layout directory (`layout`), one tar
//! that is both an OCI layout and `docker load` input (`tarball`), and that tar streamed into
//! a container engine (`load`; into containerd without the layers it has, `containerd`).
//!
//! Layer blobs are copied from their files while being hashed; a blob that does not match its
//! manifest descriptor is an error, so a stale or swapped file can never produce an image.

pub mod containerd;
pub mod layout;
pub mod load;
pub mod tarball;

use crate::input::{Content, Input, Stored};
use crate::oci::descriptor::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::oci::digest::HashingReader;
use crate::oci::layout::{DockerSaveEntry, blob_path};
use crate::oci::reference::tag_part;
use crate::oci::{Descriptor, Digest, ImageIndex, Platform, json};
use anyhow::{Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Where the bytes of one blob of a layout come from.
// Few exist at a time (one per image): boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
enum Local {
    Bytes(Vec<u8>),
    /// A layer blob (a file, or in a remote cache), verified against its descriptor while it
    /// is copied.
    Stored(Stored, Descriptor),
}

/// Every blob of the input (manifests, index, configs, layers) by digest: deduplicated, and
/// in the sorted order they are written in. Layers only in a registry cannot go in a layout.
fn local_blobs(input: &Input) -> Result<BTreeMap<Digest, Local>> {
    let mut blobs = BTreeMap::new();
    for blob in input.blobs() {
        let local = match blob.content {
            Content::Bytes(b) => Local::Bytes(b),
            Content::Stored(s) => Local::Stored(s, blob.desc.clone()),
            Content::Remote(r) => bail!(
                "layer {} is only in {r}; layouts, tarballs and load need every layer locally",
                blob.desc.digest
            ),
        };
        blobs.insert(blob.desc.digest, local);
    }
    for image in input.images() {
        blobs.insert(image.digest(), Local::Bytes(image.manifest.clone()));
    }
    if let Input::Index(x) = input {
        blobs.insert(x.descriptor().digest, Local::Bytes(x.bytes.clone()));
    }
    Ok(blobs)
}

/// The layout's `index.json`: one descriptor of the image (or index) per tag, `latest`
/// without tags. In a tarball each tag is also named in full for containerd (and Docker
/// with the containerd store), which read `io.containerd.image.name`.
fn index_json(input: &Input, tags: &[String], tarball: bool) -> Vec<u8> {
    let (_, top) = input.top();
    let names: Vec<BTreeMap<String, String>> = if tags.is_empty() {
        vec![BTreeMap::from([(
            ANNOTATION_REF_NAME.into(),
            "latest".into(),
        )])]
    } else if tarball {
        tags.iter()
            .map(|t| {
                BTreeMap::from([
                    (ANNOTATION_REF_NAME.into(), tag_part(t).into()),
                    (ANNOTATION_CONTAINERD_NAME.into(), t.clone()),
                ])
            })
            .collect()
    } else {
        tags.iter()
            .map(|t| BTreeMap::from([(ANNOTATION_REF_NAME.into(), t.clone())]))
            .collect()
    };
    let manifests = names
        .into_iter()
        .map(|a| top.clone().with_annotations(a))
        .collect();
    ImageIndex::new(manifests, BTreeMap::new()).to_bytes()
}

/// docker-save's `manifest.json`: one entry per image. Docker keeps one image per tag, so an
/// index's tags go on its image for linux/amd64 (the others are loaded untagged).
fn docker_manifest_json(input: &Input, tags: &[String]) -> Vec<u8> {
    let tagged = match input {
        Input::Image(_) => Some(0),
        Input::Index(x) => Platform::new("linux", "amd64", None).select(&x.platforms),
    };
    let entries: Vec<DockerSaveEntry> = input
        .images()
        .iter()
        .enumerate()
        .map(|(i, image)| DockerSaveEntry {
            config: blob_path(&image.parsed.config.digest),
            repo_tags: if Some(i) == tagged {
                tags.to_vec()
            } else {
                Vec::new()
            },
            layers: image
                .parsed
                .layers
                .iter()
                .map(|l| blob_path(&l.digest))
                .collect(),
        })
        .collect();
    json::canonical(&entries)
}

/// The tags, each once, in the order given.
fn dedup_tags(tags: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    tags.iter().filter(|t| seen.insert(*t)).cloned().collect()
}

fn verify(stored: &Stored, desc: &Descriptor, got: Digest, n: u64) -> Result<()> {
    if got != desc.digest || n != desc.size {
        bail!(
            "layer blob {stored} has digest {got} ({n} bytes) but the manifest expects {} ({} bytes)",
            desc.digest,
            desc.size
        );
    }
    Ok(())
}

/// A layer blob, hashed as it is read: `finish_verified` checks it once read.
struct VerifiedFile<'a> {
    reader: HashingReader<Box<dyn Read + Send>>,
    stored: &'a Stored,
    desc: &'a Descriptor,
}

impl<'a> VerifiedFile<'a> {
    fn open(stored: &'a Stored, desc: &'a Descriptor) -> Result<VerifiedFile<'a>> {
        Ok(VerifiedFile {
            reader: HashingReader::new(stored.open(desc)?),
            stored,
            desc,
        })
    }

    fn finish_verified(self) -> Result<()> {
        let (got, n) = self.reader.finish();
        verify(self.stored, self.desc, got, n)
    }
}

impl Read for VerifiedFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

#[cfg(test)]
mod tests;
