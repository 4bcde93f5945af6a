//! A corpus of hostile and ordinary layer tarballs, built byte by byte: header fields are
//! written raw where the `tar` crate's setters would refuse them (absolute paths, `..`).
//! The tarball builders (`Ent`, `tar_of`, `gzip`, `zstd`) serve verify's tests too.

use super::*;
use crate::io::compress::{Codec, Compression, Compressor};
use std::io::Read;
use std::path::PathBuf;

/// One entry of a test tarball.
#[derive(Clone)]
pub(crate) struct Ent {
    path: Vec<u8>,
    flag: u8,
    mode: u32,
    data: Vec<u8>,
    link: Vec<u8>,
    mtime: u64,
    owner: (u64, u64),
    uname: &'static str,
    gname: &'static str,
    /// pax records written in an `x` header before the entry.
    pax: Vec<(String, Vec<u8>)>,
}

pub(crate) fn ent(path: &str, flag: u8) -> Ent {
    Ent {
        path: path.as_bytes().to_vec(),
        flag,
        mode: if flag == b'5' { 0o755 } else { 0o644 },
        data: Vec::new(),
        link: Vec::new(),
        mtime: 1_000,
        owner: (0, 0),
        uname: "",
        gname: "",
        pax: Vec::new(),
    }
}

pub(crate) fn file(path: &str, data: &[u8]) -> Ent {
    Ent {
        data: data.to_vec(),
        ..ent(path, b'0')
    }
}

pub(crate) fn dir(path: &str) -> Ent {
    ent(path, b'5')
}

pub(crate) fn symlink(path: &str, target: &str) -> Ent {
    Ent {
        link: target.as_bytes().to_vec(),
        mode: 0o777,
        ..ent(path, b'2')
    }
}

pub(crate) fn hardlink(path: &str, target: &str) -> Ent {
    Ent {
        link: target.as_bytes().to_vec(),
        ..ent(path, b'1')
    }
}

impl Ent {
    pub(crate) fn mode(mut self, m: u32) -> Ent {
        self.mode = m;
        self
    }
    pub(crate) fn mtime(mut self, t: u64) -> Ent {
        self.mtime = t;
        self
    }
    pub(crate) fn owner(mut self, uid: u64, gid: u64) -> Ent {
        self.owner = (uid, gid);
        self
    }
    pub(crate) fn uname(mut self, u: &'static str) -> Ent {
        self.uname = u;
        self
    }
    pub(crate) fn gname(mut self, g: &'static str) -> Ent {
        self.gname = g;
        self
    }
    pub(crate) fn pax(mut self, k: &str, v: &[u8]) -> Ent {
        self.pax.push((k.to_string(), v.to_vec()));
        self
    }
}

/// A ustar header with `path` and `link` copied raw into their fields (at most 100 bytes;
/// longer paths go in a pax record).
fn header(e: &Ent) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::new(e.flag));
    h.set_mode(e.mode);
    h.set_uid(e.owner.0);
    h.set_gid(e.owner.1);
    h.set_mtime(e.mtime);
    h.set_size(e.data.len() as u64);
    h.set_username(e.uname).unwrap();
    h.set_groupname(e.gname).unwrap();
    let b = h.as_mut_bytes();
    let n = e.path.len().min(100);
    b[..n].copy_from_slice(&e.path[..n]);
    b[157..157 + e.link.len()].copy_from_slice(&e.link);
    // Raw: the tar crate would write an untyped ('\0') entry as '0'.
    b[156] = e.flag;
    h.set_cksum();
    h
}

