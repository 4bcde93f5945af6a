//! The `--src` of an import: a directory, or a tar of one (plain, gzip or zstd).
//!
//! A directory is read in place: a file may be a symbolic link to a regular file of the
//! directory (old `docker save` links a repeated layer to its first copy), nothing else is
//! followed (no link in a parent, no chain, nothing outside the directory).
//!
//! A tar is read in at most two streaming passes, with constant memory (header extensions
//! capped by `io::tar_guard`) and a bounded scratch directory: the first checks every entry
//! (no absolute or `..` paths, no hard links, no devices, no duplicates; symbolic links only
//! to a regular file of the archive) and extracts the JSON documents an import reads
//! (index.json, oci-layout, manifest.json, and blobs or `<hex>.json` configs up to MAX_JSON
//! that start like JSON) within a fixed budget (PASS1_MAX_*); the second, only if needed,
//! extracts exactly the files (layers) the selected image uses, checked against the sizes
//! their descriptors declare. Everything else in the archive is never written.

use crate::io::tar_guard::{Guard, LimitError, MAX_PATH};
use crate::io::untrusted::{shown, shown_str};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Largest JSON document (manifest, index, config) an import reads into memory. Files up to
/// this size are extracted from a tar source in the first pass.
pub const MAX_JSON: u64 = 8 << 20;

/// What the first pass over a tar may extract in all: the JSON documents of even a large
/// multi-platform index (with SBOMs and attestations) fit. Documents past it are read from
/// the archive when they are needed, without touching the disk.
pub const PASS1_MAX_BYTES: u64 = 64 << 20;
pub const PASS1_MAX_FILES: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Plain,
    Gzip,
    Zstd,
}

struct Archive {
    path: PathBuf,
    codec: Codec,
    /// Every regular file of the archive (normalized path) and its size.
    files: BTreeMap<String, u64>,
    /// Every symbolic link of the archive and the regular file it points to.
    links: BTreeMap<String, String>,
    /// The files already extracted under the scratch root.
    extracted: BTreeSet<String>,
}

/// An opened `--src`; files are addressed by their normalized relative path (`a/b`).
pub struct Source {
    /// `--src` as given, for messages.
    name: String,
    /// Where files are read: the directory itself (canonical), or the scratch root of a tar.
    root: PathBuf,
    archive: Option<Archive>,
}

/// Normalizes a relative path found in an archive or a manifest: `./a//b` -> `a/b`. Absolute
/// paths and `..` components are rejected.
pub fn normalize_rel(p: &str) -> Result<String, &'static str> {
    if p.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("path with a \"..\" component"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err("empty path");
    }
    Ok(parts.join("/"))
}

/// Where the symbolic link `link` (a normalized path) points, as a normalized path of the
/// same tree: `bbb/layer.tar -> ../aaa/layer.tar` gives `aaa/layer.tar`. Absolute targets and
/// targets above the root are refused.
pub fn link_target(link: &str, target: &str) -> Result<String, &'static str> {
    if target.starts_with('/') {
        return Err("absolute target");
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("target above the root");
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err("target is the root");
    }
    Ok(parts.join("/"))
}

/// Whether the first pass extracts `rel`, by name: the top-level documents, blobs
/// (`blobs/<algorithm>/<hex>`) and docker-save configs (`<hex>.json`).
fn metadata_name(rel: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    match rel.split('/').collect::<Vec<_>>()[..] {
        ["index.json" | "oci-layout" | "manifest.json"] => true,
        [c] => c.strip_suffix(".json").is_some_and(hex),
        ["blobs", alg, h] => matches!(alg, "sha256" | "sha512") && hex(h),
        _ => false,
    }
}

