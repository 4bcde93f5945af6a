//! Both formats read back the way their Go readers read them: the footer or annotations lead
//! to the TOC, every listed offset starts a frame that decompresses to the bytes the TOC says,
//! and a plain decoder gives the tar.

use super::estargz::{CHUNK_SIZE, TOC_DIGEST_ANNOTATION, TOC_NAME, UNCOMPRESSED_SIZE_ANNOTATION};
use super::zstd_chunked::{
    MANIFEST_CHECKSUM_ANNOTATION, MANIFEST_POSITION_ANNOTATION, TARSPLIT_POSITION_ANNOTATION,
};
use super::*;
use crate::io::tarfmt::TarWriter;
use base64::Engine as _;
use serde_json::Value;
use std::io::Read;

/// Bytes that do not compress to nothing and differ per file.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// A layer with every kind of entry the formats list, a file of several chunks, an empty
/// file, a long name (pax path), an xattr and an mtime.
fn sample_tar() -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let files = vec![
        ("app/hello.txt".to_string(), b"hello\n".to_vec()),
        (
            "app/big.bin".to_string(),
            noise(CHUNK_SIZE as usize * 2 + 1000, 1),
        ),
        ("app/empty".to_string(), Vec::new()),
        (format!("app/{}/deep.txt", "d".repeat(120)), noise(700, 2)),
    ];
    let mut t = TarWriter::new(Vec::new());
    t.dir("app/", 0o755).unwrap();
    t.set_mtime(1_700_000_000);
    t.set_xattrs(&[("user.origin".to_string(), b"test".to_vec())]);
    t.file_bytes(&files[0].0, 0o644, &files[0].1).unwrap();
    t.set_xattrs(&[]);
    t.set_mtime(0);
    for (name, data) in &files[1..] {
        t.file_bytes(name, 0o755, data).unwrap();
    }
    t.symlink("app/link", "hello.txt", 0o777).unwrap();
    t.hardlink("app/again.txt", "app/hello.txt", 0o644).unwrap();
    t.fifo("app/pipe", 0o600).unwrap();
    (t.finish().unwrap(), files)
}

fn seal(format: Format, tar: &[u8]) -> Sealed<Vec<u8>> {
    let mut w = SeekableWriter::new(format, 3, 2, Vec::new());
    // Odd write sizes: the cutter must not depend on how the stream is split.
    for piece in tar.chunks(777) {
        w.write_all(piece).unwrap();
    }
    w.finish().unwrap()
}

fn gunzip_member(blob: &[u8], offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    flate2::read::GzDecoder::new(&blob[offset as usize..])
        .read_exact(&mut out)
        .unwrap();
    out
}