pub(crate) fn tar_of(entries: &[Ent]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        b.append_pax_extensions(e.pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .unwrap();
        b.append(&header(e), &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut c = Compressor::new(
        Codec::new(Compression::Gzip, Some(6), Some(2)).unwrap(),
        Vec::new(),
    )
    .unwrap();
    c.write_all(data).unwrap();
    c.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    let mut c = Compressor::new(
        Codec::new(Compression::Zstd, Some(3), Some(2)).unwrap(),
        Vec::new(),
    )
    .unwrap();
    c.write_all(data).unwrap();
    c.finish().unwrap()
}

pub(crate) struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    pub(crate) fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    pub(crate) fn blob(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    pub(crate) fn out(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

const EPOCH: u64 = 1_700_000_000;

pub(crate) fn plain() -> Normalize {
    Normalize {
        source_date_epoch: EPOCH,
        codec: Codec {
            kind: Compression::None,
            level: 0,
            threads: 2,
        },
        max_layer_size: DEFAULT_MAX_LAYER_SIZE,
    }
}

fn scan(bytes: &[u8]) -> Result<Digest> {
    let d = Dir::new();
    scan_layer(&d.blob("layer", bytes))
}

/// Normalizes uncompressed and returns the output tar.
fn normalize(bytes: &[u8]) -> Vec<u8> {
    let d = Dir::new();
    let out = d.out("out.tar");
    normalize_layer(&d.blob("layer", bytes), &plain(), &out).unwrap();
    std::fs::read(out).unwrap()
}

/// The error of both entry points (they must agree), as its top-level message; normalize
/// must leave nothing behind.
fn refused(entries: &[Ent]) -> String {
    refused_bytes(&tar_of(entries))
}

fn refused_bytes(bytes: &[u8]) -> String {
    let d = Dir::new();
    let blob = d.blob("layer", bytes);
    let a = scan_layer(&blob).unwrap_err().to_string();
    let out = d.out("out.tar.gz");
    let n = Normalize {
        codec: Codec {
            kind: Compression::Gzip,
            level: 6,
            threads: 2,
        },
        ..plain()
    };
    let b = normalize_layer(&blob, &n, &out).unwrap_err().to_string();
    assert_eq!(a, b);
    assert_eq!(d.names(), ["layer"], "normalize left files behind");
    // layer-from-tar --keep refuses the same, leaving nothing.
    let c = copy_layer(&blob, n.codec, &out).unwrap_err().to_string();
    assert_eq!(a, c);
    assert_eq!(d.names(), ["layer"], "copy_layer left files behind");
    a
}

/// What the `tar` crate reads back from an output tar.
#[derive(Debug, PartialEq)]
pub(crate) struct Read_ {
    pub(crate) path: String,
    pub(crate) flag: u8,
    pub(crate) mode: u32,
    pub(crate) mtime: u64,
    pub(crate) owner: (u64, u64),
    pub(crate) link: String,
    pub(crate) data: Vec<u8>,
    pub(crate) xattrs: Vec<(String, Vec<u8>)>,
}

pub(crate) fn read_back(bytes: &[u8]) -> Vec<Read_> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        assert!(h.as_ustar().is_some());
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        let mut xattrs = Vec::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for r in pax {
                let r = r.unwrap();
                let k = r.key().unwrap();
                if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_string(), r.value_bytes().to_vec()));
                } else {
                    // Only what does not fit a ustar field may be in a pax record.
                    assert!(
                        ["uid", "gid", "path", "linkpath", "mtime"].contains(&k),
                        "{k}"
                    );
                }
            }
        }
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Read_ {
            path: String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            flag: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            mtime: h.mtime().unwrap(),
            owner: (h.uid().unwrap(), h.gid().unwrap()),
            link,
            data,
            xattrs,
        });
    }
    out
}

fn paths(bytes: &[u8]) -> Vec<String> {
    read_back(bytes).into_iter().map(|r| r.path).collect()
}

// ---- hostile entries -------------------------------------------------------------------

#[test]
fn absolute_path() {
    assert_eq!(
        refused(&[file("/etc/passwd", b"x")]),
        r#"entry "/etc/passwd": absolute path"#
    );
}

#[test]
fn dot_dot_component() {
    assert_eq!(
        refused(&[file("a/../../etc/passwd", b"x")]),
        r#"entry "a/../../etc/passwd": path contains "..""#
    );
    // Even one that would stay inside: extractors differ in how they treat it.
    assert_eq!(
        refused(&[dir("a/"), file("a/../b", b"x")]),
        r#"entry "a/../b": path contains "..""#
    );
}

#[test]
fn hard_link_escaping() {
    assert_eq!(
        refused(&[hardlink("h", "../etc/shadow")]),
        r#"entry "h": hard link to "../etc/shadow" leads outside the root"#
    );
    assert_eq!(
        refused(&[hardlink("h", "/etc/shadow")]),
        r#"entry "h": hard link to "/etc/shadow" leads outside the root"#
    );
}

