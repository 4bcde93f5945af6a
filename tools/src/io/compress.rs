//! Layer compression: gzip (blocks deflated in parallel by `pgzip`, flate2 on zlib-rs), zstd
//! (libzstd in multi-threaded mode), the seekable eStargz and zstd:chunked (`io::seekable`)
//! or none; and `Decompressor`, the one reader of a layer blob's tar, whatever its
//! compression (a seekable blob reads as plain gzip or zstd).
//!
//! The compressed bytes, and so the layer digest, are a function of (algorithm, backend,
//! backend version, level, and for gzip `pgzip::BLOCK_SIZE`), never of the thread count.
//! Every knob that could vary between machines is pinned here.

use super::output::BUF_SIZE;
use super::pgzip::ParallelGzip;
use super::seekable;
use anyhow::{Context, Result, bail};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    Zstd,
    /// gzip, seekable: eStargz (`io::seekable::estargz`).
    Estargz,
    /// zstd, seekable: containers/storage's zstd:chunked (`io::seekable::zstd_chunked`).
    #[value(name = "zstd:chunked")]
    ZstdChunked,
    None,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip | Compression::Estargz => crate::oci::media_type::LAYER_GZIP,
            Compression::Zstd | Compression::ZstdChunked => crate::oci::media_type::LAYER_ZSTD,
            Compression::None => crate::oci::media_type::LAYER_TAR,
        }
    }

    /// The seekable format this is, if it is one.
    pub fn seekable(self) -> Option<seekable::Format> {
        match self {
            Compression::Estargz => Some(seekable::Format::Estargz),
            Compression::ZstdChunked => Some(seekable::Format::ZstdChunked),
            _ => None,
        }
    }

    fn is_gzip(self) -> bool {
        matches!(self, Compression::Gzip | Compression::Estargz)
    }

    pub fn default_level(self) -> i32 {
        match self {
            Compression::Gzip | Compression::Estargz => 6,
            Compression::Zstd | Compression::ZstdChunked => 3,
            Compression::None => 0,
        }
    }

    /// Validates a level for this algorithm; `none` ignores it so callers may always pass one.
    pub fn check_level(self, level: i32) -> Result<i32> {
        let (ok, range) = match self {
            _ if self.is_gzip() => ((0..=9).contains(&level), "0..=9"),
            Compression::None => (true, ""),
            _ => ((1..=22).contains(&level), "1..=22"),
        };
        if !ok {
            bail!("compression level {level} is out of range {range} for {self:?}");
        }
        Ok(level)
    }
}

/// Uncompressed bytes per zstd job (libzstd's multi-threaded unit); part of every zstd
/// layer's digest.
pub const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// How a layer is compressed: the algorithm and level decide the bytes; `threads` only how
/// fast they are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub kind: Compression,
    pub level: i32,
    pub threads: usize,
}

impl Codec {
    /// `level` checked for `kind` (its default if `None`); `threads` 0 or `None`: every core
    /// this process may use.
    pub fn new(kind: Compression, level: Option<i32>, threads: Option<usize>) -> Result<Codec> {
        let level = kind.check_level(level.unwrap_or(kind.default_level()))?;
        let threads = match threads {
            Some(n) if n > 0 => n,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Codec {
            kind,
            level,
            threads,
        })
    }
}

/// A writer that compresses into `W`.
pub enum Compressor<W: Write + Send + 'static> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write + Send + 'static> Compressor<W> {
    pub fn new(codec: Codec, w: W) -> io::Result<Self> {
        let level = codec.level;
        Ok(match codec.kind {
            // Fixed header: mtime 0, no file name, OS byte 255 ("unknown").
            Compression::Gzip => {
                Compressor::Gzip(ParallelGzip::new(level as u32, codec.threads, w)?)
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(w, level)?;
                // Multi-threaded mode even for one thread: libzstd's output then depends on
                // the level and its job size, never on the number of workers (>= 1).
                enc.multithread(codec.threads.max(1) as u32)?;
                // Pinned (part of the bytes) and small enough that memory stays bounded:
                // libzstd keeps a few jobs in flight per worker.
                enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                // Explicit so a changed library default cannot change our bytes; the content
                // checksum is redundant with the OCI digest.
                enc.include_checksum(false)?;
                enc.include_contentsize(false)?;
                enc.include_dictid(false)?;
                Compressor::Zstd(enc)
            }
            Compression::None => Compressor::None(w),
            Compression::Estargz | Compression::ZstdChunked => {
                return Err(io::Error::other(
                    "seekable layers are written by io::seekable::SeekableWriter",
                ));
            }
        })
    }

