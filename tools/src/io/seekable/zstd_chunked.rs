//! zstd:chunked (containers/storage): zstd frames, each regular file's content in a frame of
//! its own, then three skippable frames that every zstd decoder passes over: the TOC (zstd
//! compressed JSON), the tar-split (how to rebuild the tar byte for byte from the TOC's files)
//! and a 64-byte footer. The descriptor's annotations give the TOC's and tar-split's positions
//! and the TOC's digest, so a reader needs no footer request.
//!
//! Decompressed, the blob is exactly the layer's tar: the diff_id is unchanged.

use super::frames::{Boundary, Drained, FRAME_MAX, Frames};
use super::{Annotations, Layout, Sealed, TarEntry, rfc3339, xattrs_base64, zstd_frame};
use crate::oci::digest::Digest;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

pub const MANIFEST_CHECKSUM_ANNOTATION: &str =
    "io.github.containers.zstd-chunked.manifest-checksum";
pub const MANIFEST_POSITION_ANNOTATION: &str =
    "io.github.containers.zstd-chunked.manifest-position";
pub const TARSPLIT_POSITION_ANNOTATION: &str =
    "io.github.containers.zstd-chunked.tarsplit-position";
/// The TOC's format: "compatible with CRFS".
const MANIFEST_TYPE: u64 = 1;
const SKIPPABLE_MAGIC: [u8; 4] = [0x50, 0x2a, 0x4d, 0x18];
const FOOTER_MAGIC: &[u8; 8] = b"GNUlInUx";
/// tar-split's CRC-64 of file contents (Go's `crc64.ISO` table).
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO);
/// tar-split's entry types.
const TARSPLIT_FILE: u8 = 1;
const TARSPLIT_SEGMENT: u8 = 2;
/// After the end-of-archive blocks, tar-split records the rest in pieces of this size.
const TARSPLIT_PADDING_CHUNK: usize = 1 << 20;

#[derive(Serialize)]
struct Toc<'a> {
    version: u32,
    entries: &'a [FileMetadata],
    #[serde(rename = "tarSplitDigest")]
    tar_split_digest: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One TOC entry, as containers/storage's `minimal.FileMetadata`.
#[derive(Serialize)]
struct FileMetadata {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    #[serde(rename = "linkName", skip_serializing_if = "String::is_empty")]
    link_name: String,
    #[serde(skip_serializing_if = "is_zero")]
    mode: u64,
    #[serde(skip_serializing_if = "is_zero")]
    size: u64,
    #[serde(skip_serializing_if = "is_zero")]
    uid: u64,
    #[serde(skip_serializing_if = "is_zero")]
    gid: u64,
    modtime: String,
    #[serde(rename = "accesstime", skip_serializing_if = "Option::is_none")]
    access_time: Option<String>,
    #[serde(rename = "changetime", skip_serializing_if = "Option::is_none")]
    change_time: Option<String>,
    #[serde(rename = "devMajor", skip_serializing_if = "is_zero")]
    dev_major: u64,
    #[serde(rename = "devMinor", skip_serializing_if = "is_zero")]
    dev_minor: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    xattrs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    digest: String,
    #[serde(skip_serializing_if = "is_zero")]
    offset: u64,
    #[serde(rename = "endOffset", skip_serializing_if = "is_zero")]
    end_offset: u64,
}

/// One line of tar-split's JSON stream (vbatts/tar-split `storage.Entry`).
#[derive(Serialize)]
struct TarSplitEntry<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    size: u64,
    /// A segment's raw bytes, or a file's CRC-64 (big-endian), in base64; null for none.
    payload: Option<String>,
    position: u64,
}

/// The tar-split stream, zstd-compressed as it is written.
struct TarSplit {
    zstd: zstd::stream::write::Encoder<'static, Vec<u8>>,
    position: u64,
    uncompressed: u64,
}

impl TarSplit {
    fn add(
        &mut self,
        kind: u8,
        name: Option<&str>,
        size: u64,
        payload: Option<&[u8]>,
    ) -> io::Result<()> {
        let payload = payload.map(|p| base64::engine::general_purpose::STANDARD.encode(p));
        let mut line = serde_json::to_vec(&TarSplitEntry {
            kind,
            name,
            size,
            payload,
            position: self.position,
        })
        .map_err(io::Error::other)?;
        line.push(b'\n');
        self.position += 1;
        self.uncompressed += line.len() as u64;
        self.zstd.write_all(&line)
    }

    fn segment(&mut self, raw: &[u8]) -> io::Result<()> {
        if raw.is_empty() {
            return Ok(());
        }
        self.add(TARSPLIT_SEGMENT, None, 0, Some(raw))
    }
}

/// The regular file whose content is being written.
struct Current {
    entry: usize,
    sha: Sha256,
    crc: crc::Digest<'static, u64>,
}

pub struct ZstdChunked<W: Write + Send + 'static> {
    frames: Frames<W>,
    level: i32,
    toc: Vec<FileMetadata>,
    tar_split: TarSplit,
    current: Option<Current>,
    /// Names seen: the TOC cannot hold a path twice.
    names: HashSet<String>,
}