#[test]
fn relative_symlink_escaping() {
    assert_eq!(
        refused(&[dir("a/"), symlink("a/l", "../../etc")]),
        r#"entry "a/l": symbolic link to "../../etc" leads outside the root"#
    );
    assert_eq!(
        refused(&[symlink("l", "x/../../y")]),
        r#"entry "l": symbolic link to "x/../../y" leads outside the root"#
    );
}

#[test]
fn symlinks_inside_the_root_are_allowed() {
    let tar = tar_of(&[
        dir("a/"),
        dir("a/b/"),
        symlink("a/b/up", "../../c"),
        symlink("a/abs", "/usr/lib/x"),
        symlink("a/dotdot", "/../../../etc"),
        symlink("a/here", "./"),
    ]);
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    let out = normalize(&tar);
    let links: Vec<(String, String)> = read_back(&out)
        .into_iter()
        .filter(|r| r.flag == b'2')
        .map(|r| (r.path, r.link))
        .collect();
    assert_eq!(
        links,
        [
            ("a/abs".to_string(), "/usr/lib/x".to_string()),
            ("a/b/up".to_string(), "../../c".to_string()),
            ("a/dotdot".to_string(), "/../../../etc".to_string()),
            ("a/here".to_string(), "./".to_string()),
        ]
    );
}

#[test]
fn path_through_symlink() {
    let want = r#"entry "x/passwd": path goes through the symbolic link "x""#;
    assert_eq!(
        refused(&[symlink("x", "/etc"), file("x/passwd", b"root")]),
        want
    );
    // In either order: normalizing sorts `x` before `x/passwd`.
    assert_eq!(
        refused(&[file("x/passwd", b"root"), symlink("x", "/etc")]),
        want
    );
    // Deeper, and through a hard link to a symlink.
    assert_eq!(
        refused(&[dir("d/"), symlink("d/x", "../etc"), file("d/x/y/z", b""),]),
        r#"entry "d/x/y/z": path goes through the symbolic link "d/x""#
    );
    assert_eq!(
        refused(&[
            symlink("s", "/etc"),
            hardlink("h", "s"),
            file("h/passwd", b"")
        ]),
        r#"entry "h/passwd": path goes through the symbolic link "h""#
    );
    assert_eq!(
        refused(&[symlink("s", "/etc"), hardlink("h", "s/shadow")]),
        r#"entry "h": hard link to "s/shadow" goes through the symbolic link "s""#
    );
}

#[test]
fn device_nodes() {
    assert_eq!(
        refused(&[ent("dev/null", b'3')]),
        r#"entry "dev/null": character device node is not allowed in an image layer"#
    );
    assert_eq!(
        refused(&[ent("dev/sda", b'4')]),
        r#"entry "dev/sda": block device node is not allowed in an image layer"#
    );
}

#[test]
fn duplicate_entries() {
    assert_eq!(
        refused(&[file("a", b"1"), file("./a", b"2")]),
        r#"entry "./a": duplicate entry"#
    );
    assert_eq!(
        refused(&[dir("d/"), dir(".//d")]),
        r#"entry ".//d": duplicate entry"#
    );
    assert_eq!(
        refused(&[dir("d/e/"), file("d//e", b"")]),
        r#"entry "d//e": duplicate entry"#
    );
}

#[test]
fn unsupported_entry_types() {
    // A GNU sparse file (with an empty sparse map, which the tar crate accepts).
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.as_mut_bytes()[..6].copy_from_slice(b"sparse");
    h.set_mode(0o644);
    h.set_size(0);
    h.as_gnu_mut().unwrap().set_real_size(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b""[..]).unwrap();
    assert_eq!(
        refused_bytes(&b.into_inner().unwrap()),
        r#"entry "sparse": unsupported entry type S"#
    );
    assert_eq!(
        refused(&[ent("vol", b'V')]),
        r#"entry "vol": unsupported entry type V"#
    );
    assert_eq!(
        refused(&[ent("odd", 0x90)]),
        r#"entry "odd": unsupported entry type 144"#
    );
    // pax-format sparse files look like regular files; their data is a sparse map.
    assert_eq!(
        refused(&[file("GNUSparseFile.0/f", b"").pax("GNU.sparse.major", b"1")]),
        r#"entry "GNUSparseFile.0/f": sparse files are not supported"#
    );
}