#[test]
fn estargz_reads_back_through_footer_toc_and_chunks() {
    let (tar, files) = sample_tar();
    let s = seal(Format::Estargz, &tar);
    let blob = &s.inner;
    assert_eq!(Digest::of(blob), s.digest);
    assert_eq!(blob.len() as u64, s.size);

    // A plain multi-member gzip reader gives the tar with the TOC entry added before its end.
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(Digest::of(&plain), s.diff_id);
    assert_eq!(
        s.annotations[UNCOMPRESSED_SIZE_ANNOTATION],
        plain.len().to_string()
    );
    let names: Vec<String> = tar::Archive::new(&plain[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.last().unwrap(), TOC_NAME);
    assert_eq!(&plain[..tar.len() - 1024], &tar[..tar.len() - 1024]);

    // The footer: 51 bytes, "SG" extra field with the TOC offset; the TOC member holds the
    // TOC entry, whose digest is the annotation.
    let footer = &blob[blob.len() - 51..];
    assert_eq!(&footer[..4], &[0x1f, 0x8b, 8, 4]);
    assert_eq!(&footer[32..38], b"STARGZ");
    let toc_offset =
        u64::from_str_radix(std::str::from_utf8(&footer[16..32]).unwrap(), 16).unwrap();
    let mut member = Vec::new();
    flate2::read::GzDecoder::new(&blob[toc_offset as usize..blob.len() - 51])
        .read_to_end(&mut member)
        .unwrap();
    let mut toc_tar = tar::Archive::new(&member[..]);
    let mut entry = toc_tar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str().unwrap(), TOC_NAME);
    let mut toc_json = Vec::new();
    entry.read_to_end(&mut toc_json).unwrap();
    assert_eq!(
        s.annotations[TOC_DIGEST_ANNOTATION],
        Digest::of(&toc_json).to_string()
    );
    let toc: Value = serde_json::from_slice(&toc_json).unwrap();
    assert_eq!(toc["version"], 1);
    let entries = toc["entries"].as_array().unwrap();

    // Every chunk's member starts at its offset and holds its bytes, with its digest.
    for (name, data) in &files {
        let chunks: Vec<&Value> = entries
            .iter()
            .filter(|e| e["name"] == name.as_str())
            .collect();
        assert_eq!(chunks[0]["type"], "reg", "{name}");
        assert_eq!(chunks[0]["digest"], Digest::of(data).to_string(), "{name}");
        assert_eq!(
            chunks.len(),
            (data.len() as u64).div_ceil(CHUNK_SIZE).max(1) as usize
        );
        for c in chunks.iter().filter(|_| !data.is_empty()) {
            let at = c["chunkOffset"].as_u64().unwrap_or(0);
            let size = c["chunkSize"].as_u64().unwrap_or(data.len() as u64 - at);
            let want = &data[at as usize..(at + size) as usize];
            let got = gunzip_member(blob, c["offset"].as_u64().unwrap(), want.len());
            assert!(got == want, "{name} at {at}");
            assert_eq!(c["chunkDigest"], Digest::of(want).to_string());
        }
    }
    let by_name = |n: &str| entries.iter().find(|e| e["name"] == n).unwrap();
    assert_eq!(by_name("app/")["type"], "dir");
    assert!(by_name("app/").get("modtime").is_none());
    assert_eq!(by_name("app/link")["linkName"], "hello.txt");
    assert_eq!(by_name("app/again.txt")["linkName"], "app/hello.txt");
    assert_eq!(by_name("app/pipe")["type"], "fifo");
    let hello = by_name("app/hello.txt");
    assert_eq!(hello["modtime"], "2023-11-14T22:13:20Z");
    assert_eq!(hello["mode"], 0o644);
    let b64 = base64::engine::general_purpose::STANDARD.encode("test");
    assert_eq!(hello["xattrs"]["user.origin"], b64.as_str());
}

/// Reads a skippable frame's payload at an annotation's `offset:length:...`.
fn at_position<'a>(blob: &'a [u8], position: &str) -> (&'a [u8], Vec<u64>) {
    let n: Vec<u64> = position.split(':').map(|p| p.parse().unwrap()).collect();
    let (off, len) = (n[0] as usize, n[1] as usize);
    assert_eq!(&blob[off - 8..off - 4], &[0x50, 0x2a, 0x4d, 0x18]);
    assert_eq!(
        u32::from_le_bytes(blob[off - 4..off].try_into().unwrap()) as usize,
        len
    );
    (&blob[off..off + len], n)
}

