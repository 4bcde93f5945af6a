//! The plan of a layer built from files: entry parsing, destination path normalization, and
//! the deterministic tar of the planned entries.
//!
//! `Plan::build` turns the entry arguments into a sorted map of every path in the layer
//! (explicit entries, walked tree artifacts and Nix store paths, implicit parent directories)
//! and reports every conflict before any byte is written. `Plan::write_tar` then writes the
//! entries in that order, reading each input file once.

use super::metadata::{EntryMeta, Kind, MetadataRules};
use crate::io::output::BUF_SIZE;
use crate::io::tarfmt::TarWriter;
use crate::oci::Digest;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const DIR_MODE: u32 = 0o755;
const SYMLINK_MODE: u32 = 0o777;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file whose bytes are read from `src` (following symlinks) when writing.
    File(PathBuf),
    Dir,
    Symlink(String),
    /// A hard link to the file planned at this key (earlier in the tar): identical contents
    /// and metadata stored once.
    HardLink(String),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub content: NodeKind,
    pub mode: u32,
    /// Owner, names, mtime and pax records: root, empty, 0 and none unless file metadata
    /// says otherwise.
    pub meta: EntryMeta,
    /// Where the entry came from, for error messages.
    pub origin: String,
    /// A parent directory the layer added on its own (the layer-wide default metadata
    /// leaves it alone).
    pub implicit: bool,
}

impl Node {
    fn kind(&self) -> Kind {
        match self.content {
            NodeKind::File(_) | NodeKind::HardLink(_) => Kind::File,
            NodeKind::Dir => Kind::Dir,
            NodeKind::Symlink(_) => Kind::Symlink,
        }
    }
}

/// Where a regular file's default mode (0755 or 0644) comes from.
///
/// Bazel does not track execute bits: it makes every action output 0555, and remote
/// execution marks every input executable. So a Bazel artifact's execute bit says nothing,
/// and reading it would give a different layer on a remote worker than on a laptop.
/// Nix store paths are not Bazel artifacts; their modes are part of the store path's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileModes {
    /// Every file is executable: an executable target and its runfiles (`exec` entries).
    Exec,
    /// Executable when the content is a program (an ELF binary or a `#!` script), else
    /// plain: ordinary Bazel files (`file` and `group` entries).
    FromContent,
    /// The execute bit on disk: Nix store paths (`store` and `root` entries).
    OnDisk,
}

/// How a directory is walked.
#[derive(Debug, Clone, Copy)]
struct Walk {
    modes: FileModes,
    /// Absolute symlinks into `bazel-out` are Bazel's staging of tree artifacts and are
    /// followed; Nix store paths are walked verbatim, so they never are.
    follow_staging: bool,
    /// Paths already in the layer with the same content are merged rather than reported:
    /// the contents of several `root` store paths overlap (buildEnv links, `etc/`).
    merge_identical: bool,
}

impl Walk {
    const SOURCE: Walk = Walk {
        modes: FileModes::FromContent,
        follow_staging: true,
        merge_identical: false,
    };
    const STORE: Walk = Walk {
        modes: FileModes::OnDisk,
        follow_staging: false,
        merge_identical: false,
    };
    const ROOT: Walk = Walk {
        modes: FileModes::OnDisk,
        follow_staging: false,
        merge_identical: true,
    };
}

/// Every path of a layer, keyed by its normalized form without the leading `/`. A BTreeMap
/// keyed by String iterates in byte order, which is the order of the tar entries.
#[derive(Debug, Default)]
pub struct Plan {
    pub nodes: BTreeMap<String, Node>,
}

/// Normalizes an absolute path in an image to its relative form (`/a//./b/` -> `a/b`);
/// `..` and the root itself are refused.
pub fn normalize_image_path(dest: &str) -> Result<String> {
    if !dest.starts_with('/') {
        bail!("path {dest:?} must be absolute (start with /)");
    }
    let mut parts = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("path {dest:?} escapes the image root (contains '..')"),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        bail!("path {dest:?} is the image root itself, not a path in it");
    }
    Ok(parts.join("/"))
}

