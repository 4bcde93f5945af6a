//! `sbom`: an SPDX 2.3 document of what an image really holds.
//!
//! The layers are applied as a runtime applies them (`verify::flatten`: whiteouts, opaque
//! directories, hard links), so a file that an upper layer replaced or removed is not listed;
//! every regular file that is left is, with its SHA-1 and SHA-256 (read from the layer that
//! wrote it, each layer streamed once).
//!
//! Files are grouped by origin, the package that put them there:
//! - each layer is a package named by its origin (the Bazel target that built it, or the
//!   pulled or imported image it comes from, `REGISTRY/REPOSITORY@DIGEST`), with the layer's
//!   digest as its version;
//! - below `/nix/store`, each store path is a package of its own (name and version taken from
//!   the store path's name, as Nix's `parseDrvName` splits it), contained in its layer.
//!
//! Nothing in the document depends on the time or the machine: `created` is given (the epoch
//! by default), and the namespace is derived from the manifest digest.

mod spdx;

use crate::input::{BlobSource, Image};
use crate::io::compress::Decompressor;
use crate::io::output;
use crate::oci::config::rfc3339;
use crate::verify::flatten;
use crate::verify::tree::NodeKind;
use anyhow::{Context, Result, bail};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use spdx::{Checksum, Document, File, Package, VerificationCode, relationship};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::Path;

pub struct SbomOptions<'a> {
    /// How the document names the image (its Bazel label).
    pub name: &'a str,
    /// What made each layer, in layer order (empty: unknown).
    pub origins: &'a [String],
    /// Seconds since the epoch: the document's `created`.
    pub created: u64,
    pub output: &'a Path,
}

const NIX_STORE: &[u8] = b"nix/store/";
const IMAGE_ID: &str = "SPDXRef-Image";

pub fn run(image: &Image, o: &SbomOptions) -> Result<()> {
    let doc = document(image, o)?;
    let mut bytes = serde_json::to_vec_pretty(&doc).context("cannot write the SPDX document")?;
    bytes.push(b'\n');
    output::stage(o.output, &bytes)?.commit()
}

/// SHA-1 and SHA-256 of one file's content, hex.
#[derive(Debug, Clone)]
struct Hashes {
    sha1: String,
    sha256: String,
}

/// One regular file of the image.
struct Entry {
    path: String,
    layer: usize,
    hashes: Hashes,
}

fn document(image: &Image, o: &SbomOptions) -> Result<Document> {
    let layers = image.parsed.layers.len();
    if !o.origins.is_empty() && o.origins.len() != layers {
        bail!(
            "{} --layer-origin values for {layers} layers",
            o.origins.len()
        );
    }
    let tree = flatten(image)?;
    let mut wanted: BTreeMap<usize, BTreeSet<(u64, u64)>> = BTreeMap::new();
    let mut files = Vec::new();
    for (key, node) in tree.nodes() {
        if let NodeKind::File {
            layer,
            offset,
            size,
        } = node.kind
        {
            wanted.entry(layer).or_default().insert((offset, size));
            files.push((key.to_vec(), node.layer, (layer, offset, size)));
        }
    }
    let hashes = hash_contents(image, &wanted)?;
    let entries: Vec<Entry> = files
        .into_iter()
        .map(|(key, layer, (data_layer, offset, _))| Entry {
            path: String::from_utf8_lossy(&key).into_owned(),
            layer,
            hashes: hashes[&(data_layer, offset)].clone(),
        })
        .collect();

    let digest = image.descriptor().digest;
    let mut doc = Document {
        spdx_version: spdx::VERSION,
        data_license: spdx::DATA_LICENSE,
        spdx_id: "SPDXRef-DOCUMENT".into(),
        name: o.name.into(),
        document_namespace: format!("https://rules-image.invalid/spdx/{}", digest.hex()),
        creation_info: spdx::CreationInfo {
            created: rfc3339(o.created),
            creators: vec![format!("Tool: rules_image-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages: Vec::new(),
        files: Vec::new(),
        relationships: vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID)],
    };

    let mut top = Package::new(IMAGE_ID.into(), o.name.into());
    top.version_info = Some(digest.to_string());
    top.checksums = vec![sha256(&digest.hex())];
    top.purpose = Some("CONTAINER");
    top.comment = Some(format!("the image manifest {digest}"));
    doc.packages.push(top);

    // Which package each file belongs to: its store path's, else its layer's.
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut nix_packages: BTreeMap<String, (String, usize)> = BTreeMap::new(); // id -> (store name, layer)
    for (i, e) in entries.iter().enumerate() {
        let owner = match store_path_name(e.path.as_bytes()) {
            Some(name) => {
                let id = format!("SPDXRef-Nix-{}", spdx_id_part(&name));
                nix_packages.entry(id.clone()).or_insert((name, e.layer));
                id
            }
            None => layer_id(e.layer),
        };
        members.entry(owner).or_default().push(i);
    }

    for (i, desc) in image.parsed.layers.iter().enumerate() {
        let id = layer_id(i);
        let origin = o
            .origins
            .get(i)
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("layer {i}"));
        let mut p = Package::new(id.clone(), origin);
        p.version_info = Some(desc.digest.to_string());
        p.checksums = vec![sha256(&desc.digest.hex())];
        p.comment = Some(format!("layer {i} of the image ({})", desc.media_type));
        analyzed(&mut p, members.get(&id), &entries);
        doc.relationships
            .push(relationship(IMAGE_ID, "CONTAINS", &id));
        doc.packages.push(p);
    }
    for (id, (store_name, layer)) in &nix_packages {
        let (name, version) = parse_drv_name(store_name);
        let mut p = Package::new(id.clone(), name.into());
        p.version_info = version.map(str::to_string);
        p.comment = Some(format!("/nix/store/{store_name}"));
        analyzed(&mut p, members.get(id), &entries);
        doc.relationships
            .push(relationship(&layer_id(*layer), "CONTAINS", id));
        doc.packages.push(p);
    }
    for (owner, list) in &members {
        for &i in list {
            doc.relationships
                .push(relationship(owner, "CONTAINS", &file_id(i)));
        }
    }
    doc.files = entries
        .iter()
        .enumerate()
        .map(|(i, e)| File {
            spdx_id: file_id(i),
            file_name: format!("./{}", e.path),
            checksums: vec![
                Checksum {
                    algorithm: "SHA1",
                    value: e.hashes.sha1.clone(),
                },
                sha256(&e.hashes.sha256),
            ],
            license_concluded: spdx::NOASSERTION,
            copyright_text: spdx::NOASSERTION,
        })
        .collect();
    Ok(doc)
}

