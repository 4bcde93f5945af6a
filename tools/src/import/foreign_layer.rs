//! Safety checks and deterministic rewriting of one imported layer tar.
//!
//! A layer built elsewhere is untrusted input: whatever extracts it (a container runtime, our
//! own tools) must not be led to write outside its root, create device nodes, or apply
//! entries in an order that changes their meaning. Both entry points stream the blob once:
//! file -> decompression (chosen by magic bytes) -> sha256 (the diff_id) -> tar parser, with
//! constant memory in the layer size (only one small record per entry is kept, because
//! duplicates, hard links and paths through symlinks can only be judged with every path known).
//!
//! `normalize_layer` also copies the decompressed stream to an anonymous spool file next to the
//! output while parsing, then writes the entries sorted by path with tarfmt, reading each
//! file's data back from the spool by offset, through the one layer encoder
//! (`build::layer::write_layer`).

use crate::build::layer::{LayerMetadata, write_layer};
use crate::io::compress::{Codec, DecompressError, Decompressor};
use crate::io::output::{BUF_SIZE, parent_dir};
use crate::io::tar_guard::{Guard, LimitError, MAX_PATH, MAX_XATTR_NAME, MAX_XATTR_VALUE};
use crate::io::tarfmt::TarWriter;
use crate::io::untrusted::shown;
use crate::oci::digest::{Digest, HashingReader};
use anyhow::{Context, Result, anyhow, bail};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;

const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// How a layer is rewritten when an import is normalized.
#[derive(Debug, Clone, Copy)]
pub struct Normalize {
    /// Entry mtimes later than this (seconds since the epoch) are clamped to it.
    pub source_date_epoch: u64,
    pub codec: Codec,
    /// Largest decompressed layer spooled to disk while it is rewritten (a zstd layer of
    /// 33 KB can decompress to a terabyte).
    pub max_layer_size: u64,
}

/// The default of `Normalize::max_layer_size` (`import --max-layer-size`).
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 32 << 30;

/// Reads a layer blob, checks every entry, and returns its diff_id.
pub fn scan_layer(blob: &Path) -> Result<Digest> {
    Ok(read_entries(Decompressor::open(blob)?)?.0)
}

/// Reads a layer with the checks of an import: its diff_id, and its entries by normalized
/// path (file data as offsets into the decompressed stream).
pub(crate) fn read_entries(layer: Decompressor) -> Result<(Digest, BTreeMap<Vec<u8>, Item>)> {
    let (diff_id, layer) = read_layer(layer, None, u64::MAX)?;
    Ok((diff_id, layer.items))
}

/// Checks every entry and writes the normalized layer to `output`.
pub fn normalize_layer(
    blob: &Path,
    n: &Normalize,
    output: &Path,
) -> Result<(Digest, LayerMetadata)> {
    // Entry data is read back by offset in the uncompressed stream: from the blob itself when
    // it is an uncompressed tar (docker save's layers), else from a spooled copy.
    let spool = if matches!(Decompressor::open(blob)?, Decompressor::None(_)) {
        None
    } else {
        // Anonymous (unlinked) where the OS allows it: nothing is left behind, even on a crash.
        Some(tempfile::tempfile_in(parent_dir(output)).with_context(|| {
            format!(
                "cannot create a temporary file next to {}",
                output.display()
            )
        })?)
    };
    let (diff_id, layer) = read_layer(Decompressor::open(blob)?, spool.as_ref(), n.max_layer_size)?;
    let spool = match spool {
        Some(f) => f,
        None => File::open(blob).with_context(|| format!("cannot open {}", blob.display()))?,
    };

    let (out, meta) = write_layer(output, n.codec, |w| {
        layer
            .write_tar(w, std::slice::from_ref(&spool), n.source_date_epoch)
            .map(drop)
    })?;
    out.commit()?;
    Ok((diff_id, meta))
}