#[cfg(unix)]
fn has_execute_bit(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn has_execute_bit(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Whether a file's first bytes are those of a program the kernel runs: an ELF binary or a
/// script with a `#!` line.
fn is_program(path: &Path) -> Result<bool> {
    let mut head = [0u8; 4];
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    let head = &head[..len];
    Ok(head.starts_with(b"\x7fELF") || head.starts_with(b"#!"))
}

/// The default mode of the regular file at `path`.
fn file_mode(path: &Path, meta: &std::fs::Metadata, modes: FileModes) -> Result<u32> {
    let executable = match modes {
        FileModes::Exec => true,
        FileModes::FromContent => is_program(path)?,
        FileModes::OnDisk => has_execute_bit(meta),
    };
    Ok(if executable { 0o755 } else { 0o644 })
}

/// Whether two files have the same bytes (same size first, then compared in blocks).
fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| File::open(p).with_context(|| format!("cannot read {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let len = |f: &File, p: &Path| {
        f.metadata()
            .map(|m| m.len())
            .with_context(|| format!("cannot stat {}", p.display()))
    };
    if len(&fa, a)? != len(&fb, b)? {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n =
            read_full(&mut fa, &mut ba).with_context(|| format!("cannot read {}", a.display()))?;
        let m =
            read_full(&mut fb, &mut bb).with_context(|| format!("cannot read {}", b.display()))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Bazel stages each file of a tree artifact in a sandbox as an absolute symlink into
/// `bazel-out` (`/…/execroot/_main/bazel-out/<config>/bin/<path>`); those are the artifact's
/// files, not symlinks its author made. The target must be a plain path: a `..`
/// anywhere (`/…/bazel-out/../secret`) would let a symlink in a tree artifact pull any host
/// file into the layer, so such a link is kept as the symlink it is.
fn is_bazel_staging_link(target: &Path) -> bool {
    use std::path::Component;
    let mut parts = target.components();
    if parts.next() != Some(Component::RootDir) {
        return false;
    }
    let mut after_bazel_out = None;
    for c in parts {
        let Component::Normal(name) = c else {
            return false;
        };
        match after_bazel_out.as_mut() {
            Some(n) => *n += 1,
            None if name == "bazel-out" => after_bazel_out = Some(0),
            None => {}
        }
    }
    // At least `<config>/bin/<file>` below `bazel-out`.
    after_bazel_out.is_some_and(|n| n >= 3)
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
    /// Builds the plan from `kind<TAB>/dest<TAB>src` entries and applies the file metadata.
    pub fn build(entries: &[String], metadata: &MetadataRules) -> Result<Plan> {
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
        metadata.apply(plan.nodes.iter_mut().map(|(key, node)| {
            let kind = node.kind();
            (
                key.as_str(),
                kind,
                node.implicit,
                &mut node.mode,
                &mut node.meta,
            )
        }))?;
        Ok(plan)
    }

    /// Turns every regular file whose bytes, mode and metadata equal those of an earlier file
    /// into a hard link to it, so that the layer stores the bytes once. Only files that share
    /// a size with another candidate are hashed. Returns the number of links made.
    pub fn link_duplicates(&mut self) -> Result<usize> {
        let mut by_shape: BTreeMap<(u64, u32, &EntryMeta), Vec<&str>> = BTreeMap::new();
        for (key, node) in &self.nodes {
            if let NodeKind::File(src) = &node.content {
                let size = std::fs::metadata(src)
                    .with_context(|| format!("cannot stat {} for /{key}", src.display()))?
                    .len();
                // An empty file costs a header either way.
                if size > 0 {
                    by_shape
                        .entry((size, node.mode, &node.meta))
                        .or_default()
                        .push(key);
                }
            }
        }
        let mut links: Vec<(String, String)> = Vec::new();
        for keys in by_shape.values().filter(|k| k.len() > 1) {
            // Keys are in tar order, so the first of each content is written before its links.
            let mut first: BTreeMap<Digest, &str> = BTreeMap::new();
            for key in keys {
                let NodeKind::File(src) = &self.nodes[*key].content else {
                    unreachable!("only files are grouped")
                };
                let (digest, _) = Digest::of_file(src)
                    .with_context(|| format!("cannot read {} for /{key}", src.display()))?;
                match first.get(&digest) {
                    Some(leader) => links.push((key.to_string(), leader.to_string())),
                    None => {
                        first.insert(digest, key);
                    }
                }
            }
        }
        let count = links.len();
        for (key, leader) in links {
            if let Some(node) = self.nodes.get_mut(&key) {
                node.content = NodeKind::HardLink(leader);
            }
        }
        Ok(count)
    }

    fn add_entry(&mut self, entry: &str) -> Result<()> {
        let fields: Vec<&str> = entry.split('\t').collect();
        let (kind, dest, arg) = match fields.as_slice() {
            [kind, dest] if matches!(*kind, "dir" | "store" | "root") => (*kind, *dest, None),
            [kind, dest, arg] if matches!(*kind, "file" | "exec" | "symlink") => {
                (*kind, *dest, Some(*arg))
            }
            _ => bail!(
                "malformed entry {entry:?}: expected file|exec|symlink<TAB>/dest<TAB>arg or dir|store|root<TAB>/path"
            ),
        };
        if kind == "root" {
            return self.add_root(Path::new(dest));
        }
        let key = normalize_image_path(dest)?;
        match (kind, arg) {
            ("dir", _) => self.insert(key, NodeKind::Dir, DIR_MODE, "a dir entry".into()),
            ("store", _) => self.add_store_path(key, Path::new(dest)),
            ("symlink", Some(target)) => {
                if target.is_empty() {
                    bail!("symlink {dest} has an empty target");
                }
                self.insert(
                    key,
                    NodeKind::Symlink(target.into()),
                    SYMLINK_MODE,
                    format!("symlink to {target}"),
                )
            }
            (_, Some(src)) => {
                let modes = if kind == "exec" {
                    FileModes::Exec
                } else {
                    FileModes::FromContent
                };
                self.add_source(key, Path::new(src), modes)
            }
            _ => unreachable!("matched above"),
        }
    }

    /// A target's files: one file goes to `dest` itself; several become a directory `dest`
    /// holding each file at its path relative to the target's package (`prefix`).
    fn add_group(&mut self, dest: &str, members: &[GroupMember]) -> Result<()> {
        if let [single] = members {
            return self.add_source(
                normalize_image_path(dest)?,
                Path::new(single.src),
                FileModes::FromContent,
            );
        }
        for m in members {
            let rel = m
                .short_path
                .strip_prefix(m.prefix)
                .filter(|r| !m.prefix.is_empty() && !r.is_empty());
            // Files of other repositories have short paths like `../repo/path`.
            let rel =
                rel.unwrap_or_else(|| m.short_path.strip_prefix("../").unwrap_or(m.short_path));
            let key = normalize_image_path(&format!("{}/{rel}", dest.trim_end_matches('/')))?;
            self.add_source(key.clone(), Path::new(m.src), FileModes::FromContent)?;
            // The directories from `dest` down to the file belong to this entry (they take its
            // default metadata), unlike the implicit parents above `dest`.
            let top = normalize_image_path(dest)?;
            let mut dir = key.as_str();
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if parent.len() < top.len() {
                    break;
                }
                self.insert(
                    parent.to_string(),
                    NodeKind::Dir,
                    DIR_MODE,
                    format!("the directory {dest}"),
                )?;
                dir = parent;
            }
        }
        Ok(())
    }

    /// A Nix store path at its own path in the image. Store paths are copied verbatim: a store
    /// path that is a symlink stays one, and so does every symlink inside a store directory.
    fn add_store_path(&mut self, key: String, path: &Path) -> Result<()> {
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| anyhow!("store path {} cannot be read: {e}", path.display()))?;
        self.add_verbatim(key, path, &meta, Walk::STORE)
    }

    /// copy_to_root: the children of a store directory placed at `/`. Several roots may
    /// provide the same directory or identical files; different contents are conflicts.
    fn add_root(&mut self, path: &Path) -> Result<()> {
        if !path.is_absolute() {
            bail!("root store path {:?} must be absolute", path.display());
        }
        // The store path itself is followed: its contents are what goes to `/`.
        let meta = std::fs::metadata(path)
            .map_err(|e| anyhow!("root store path {} cannot be read: {e}", path.display()))?;
        if !meta.is_dir() {
            bail!(
                "root store path {} is not a directory, so it has no contents to put at /",
                path.display()
            );
        }
        self.walk("", path, Walk::ROOT)
    }

    /// Adds a file, or walks a directory (tree artifact), following symlinks at `src` itself.
    fn add_source(&mut self, key: String, src: &Path, modes: FileModes) -> Result<()> {
        let meta = std::fs::metadata(src)
            .map_err(|e| anyhow!("source {} for /{key} cannot be read: {e}", src.display()))?;
        if meta.is_dir() {
            self.insert(
                key.clone(),
                NodeKind::Dir,
                DIR_MODE,
                src.display().to_string(),
            )?;
            let walk = Walk {
                modes,
                ..Walk::SOURCE
            };
            self.walk(&key, src, walk)
        } else if meta.is_file() {
            let mode = file_mode(src, &meta, modes)?;
            self.insert(
                key,
                NodeKind::File(src.to_path_buf()),
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

    /// Walks `dir` into `key` (`""` for the image root). Listing order does not matter: the
    /// plan is a sorted map.
    fn walk(&mut self, key: &str, dir: &Path, walk: Walk) -> Result<()> {
        let rd = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list directory {}", dir.display()))?;
        for ent in rd {
            let ent = ent.with_context(|| format!("cannot list directory {}", dir.display()))?;
            let path = ent.path();
            let name = ent.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| anyhow!("file name {} is not valid UTF-8", path.display()))?;
            let child = if key.is_empty() {
                name.to_string()
            } else {
                format!("{key}/{name}")
            };
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if walk.follow_staging && meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)
                    .with_context(|| format!("cannot read symlink {}", path.display()))?;
                if is_bazel_staging_link(&target) {
                    self.add_source(child, &path, walk.modes)?;
                    continue;
                }
            }
            self.add_verbatim(child, &path, &meta, walk)?;
        }
        Ok(())
    }

    /// Adds `path` as what it is (symlinks not followed), walking directories.
    fn add_verbatim(
        &mut self,
        key: String,
        path: &Path,
        meta: &std::fs::Metadata,
        walk: Walk,
    ) -> Result<()> {
        let origin = path.display().to_string();
        let (content, mode) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path)
                .with_context(|| format!("cannot read symlink {}", path.display()))?;
            let target = target.to_str().ok_or_else(|| {
                anyhow!("symlink target of {} is not valid UTF-8", path.display())
            })?;
            (NodeKind::Symlink(target.into()), SYMLINK_MODE)
        } else if meta.is_dir() {
            (NodeKind::Dir, DIR_MODE)
        } else if meta.is_file() {
            (
                NodeKind::File(path.to_path_buf()),
                file_mode(path, meta, walk.modes)?,
            )
        } else {
            bail!(
                "{} (for /{key}) is not a regular file, directory or symlink",
                path.display()
            );
        };
        let is_dir = content == NodeKind::Dir;
        if walk.merge_identical {
            self.insert_merging(key.clone(), content, mode, origin)?;
        } else {
            self.insert(key.clone(), content, mode, origin)?;
        }
        if is_dir {
            self.walk(&key, path, walk)?;
        }
        Ok(())
    }

    /// Like `insert`, but a path that is already planned with the same content (same symlink
    /// target, same file bytes and mode) is not a conflict.
    fn insert_merging(
        &mut self,
        key: String,
        content: NodeKind,
        mode: u32,
        origin: String,
    ) -> Result<()> {
        if let Some(old) = self.nodes.get(&key) {
            let same = match (&old.content, &content) {
                (NodeKind::File(a), NodeKind::File(b)) => {
                    old.mode == mode && same_bytes(a, b).with_context(|| format!("/{key}"))?
                }
                (a, b) => a == b,
            };
            if same {
                return Ok(());
            }
            bail!(
                "conflicting path /{key}: {} and {origin} differ",
                old.origin
            );
        }
        self.insert(key, content, mode, origin)
    }

    fn insert(&mut self, key: String, content: NodeKind, mode: u32, origin: String) -> Result<()> {
        if let Some(old) = self.nodes.get(&key) {
            // The same directory from two sources (two trees under one prefix) is one directory.
            if old.content == NodeKind::Dir && content == NodeKind::Dir {
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
                meta: EntryMeta::default(),
                origin,
                implicit: false,
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
                    Some(n) if n.content != NodeKind::Dir => bail!(
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
                    content: NodeKind::Dir,
                    mode: DIR_MODE,
                    meta: EntryMeta::default(),
                    origin: "an implicit parent directory".into(),
                    implicit: true,
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
            let m = &node.meta;
            tw.set_owner(m.uid, m.gid);
            tw.set_names(&m.uname, &m.gname);
            tw.set_mtime(m.mtime);
            tw.set_records(m.records.iter().map(|(k, v)| (k.clone(), v.clone())));
            match &node.content {
                NodeKind::HardLink(target) => tw.hardlink(key, target, node.mode)?,
                NodeKind::Dir => tw.dir(&format!("{key}/"), node.mode)?,
                NodeKind::Symlink(t) => tw.symlink(key, t, node.mode)?,
                NodeKind::File(src) => {
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