impl Source {
    /// Opens `src`. A tar is listed, checked and its JSON documents are extracted into
    /// `scratch`, an empty directory next to the output (extracted layers are hard-linked
    /// into the output).
    pub fn open(src: &Path, scratch: &Path) -> Result<Source> {
        let name = src.display().to_string();
        let meta = std::fs::metadata(src).with_context(|| format!("cannot read {name}"))?;
        if meta.is_dir() {
            let root = std::fs::canonicalize(src).with_context(|| format!("cannot read {name}"))?;
            return Ok(Source {
                name,
                root,
                archive: None,
            });
        }
        if !meta.is_file() {
            bail!("{name} is neither a directory nor a file");
        }
        let codec = sniff(src).with_context(|| format!("cannot read {name}"))?;
        let mut archive = Archive {
            path: src.to_path_buf(),
            codec,
            files: BTreeMap::new(),
            links: BTreeMap::new(),
            extracted: BTreeSet::new(),
        };
        archive.first_pass(&name, scratch)?;
        Ok(Source {
            name,
            root: scratch.to_path_buf(),
            archive: Some(archive),
        })
    }

    /// `--src` as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the source's own files are read in place (a directory), rather than copies
    /// this tool extracted (a tar).
    pub fn in_place(&self) -> bool {
        self.archive.is_none()
    }

    /// Whether `rel` names something in the source (a file, or a link that `size` and
    /// `path` then resolve or refuse).
    pub fn exists(&self, rel: &str) -> bool {
        match &self.archive {
            Some(a) => a.files.contains_key(rel) || a.links.contains_key(rel),
            None => std::fs::symlink_metadata(self.root.join(rel)).is_ok(),
        }
    }

    /// The regular file `rel` stands for: itself, or the file its symbolic link points to
    /// (in the source, one link at most); an error naming the source if there is none.
    pub fn resolve(&self, rel: &str) -> Result<String> {
        match &self.archive {
            Some(a) => {
                if a.files.contains_key(rel) {
                    Ok(rel.to_string())
                } else if let Some(t) = a.links.get(rel) {
                    Ok(t.clone())
                } else {
                    bail!("{} has no file {}", self.name, shown_str(rel))
                }
            }
            None => self.resolve_in_dir(rel),
        }
    }

