//! THE pipeline that turns a layer's tar stream into a blob: tar -> sha256 (diff_id) ->
//! compressor -> sha256 (digest) -> output, in one pass with constant memory (a seekable
//! blob's TOC excepted, which grows with the number of entries). Every layer the
//! tool writes goes through here: `layer` (Bazel files, Nix store paths) and `import
//! --normalize` (rewritten imported layers).

use super::LayerMetadata;
use crate::io::compress::{Codec, Compression, Compressor};
use crate::io::output::{AtomicFile, BUF_SIZE};
use crate::io::pipe::BackgroundWriter;
use crate::io::seekable::SeekableWriter;
use crate::oci::digest::HashingWriter;
use anyhow::{Context, Result};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Streams the tar that `write_tar` writes through hashing and compression into `w`.
pub fn encode<W: Write + Send + 'static>(
    codec: Codec,
    w: W,
    write_tar: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<(W, LayerMetadata)> {
    let mut annotations = Default::default();
    let (w, diff_id, digest, size) = if let Some(format) = codec.kind.seekable() {
        // Seekable: the writer follows the tar itself, and says what the diff_id is (eStargz
        // adds its TOC to the tar).
        let sw = SeekableWriter::new(format, codec.level, codec.threads, w);
        let mut tar = BufWriter::with_capacity(BUF_SIZE, sw);
        write_tar(&mut tar)?;
        let sealed = tar.into_inner().map_err(|e| e.into_error())?.finish()?;
        annotations = sealed.annotations;
        (sealed.inner, sealed.diff_id, sealed.digest, sealed.size)
    } else if codec.kind == Compression::None {
        // Uncompressed: the blob is the tar, one hash gives both diff_id and digest.
        // (`w` buffers itself where it matters: see `write_layer`.)
        let mut tar = HashingWriter::new(w);
        write_tar(&mut tar)?;
        let (w, d, n) = tar.finish();
        (w, d, d, n)
    } else {
        let blob = HashingWriter::new(w);
        let comp = Compressor::new(codec, blob)?;
        let mut tar = BufWriter::with_capacity(BUF_SIZE, HashingWriter::new(comp));
        write_tar(&mut tar)?;
        let (comp, diff_id, _) = tar.into_inner().map_err(|e| e.into_error())?.finish();
        let (w, digest, size) = comp.finish()?.finish();
        (w, diff_id, digest, size)
    };
    Ok((
        w,
        LayerMetadata {
            diff_id,
            digest,
            media_type: codec.kind.media_type().to_string(),
            size,
            annotations,
        },
    ))
}

/// Encodes a layer into a new file at `output`, written by a background thread so that the
/// write syscalls overlap with hashing and compressing. The file is in place only once the
/// caller commits it.
pub fn write_layer(
    output: &Path,
    codec: Codec,
    write_tar: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<(AtomicFile, LayerMetadata)> {
    let mut blob = AtomicFile::create(output)?;
    let file = blob
        .file()
        .try_clone()
        .context("cannot open the output twice")?;
    let (out, meta) = encode(codec, BackgroundWriter::new(file), write_tar)?;
    out.finish()
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok((blob, meta))
}
