//! eStargz: gzip members, a TOC as the tar entry `stargz.index.json` in a member of its own,
//! and a 51-byte footer member whose gzip extra field gives the TOC's offset.
//!
//! Layout, as stargz-snapshotter's writer makes it: a regular file's content starts a new
//! member, and a new one every `CHUNK_SIZE` bytes (each chunk listed with its offset and
//! digest); the padding after it and the headers of the entries that follow share that
//! member. The TOC entry and the end-of-archive blocks close the tar, so the layer's diff_id
//! covers the TOC too (and a runtime that unpacks the layer as a plain tar finds
//! `/stargz.index.json`, as with every eStargz image).

use super::frames::{Boundary, Frames};
use super::{Annotations, Kind, Layout, Sealed, TarEntry, clean_name, rfc3339};
use crate::io::tarfmt::{BLOCK, ustar_header};
use crate::oci::digest::Digest;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Bytes of a file per gzip member (stargz-snapshotter's default chunk size).
pub const CHUNK_SIZE: u64 = 4 << 20;
pub const TOC_NAME: &str = "stargz.index.json";
pub const TOC_DIGEST_ANNOTATION: &str = "containerd.io/snapshot/stargz/toc.digest";
pub const UNCOMPRESSED_SIZE_ANNOTATION: &str = "io.containers.estargz.uncompressed-size";
const FOOTER_SIZE: usize = 51;

#[derive(Serialize)]
struct Toc<'a> {
    version: u32,
    entries: &'a [TocEntry],
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One TOC entry (field names and omissions as the format defines them).
#[derive(Serialize, Default)]
struct TocEntry {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "is_zero")]
    size: u64,
    #[serde(rename = "modtime", skip_serializing_if = "String::is_empty")]
    mod_time: String,
    #[serde(rename = "linkName", skip_serializing_if = "String::is_empty")]
    link_name: String,
    #[serde(skip_serializing_if = "is_zero")]
    mode: u64,
    #[serde(skip_serializing_if = "is_zero")]
    uid: u64,
    #[serde(skip_serializing_if = "is_zero")]
    gid: u64,
    #[serde(rename = "userName", skip_serializing_if = "String::is_empty")]
    user_name: String,
    #[serde(rename = "groupName", skip_serializing_if = "String::is_empty")]
    group_name: String,
    #[serde(skip_serializing_if = "is_zero")]
    offset: u64,
    #[serde(rename = "devMajor", skip_serializing_if = "is_zero")]
    dev_major: u64,
    #[serde(rename = "devMinor", skip_serializing_if = "is_zero")]
    dev_minor: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    xattrs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    digest: String,
    #[serde(rename = "chunkOffset", skip_serializing_if = "is_zero")]
    chunk_offset: u64,
    #[serde(rename = "chunkSize", skip_serializing_if = "is_zero")]
    chunk_size: u64,
    #[serde(rename = "chunkDigest", skip_serializing_if = "String::is_empty")]
    chunk_digest: String,
}

/// The regular file whose content is being written.
struct Current {
    name: String,
    size: u64,
    /// Content bytes written so far, and of them in the open chunk.
    written: u64,
    in_chunk: u64,
    file: Sha256,
    chunk: Sha256,
    /// Index in `toc` of the file's entry, and of its open chunk's entry.
    file_entry: usize,
    chunk_entry: usize,
}

pub struct Estargz<W: Write + Send + 'static> {
    frames: Frames<W>,
    toc: Vec<TocEntry>,
    current: Option<Current>,
}

impl<W: Write + Send + 'static> Estargz<W> {
    pub(super) fn new(frames: Frames<W>) -> Estargz<W> {
        Estargz {
            frames,
            toc: Vec::new(),
            current: None,
        }
    }

    pub(super) fn finish(mut self) -> io::Result<Sealed<W>> {
        let mut annotations = Annotations::new();
        let mut blob = self.frames.drain()?;
        // Offsets were recorded as frame boundaries; now the frames' sizes are known.
        for e in &mut self.toc {
            e.offset = blob.offset(Boundary(e.offset));
        }
        let toc = serde_json::to_vec(&Toc {
            version: 1,
            entries: &self.toc,
        })
        .map_err(io::Error::other)?;
        // The TOC's member: its own tar entry, then the end of the archive.
        let toc_offset = blob.end();
        let pad = (toc.len().next_multiple_of(BLOCK)) - toc.len();
        let mut member = ustar_header(TOC_NAME, b'0', 0o644, toc.len() as u64, "").to_vec();
        member.extend_from_slice(&toc);
        member.extend_from_slice(&[0u8; BLOCK][..pad]);
        member.extend_from_slice(&[0u8; 2 * BLOCK]);
        blob.write_frame(&member)?;
        blob.write_raw(&footer(toc_offset))?;
        annotations.insert(
            TOC_DIGEST_ANNOTATION.to_string(),
            Digest::of(&toc).to_string(),
        );
        annotations.insert(
            UNCOMPRESSED_SIZE_ANNOTATION.to_string(),
            blob.uncompressed.to_string(),
        );
        blob.finish(annotations)
    }

    /// Starts a chunk at the current content position: a new member.
    fn open_chunk(&mut self) -> io::Result<()> {
        let Boundary(offset) = self.frames.close()?;
        let cur = self.current.as_mut().expect("a file is open");
        let index = if cur.written == 0 {
            cur.file_entry
        } else {
            self.toc.push(TocEntry {
                name: cur.name.clone(),
                kind: "chunk",
                chunk_offset: cur.written,
                ..TocEntry::default()
            });
            self.toc.len() - 1
        };
        // A frame boundary until `finish` knows the offset.
        self.toc[index].offset = offset;
        cur.chunk_entry = index;
        cur.in_chunk = 0;
        cur.chunk = Sha256::new();
        Ok(())
    }

    fn close_chunk(&mut self) {
        let cur = self.current.as_mut().expect("a file is open");
        let chunk = std::mem::take(&mut cur.chunk);
        let entry = &mut self.toc[cur.chunk_entry];
        entry.chunk_digest = Digest(chunk.finalize().into()).to_string();
        // Only a full chunk says its size; the last one runs to the end of the file.
        if cur.in_chunk == CHUNK_SIZE {
            entry.chunk_size = CHUNK_SIZE;
        }
    }
}