    /// `resolve` in a directory: no component but the last may be a symbolic link, and
    /// that one must point to a regular file of the directory reached without links.
    fn resolve_in_dir(&self, rel: &str) -> Result<String> {
        let name = &self.name;
        let shown_rel = shown_str(rel);
        let p = self.root.join(rel);
        match self.plain_file(rel)? {
            Plain::File => return Ok(rel.to_string()),
            Plain::Missing => bail!("{name} has no file {shown_rel}"),
            Plain::NotFile => bail!("{} is not a regular file", p.display()),
            Plain::Link(at) if at != rel => {
                bail!(
                    "{shown_rel} in {name} goes through the symbolic link {}",
                    shown_str(&at)
                )
            }
            Plain::Link(_) => {}
        }
        let raw = std::fs::read_link(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let raw = raw.to_string_lossy();
        let refuse = |why: &str| {
            anyhow!(
                "{shown_rel} in {name} is a symbolic link to \"{}\": {why}",
                shown_str(&raw)
            )
        };
        let target = link_target(rel, &raw).map_err(|why| {
            refuse(&format!(
                "only links to a regular file inside {name} are followed ({why})"
            ))
        })?;
        match self.plain_file(&target)? {
            Plain::File => Ok(target),
            Plain::Missing => Err(refuse("there is no such file")),
            Plain::NotFile => Err(refuse("it is not a regular file")),
            Plain::Link(_) => Err(refuse(
                "it leads to another symbolic link (chains of links are not followed)",
            )),
        }
    }

    /// What `rel` is in the directory, looked at component by component without following
    /// links.
    fn plain_file(&self, rel: &str) -> Result<Plain> {
        let mut cur = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, c) in parts.iter().enumerate() {
            cur.push(c);
            let m = match std::fs::symlink_metadata(&cur) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Plain::Missing),
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", cur.display())),
            };
            if m.file_type().is_symlink() {
                return Ok(Plain::Link(parts[..=i].join("/")));
            }
            let last = i + 1 == parts.len();
            if last {
                return Ok(if m.is_file() {
                    Plain::File
                } else {
                    Plain::NotFile
                });
            }
            if !m.is_dir() {
                return Ok(Plain::Missing);
            }
        }
        Ok(Plain::Missing)
    }

    /// The size of `rel`, an error naming the source if it is not there.
    pub fn size(&self, rel: &str) -> Result<u64> {
        let rel = self.resolve(rel)?;
        match &self.archive {
            Some(a) => Ok(a.files[&rel]),
            None => {
                let p = self.root.join(&rel);
                Ok(std::fs::symlink_metadata(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?
                    .len())
            }
        }
    }

    /// Reads a JSON document (at most MAX_JSON bytes) of the source.
    pub fn read_small(&self, rel: &str) -> Result<Vec<u8>> {
        let size = self.size(rel)?;
        if size > MAX_JSON {
            bail!(
                "{} in {} has {size} bytes, more than the {MAX_JSON} bytes a manifest, index or config may have",
                shown_str(rel),
                self.name
            );
        }
        let rel = self.resolve(rel)?;
        if let Some(a) = &self.archive
            && !a.extracted.contains(&rel)
        {
            // Not extracted by the first pass (past its budget): read from the archive.
            return a.read_entry(&self.name, &rel, size);
        }
        let p = self.root.join(&rel);
        std::fs::read(&p)
            .with_context(|| format!("cannot read {} in {}", shown_str(&rel), self.name))
    }

    /// Makes sure the files `rels` are on disk (a second pass over a tar for those the first
    /// did not extract), each with the size given (if any: what a descriptor declares); errors
    /// name the first missing one. The second pass writes no more than those sizes add up to.
    pub fn ensure(&mut self, rels: &BTreeMap<String, Option<u64>>) -> Result<()> {
        let mut missing = BTreeMap::new();
        for (rel, want) in rels {
            let size = self.size(rel)?;
            if let Some(want) = want
                && *want != size
            {
                bail!(
                    "{} in {} has {size} bytes, but its descriptor says {want}",
                    shown_str(rel),
                    self.name
                );
            }
            let target = self.resolve(rel)?;
            if let Some(a) = &self.archive
                && !a.extracted.contains(&target)
            {
                missing.insert(target, size);
            }
        }
        if let Some(a) = &mut self.archive
            && !missing.is_empty()
        {
            a.second_pass(&self.name, &self.root, &missing)?;
        }
        Ok(())
    }

    /// Where the file `rel` stands for is on disk (after `ensure` for a tar source).
    pub fn path(&self, rel: &str) -> Result<PathBuf> {
        Ok(self.root.join(self.resolve(rel)?))
    }
}

enum Plain {
    File,
    NotFile,
    Missing,
    /// A component is a symbolic link: the path up to it.
    Link(String),
}

/// How much one pass over a tar may still write to the scratch directory.
struct Budget {
    bytes: u64,
    files: u64,
}

impl Budget {
    /// Takes `size` bytes and one file, if they are left.
    fn take(&mut self, size: u64) -> bool {
        if self.files == 0 || size > self.bytes {
            return false;
        }
        self.files -= 1;
        self.bytes -= size;
        true
    }
}

/// The compression of a tar, from its magic bytes.
fn sniff(path: &Path) -> std::io::Result<Codec> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path)?;
    let mut n = 0;
    while n < magic.len() {
        let k = f.read(&mut magic[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => Codec::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Codec::Zstd,
        _ => Codec::Plain,
    })
}