#[test]
fn hard_link_order_and_targets() {
    assert_eq!(
        refused(&[hardlink("h", "f"), file("f", b"data")]),
        r#"entry "h": hard link to "f" does not follow its target"#
    );
    assert_eq!(
        refused(&[hardlink("h", "h")]),
        r#"entry "h": hard link to "h" does not follow its target"#
    );
    assert_eq!(
        refused(&[dir("d/"), hardlink("h", "d")]),
        r#"entry "h": hard link to "d" names a directory"#
    );
    assert_eq!(
        refused(&[hardlink("h", "./")]),
        r#"entry "h": hard link to "./" names a directory"#
    );
}

#[test]
fn truncated_archive() {
    let tar = tar_of(&[file("a", &[7u8; 3000]), file("b", b"x")]);
    // Inside the data of `a`, at a block boundary inside it, inside the header of `b` (at
    // 3584) and inside its data.
    for cut in [1200, 2048, 3584 + 100, 4096 + 100] {
        let e = refused_bytes(&tar[..cut]);
        assert!(e.starts_with("truncated tar archive: "), "{cut}: {e}");
    }
    // A truncated gzip stream is caught by the decompressor or the tar parser.
    let gz = gzip(&tar);
    let e = refused_bytes(&gz[..gz.len() / 2]);
    assert!(
        e.starts_with("truncated tar archive: ") || e.starts_with("gzip decompression failed"),
        "{e}"
    );
    let zs = zstd(&tar);
    let e = refused_bytes(&zs[..zs.len() - 3]);
    assert!(
        e.starts_with("truncated tar archive: ") || e.starts_with("zstd decompression failed"),
        "{e}"
    );
}

#[test]
fn garbage() {
    let noise: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8 + 1).collect();
    let mut gz = vec![0x1f, 0x8b];
    gz.extend_from_slice(&noise);
    let e = refused_bytes(&gz);
    assert!(e.starts_with("gzip decompression failed: "), "{e}");
    let mut zs = vec![0x28, 0xb5, 0x2f, 0xfd];
    zs.extend_from_slice(&noise);
    let e = refused_bytes(&zs);
    assert!(e.starts_with("zstd decompression failed: "), "{e}");
    let e = refused_bytes(&noise);
    assert!(e.starts_with("invalid tar archive: "), "{e}");
    // A valid gzip stream of something that is not a tar.
    let e = refused_bytes(&gzip(&noise));
    assert!(e.starts_with("invalid tar archive: "), "{e}");
}

#[test]
fn data_after_the_end_of_archive_must_be_zero() {
    let mut tar = tar_of(&[file("a", b"1")]);
    // Zero padding to a 10 KiB record, as tar(1) writes, is fine.
    tar.resize(10240, 0);
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    // An entry hidden behind the end marker is not.
    let mut hidden = tar_of(&[file("a", b"1")]);
    hidden.extend_from_slice(&tar_of(&[file("b", b"2")]));
    assert_eq!(
        refused_bytes(&hidden),
        "invalid tar archive: non-zero data after the end-of-archive marker"
    );
}

#[test]
fn nul_in_path() {
    assert_eq!(
        refused(&[file("a", b"").pax("path", b"a\0/../../x")]),
        "entry \"a\\x00/../../x\": path contains a NUL byte"
    );
}

// ---- accepted layers ---------------------------------------------------------------------

fn sample() -> Vec<Ent> {
    vec![
        dir("./"),
        dir("./etc/"),
        file("./etc/hosts", b"127.0.0.1 localhost\n"),
        dir("usr/"),
        dir("usr/bin/"),
        file("usr/bin/ping", b"\x7fELF").mode(0o4755).pax(
            "SCHILY.xattr.security.capability",
            b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ),
        symlink("usr/bin/sh", "/bin/bash"),
        ent("run/fifo", b'6').mode(0o600),
        file("home/user/.profile", b"export A=1\n").owner(1000, 1000),
        file("big-ids", b"").owner(5_000_000, 4_000_000),
        file("old", b"").mtime(12345),
    ]
}

#[test]
fn scan_diff_id_is_the_uncompressed_sha256() {
    let tar = tar_of(&sample());
    let want = Digest::of(&tar);
    assert_eq!(scan(&tar).unwrap(), want);
    assert_eq!(scan(&gzip(&tar)).unwrap(), want);
    assert_eq!(scan(&zstd(&tar)).unwrap(), want);
    // Concatenated gzip members are one stream (as Go's reader sees them).
    let (a, b) = tar.split_at(1536);
    let mut multi = gzip(a);
    multi.extend_from_slice(&gzip(b));
    assert_eq!(scan(&multi).unwrap(), want);
}