impl<W: Write + Send + 'static> Layout for Estargz<W> {
    fn header(&mut self, raw: &[u8], e: &TarEntry) -> io::Result<()> {
        self.frames.write(raw)?;
        let kind = e.kind.toc_type();
        // Names as the tar has them, as stargz-snapshotter's writer keeps them (its reader
        // cleans them).
        let name = e.name.clone();
        if clean_name(&name) == TOC_NAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the layer has its own {TOC_NAME}, the name of eStargz's TOC"),
            ));
        }
        // Rounded to the second; the epoch itself is left out, as the reference writer does.
        let secs = e.mtime.0 + i64::from(e.mtime.1 >= 500_000_000);
        self.toc.push(TocEntry {
            name: name.clone(),
            kind,
            size: e.size,
            mod_time: match secs {
                0 => String::new(),
                _ => rfc3339((secs, 0), &e.name)?,
            },
            link_name: e.link.clone(),
            mode: u64::from(e.mode),
            uid: e.uid,
            gid: e.gid,
            user_name: e.uname.clone(),
            group_name: e.gname.clone(),
            dev_major: e.dev_major,
            dev_minor: e.dev_minor,
            xattrs: super::xattrs_base64(e),
            ..TocEntry::default()
        });
        if e.kind == Kind::Reg {
            let file_entry = self.toc.len() - 1;
            if e.size == 0 {
                self.toc[file_entry].digest = Digest::of(b"").to_string();
            } else {
                self.current = Some(Current {
                    name,
                    size: e.size,
                    written: 0,
                    in_chunk: 0,
                    file: Sha256::new(),
                    chunk: Sha256::new(),
                    file_entry,
                    chunk_entry: file_entry,
                });
            }
        }
        Ok(())
    }

    fn content(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let cur = self.current.as_ref().expect("content belongs to a file");
            if cur.written == 0 || cur.in_chunk == CHUNK_SIZE {
                if cur.written > 0 {
                    self.close_chunk();
                }
                self.open_chunk()?;
            }
            let cur = self.current.as_mut().expect("a file is open");
            let n = (CHUNK_SIZE - cur.in_chunk).min(data.len() as u64) as usize;
            cur.file.update(&data[..n]);
            cur.chunk.update(&data[..n]);
            cur.written += n as u64;
            cur.in_chunk += n as u64;
            self.frames.write(&data[..n])?;
            data = &data[n..];
        }
        Ok(())
    }

    fn content_end(&mut self) -> io::Result<()> {
        self.close_chunk();
        let cur = self.current.take().expect("a file is open");
        debug_assert_eq!(cur.written, cur.size);
        self.toc[cur.file_entry].digest = Digest(cur.file.finalize().into()).to_string();
        Ok(())
    }

    fn trailer(&mut self, padding: &[u8], _end: &[u8]) -> io::Result<()> {
        // The end of the archive moves behind the TOC entry (see `finish`).
        self.frames.write(padding)
    }
}

/// The footer: an empty gzip member whose extra field ("SG", 22 bytes) is the TOC's offset
/// as 16 hex digits and "STARGZ", with a stored (uncompressed) empty deflate block, so that
/// it is always 51 bytes.
fn footer(toc_offset: u64) -> [u8; FOOTER_SIZE] {
    let mut f = [0u8; FOOTER_SIZE];
    // ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=unknown, then XLEN=26.
    f[..12].copy_from_slice(&[0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 26, 0]);
    f[12..16].copy_from_slice(&[b'S', b'G', 22, 0]);
    f[16..38].copy_from_slice(format!("{toc_offset:016x}STARGZ").as_bytes());
    // A final stored block of length 0 (LEN 0, NLEN 0xffff); CRC-32 and ISIZE of nothing.
    f[38..43].copy_from_slice(&[1, 0, 0, 0xff, 0xff]);
    f
}
