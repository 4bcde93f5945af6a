//! The `--src` of an import: a directory, or a tar of one (plain, gzip or zstd).
//!
//! A directory is read in place. A tar is read in at most two streaming passes, with
//! constant memory: the first checks every entry (no absolute or `..` paths, no links, no
//! devices, no duplicates) and extracts the small files (the JSON documents an import reads:
//! index.json, oci-layout, manifest.json, docker-save configs, and every small blob) into a
//! scratch directory next to the output; the second, only if needed, extracts the large
//! files (layers) the selected image uses. Everything else in the archive is never written.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Largest JSON document (manifest, index, config) an import reads into memory. Files up to
/// this size are extracted from a tar source in the first pass.
pub const MAX_JSON: u64 = 8 << 20;

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
    /// The files already extracted under the scratch root.
    extracted: BTreeSet<String>,
    /// Holds the scratch root; removed when the source is dropped.
    _scratch: TempDir,
}

/// An opened `--src`; files are addressed by their normalized relative path (`a/b`).
pub struct Source {
    /// `--src` as given, for messages.
    name: String,
    /// Where files are read: the directory itself, or the scratch root of a tar.
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

impl Source {
    /// Opens `src`. A tar is extracted into a scratch directory created in `scratch_parent`
    /// (the output's parent, so that extracted layers can be hard-linked into the output).
    pub fn open(src: &Path, scratch_parent: &Path) -> Result<Source> {
        let name = src.display().to_string();
        let meta = std::fs::metadata(src).with_context(|| format!("cannot read {name}"))?;
        if meta.is_dir() {
            return Ok(Source {
                name,
                root: src.to_path_buf(),
                archive: None,
            });
        }
        if !meta.is_file() {
            bail!("{name} is neither a directory nor a file");
        }
        let codec = sniff(src).with_context(|| format!("cannot read {name}"))?;
        let scratch = tempfile::Builder::new()
            .prefix(".import-src.tmp")
            .tempdir_in(scratch_parent)
            .with_context(|| {
                format!(
                    "cannot create a scratch directory in {}",
                    scratch_parent.display()
                )
            })?;
        let mut archive = Archive {
            path: src.to_path_buf(),
            codec,
            files: BTreeMap::new(),
            extracted: BTreeSet::new(),
            _scratch: scratch,
        };
        let root = archive._scratch.path().to_path_buf();
        archive.first_pass(&name, &root)?;
        Ok(Source {
            name,
            root,
            archive: Some(archive),
        })
    }

    /// `--src` as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `rel` is a regular file of the source.
    pub fn exists(&self, rel: &str) -> bool {
        match &self.archive {
            Some(a) => a.files.contains_key(rel),
            None => std::fs::metadata(self.root.join(rel)).is_ok_and(|m| m.is_file()),
        }
    }

    /// The size of `rel`, an error naming the source if it is not there.
    pub fn size(&self, rel: &str) -> Result<u64> {
        match &self.archive {
            Some(a) => a
                .files
                .get(rel)
                .copied()
                .ok_or_else(|| anyhow!("{} has no file {rel}", self.name)),
            None => {
                let p = self.root.join(rel);
                match std::fs::metadata(&p) {
                    Ok(m) if m.is_file() => Ok(m.len()),
                    Ok(_) => bail!("{} is not a regular file", p.display()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        bail!("{} has no file {rel}", self.name)
                    }
                    Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
                }
            }
        }
    }

    /// Reads a JSON document (at most MAX_JSON bytes) of the source.
    pub fn read_small(&self, rel: &str) -> Result<Vec<u8>> {
        let size = self.size(rel)?;
        if size > MAX_JSON {
            bail!(
                "{rel} in {} has {size} bytes, more than the {MAX_JSON} bytes a manifest, index or config may have",
                self.name
            );
        }
        let p = self.root.join(rel);
        std::fs::read(&p).with_context(|| format!("cannot read {rel} in {}", self.name))
    }

    /// Makes sure the files `rels` are on disk (a second pass over a tar for those the first
    /// did not extract); errors name the first missing one.
    pub fn ensure(&mut self, rels: &BTreeSet<String>) -> Result<()> {
        for rel in rels {
            self.size(rel)?;
        }
        if let Some(a) = &mut self.archive {
            let missing: BTreeSet<&str> = rels
                .iter()
                .map(String::as_str)
                .filter(|r| !a.extracted.contains(*r))
                .collect();
            if !missing.is_empty() {
                a.second_pass(&self.name, &self.root, &missing)?;
            }
        }
        Ok(())
    }

    /// Where `rel` is on disk (after `ensure` for a tar source). Symlinks of a directory
    /// source are resolved, so that the path can be hard-linked.
    pub fn path(&self, rel: &str) -> Result<PathBuf> {
        let p = self.root.join(rel);
        if self.archive.is_some() {
            return Ok(p);
        }
        std::fs::canonicalize(&p).with_context(|| format!("cannot read {}", p.display()))
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

    /// Walks every entry: `visit(path, size, entry)` for each regular file, after the checks.
    fn walk(
        &self,
        name: &str,
        mut visit: impl FnMut(&str, u64, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        let mut ar = tar::Archive::new(self.reader()?);
        let bad = |e: std::io::Error| anyhow!(e).context(format!("cannot read archive {name}"));
        let mut seen: BTreeMap<String, Kind> = BTreeMap::new();
        for entry in ar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let reject = |why: &str| anyhow!("archive {name}: entry {shown:?}: {why}");
            let Ok(path) = std::str::from_utf8(&raw) else {
                return Err(reject("path is not UTF-8"));
            };
            let t = entry.header().entry_type();
            let kind = match t {
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::XGlobalHeader => continue,
                tar::EntryType::Symlink => return Err(reject("symbolic links are not allowed")),
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
            if kind == Kind::File {
                let size = entry.size();
                visit(&rel, size, &mut entry)?;
            }
        }
        Ok(())
    }

    /// Lists and checks every entry; extracts the top-level files and blobs up to MAX_JSON.
    fn first_pass(&mut self, name: &str, root: &Path) -> Result<()> {
        let mut files = BTreeMap::new();
        let mut extracted = BTreeSet::new();
        self.walk(name, |rel, size, r| {
            files.insert(rel.to_string(), size);
            let small_metadata = !rel.contains('/') || rel.starts_with("blobs/");
            if small_metadata && size <= MAX_JSON {
                extract(name, root, rel, size, r)?;
                extracted.insert(rel.to_string());
            }
            Ok(())
        })?;
        self.files = files;
        self.extracted = extracted;
        Ok(())
    }

    fn second_pass(&mut self, name: &str, root: &Path, wanted: &BTreeSet<&str>) -> Result<()> {
        let mut done = BTreeSet::new();
        self.walk(name, |rel, size, r| {
            if wanted.contains(rel) {
                extract(name, root, rel, size, r)?;
                done.insert(rel.to_string());
            }
            Ok(())
        })?;
        for rel in wanted {
            if !done.contains(*rel) {
                bail!("archive {name} changed while it was read: {rel} is gone");
            }
        }
        self.extracted.extend(done);
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
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
        bail!("archive {name}: entry {rel:?}: truncated ({n} of {size} bytes)");
    }
    Ok(())
}