#[test]
fn normalize_keeps_metadata_and_clamps_mtime() {
    let sample = sample();
    let mut entries = sample.clone();
    entries[2] = entries[2].clone().mtime(EPOCH + 1000).uname("root");
    entries[2]
        .pax
        .push(("atime".into(), b"1700000123.5".to_vec()));
    entries[2]
        .pax
        .push(("mtime".into(), b"1800000000.75".to_vec()));
    entries[2]
        .pax
        .push(("LIBARCHIVE.creationtime".into(), b"1".to_vec()));
    let tar = tar_of(&entries);
    let d = Dir::new();
    let out = d.out("out.tar");
    let (diff_id, meta) = normalize_layer(&d.blob("layer", &tar), &plain(), &out).unwrap();
    assert_eq!(diff_id, Digest::of(&tar));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(meta.diff_id, Digest::of(&bytes));
    assert_eq!(meta.digest, meta.diff_id);
    assert_eq!(meta.size, bytes.len() as u64);
    assert_eq!(meta.media_type, Compression::None.media_type());

    let back = read_back(&bytes);
    let by = |p: &str| back.iter().find(|r| r.path == p).unwrap();
    assert_eq!(
        paths(&bytes),
        [
            "big-ids",
            "etc/",
            "etc/hosts",
            "home/user/.profile",
            "old",
            "run/fifo",
            "usr/",
            "usr/bin/",
            "usr/bin/ping",
            "usr/bin/sh",
        ]
    );
    let hosts = by("etc/hosts");
    assert_eq!(hosts.mtime, EPOCH);
    assert_eq!(hosts.data, b"127.0.0.1 localhost\n");
    assert_eq!((hosts.flag, hosts.mode), (b'0', 0o644));
    assert_eq!(by("old").mtime, 12345);
    assert_eq!(by("etc/").mtime, 1000);
    let ping = by("usr/bin/ping");
    assert_eq!(ping.mode, 0o4755);
    assert_eq!(ping.xattrs.len(), 1);
    assert_eq!(ping.xattrs[0].0, "security.capability");
    assert_eq!(ping.xattrs[0].1, sample[5].pax[0].1);
    assert_eq!(by("usr/bin/sh").link, "/bin/bash");
    assert_eq!(by("usr/bin/sh").mode, 0o777);
    assert_eq!((by("run/fifo").flag, by("run/fifo").mode), (b'6', 0o600));
    assert_eq!(by("home/user/.profile").owner, (1000, 1000));
    assert_eq!(by("big-ids").owner, (5_000_000, 4_000_000));
    assert_eq!((by("usr/").flag, by("usr/").mode), (b'5', 0o755));
    // The pax header of the setuid file carries only its xattr.
    let at = bytes
        .windows(13)
        .position(|w| w == b"SCHILY.xattr.")
        .unwrap();
    assert!(!bytes[..at].windows(6).any(|w| w == b"atime="));
}

#[test]
fn normalize_is_deterministic() {
    let a = sample();
    // Reversed order, later mtimes (all clamped), other user names, a `./` spelling.
    let mut b: Vec<Ent> = a
        .iter()
        .rev()
        .map(|e| {
            let e = e.clone().uname("someone");
            if e.mtime == 1000 {
                e.mtime(EPOCH + 5)
            } else {
                e
            }
        })
        .collect();
    b.retain(|e| e.path != b"./");
    b.iter_mut().for_each(|e| {
        if e.path == b"usr/bin/" {
            e.path = b"./usr/bin".to_vec();
        }
    });
    // Parents after children: fine for the checks, sorted on output.
    let c: Vec<Ent> = a.iter().map(|e| e.clone().mtime(EPOCH)).collect();
    let (ta, tb) = (tar_of(&a), tar_of(&b));
    assert_ne!(ta, tb);
    let mtimes_to_epoch = |n: Normalize, bytes: &[u8]| {
        let d = Dir::new();
        let out = d.out("out");
        let (_, meta) = normalize_layer(&d.blob("layer", bytes), &n, &out).unwrap();
        (std::fs::read(out).unwrap(), meta)
    };
    for kind in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let n = Normalize {
            source_date_epoch: 1000,
            codec: Codec {
                kind,
                level: kind.default_level(),
                threads: 2,
            },
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
        };
        let (oa, ma) = mtimes_to_epoch(n, &ta);
        let (ob, mb) = mtimes_to_epoch(n, &tb);
        let (oc, mc) = mtimes_to_epoch(n, &tar_of(&c));
        assert_eq!(oa, ob, "{kind:?}");
        assert_eq!(oa, oc, "{kind:?}");
        assert_eq!(ma, mb);
        assert_eq!(ma, mc);
        assert_eq!(ma.media_type, kind.media_type());
        assert_eq!(ma.digest, Digest::of(&oa));
        // The same input given compressed differently gives the same output.
        let (og, _) = mtimes_to_epoch(n, &gzip(&ta));
        assert_eq!(oa, og);
    }
}