/// Checks every entry, then writes the layer's tar byte for byte (decompressed, and compressed
/// again with `codec`) to `output`: the diff_id stays the source's.
pub fn copy_layer(blob: &Path, codec: Codec, output: &Path) -> Result<(Digest, LayerMetadata)> {
    let diff_id = scan_layer(blob)?;
    let mut tar = Decompressor::open(blob)?;
    let (out, meta) = write_layer(output, codec, |w| {
        io::copy(&mut tar, w)
            .map(drop)
            .with_context(|| format!("cannot read {}", blob.display()))
    })?;
    if meta.diff_id != diff_id {
        bail!(
            "{} changed while it was read (its tar had digest {diff_id}, then {})",
            blob.display(),
            meta.diff_id
        );
    }
    out.commit()?;
    Ok((diff_id, meta))
}

/// What an entry is, once its type flag is accepted.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Regular file; its data is `size` bytes at `offset` of the decompressed stream.
    File {
        offset: u64,
        size: u64,
    },
    Dir,
    Symlink(Vec<u8>),
    /// A hard link to the normalized path `target`; `raw` is the target as in the archive.
    HardLink {
        target: Vec<u8>,
        raw: Vec<u8>,
    },
    Fifo,
}

/// One entry of the layer: what is kept of it between reading and writing.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Position in the archive, to tell whether a hard link comes after its target (for a
    /// squashed layer: in the concatenation of its source layers).
    pub(crate) index: usize,
    /// Which spool holds the data of a `Kind::File`: always 0 but in a squashed layer, where
    /// it is the index of the source layer.
    source: usize,
    /// The path as in the archive, for messages.
    raw: Vec<u8>,
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) owner: (u32, u32),
    /// Owner names (uname, gname): read for image-test; a normalized layer has none.
    pub(crate) names: (Vec<u8>, Vec<u8>),
    /// Whole seconds; times before the epoch are taken as 0.
    mtime: u64,
    /// `SCHILY.xattr.*` records: (attribute name, value).
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Where a hard link's inode comes from once chains of links are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    /// A path of a lower layer (not in this one).
    Lower(Vec<u8>),
    /// The non-link entry of this layer that the link shares its inode with.
    InLayer(Vec<u8>),
}

/// Every entry of a layer keyed by normalized path (no `./`, `//` or trailing `/`); a
/// BTreeMap of bytes iterates in the byte order the normalized tar is written in.
#[derive(Debug, Default)]
struct Layer {
    items: BTreeMap<Vec<u8>, Item>,
    /// For each hard link (by path), where its chain of links ends.
    links: HashMap<Vec<u8>, Resolved>,
}

fn entry_error(raw: &[u8], reason: impl fmt::Display) -> anyhow::Error {
    anyhow!("entry \"{}\": {reason}", shown(raw))
}

/// Normalizes an archive path to its relative form, or gives the reason it is refused.
/// The root (`.`, `./`) normalizes to an empty path.
fn normalize_path(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    if raw.contains(&0) {
        // C extractors would stop at the NUL and see another path than we checked.
        return Err("path contains a NUL byte");
    }
    if raw.starts_with(b"/") {
        return Err("absolute path");
    }
    let mut out = Vec::with_capacity(raw.len());
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path contains \"..\""),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(out)
}