    /// Flushes the compressed stream's trailer and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
            Compressor::None(w) => Ok(w),
        }
    }
}

impl<W: Write + Send + 'static> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
            Compressor::None(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Compressor::Gzip(e) => e.write_all(buf),
            Compressor::Zstd(e) => e.write_all(buf),
            Compressor::None(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
            Compressor::None(w) => w.flush(),
        }
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A failure of decompression, carried inside the `io::Error` a `Decompressor` returns, so
/// that a tar parser's caller can tell a corrupt stream from a malformed tar.
#[derive(Debug)]
pub struct DecompressError(pub String);

impl fmt::Display for DecompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecompressError {}

/// The uncompressed bytes of a blob: gzip, zstd or plain, told by its magic bytes (a media
/// type from elsewhere may be wrong, and Docker's layers say "tar" for all three).
pub enum Decompressor {
    // Boxed: the inflate state is large and the enum is moved around.
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<Blob>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Blob>>),
    None(BufReader<Blob>),
}

/// The compressed bytes: a file, or a stream (from a remote cache).
type Blob = Box<dyn Read + Send>;

impl Decompressor {
    pub fn open(blob: &Path) -> Result<Decompressor> {
        let file = File::open(blob).with_context(|| format!("cannot open {}", blob.display()))?;
        Decompressor::new(Box::new(file)).with_context(|| format!("cannot read {}", blob.display()))
    }

    /// The blob `r` reads, decompressed.
    pub fn new(r: Blob) -> Result<Decompressor> {
        let mut r = BufReader::with_capacity(BUF_SIZE, r);
        let head = r.fill_buf()?;
        Ok(if head.starts_with(GZIP_MAGIC) {
            // Multi-member, like Go's gzip reader that container runtimes use.
            Decompressor::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
        } else if head.starts_with(ZSTD_MAGIC) {
            Decompressor::Zstd(
                zstd::stream::read::Decoder::with_buffer(r).context("cannot start zstd")?,
            )
        } else {
            Decompressor::None(r)
        })
    }
}

impl Read for Decompressor {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (name, r) = match self {
            Decompressor::Gzip(d) => ("gzip", d.read(buf)),
            Decompressor::Zstd(d) => ("zstd", d.read(buf)),
            Decompressor::None(r) => return r.read(buf),
        };
        r.map_err(|e| {
            io::Error::new(
                e.kind(),
                DecompressError(format!("{name} decompression failed: {e}")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress(kind: Compression, data: &[u8]) -> Vec<u8> {
        let mut c = Compressor::new(Codec::new(kind, None, Some(1)).unwrap(), Vec::new()).unwrap();
        c.write_all(data).unwrap();
        c.finish().unwrap()
    }

    #[test]
    fn gzip_header_is_fixed_and_roundtrips() {
        let out = compress(Compression::Gzip, b"hello hello hello");
        assert_eq!(
            &out[..10],
            &[0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, b"hello hello hello");
    }

    #[test]
    fn zstd_frame_magic_no_checksum_and_roundtrips() {
        let out = compress(Compression::Zstd, b"hello hello hello");
        assert_eq!(&out[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        // Frame header descriptor: bit 2 is the content checksum flag.
        assert_eq!(out[4] & 0x04, 0);
        assert_eq!(zstd::decode_all(&out[..]).unwrap(), b"hello hello hello");
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_the_thread_count() {
        // Enough for several of libzstd's jobs, with real machine code in it.
        let mut data = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        data.truncate(12 << 20);
        data.extend((0..(20u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 & 0x3f));
        let with = |threads| {
            let codec = Codec::new(Compression::Zstd, None, Some(threads)).unwrap();
            let mut c = Compressor::new(codec, Vec::new()).unwrap();
            c.write_all(&data).unwrap();
            c.finish().unwrap()
        };
        let one = with(1);
        for threads in [2, 3, 8] {
            assert!(with(threads) == one, "{threads} threads");
        }
        assert!(zstd::decode_all(&one[..]).unwrap() == data);
    }

    #[test]
    fn levels_are_checked() {
        assert!(Compression::Gzip.check_level(10).is_err());
        assert!(Compression::Zstd.check_level(0).is_err());
        assert_eq!(Compression::Zstd.check_level(19).unwrap(), 19);
        assert!(Compression::None.check_level(99).is_ok());
    }
}