#[test]
fn zstd_chunked_reads_back_through_annotations_toc_and_tar_split() {
    let (tar, files) = sample_tar();
    let s = seal(Format::ZstdChunked, &tar);
    let blob = &s.inner;
    // Decompressed (skippable frames skipped), the blob is the tar itself.
    let plain = zstd::decode_all(&blob[..]).unwrap();
    assert!(plain == tar);
    assert_eq!(s.diff_id, Digest::of(&tar));

    let (compressed_toc, pos) = at_position(blob, &s.annotations[MANIFEST_POSITION_ANNOTATION]);
    assert_eq!(pos[3], 1);
    assert_eq!(
        s.annotations[MANIFEST_CHECKSUM_ANNOTATION],
        Digest::of(compressed_toc).to_string()
    );
    let toc_json = zstd::decode_all(compressed_toc).unwrap();
    assert_eq!(toc_json.len() as u64, pos[2]);
    let toc: Value = serde_json::from_slice(&toc_json).unwrap();
    let (tar_split, tpos) = at_position(blob, &s.annotations[TARSPLIT_POSITION_ANNOTATION]);
    assert_eq!(toc["tarSplitDigest"], Digest::of(tar_split).to_string());

    // The footer: the same positions, and the magic.
    let footer = &blob[blob.len() - 64..];
    let le = |i: usize| u64::from_le_bytes(footer[i * 8..i * 8 + 8].try_into().unwrap());
    assert_eq!([le(0), le(1), le(2), le(3)], [pos[0], pos[1], pos[2], 1]);
    assert_eq!([le(4), le(5), le(6)], [tpos[0], tpos[1], tpos[2]]);
    assert_eq!(&footer[56..], b"GNUlInUx");

    // Every file's frame decompresses, alone, to exactly its content.
    let entries = toc["entries"].as_array().unwrap();
    for (name, data) in &files {
        let e = entries.iter().find(|e| e["name"] == name.as_str()).unwrap();
        if data.is_empty() {
            assert!(e.get("offset").is_none() && e.get("digest").is_none());
            continue;
        }
        let (from, to) = (
            e["offset"].as_u64().unwrap(),
            e["endOffset"].as_u64().unwrap(),
        );
        let got = zstd::decode_all(&blob[from as usize..to as usize]).unwrap();
        assert!(got == *data, "{name}");
        assert_eq!(e["digest"], Digest::of(data).to_string());
    }
    assert_eq!(entries[0]["name"], "app/");
    assert_eq!(entries[0]["type"], "dir");
    assert_eq!(entries[1]["modtime"], "2023-11-14T22:13:20Z");

    // tar-split: segments and files, in order, rebuild the tar byte for byte, and each
    // file's CRC-64 is right.
    let split = zstd::decode_all(tar_split).unwrap();
    assert_eq!(split.len() as u64, tpos[2]);
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let mut rebuilt = Vec::new();
    for (i, line) in split
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let e: Value = serde_json::from_slice(line).unwrap();
        assert_eq!(e["position"], i);
        match e["type"].as_u64().unwrap() {
            2 => rebuilt.extend(b64(&e["payload"])),
            1 => {
                let name = e["name"].as_str().unwrap();
                let data = files
                    .iter()
                    .find(|f| f.0 == name)
                    .map_or(&[][..], |f| &f.1[..]);
                assert_eq!(e["size"].as_u64().unwrap_or(0), data.len() as u64, "{name}");
                if data.is_empty() {
                    assert!(e["payload"].is_null());
                } else {
                    let crc = crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO).checksum(data);
                    assert_eq!(b64(&e["payload"]), crc.to_be_bytes());
                }
                rebuilt.extend(data);
            }
            t => panic!("type {t}"),
        }
    }
    assert!(rebuilt == tar);
}

#[test]
fn toc_entries_are_every_tar_entry_in_order() {
    let (tar, _) = sample_tar();
    let want = [
        "app/",
        "app/hello.txt",
        "app/big.bin",
        "app/empty",
        "LONG",
        "app/link",
        "app/again.txt",
        "app/pipe",
    ];
    let s = seal(Format::ZstdChunked, &tar);
    let (c, _) = at_position(&s.inner, &s.annotations[MANIFEST_POSITION_ANNOTATION]);
    let toc: Value = serde_json::from_slice(&zstd::decode_all(c).unwrap()).unwrap();
    let names: Vec<&str> = toc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), want.len());
    for (got, want) in names.iter().zip(want) {
        if want == "LONG" {
            assert!(got.ends_with("/deep.txt") && got.len() > 100, "{got}");
        } else {
            assert_eq!(*got, want);
        }
    }
}

#[test]
fn bytes_depend_on_the_input_and_level_only() {
    let (tar, _) = sample_tar();
    for format in [Format::Estargz, Format::ZstdChunked] {
        let a = seal(format, &tar);
        let mut w = SeekableWriter::new(format, 3, 2, Vec::new());
        w.write_all(&tar).unwrap();
        let b = w.finish().unwrap();
        assert!(
            a.inner == b.inner,
            "{format:?}: write sizes changed the bytes"
        );
        let mut w = SeekableWriter::new(format, 1, 2, Vec::new());
        w.write_all(&tar).unwrap();
        assert!(
            w.finish().unwrap().inner != a.inner,
            "{format:?}: level ignored"
        );
    }
}

