//! `layer`: entry parsing, destination path normalization and the deterministic layer tar.
//!
//! Work happens in two phases. `Plan::build` turns the entry arguments into a sorted map of
//! every path in the layer (explicit entries, walked tree artifacts, implicit parent
//! directories) and reports every conflict before any byte is written. `write_layer` then
//! streams the planned entries through tar -> sha256 (diff_id) -> compressor -> sha256
//! (digest) -> output file, reading each input once with constant memory.

use crate::compress::{Compression, Compressor};
use crate::digest::{Digest, HashingWriter};
use crate::output::{self, AtomicFile, BUF_SIZE};
use crate::pipe::BackgroundWriter;
use crate::tarfmt::TarWriter;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const DIR_MODE: u32 = 0o755;
const SYMLINK_MODE: u32 = 0o777;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A regular file whose bytes are read from `src` (following symlinks) when writing.
    File(PathBuf),
    Dir,
    Symlink(String),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub content: Content,
    pub mode: u32,
    /// Where the entry came from, for error messages.
    pub origin: String,
}

/// Every path of a layer, keyed by its normalized form without the leading `/`. A BTreeMap
/// keyed by String iterates in byte order, which is the order of the tar entries.
#[derive(Debug, Default)]
pub struct Plan {
    pub nodes: BTreeMap<String, Node>,
}

/// Normalizes an image path to its relative form (`/a//./b/` -> `a/b`).
pub fn normalize_dest(dest: &str) -> Result<String> {
    if !dest.starts_with('/') {
        bail!("destination {dest:?} must be an absolute path (start with /)");
    }
    let mut parts = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("destination {dest:?} escapes the image root (contains '..')"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        bail!("destination {dest:?} is the image root, which is not a valid destination");
    }
    Ok(parts.join("/"))
}

fn parse_mode(spec: &str) -> Result<(String, u32)> {
    let (path, value) = spec
        .rsplit_once('=')
        .ok_or_else(|| anyhow!("--mode {spec:?} must have the form /path=OCTAL"))?;
    let mode = u32::from_str_radix(value, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !value.is_empty())
        .ok_or_else(|| anyhow!("--mode for {path}: {value:?} is not an octal mode <= 07777"))?;
    let key = normalize_dest(path).with_context(|| format!("--mode {spec:?}"))?;
    Ok((key, mode))
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

fn file_mode(meta: &std::fs::Metadata, force_exec: bool) -> u32 {
    if force_exec || is_executable(meta) {
        0o755
    } else {
        0o644
    }
}

/// Bazel stages each file of a tree artifact in a sandbox as an absolute symlink into
/// `bazel-out`; those are the artifact's files, not symlinks its author made.
fn is_bazel_staging_link(target: &Path) -> bool {
    target.is_absolute() && target.components().any(|c| c.as_os_str() == "bazel-out")
}

/// One file of a multi-file target: `/dest<TAB>package prefix<TAB>short_path<TAB>src`.
struct GroupMember<'a> {
    dest: &'a str,
    prefix: &'a str,
    short_path: &'a str,
    src: &'a str,
}

impl<'a> GroupMember<'a> {
    fn parse(fields: &'a str) -> Option<Self> {
        let mut it = fields.split('\t');
        let member = GroupMember {
            dest: it.next()?,
            prefix: it.next()?,
            short_path: it.next()?,
            src: it.next()?,
        };
        it.next().is_none().then_some(member)
    }
}

impl Plan {
    /// Builds the plan from `kind<TAB>/dest<TAB>src` entries and `/dest=OCTAL` mode overrides.
    pub fn build(entries: &[String], modes: &[String]) -> Result<Plan> {
        if entries.is_empty() {
            bail!("the layer has no entries");
        }
        let mut plan = Plan::default();
        let mut groups: BTreeMap<&str, Vec<GroupMember>> = BTreeMap::new();
        for entry in entries {
            match entry.strip_prefix("group\t") {
                Some(rest) => {
                    let member = GroupMember::parse(rest)
                        .ok_or_else(|| anyhow!("malformed entry {entry:?}: expected group<TAB>/dest<TAB>prefix<TAB>short_path<TAB>src"))?;
                    groups.entry(member.dest).or_default().push(member);
                }
                None => plan.add_entry(entry)?,
            }
        }
        for (dest, members) in groups {
            plan.add_group(dest, &members)?;
        }
        plan.add_parents()?;
        for spec in modes {
            let (key, mode) = parse_mode(spec)?;
            let node = plan
                .nodes
                .get_mut(&key)
                .ok_or_else(|| anyhow!("--mode names /{key}, which is not in the layer"))?;
            node.mode = mode;
        }
        Ok(plan)
    }