/// Whether a relative symlink target, resolved lexically from `parent` (a normalized path,
/// empty for the root), climbs above the root.
fn escapes_root(parent: &[u8], target: &[u8]) -> bool {
    let mut depth: usize = if parent.is_empty() {
        0
    } else {
        parent.split(|&b| b == b'/').count()
    };
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

fn parent_of(key: &[u8]) -> &[u8] {
    match key.iter().rposition(|&b| b == b'/') {
        Some(i) => &key[..i],
        None => b"",
    }
}

/// Every proper ancestor of a normalized path, shortest first (`a/b/c` -> `a`, `a/b`).
fn ancestors(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    key.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .map(move |(i, _)| &key[..i])
}

fn show_type(flag: u8) -> String {
    if flag.is_ascii_graphic() {
        char::from(flag).to_string()
    } else {
        flag.to_string()
    }
}

/// A failure of the spool file, told apart from tar format errors in messages (as
/// decompression failures are).
#[derive(Debug)]
struct StreamError(String);

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamError {}

/// The decompressed stream as the tar parser reads it: hashed (diff_id), optionally copied to
/// the spool, and noting whether its end was reached (so parse errors can say "truncated").
struct Stream<'a> {
    inner: HashingReader<Decompressor>,
    spool: Option<BufWriter<&'a File>>,
    /// Bytes of the spool left before the limit.
    spool_left: u64,
    spool_limit: u64,
    eof: Rc<Cell<bool>>,
}

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.set(true);
        }
        if let Some(s) = &mut self.spool {
            self.spool_left = self.spool_left.checked_sub(n as u64).ok_or_else(|| {
                io::Error::other(StreamError(format!(
                    "the layer decompresses to more than {} bytes, the most --normalize spools to disk (--max-layer-size)",
                    self.spool_limit
                )))
            })?;
            s.write_all(&buf[..n]).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    StreamError(format!("cannot write the temporary copy of the layer: {e}")),
                )
            })?;
        }
        Ok(n)
    }
}

/// Turns an error of the tar parser (or of what it reads) into a clear message.
fn read_error(e: io::Error, eof: bool) -> anyhow::Error {
    if let Some(inner) = e.get_ref()
        && (inner.is::<StreamError>() || inner.is::<DecompressError>())
    {
        return anyhow!("{inner}");
    }
    if let Some(l) = LimitError::of(&e) {
        return anyhow!("{l}");
    }
    if eof {
        anyhow!("truncated tar archive: {e}")
    } else {
        anyhow!("invalid tar archive: {e}")
    }
}

/// Parses and checks the whole layer; returns its diff_id and entries. With a spool, the
/// decompressed stream is also copied there (offsets in `Kind::File` index into it), at most
/// `spool_limit` bytes of it.
fn read_layer(
    layer: Decompressor,
    spool: Option<&File>,
    spool_limit: u64,
) -> Result<(Digest, Layer)> {
    let eof = Rc::new(Cell::new(false));
    let stream = Stream {
        inner: HashingReader::new(layer),
        spool: spool.map(|f| BufWriter::with_capacity(BUF_SIZE, f)),
        spool_left: spool_limit,
        spool_limit,
        eof: eof.clone(),
    };
    // The guard refuses oversized header extensions before the tar crate reads them.
    let mut archive = tar::Archive::new(Guard::new(stream));
    let mut layer = Layer::default();
    let io_err = |e: io::Error| read_error(e, eof.get());
    for (index, entry) in archive.entries().map_err(io_err)?.enumerate() {
        let mut entry = entry.map_err(io_err)?;
        layer.add(index, &mut entry).map_err(|e| {
            // A header field that does not parse is a format error, not a policy one.
            match e.downcast::<io::Error>() {
                Ok(e) => io_err(e),
                Err(e) => e,
            }
        })?;
    }
    // The parser stops at the first zero block or at the end of the stream: like Go's
    // archive/tar (and so container runtimes) we accept a layer without end-of-archive
    // blocks; a stream that ends inside a header or an entry's data is an error above.
    let mut guard = archive.into_inner();
    // Everything after the end-of-archive block is part of the stream (and of the diff_id),
    // but must be zero padding: other extractors may skip zero blocks and read on.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = guard.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            bail!("invalid tar archive: non-zero data after the end-of-archive marker");
        }
    }
    let stream = guard.into_inner();
    if let Some(s) = stream.spool {
        s.into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write the temporary copy of the layer")?;
    }
    let (diff_id, _) = stream.inner.finish();
    layer.check()?;
    Ok((diff_id, layer))
}

