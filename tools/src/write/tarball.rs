//! `tarball`: the image as one deterministic tar that is an OCI layout and `docker load`
//! input at once (it also carries docker-save's `manifest.json`), the same tar without the
//! blobs a content store already has (`load` into containerd), and the docker-save stream
//! `load` gives engines that cannot read zstd layers.

use super::{Local, VerifiedFile, dedup_tags, docker_manifest_json, index_json, local_blobs};
use crate::input::{Image, Input, Stored};
use crate::io::output::{AtomicFile, BUF_SIZE};
use crate::io::tarfmt::TarWriter;
use crate::oci::layout::{DockerSaveEntry, OciLayout, blob_path};
use crate::oci::{Descriptor, Digest, json, media_type};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes the image as one tar stream: an OCI layout plus docker's manifest.json.
pub fn write<W: Write>(input: &Input, tags: &[String], w: W) -> Result<W> {
    write_omitting(input, tags, &BTreeSet::new(), w)
}

/// `write` without the blobs in `omit`: the manifests still name them, so the stream is
/// complete only for a reader that already has them (containerd's importer, which stores
/// the blobs it reads and then resolves the index from its content store).
pub fn write_omitting<W: Write>(
    input: &Input,
    tags: &[String],
    omit: &BTreeSet<Digest>,
    w: W,
) -> Result<W> {
    let tags = dedup_tags(tags);
    let mut tw = TarWriter::new(w);
    let mut buf = vec![0u8; BUF_SIZE];
    // Sorted names: "blobs/" < "blobs/sha256/" < "blobs/sha256/<hex>"... < "index.json" <
    // "manifest.json" < "oci-layout".
    tw.dir("blobs/", 0o755)?;
    tw.dir("blobs/sha256/", 0o755)?;
    for (digest, blob) in local_blobs(input)? {
        if omit.contains(&digest) {
            continue;
        }
        let name = blob_path(&digest);
        match &blob {
            Local::Bytes(b) => tw.file_bytes(&name, 0o644, b)?,
            Local::Stored(stored, desc) => copy_verified(&mut tw, &name, stored, desc, &mut buf)?,
        }
    }
    tw.file_bytes("index.json", 0o644, &index_json(input, &tags, true))?;
    tw.file_bytes("manifest.json", 0o644, &docker_manifest_json(input, &tags))?;
    tw.file_bytes("oci-layout", 0o644, &json::canonical(&OciLayout::current()))?;
    Ok(tw.finish()?)
}

/// Copies a layer blob into the tar as `name`, verifying its digest and size on the way.
fn copy_verified<W: Write>(
    tw: &mut TarWriter<W>,
    name: &str,
    stored: &Stored,
    desc: &Descriptor,
    buf: &mut [u8],
) -> Result<()> {
    let mut r = VerifiedFile::open(stored, desc)?;
    tw.file(name, 0o644, desc.size, &mut r, buf)
        .with_context(|| format!("copying layer blob {stored}"))?;
    r.finish_verified()
}

/// The `tarball` subcommand: the tar at `output`, in place only when complete.
pub fn run(input: &Input, tags: &[String], output: &Path) -> Result<()> {
    let mut out = AtomicFile::create(output)?;
    let w = write(input, tags, BufWriter::with_capacity(BUF_SIZE, out.file()))?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", output.display()))?;
    out.commit()
}

/// Writes a docker-save stream (manifest.json, config, layers) in which zstd layers are
/// decompressed to plain tars, for engines that cannot read zstd. Docker checks layers by
/// their diff_ids, which decompression keeps, so the loaded image has the same config (and
/// image ID). A zstd blob is read twice (to learn the tar's size, then to stream it) so that
/// nothing is buffered in memory or on disk; both passes verify the blob's digest.
pub fn write_docker_archive<W: Write>(image: &Image, tags: &[String], w: W) -> Result<W> {
    let tags = dedup_tags(tags);
    let mut tw = TarWriter::new(w);
    let mut buf = vec![0u8; BUF_SIZE];
    let config = &image.parsed.config;
    let input = Input::Image(image.clone());
    let mut layer_names = std::collections::BTreeMap::new();
    tw.dir("blobs/", 0o755)?;
    tw.dir("blobs/sha256/", 0o755)?;
    for (digest, blob) in local_blobs(&input)? {
        let name = blob_path(&digest);
        match &blob {
            Local::Bytes(b) if digest == config.digest => tw.file_bytes(&name, 0o644, b)?,
            Local::Bytes(_) => {} // the OCI manifest: not part of a docker-save stream
            Local::Stored(stored, desc) if media_type::is_zstd_layer(&desc.media_type) => {
                let size = decompressed_size(stored, desc)?;
                let mut r = VerifiedFile::open(stored, desc)?;
                let ctx = || format!("decompressing layer blob {stored}");
                let mut plain = zstd::stream::read::Decoder::new(&mut r).with_context(ctx)?;
                let tar_name = format!("{name}.tar");
                tw.file(&tar_name, 0o644, size, &mut plain, &mut buf)
                    .with_context(ctx)?;
                drop(plain);
                r.finish_verified()?;
                layer_names.insert(digest, tar_name);
            }
            Local::Stored(stored, desc) => {
                copy_verified(&mut tw, &name, stored, desc, &mut buf)?;
                layer_names.insert(digest, name);
            }
        }
    }
    let manifest = [DockerSaveEntry {
        config: blob_path(&config.digest),
        repo_tags: tags,
        layers: image
            .parsed
            .layers
            .iter()
            .map(|l| layer_names[&l.digest].clone())
            .collect(),
    }];
    tw.file_bytes("manifest.json", 0o644, &json::canonical(&manifest))?;
    Ok(tw.finish()?)
}

/// Size of a zstd layer once decompressed; also verifies the blob's digest.
fn decompressed_size(stored: &Stored, desc: &Descriptor) -> Result<u64> {
    let mut r = VerifiedFile::open(stored, desc)?;
    let ctx = || format!("decompressing layer blob {stored}");
    let size = {
        let mut plain = zstd::stream::read::Decoder::new(&mut r).with_context(ctx)?;
        std::io::copy(&mut plain, &mut std::io::sink()).with_context(ctx)?
    };
    r.finish_verified()?;
    Ok(size)
}