    fn add_entry(&mut self, entry: &str) -> Result<()> {
        let fields: Vec<&str> = entry.split('\t').collect();
        let (kind, dest, arg) = match fields.as_slice() {
            ["dir", dest] => ("dir", *dest, None),
            [kind, dest, arg] if matches!(*kind, "file" | "exec" | "symlink") => {
                (*kind, *dest, Some(*arg))
            }
            _ => bail!(
                "malformed entry {entry:?}: expected file|exec|symlink<TAB>/dest<TAB>arg or dir<TAB>/dest"
            ),
        };
        let key = normalize_dest(dest)?;
        match (kind, arg) {
            ("dir", _) => self.insert(key, Content::Dir, DIR_MODE, "a dir entry".into()),
            ("symlink", Some(target)) => {
                if target.is_empty() {
                    bail!("symlink {dest} has an empty target");
                }
                self.insert(
                    key,
                    Content::Symlink(target.into()),
                    SYMLINK_MODE,
                    format!("symlink to {target}"),
                )
            }
            (_, Some(src)) => self.add_source(key, Path::new(src), kind == "exec"),
            _ => unreachable!("matched above"),
        }
    }

    /// A target's files: one file goes to `dest` itself; several become a directory `dest`
    /// holding each file at its path relative to the target's package (`prefix`).
    fn add_group(&mut self, dest: &str, members: &[GroupMember]) -> Result<()> {
        if let [single] = members {
            return self.add_source(normalize_dest(dest)?, Path::new(single.src), false);
        }
        for m in members {
            let rel = m
                .short_path
                .strip_prefix(m.prefix)
                .filter(|r| !m.prefix.is_empty() && !r.is_empty());
            // Files of other repositories have short paths like `../repo/path`.
            let rel =
                rel.unwrap_or_else(|| m.short_path.strip_prefix("../").unwrap_or(m.short_path));
            let key = normalize_dest(&format!("{}/{rel}", dest.trim_end_matches('/')))?;
            self.add_source(key, Path::new(m.src), false)?;
        }
        Ok(())
    }

    /// Adds a file, or walks a directory (tree artifact), following symlinks at `src` itself.
    fn add_source(&mut self, key: String, src: &Path, force_exec: bool) -> Result<()> {
        let meta = std::fs::metadata(src)
            .map_err(|e| anyhow!("source {} for /{key} cannot be read: {e}", src.display()))?;
        if meta.is_dir() {
            self.insert(
                key.clone(),
                Content::Dir,
                DIR_MODE,
                src.display().to_string(),
            )?;
            self.walk(&key, src, force_exec)
        } else if meta.is_file() {
            let mode = file_mode(&meta, force_exec);
            self.insert(
                key,
                Content::File(src.to_path_buf()),
                mode,
                src.display().to_string(),
            )
        } else {
            bail!(
                "source {} for /{key} is neither a regular file nor a directory",
                src.display()
            )
        }
    }