impl Layer {
    /// Checks one entry on its own (the checks needing every path are in `check`) and
    /// records it.
    fn add<R: Read>(&mut self, index: usize, entry: &mut tar::Entry<R>) -> Result<()> {
        // The raw byte: the tar crate reads '\0' as '0', which loses the old-style directory.
        let flag = entry.header().as_bytes()[156];
        if flag == b'g' {
            // A pax global header: its records are not applied to the entries we keep.
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let fail = |reason: &dyn fmt::Display| entry_error(&raw, reason);
        if raw.len() > MAX_PATH {
            return Err(fail(&format!(
                "path of {} bytes, longer than the {MAX_PATH} bytes a path may have",
                raw.len()
            )));
        }
        let key = normalize_path(&raw).map_err(|r| fail(&r))?;
        let link_name = || -> Result<Vec<u8>> {
            let t = entry.link_name_bytes().unwrap_or_default().into_owned();
            if t.len() > MAX_PATH {
                return Err(fail(&format!(
                    "link target of {} bytes, longer than the {MAX_PATH} bytes a path may have",
                    t.len()
                )));
            }
            Ok(t)
        };

        let kind = match flag {
            b'0' | b'\0' | b'7' => {
                // Old tars mark directories with a trailing slash on an untyped entry.
                if flag == b'\0' && raw.ends_with(b"/") {
                    Kind::Dir
                } else {
                    Kind::File {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    }
                }
            }
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'1' => {
                let t = link_name()?;
                let shown = shown(&t);
                let target = match normalize_path(&t) {
                    Ok(k) if k.is_empty() => {
                        return Err(fail(&format!("hard link to \"{shown}\" names a directory")));
                    }
                    Ok(k) => k,
                    Err(_) => {
                        return Err(fail(&format!(
                            "hard link to \"{shown}\" leads outside the root"
                        )));
                    }
                };
                Kind::HardLink { target, raw: t }
            }
            b'2' => {
                let t = link_name()?;
                if t.contains(&0) {
                    return Err(fail(&"symbolic link target contains a NUL byte"));
                }
                // Absolute targets resolve inside the container's root at run time.
                if !t.starts_with(b"/") && escapes_root(parent_of(&key), &t) {
                    return Err(fail(&format!(
                        "symbolic link to \"{}\" leads outside the root",
                        shown(&t)
                    )));
                }
                Kind::Symlink(t)
            }
            b'3' => {
                return Err(fail(
                    &"character device node is not allowed in an image layer",
                ));
            }
            b'4' => return Err(fail(&"block device node is not allowed in an image layer")),
            other => {
                return Err(fail(&format!(
                    "unsupported entry type {}",
                    show_type(other)
                )));
            }
        };
        if key.is_empty() {
            if matches!(kind, Kind::Dir) {
                // The root directory itself (`./`): the extractor's root, nothing to keep.
                return Ok(());
            }
            return Err(fail(&"names the root directory but is not a directory"));
        }
        if self.items.contains_key(&key) {
            return Err(fail(&"duplicate entry"));
        }

        let h = entry.header();
        let mode = h.mode()? & 0o7777;
        // The tar crate has already applied pax uid/gid records to the header.
        let id = |v: u64, what: &str| {
            u32::try_from(v).map_err(|_| fail(&format!("{what} {v} does not fit 32 bits")))
        };
        let owner = (id(h.uid()?, "uid")?, id(h.gid()?, "gid")?);
        let mut mtime = h.mtime()?;
        let mut names = (
            h.username_bytes().unwrap_or_default().to_vec(),
            h.groupname_bytes().unwrap_or_default().to_vec(),
        );
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions()? {
            for rec in pax {
                let rec = rec?;
                let k = rec.key_bytes();
                if let Some(name) = k.strip_prefix(XATTR_PREFIX) {
                    let v = rec.value_bytes();
                    if name.len() > MAX_XATTR_NAME || v.len() > MAX_XATTR_VALUE {
                        return Err(fail(&format!(
                            "extended attribute \"{}\" ({} bytes of name, {} of value) is larger than Linux allows ({MAX_XATTR_NAME}, {MAX_XATTR_VALUE})",
                            shown(name),
                            name.len(),
                            v.len()
                        )));
                    }
                    xattrs.push((name.to_vec(), rec.value_bytes().to_vec()));
                } else if k.starts_with(b"GNU.sparse.") {
                    // pax sparse files: the data is a sparse map the tar crate does not expand.
                    return Err(fail(&"sparse files are not supported"));
                } else if k == b"uname" {
                    names.0 = rec.value_bytes().to_vec();
                } else if k == b"gname" {
                    names.1 = rec.value_bytes().to_vec();
                } else if k == b"mtime" {
                    mtime = parse_pax_time(rec.value_bytes()).ok_or_else(|| {
                        fail(&format!(
                            "invalid pax mtime \"{}\"",
                            shown(rec.value_bytes())
                        ))
                    })?;
                }
            }
        }
        self.items.insert(
            key,
            Item {
                index,
                source: 0,
                raw,
                kind,
                mode,
                owner,
                names,
                mtime,
                xattrs,
            },
        );
        Ok(())
    }

    /// The checks that need every entry: hard link targets, and paths through symlinks
    /// (judged on the whole layer, since normalizing reorders the entries).
    fn check(&mut self) -> Result<()> {
        for item in self.items.values() {
            let Kind::HardLink { target, raw } = &item.kind else {
                continue;
            };
            let shown = shown(raw);
            if let Some(t) = self.items.get(target) {
                if t.index >= item.index {
                    // An extractor would link to a lower layer's file (or fail) instead.
                    bail!(entry_error(
                        &item.raw,
                        format!("hard link to \"{shown}\" does not follow its target")
                    ));
                }
                if matches!(t.kind, Kind::Dir) {
                    bail!(entry_error(
                        &item.raw,
                        format!("hard link to \"{shown}\" names a directory")
                    ));
                }
            }
        }
        // Follow chains of links; each step goes to an earlier entry, so chains end.
        for (key, item) in &self.items {
            let Kind::HardLink { target, .. } = &item.kind else {
                continue;
            };
            let mut cur = target;
            let resolved = loop {
                match self.items.get(cur) {
                    None => break Resolved::Lower(cur.clone()),
                    Some(Item {
                        kind: Kind::HardLink { target, .. },
                        ..
                    }) => cur = target,
                    Some(_) => break Resolved::InLayer(cur.clone()),
                }
            };
            self.links.insert(key.clone(), resolved);
        }
        for (key, item) in &self.items {
            if let Some(link) = self.symlink_above(key) {
                bail!(entry_error(
                    &item.raw,
                    format!("path goes through the symbolic link \"{link}\"")
                ));
            }
            if let Kind::HardLink { target, raw } = &item.kind
                && let Some(link) = self.symlink_above(target)
            {
                bail!(entry_error(
                    &item.raw,
                    format!(
                        "hard link to \"{}\" goes through the symbolic link \"{link}\"",
                        shown(raw)
                    )
                ));
            }
        }
        Ok(())
    }

    /// The first ancestor of `key` that is a symlink of this layer (directly or through a
    /// hard link), as written in the archive.
    fn symlink_above(&self, key: &[u8]) -> Option<String> {
        ancestors(key).find_map(|a| {
            let item = self.items.get(a)?;
            let node = match self.links.get(a) {
                Some(Resolved::InLayer(root)) => self.items.get(root)?,
                Some(Resolved::Lower(_)) => return None,
                None => item,
            };
            matches!(node.kind, Kind::Symlink(_)).then(|| shown(&item.raw))
        })
    }

    /// Writes the normalized tar: entries sorted by path, each hard-link group led by its
    /// smallest path, data read back from `spools[item.source]`.
    fn write_tar<W: Write>(&self, w: W, spools: &[File], epoch: u64) -> Result<W> {
        // In sorted order a link could precede its target, which no extractor can apply; so
        // the smallest path of each group (target and links to it) carries the content.
        let mut leaders: HashMap<&[u8], &[u8]> = HashMap::new();
        for (key, r) in &self.links {
            if let Resolved::InLayer(root) = r {
                let l = leaders.entry(root.as_slice()).or_insert(root.as_slice());
                if key.as_slice() < *l {
                    *l = key.as_slice();
                }
            }
        }
        let mut tw = TarWriter::new(w);
        let mut buf = vec![0u8; BUF_SIZE];
        for (key, item) in &self.items {
            let name = utf8(key, &item.raw, "path")?;
            // The inode's content and metadata: its own, or those of its group's target.
            let (node, leader) = match self.links.get(key) {
                Some(Resolved::Lower(target)) => {
                    set_meta(&mut tw, item, epoch, false)?;
                    tw.hardlink(
                        name,
                        utf8(target, &item.raw, "hard link target")?,
                        item.mode,
                    )?;
                    continue;
                }
                Some(Resolved::InLayer(root)) => (&self.items[root], leaders[root.as_slice()]),
                None => (
                    item,
                    *leaders.get(key.as_slice()).unwrap_or(&key.as_slice()),
                ),
            };
            if leader != key.as_slice() {
                set_meta(&mut tw, node, epoch, false)?;
                tw.hardlink(name, utf8(leader, &item.raw, "path")?, node.mode)?;
                continue;
            }
            set_meta(&mut tw, node, epoch, true)?;
            let ctx = || {
                format!(
                    "entry \"{}\": cannot copy its data from the temporary copy",
                    shown(&item.raw)
                )
            };
            match &node.kind {
                Kind::Dir => tw.dir(&format!("{name}/"), node.mode)?,
                Kind::Symlink(t) => {
                    tw.symlink(name, utf8(t, &item.raw, "symbolic link target")?, node.mode)?
                }
                Kind::Fifo => tw.fifo(name, node.mode)?,
                Kind::File { offset, size } => {
                    let mut r = &spools[node.source];
                    r.seek(SeekFrom::Start(*offset)).with_context(ctx)?;
                    tw.file(name, node.mode, *size, &mut r.take(*size), &mut buf)
                        .with_context(ctx)?;
                }
                Kind::HardLink { .. } => unreachable!("links are resolved to their target"),
            }
        }
        Ok(tw.finish()?)
    }
}

/// Sets owner, clamped mtime and (for entries carrying content) xattrs of the next entry.
fn set_meta<W: Write>(tw: &mut TarWriter<W>, item: &Item, epoch: u64, xattrs: bool) -> Result<()> {
    tw.set_owner(item.owner.0, item.owner.1);
    tw.set_mtime(item.mtime.min(epoch));
    let mut list = Vec::new();
    if xattrs {
        for (k, v) in &item.xattrs {
            let k = String::from_utf8(k.clone())
                .map_err(|_| entry_error(&item.raw, "xattr name is not valid UTF-8"))?;
            list.push((k, v.clone()));
        }
    }
    tw.set_xattrs(&list);
    Ok(())
}

/// tarfmt writes UTF-8 names (pax path records must be UTF-8).
fn utf8<'a>(bytes: &'a [u8], raw: &[u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| entry_error(raw, format!("{what} is not valid UTF-8")))
}

/// Whole seconds of a pax time (`1700000000.123`); times before the epoch give 0.
fn parse_pax_time(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    if let Some(neg) = s.strip_prefix('-') {
        let ok = !neg.is_empty() && neg.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        return ok.then_some(0);
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    int.parse().ok()
}

mod squash;
pub use squash::squash_layers;

#[cfg(test)]
pub(crate) mod tests;