impl Archive {
    fn reader(&self) -> Result<Box<dyn Read>> {
        let f = BufReader::with_capacity(
            crate::io::output::BUF_SIZE,
            File::open(&self.path)
                .with_context(|| format!("cannot open {}", self.path.display()))?,
        );
        Ok(match self.codec {
            Codec::Plain => Box::new(f),
            Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(f)),
            Codec::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(f)
                    .with_context(|| format!("cannot decompress {}", self.path.display()))?,
            ),
        })
    }

    /// Walks every entry: `visit(path, size, entry)` for each regular file and
    /// `link(path, target)` for each symbolic link (target normalized), after the checks.
    fn walk(
        &self,
        name: &str,
        mut visit: impl FnMut(&str, u64, &mut dyn Read) -> Result<()>,
        mut link: impl FnMut(&str, String) -> Result<()>,
    ) -> Result<()> {
        // The guard refuses oversized header extensions before the tar crate reads them.
        let mut ar = tar::Archive::new(Guard::new(self.reader()?));
        let bad = |e: std::io::Error| match LimitError::of(&e) {
            Some(l) => anyhow!("archive {name}: {l}"),
            None => anyhow!(e).context(format!("cannot read archive {name}")),
        };
        let mut seen: BTreeMap<String, Kind> = BTreeMap::new();
        for entry in ar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path_bytes().into_owned();
            let reject = |why: &str| anyhow!("archive {name}: entry \"{}\": {why}", shown(&raw));
            if raw.len() > MAX_PATH {
                return Err(reject(&format!(
                    "path of {} bytes, longer than the {MAX_PATH} bytes a path may have",
                    raw.len()
                )));
            }
            let Ok(path) = std::str::from_utf8(&raw) else {
                return Err(reject("path is not UTF-8"));
            };
            let t = entry.header().entry_type();
            let kind = match t {
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::XGlobalHeader => continue,
                tar::EntryType::Symlink => Kind::Link,
                tar::EntryType::Link => return Err(reject("hard links are not allowed")),
                tar::EntryType::Char | tar::EntryType::Block => {
                    return Err(reject("device files are not allowed"));
                }
                tar::EntryType::Fifo => return Err(reject("FIFOs are not allowed")),
                other => {
                    return Err(reject(&format!(
                        "unsupported entry type {:?} ({:?})",
                        other,
                        char::from(other.as_byte())
                    )));
                }
            };
            let rel = match normalize_rel(path) {
                Ok(r) => r,
                // The archive root itself (`./`) is harmless.
                Err("empty path") if kind == Kind::Dir => continue,
                Err(why) => return Err(reject(why)),
            };
            // A directory may be listed twice; a file may not (which copy would be meant?).
            if let Some(prev) = seen.insert(rel.clone(), kind)
                && (prev, kind) != (Kind::Dir, Kind::Dir)
            {
                return Err(reject("the archive has this path twice"));
            }
            match kind {
                Kind::File => {
                    let size = entry.size();
                    visit(&rel, size, &mut entry)?;
                }
                Kind::Link => {
                    let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                    let shown_t = shown(&target);
                    let link_reject =
                        |why: &str| reject(&format!("symbolic link to \"{shown_t}\": {why}"));
                    if target.len() > MAX_PATH {
                        return Err(link_reject(&format!(
                            "target longer than the {MAX_PATH} bytes a path may have"
                        )));
                    }
                    let Ok(target) = std::str::from_utf8(&target) else {
                        return Err(link_reject("target is not UTF-8"));
                    };
                    let t = link_target(&rel, target).map_err(|why| {
                        link_reject(&format!(
                            "only links to a regular file inside the archive are followed ({why})"
                        ))
                    })?;
                    link(&rel, t)?;
                }
                Kind::Dir => {}
            }
        }
        Ok(())
    }

    /// Lists and checks every entry; extracts the JSON documents (by name, size and first
    /// byte), within the first pass's budget.
    fn first_pass(&mut self, name: &str, root: &Path) -> Result<()> {
        let mut files = BTreeMap::new();
        let mut links = BTreeMap::new();
        let mut extracted = BTreeSet::new();
        let mut budget = Budget {
            bytes: PASS1_MAX_BYTES,
            files: PASS1_MAX_FILES,
        };
        self.walk(
            name,
            |rel, size, r| {
                files.insert(rel.to_string(), size);
                if !metadata_name(rel) || size > MAX_JSON || size > budget.bytes {
                    return Ok(());
                }
                // JSON (a document) or not (a small layer, left for the second pass): the
                // first non-blank byte of the top-level documents is not looked at.
                let mut head = vec![0u8; size.min(512) as usize];
                r.read_exact(&mut head)
                    .with_context(|| format!("cannot read archive {name}"))?;
                let top = matches!(rel, "index.json" | "oci-layout" | "manifest.json");
                let json = head
                    .iter()
                    .find(|b| !b.is_ascii_whitespace())
                    .is_some_and(|&b| b == b'{' || b == b'[');
                if (top || json) && budget.take(size) {
                    extract(name, root, rel, size, &mut (&head[..]).chain(r))?;
                    extracted.insert(rel.to_string());
                }
                Ok(())
            },
            |rel, target| {
                links.insert(rel.to_string(), target);
                Ok(())
            },
        )?;
        // A link must point to a regular file of the archive (not to another link).
        for (rel, target) in &links {
            if !files.contains_key(target) {
                let why = if links.contains_key(target) {
                    "it leads to another symbolic link (chains of links are not followed)"
                } else {
                    "the archive has no such regular file"
                };
                bail!(
                    "archive {name}: entry \"{}\": symbolic link to \"{}\": {why}",
                    shown_str(rel),
                    shown_str(target)
                );
            }
        }
        self.files = files;
        self.links = links;
        self.extracted = extracted;
        Ok(())
    }

    /// Extracts exactly `wanted` (path and size as listed by the first pass), writing no
    /// more than their sizes add up to.
    fn second_pass(
        &mut self,
        name: &str,
        root: &Path,
        wanted: &BTreeMap<String, u64>,
    ) -> Result<()> {
        let mut done = BTreeSet::new();
        let mut budget = Budget {
            bytes: wanted.values().sum(),
            files: wanted.len() as u64,
        };
        self.walk(
            name,
            |rel, size, r| {
                if wanted.get(rel) != Some(&size) {
                    if wanted.contains_key(rel) {
                        bail!("archive {name} changed while it was read: {} has another size", shown_str(rel));
                    }
                    return Ok(());
                }
                if !budget.take(size) {
                    bail!(
                        "archive {name}: the second pass would write more than the {} bytes in {} files it needs",
                        wanted.values().sum::<u64>(),
                        wanted.len()
                    );
                }
                extract(name, root, rel, size, r)?;
                done.insert(rel.to_string());
                Ok(())
            },
            |_, _| Ok(()),
        )?;
        for rel in wanted.keys() {
            if !done.contains(rel) {
                bail!(
                    "archive {name} changed while it was read: {} is gone",
                    shown_str(rel)
                );
            }
        }
        self.extracted.extend(done);
        Ok(())
    }

    /// Reads the regular file `rel` (of `size` bytes, at most MAX_JSON) straight from the
    /// archive.
    fn read_entry(&self, name: &str, rel: &str, size: u64) -> Result<Vec<u8>> {
        let mut out = None;
        self.walk(
            name,
            |r, n, data| {
                if r == rel && n == size {
                    let mut v = Vec::with_capacity(n as usize);
                    data.take(n)
                        .read_to_end(&mut v)
                        .with_context(|| format!("cannot read archive {name}"))?;
                    out = Some(v);
                }
                Ok(())
            },
            |_, _| Ok(()),
        )?;
        out.ok_or_else(|| {
            anyhow!(
                "archive {name} changed while it was read: {} is gone",
                shown_str(rel)
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Link,
}

fn extract(name: &str, root: &Path, rel: &str, size: u64, r: &mut dyn Read) -> Result<()> {
    let dest = root.join(rel);
    let ctx = || format!("cannot extract {rel} from archive {name}");
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).with_context(ctx)?;
    }
    let mut f = std::io::BufWriter::with_capacity(
        crate::io::output::BUF_SIZE,
        File::create(&dest).with_context(ctx)?,
    );
    let n = std::io::copy(r, &mut f).with_context(ctx)?;
    f.flush().with_context(ctx)?;
    if n != size {
        bail!(
            "archive {name}: entry \"{}\": truncated ({n} of {size} bytes)",
            shown_str(rel)
        );
    }
    Ok(())
}