    fn walk(&mut self, key: &str, dir: &Path, force_exec: bool) -> Result<()> {
        let rd = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list directory {}", dir.display()))?;
        for ent in rd {
            let ent = ent.with_context(|| format!("cannot list directory {}", dir.display()))?;
            let path = ent.path();
            let name = ent.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| anyhow!("file name {} is not valid UTF-8", path.display()))?;
            let child = format!("{key}/{name}");
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?;
            let origin = path.display().to_string();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)
                    .with_context(|| format!("cannot read symlink {}", path.display()))?;
                if is_bazel_staging_link(&target) {
                    self.add_source(child, &path, force_exec)?;
                    continue;
                }
                let target = target.to_str().ok_or_else(|| {
                    anyhow!("symlink target of {} is not valid UTF-8", path.display())
                })?;
                self.insert(child, Content::Symlink(target.into()), SYMLINK_MODE, origin)?;
            } else if meta.is_dir() {
                self.insert(child.clone(), Content::Dir, DIR_MODE, origin)?;
                self.walk(&child, &path, force_exec)?;
            } else if meta.is_file() {
                let mode = file_mode(&meta, force_exec);
                self.insert(child, Content::File(path), mode, origin)?;
            } else {
                bail!(
                    "{} (for /{child}) is not a regular file, directory or symlink",
                    path.display()
                );
            }
        }
        Ok(())
    }

    fn insert(&mut self, key: String, content: Content, mode: u32, origin: String) -> Result<()> {
        if let Some(old) = self.nodes.get(&key) {
            // The same directory from two sources (two trees under one prefix) is one directory.
            if old.content == Content::Dir && content == Content::Dir {
                return Ok(());
            }
            bail!(
                "duplicate path /{key}: given by {} and by {origin}",
                old.origin
            );
        }
        self.nodes.insert(
            key,
            Node {
                content,
                mode,
                origin,
            },
        );
        Ok(())
    }

    /// Adds every missing ancestor directory and rejects files/symlinks used as parents.
    fn add_parents(&mut self) -> Result<()> {
        let mut missing = BTreeMap::new();
        for key in self.nodes.keys() {
            let mut end = 0;
            while let Some(i) = key[end..].find('/') {
                end += i;
                let parent = &key[..end];
                end += 1;
                match self.nodes.get(parent) {
                    Some(n) if n.content != Content::Dir => bail!(
                        "/{parent} (from {}) is not a directory but is the parent of /{key}",
                        n.origin
                    ),
                    Some(_) => {}
                    None => {
                        missing.insert(parent.to_string(), ());
                    }
                }
            }
        }
        for (parent, ()) in missing {
            self.nodes.insert(
                parent,
                Node {
                    content: Content::Dir,
                    mode: DIR_MODE,
                    origin: "an implicit parent directory".into(),
                },
            );
        }
        Ok(())
    }

    /// Writes the uncompressed tar stream of the plan to `w`.
    pub fn write_tar<W: Write>(&self, w: W) -> Result<W> {
        let mut tw = TarWriter::new(w);
        let mut buf = vec![0u8; BUF_SIZE];
        for (key, node) in &self.nodes {
            match &node.content {
                Content::Dir => tw.dir(&format!("{key}/"), node.mode)?,
                Content::Symlink(t) => tw.symlink(key, t, node.mode)?,
                Content::File(src) => {
                    let ctx = || format!("reading {} for /{key}", src.display());
                    let mut f = File::open(src).with_context(ctx)?;
                    let meta = f.metadata().with_context(ctx)?;
                    if !meta.is_file() {
                        bail!("{} for /{key} is no longer a regular file", src.display());
                    }
                    tw.file(key, node.mode, meta.len(), &mut f, &mut buf)
                        .with_context(ctx)?;
                }
            }
        }
        Ok(tw.finish()?)
    }
}

/// What the `layer` subcommand reports in its metadata file.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerMeta {
    pub diff_id: Digest,
    pub digest: Digest,
    pub media_type: &'static str,
    pub size: u64,
}

impl LayerMeta {
    pub fn to_json(&self) -> Vec<u8> {
        let v = json!({
            "diff_id": self.diff_id.to_string(),
            "digest": self.digest.to_string(),
            "media_type": self.media_type,
            "size": self.size,
        });
        let mut out = crate::spec::canonical(&v);
        out.push(b'\n');
        out
    }
}

/// Streams the plan's tar through hashing and compression into `w`.
pub fn encode<W: Write>(
    plan: &Plan,
    kind: Compression,
    level: i32,
    w: W,
) -> Result<(W, LayerMeta)> {
    let (w, diff_id, digest, size) = if kind == Compression::None {
        // Uncompressed: the blob is the tar, one hash gives both diff_id and digest.
        // (`w` buffers itself: see pipe::BackgroundWriter.)
        let tar = plan.write_tar(HashingWriter::new(w))?;
        let (w, d, n) = tar.finish();
        (w, d, d, n)
    } else {
        let blob = HashingWriter::new(w);
        let comp = Compressor::new(kind, level, blob)?;
        let tar = BufWriter::with_capacity(BUF_SIZE, HashingWriter::new(comp));
        let tar = plan.write_tar(tar)?;
        let (comp, diff_id, _) = tar.into_inner().map_err(|e| e.into_error())?.finish();
        let (w, digest, size) = comp.finish()?.finish();
        (w, diff_id, digest, size)
    };
    Ok((
        w,
        LayerMeta {
            diff_id,
            digest,
            media_type: kind.media_type(),
            size,
        },
    ))
}

pub struct LayerOptions<'a> {
    pub output: &'a Path,
    pub metadata: &'a Path,
    pub compression: Compression,
    pub level: Option<i32>,
    pub modes: &'a [String],
    pub entries: &'a [String],
}

/// The `layer` subcommand: both outputs appear only if everything succeeded.
pub fn run(opts: &LayerOptions) -> Result<LayerMeta> {
    let level = opts
        .compression
        .check_level(opts.level.unwrap_or(opts.compression.default_level()))?;
    let plan = Plan::build(opts.entries, opts.modes)?;
    let mut blob = AtomicFile::create(opts.output)?;
    let file = blob
        .file()
        .try_clone()
        .context("cannot open the output twice")?;
    let (out, meta) = encode(&plan, opts.compression, level, BackgroundWriter::new(file))?;
    out.finish()
        .with_context(|| format!("cannot write {}", opts.output.display()))?;
    let meta_file = output::stage(opts.metadata, &meta.to_json())?;
    blob.commit()?;
    meta_file.commit()?;
    Ok(meta)
}

#[cfg(test)]
mod tests;