#[test]
fn bytes_do_not_depend_on_the_thread_count() {
    // Many small files (frames compressed by workers) and large ones (zstd: streamed).
    let (mut tar, _) = sample_tar();
    tar.truncate(tar.len() - 1024);
    let mut t = TarWriter::new(tar);
    for i in 0..300 {
        t.file_bytes(&format!("many/{i}"), 0o644, &noise(100 + i * 37, i as u32))
            .unwrap();
    }
    let tar = t.finish().unwrap();
    for format in [Format::Estargz, Format::ZstdChunked] {
        let with = |threads| {
            let mut w = SeekableWriter::new(format, 3, threads, Vec::new());
            w.write_all(&tar).unwrap();
            w.finish().unwrap()
        };
        let one = with(1);
        for threads in [2, 3, 8] {
            let other = with(threads);
            assert!(other.inner == one.inner, "{format:?}: {threads} threads");
            assert_eq!(other.annotations, one.annotations);
        }
    }
}

#[test]
fn malformed_streams_are_refused() {
    let (tar, _) = sample_tar();
    for format in [Format::Estargz, Format::ZstdChunked] {
        // The stream stops inside a file.
        let mut w = SeekableWriter::new(format, 3, 2, Vec::new());
        w.write_all(&tar[..5000]).unwrap();
        let e = w.finish().err().unwrap();
        assert!(e.to_string().contains("end-of-archive"), "{e}");
    }
    // zstd:chunked cannot list a path twice; eStargz cannot hold a file with its TOC's name.
    let mut t = TarWriter::new(Vec::new());
    t.file_bytes("a", 0o644, b"1").unwrap();
    t.file_bytes("a", 0o644, b"2").unwrap();
    let dup = t.finish().unwrap();
    let mut w = SeekableWriter::new(Format::ZstdChunked, 3, 2, Vec::new());
    let e = w.write_all(&dup).err().unwrap();
    assert!(e.to_string().contains("two entries named \"a\""), "{e}");
    let mut t = TarWriter::new(Vec::new());
    t.file_bytes(TOC_NAME, 0o644, b"{}").unwrap();
    let own = t.finish().unwrap();
    let mut w = SeekableWriter::new(Format::Estargz, 3, 2, Vec::new());
    let e = w.write_all(&own).err().unwrap();
    assert!(e.to_string().contains(TOC_NAME), "{e}");
}

#[test]
fn names_are_cleaned_as_go_path_clean() {
    assert_eq!(clean_name("./a/b/"), "a/b");
    assert_eq!(clean_name("/a//b/../c"), "a/c");
    assert_eq!(clean_name("a"), "a");
}

/// A blob writer that fails after `room` bytes, as a full disk does.
struct FullDisk {
    room: usize,
}

impl std::io::Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left (test)",
            ));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// When the blob's writer fails on a writer thread, the caller gets that error, not a note
/// that the thread stopped: for small files (frames) and a large streamed one (zstd:chunked).
#[test]
fn a_failing_blob_writer_reports_its_own_error() {
    let mut t = TarWriter::new(Vec::new());
    for i in 0..64 {
        t.file_bytes(&format!("small/{i}"), 0o644, &noise(200_000, i))
            .unwrap();
    }
    t.file_bytes("big", 0o644, &noise(12 << 20, 99)).unwrap();
    let tar = t.finish().unwrap();
    for format in [Format::Estargz, Format::ZstdChunked] {
        for threads in [1, 2] {
            let mut w = SeekableWriter::new(format, 3, threads, FullDisk { room: 1 << 20 });
            let err = match w.write_all(&tar) {
                Err(e) => e,
                Ok(()) => match w.finish() {
                    Err(e) => e,
                    Ok(_) => panic!("{format:?}/{threads}: a full disk went unnoticed"),
                },
            };
            assert!(
                err.to_string().contains("no space left (test)"),
                "{format:?}/{threads} threads: {err}"
            );
        }
    }
}