impl<W: Write + Send + 'static> ZstdChunked<W> {
    pub(super) fn new(frames: Frames<W>, level: i32) -> ZstdChunked<W> {
        let zstd = zstd_frame(Vec::new(), level).expect("a zstd encoder on a Vec");
        ZstdChunked {
            frames,
            level,
            toc: Vec::new(),
            tar_split: TarSplit {
                zstd,
                position: 0,
                uncompressed: 0,
            },
            current: None,
            names: HashSet::new(),
        }
    }

    pub(super) fn finish(mut self) -> io::Result<Sealed<W>> {
        let mut frames = self.frames.drain()?;
        // Offsets were recorded as frame boundaries; now the frames' sizes are known.
        for e in &mut self.toc {
            e.offset = frames.offset(Boundary(e.offset));
            e.end_offset = frames.offset(Boundary(e.end_offset));
        }
        let tar_split = self.tar_split.zstd.finish()?;
        let tar_split_len = self.tar_split.uncompressed;
        let toc = serde_json::to_vec(&Toc {
            version: 1,
            entries: &self.toc,
            tar_split_digest: Digest::of(&tar_split).to_string(),
        })
        .map_err(io::Error::other)?;
        let mut z = zstd_frame(Vec::new(), self.level)?;
        z.write_all(&toc)?;
        let compressed_toc = z.finish()?;

        let toc_offset = frames.end() + 8;
        skippable(&mut frames, &compressed_toc)?;
        let tar_split_offset = toc_offset + compressed_toc.len() as u64 + 8;
        skippable(&mut frames, &tar_split)?;
        let mut footer = Vec::with_capacity(64);
        for n in [
            toc_offset,
            compressed_toc.len() as u64,
            toc.len() as u64,
            MANIFEST_TYPE,
            tar_split_offset,
            tar_split.len() as u64,
            tar_split_len,
        ] {
            footer.extend_from_slice(&n.to_le_bytes());
        }
        footer.extend_from_slice(FOOTER_MAGIC);
        skippable(&mut frames, &footer)?;

        let mut annotations = Annotations::new();
        annotations.insert(
            MANIFEST_CHECKSUM_ANNOTATION.into(),
            Digest::of(&compressed_toc).to_string(),
        );
        annotations.insert(
            MANIFEST_POSITION_ANNOTATION.into(),
            format!(
                "{toc_offset}:{}:{}:{MANIFEST_TYPE}",
                compressed_toc.len(),
                toc.len()
            ),
        );
        annotations.insert(
            TARSPLIT_POSITION_ANNOTATION.into(),
            format!("{tar_split_offset}:{}:{tar_split_len}", tar_split.len()),
        );
        frames.finish(annotations)
    }
}

/// A zstd skippable frame: magic, little-endian length, data.
fn skippable<W: Write + Send + 'static>(frames: &mut Drained<W>, data: &[u8]) -> io::Result<()> {
    let mut head = SKIPPABLE_MAGIC.to_vec();
    head.extend_from_slice(&(data.len() as u32).to_le_bytes());
    frames.write_raw(&head)?;
    frames.write_raw(data)
}

impl<W: Write + Send + 'static> Layout for ZstdChunked<W> {
    fn header(&mut self, raw: &[u8], e: &TarEntry) -> io::Result<()> {
        if !self.names.insert(e.name.clone()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the layer has two entries named {:?}, which zstd:chunked cannot list",
                    e.name
                ),
            ));
        }
        self.frames.write(raw)?;
        self.tar_split.segment(raw)?;
        let kind = e.kind.toc_type();
        let time = |t| rfc3339(t, &e.name);
        self.toc.push(FileMetadata {
            kind,
            name: e.name.clone(),
            link_name: e.link.clone(),
            mode: u64::from(e.mode),
            size: e.size,
            uid: e.uid,
            gid: e.gid,
            modtime: time(e.mtime)?,
            access_time: e.atime.map(time).transpose()?,
            change_time: e.ctime.map(time).transpose()?,
            dev_major: e.dev_major,
            dev_minor: e.dev_minor,
            xattrs: xattrs_base64(e),
            digest: String::new(),
            offset: 0,
            end_offset: 0,
        });
        if e.size > 0 {
            self.current = Some(Current {
                entry: self.toc.len() - 1,
                sha: Sha256::new(),
                crc: CRC64.digest(),
            });
        } else {
            self.tar_split.add(TARSPLIT_FILE, Some(&e.name), 0, None)?;
        }
        Ok(())
    }

    fn content(&mut self, data: &[u8]) -> io::Result<()> {
        let cur = self.current.as_mut().expect("content belongs to a file");
        let entry = &mut self.toc[cur.entry];
        if entry.offset == 0 {
            // A frame boundary until `finish` knows the offset.
            entry.offset = self.frames.close()?.0;
            // A large file is one frame too, compressed as a stream.
            if entry.size >= FRAME_MAX as u64 {
                self.frames.stream()?;
            }
        }
        cur.sha.update(data);
        cur.crc.update(data);
        self.frames.write(data)
    }

    fn content_end(&mut self) -> io::Result<()> {
        let cur = self.current.take().expect("a file is open");
        let Boundary(end) = self.frames.close()?;
        let entry = &mut self.toc[cur.entry];
        entry.end_offset = end;
        entry.digest = Digest(cur.sha.finalize().into()).to_string();
        let (name, size) = (entry.name.clone(), entry.size);
        let crc = cur.crc.finalize().to_be_bytes();
        self.tar_split
            .add(TARSPLIT_FILE, Some(&name), size, Some(&crc))
    }

    fn trailer(&mut self, padding: &[u8], end: &[u8]) -> io::Result<()> {
        self.frames.write(padding)?;
        self.frames.write(end)?;
        // As tar-split records it: the padding with the two end blocks, then the rest.
        let (blocks, rest) = end.split_at(end.len().min(1024));
        self.tar_split.segment(&[padding, blocks].concat())?;
        for piece in rest.chunks(TARSPLIT_PADDING_CHUNK) {
            self.tar_split.segment(piece)?;
        }
        Ok(())
    }
}