#[test]
fn whiteouts_are_kept_exactly() {
    let tar = tar_of(&[
        dir("etc/"),
        file("etc/.wh.motd", b"").mode(0o600),
        dir("var/"),
        dir("var/cache/"),
        file("var/cache/.wh..wh..opq", b"").mode(0o000),
        file(".wh.tmp", b""),
    ]);
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    let back = read_back(&normalize(&tar));
    let wh: Vec<(&str, u8, u32, usize)> = back
        .iter()
        .filter(|r| r.path.contains(".wh."))
        .map(|r| (r.path.as_str(), r.flag, r.mode, r.data.len()))
        .collect();
    assert_eq!(
        wh,
        [
            (".wh.tmp", b'0', 0o644, 0),
            ("etc/.wh.motd", b'0', 0o600, 0),
            ("var/cache/.wh..wh..opq", b'0', 0o000, 0),
        ]
    );
}

#[test]
fn hard_link_groups_are_led_by_their_smallest_path() {
    let tar = tar_of(&[
        dir("a/"),
        dir("m/"),
        dir("z/"),
        file("z/file", b"shared data")
            .mode(0o750)
            .owner(7, 8)
            .pax("SCHILY.xattr.user.k", b"v"),
        hardlink("a/link", "z/file").mode(0o777),
        // A chain: a link to a link is a link to the same inode.
        hardlink("m/link2", "./a/link"),
    ]);
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    let out = normalize(&tar);
    let back = read_back(&out);
    let by = |p: &str| back.iter().find(|r| r.path == p).unwrap();
    let a = by("a/link");
    assert_eq!((a.flag, a.mode, a.owner), (b'0', 0o750, (7, 8)));
    assert_eq!(a.data, b"shared data");
    assert_eq!(a.xattrs, [("user.k".to_string(), b"v".to_vec())]);
    for p in ["m/link2", "z/file"] {
        let l = by(p);
        assert_eq!((l.flag, l.link.as_str(), l.mode), (b'1', "a/link", 0o750));
        assert!(l.xattrs.is_empty());
    }
    // The tar crate (an independent extractor) applies it: one inode, three names.
    let d = tempfile::tempdir().unwrap();
    tar::Archive::new(&out[..]).unpack(d.path()).unwrap();
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(d.path().join(p)).unwrap().ino();
    assert_eq!(ino("a/link"), ino("z/file"));
    assert_eq!(ino("m/link2"), ino("z/file"));
    assert_eq!(
        std::fs::read(d.path().join("z/file")).unwrap(),
        b"shared data"
    );
    // The output is itself an acceptable layer, and normalizing it again changes nothing.
    assert_eq!(normalize(&out), out);
}

#[test]
fn hard_link_to_a_lower_layer_is_kept() {
    let tar = tar_of(&[
        dir("usr/"),
        hardlink("usr/sbin-x", "./usr/bin/x").mtime(EPOCH + 9),
        hardlink("usr/sbin-y", "usr/sbin-x"),
    ]);
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    let back = read_back(&normalize(&tar));
    let links: Vec<(&str, u8, &str, u64)> = back
        .iter()
        .filter(|r| r.flag == b'1')
        .map(|r| (r.path.as_str(), r.flag, r.link.as_str(), r.mtime))
        .collect();
    // The chain collapses to the lower layer's path, normalized.
    assert_eq!(
        links,
        [
            ("usr/sbin-x", b'1', "usr/bin/x", EPOCH),
            ("usr/sbin-y", b'1', "usr/bin/x", 1000),
        ]
    );
}