fn sha256(hex: &str) -> Checksum {
    Checksum {
        algorithm: "SHA256",
        value: hex.into(),
    }
}

fn layer_id(i: usize) -> String {
    format!("SPDXRef-Layer-{i}")
}

fn file_id(i: usize) -> String {
    format!("SPDXRef-File-{i}")
}

/// Marks a package whose files are listed, with the verification code SPDX asks for then.
fn analyzed(p: &mut Package, members: Option<&Vec<usize>>, entries: &[Entry]) {
    let Some(members) = members.filter(|m| !m.is_empty()) else {
        return;
    };
    let mut sha1s: Vec<&str> = members
        .iter()
        .map(|&i| entries[i].hashes.sha1.as_str())
        .collect();
    sha1s.sort_unstable();
    p.files_analyzed = true;
    p.verification_code = Some(VerificationCode {
        value: verification_code(&sha1s),
    });
}

/// SPDX's package verification code: the SHA-1 of the files' SHA-1s (lowercase hex),
/// sorted and concatenated.
fn verification_code(sorted_sha1s: &[&str]) -> String {
    let mut h = Sha1::new();
    for s in sorted_sha1s {
        h.update(s.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The name of the store path a tree key is in (`nix/store/<hash>-<name>/...`), if any.
fn store_path_name(key: &[u8]) -> Option<String> {
    let rest = key.strip_prefix(NIX_STORE)?;
    let base = rest.split(|&b| b == b'/').next()?;
    // <32 characters of nix-base32>-<name>
    if base.len() < 34 || base[32] != b'-' {
        return None;
    }
    Some(String::from_utf8_lossy(base).into_owned())
}

/// (name, version) of a store path's name without its hash, as Nix's `parseDrvName`: the
/// version starts at the first `-` that is followed by something other than a letter.
fn parse_drv_name(store_name: &str) -> (&str, Option<&str>) {
    let name = &store_name[33..];
    let bytes = name.as_bytes();
    for i in 0..bytes.len() {
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(|c| !c.is_ascii_alphabetic()) {
            return (&name[..i], Some(&name[i + 1..]));
        }
    }
    (name, None)
}

/// A string as the part of an SPDX identifier after `SPDXRef-` may be: letters, digits, `.`
/// and `-`.
fn spdx_id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The hashes of the wanted (offset, size) ranges of each layer's tar, by (layer, offset):
/// each layer decompressed once, front to back.
fn hash_contents(
    image: &Image,
    wanted: &BTreeMap<usize, BTreeSet<(u64, u64)>>,
) -> Result<HashMap<(usize, u64), Hashes>> {
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    for (&layer, ranges) in wanted {
        let BlobSource::Local(path) = &image.blobs[layer] else {
            bail!("layer {layer} is not local");
        };
        let ctx = || format!("reading layer {layer} ({})", path.display());
        let mut tar = Decompressor::open(path).with_context(ctx)?;
        let mut pos = 0u64;
        for &(offset, size) in ranges {
            io::copy(&mut (&mut tar).take(offset - pos), &mut io::sink()).with_context(ctx)?;
            let (mut s1, mut s256) = (Sha1::new(), Sha256::new());
            let mut left = size;
            while left > 0 {
                let want = left.min(buf.len() as u64) as usize;
                let n = tar.read(&mut buf[..want]).with_context(ctx)?;
                if n == 0 {
                    bail!("{}: the tar ends inside a file", ctx());
                }
                s1.update(&buf[..n]);
                s256.update(&buf[..n]);
                left -= n as u64;
            }
            pos = offset + size;
            out.insert(
                (layer, offset),
                Hashes {
                    sha1: hex::encode(s1.finalize()),
                    sha256: hex::encode(s256.finalize()),
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
