//! Seekable layer blobs, for lazy pulling: eStargz (gzip) and zstd:chunked (zstd). Each file's
//! content starts a compressed frame of its own, and a table of contents (TOC) at the end of
//! the blob says where every entry is, so that a reader can fetch the TOC and then only the
//! files it needs with HTTP range requests. Any plain gzip or zstd reader still reads the blob
//! as the layer's tar.
//!
//! Hand-written because no Rust crate writes either format; their specifications are the Go
//! implementations that read them: stargz-snapshotter's `estargz` package (docs/estargz.md)
//! and containers/storage's `pkg/chunked` (which podman and CRI-O use for partial pulls).
//!
//! The bytes are a function of the tar and the level only, whatever the thread count (see
//! `frames`).
//!
//! | piece | here |
//! |---|---|
//! | following the tar stream, each entry's metadata as Go reads it | `cut` |
//! | the blob as independently compressed frames, on every thread | `frames` |
//! | eStargz's TOC, `stargz.index.json` entry and 51-byte footer | `estargz` |
//! | zstd:chunked's TOC, tar-split and footer in skippable frames | `zstd_chunked` |

mod cut;
mod estargz;
mod frames;
mod zstd_chunked;

pub use cut::{Kind, TarEntry};

use crate::oci::digest::Digest;
use frames::Frames;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The descriptor annotations a seekable layer needs in its manifest.
pub type Annotations = BTreeMap<String, String>;

/// The two seekable formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Estargz,
    ZstdChunked,
}

/// Where a `Cutter` reports what it found in the tar stream.
trait Layout {
    /// An entry's header blocks (`raw`: the previous entry's padding, extension headers and
    /// the header itself), with the entry they describe.
    fn header(&mut self, raw: &[u8], entry: &TarEntry) -> io::Result<()>;
    /// The next bytes of the current entry's content.
    fn content(&mut self, data: &[u8]) -> io::Result<()>;
    /// The current entry's content is complete.
    fn content_end(&mut self) -> io::Result<()>;
    /// The last entry's padding, then the end-of-archive blocks (and whatever follows them).
    fn trailer(&mut self, padding: &[u8], end: &[u8]) -> io::Result<()>;
}

/// A finished seekable blob.
pub struct Sealed<W> {
    pub inner: W,
    /// sha256 of the blob's uncompressed bytes (eStargz adds its TOC entry to the tar).
    pub diff_id: Digest,
    /// sha256 and size of the blob.
    pub digest: Digest,
    pub size: u64,
    pub annotations: Annotations,
}

enum Layouts<W: Write + Send + 'static> {
    Estargz(estargz::Estargz<W>),
    ZstdChunked(zstd_chunked::ZstdChunked<W>),
}

/// A `Write` that takes a layer's tar stream and writes it as a seekable blob into `W`.
pub struct SeekableWriter<W: Write + Send + 'static> {
    cutter: cut::Cutter,
    layout: Layouts<W>,
}

impl<W: Write + Send + 'static> SeekableWriter<W> {
    /// `threads` only says how fast: the bytes are the same for any number.
    pub fn new(format: Format, level: i32, threads: usize, w: W) -> SeekableWriter<W> {
        let frames = Frames::new(format, level, threads, w);
        SeekableWriter {
            cutter: cut::Cutter::new(),
            layout: match format {
                Format::Estargz => Layouts::Estargz(estargz::Estargz::new(frames)),
                Format::ZstdChunked => {
                    Layouts::ZstdChunked(zstd_chunked::ZstdChunked::new(frames, level))
                }
            },
        }
    }

    /// Writes the TOC and footer once the tar stream is complete.
    pub fn finish(mut self) -> io::Result<Sealed<W>> {
        self.cutter.finish(as_layout(&mut self.layout))?;
        match self.layout {
            Layouts::Estargz(l) => l.finish(),
            Layouts::ZstdChunked(l) => l.finish(),
        }
    }
}

impl<W: Write + Send + 'static> Write for SeekableWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.cutter.write(buf, as_layout(&mut self.layout))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn as_layout<W: Write + Send + 'static>(l: &mut Layouts<W>) -> &mut dyn Layout {
    match l {
        Layouts::Estargz(l) => l,
        Layouts::ZstdChunked(l) => l,
    }
}

/// A single-threaded zstd encoder (one frame) with the frame header's optional fields pinned,
/// as in `io::compress`, so that a library default cannot move our bytes.
fn zstd_frame<W: Write>(w: W, level: i32) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut enc = zstd::stream::write::Encoder::new(w, level)?;
    enc.include_checksum(false)?;
    enc.include_contentsize(false)?;
    enc.include_dictid(false)?;
    Ok(enc)
}

/// `path.Clean("/" + name)` without the leading slash: how eStargz names entries.
fn clean_name(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// An RFC 3339 UTC time as Go writes it, seconds or (when there is a fraction) nanoseconds.
fn rfc3339((secs, nanos): (i64, u32), name: &str) -> io::Result<String> {
    let secs = u64::try_from(secs).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "tar entry {name:?} has a time before 1970, which lazily pulled layers cannot carry"
            ),
        )
    })?;
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    Ok(if nanos == 0 {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_nanos(t).to_string()
    })
}

/// Both TOCs give xattr values in base64.
fn xattrs_base64(entry: &TarEntry) -> BTreeMap<String, String> {
    use base64::Engine as _;
    entry
        .xattrs
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                base64::engine::general_purpose::STANDARD.encode(v),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