#[test]
fn old_style_entries() {
    // '7' (contiguous) is a regular file; an untyped entry ending in '/' a directory.
    let tar = tar_of(&[ent("d/", 0), ent("d/c", b'7'), ent("d/f", 0)]);
    let back = read_back(&normalize(&tar));
    let got: Vec<(&str, u8)> = back.iter().map(|r| (r.path.as_str(), r.flag)).collect();
    assert_eq!(got, [("d/", b'5'), ("d/c", b'0'), ("d/f", b'0')]);
}

#[test]
fn long_names_and_global_headers() {
    let long = format!("{}/file", "d".repeat(150));
    // A pax global header is ignored.
    let mut g = tar::Header::new_ustar();
    g.set_entry_type(tar::EntryType::XGlobalHeader);
    g.set_size(13);
    g.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&g, &b"13 comment=x\n"[..]).unwrap();
    // A GNU long name ('L'), as the tar crate's Builder writes it.
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, &long, &b"data"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    let back = read_back(&normalize(&tar));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].path, long);
    assert_eq!(back[0].data, b"data");
}

#[test]
fn empty_layer() {
    let tar = tar_of(&[]);
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    assert_eq!(normalize(&tar), vec![0u8; 1024]);
    // Only the root directory: dropped.
    assert_eq!(normalize(&tar_of(&[dir("./")])), vec![0u8; 1024]);
    assert_eq!(
        refused(&[file(".", b"")]),
        r#"entry ".": names the root directory but is not a directory"#
    );
}

#[test]
fn pax_times() {
    assert_eq!(parse_pax_time(b"1700000000"), Some(1_700_000_000));
    assert_eq!(parse_pax_time(b"1700000000.999999"), Some(1_700_000_000));
    assert_eq!(parse_pax_time(b"-1.5"), Some(0));
    assert_eq!(parse_pax_time(b""), None);
    assert_eq!(parse_pax_time(b"1e9"), None);
    assert_eq!(parse_pax_time(b".5"), None);
}

#[test]
fn symlink_escape_is_lexical() {
    assert!(!escapes_root(b"", b"a/.."));
    assert!(escapes_root(b"", b".."));
    assert!(!escapes_root(b"a/b", b"../../c"));
    assert!(escapes_root(b"a/b", b"../../../c"));
    assert!(escapes_root(b"a", b"x/../../.."));
    assert!(!escapes_root(b"a", b"./x//../.."));
}

#[test]
fn non_utf8_names_scan_but_do_not_normalize() {
    let mut e = file("caf\u{e9}", b"x");
    e.path = b"caf\xe9".to_vec();
    let tar = tar_of(&[e]);
    assert_eq!(scan(&tar).unwrap(), Digest::of(&tar));
    // The rewrite fails after it started writing: still nothing left behind.
    let d = Dir::new();
    let out = d.out("out.tar");
    let err = normalize_layer(&d.blob("layer", &tar), &plain(), &out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "entry \"caf\\xe9\": path is not valid UTF-8"
    );
    assert_eq!(d.names(), ["layer"]);
}

/// A GNU long name (`L`) entry declaring `size` bytes of name, then `size` bytes of `a`.
fn long_name_entry(size: usize) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_cksum();
    let mut v = h.as_bytes().to_vec();
    v.resize(512 + size.div_ceil(512) * 512, b'a');
    v
}

#[test]
fn oversized_header_extensions_are_refused_before_they_are_read() {
    use crate::io::tar_guard::MAX_EXTENSION;
    // A pax xattr record larger than a header extension may be (the tar crate would read
    // it whole, however large).
    let big = vec![b'v'; MAX_EXTENSION as usize + 10];
    let e = refused(&[file("f", b"x").pax("SCHILY.xattr.user.big", &big)]);
    assert!(
        e.starts_with("tar entry at byte 0: pax extended header ('x') of ")
            && e.ends_with("bytes, more than the 1048576 bytes a header extension may have"),
        "{e}"
    );
    // A GNU long name too, after an ordinary entry; compressed, as it would arrive.
    let mut tar = tar_of(&[file("ok", b"x")]);
    tar.truncate(tar.len() - 1024);
    tar.extend(long_name_entry(MAX_EXTENSION as usize + 1));
    tar.extend(tar_of(&[file("f", b"x")]));
    let e = refused_bytes(&zstd(&tar));
    assert_eq!(
        e,
        "tar entry at byte 1024: GNU long name ('L') of 1048577 bytes, more than the 1048576 bytes a header extension may have"
    );
}

#[test]
fn long_paths_and_large_xattrs_are_refused() {
    // Under the extension limit, over what Linux accepts: the messages quote a prefix.
    let mut tar = long_name_entry(5000);
    tar.extend(tar_of(&[file("f", b"x")]));
    let e = refused_bytes(&tar);
    assert_eq!(
        e,
        format!(
            "entry \"{}... (5000 bytes)\": path of 5000 bytes, longer than the 4096 bytes a path may have",
            "a".repeat(160)
        )
    );
    let long = "d/".repeat(2100);
    let e = refused(&[symlink("l", "t").pax("linkpath", long.as_bytes())]);
    assert!(
        e.contains("link target of 4200 bytes, longer than the 4096"),
        "{e}"
    );
    assert!(e.len() < 400, "{e}");
    let e = refused(&[file("f", b"x").pax("SCHILY.xattr.user.v", &[b'v'; 65537])]);
    assert_eq!(
        e,
        "entry \"f\": extended attribute \"user.v\" (6 bytes of name, 65537 of value) is larger than Linux allows (255, 65536)"
    );
    let e =
        refused(&[file("f", b"x").pax(&format!("SCHILY.xattr.user.{}", "n".repeat(300)), b"v")]);
    assert!(e.contains("(305 bytes of name, 1 of value)"), "{e}");
    // At the limits, accepted.
    scan(&tar_of(&[
        file("f", b"x").pax("SCHILY.xattr.user.v", &[b'v'; 65536])
    ]))
    .unwrap();
}

#[test]
fn normalize_spools_at_most_max_layer_size() {
    let d = Dir::new();
    let blob = d.blob(
        "layer",
        &zstd(&tar_of(&[file("zeros", &vec![0u8; 4 << 20])])),
    );
    let n = Normalize {
        max_layer_size: 1 << 20,
        ..plain()
    };
    let e = normalize_layer(&blob, &n, &d.out("out.tar")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the layer decompresses to more than 1048576 bytes, the most --normalize spools to disk (--max-layer-size)"
    );
    assert_eq!(d.names(), ["layer"], "nothing left behind");
    let n = Normalize {
        max_layer_size: 5 << 20,
        ..plain()
    };
    normalize_layer(&blob, &n, &d.out("out.tar")).unwrap();
}

/// `copy_layer` keeps the tar byte for byte (the diff_id is the source tar's digest) whatever
/// the source's compression, and compresses it with the codec asked for.
#[test]
fn copy_layer_keeps_the_tar_and_recompresses() {
    let tar = tar_of(&[
        file("b.txt", b"bee").mtime(1_700_000_000).uname("alice"),
        dir("a").mtime(5),
        file("a/x", b"x"),
    ]);
    let want = crate::oci::digest::Digest::of(&tar);
    for (name, bytes) in [
        ("t.tar", tar.clone()),
        ("t.tar.gz", gzip(&tar)),
        ("t.tar.zst", zstd(&tar)),
    ] {
        let d = Dir::new();
        let blob = d.blob(name, &bytes);
        for kind in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let out = d.out("out");
            let codec = Codec::new(kind, None, Some(2)).unwrap();
            let (diff_id, meta) = copy_layer(&blob, codec, &out).unwrap();
            assert_eq!(diff_id, want, "{name}");
            assert_eq!(meta.diff_id, want, "{name} -> {kind:?}");
            assert_eq!(meta.media_type, kind.media_type());
            let written = std::fs::read(&out).unwrap();
            assert_eq!(meta.digest, crate::oci::digest::Digest::of(&written));
            let back = match kind {
                Compression::Gzip => {
                    let mut v = Vec::new();
                    flate2::read::GzDecoder::new(&written[..])
                        .read_to_end(&mut v)
                        .unwrap();
                    v
                }
                Compression::Zstd => ::zstd::decode_all(&written[..]).unwrap(),
                Compression::None => written,
                other => unreachable!("{other:?} is not in the list"),
            };
            assert!(back == tar, "{name} -> {kind:?}: the tar changed");
        }
    }
}
