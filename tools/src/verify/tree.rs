//! The file tree of an image: its layers applied in order, as a container runtime extracts
//! them (image-spec "Applying Changesets", and containerd where the spec is silent).
//!
//! - A whiteout `D/.wh.NAME` removes `D/NAME` and everything below it; an opaque marker
//!   `D/.wh..wh..opq` removes everything below `D`. Both hide only what lower layers have,
//!   never the entries of their own layer, so they are applied before the layer's entries.
//! - An entry replaces what is at its path; only a directory over a directory keeps the
//!   children (and takes the new metadata).
//! - Parents are resolved through symlinks already in the tree (`/lib/x` lands in
//!   `/usr/lib/x` when `/lib -> usr/lib`); missing parents are created as directories
//!   0755 owned by 0:0.
//! - A hard link is the file it links to (content and type, as it was when the link was
//!   made); its own header's mode and owner are applied to both, as to one inode.
//!
//! Entries come from `import::foreign_layer::read_entries`, with every check of an import.

use crate::import::foreign_layer::{Item, Kind};
use crate::io::untrusted::shown;
use anyhow::{Result, bail};
use std::collections::{BTreeMap, VecDeque};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";
/// Symlinks followed while resolving one path before giving up (Linux's MAXSYMLINKS).
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// A regular file: `size` bytes at `offset` of the tar of layer `layer`.
    File {
        layer: usize,
        offset: u64,
        size: u64,
    },
    Dir,
    Symlink(Vec<u8>),
    Fifo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    /// The path (a tree key) this one was written as a hard link to.
    pub hardlink: Option<Vec<u8>>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    /// The layer that last wrote the path (for a parent no layer lists: the layer that
    /// needed it).
    pub layer: usize,
}

/// Why a path is not in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No layer has it.
    Never,
    /// A layer removed it (whiteout, opaque directory, or an entry that replaced a directory
    /// above it).
    RemovedBy(usize),
    /// A path on the way is not a directory.
    NotDir,
}

#[derive(Debug)]
pub enum Lookup<'a> {
    /// `key` is where the path resolved to (another path when a parent is a symlink).
    Found { key: Vec<u8>, node: &'a Node },
    /// `at`: the path on the way that is missing (the path itself, or a parent).
    Missing { at: Vec<u8>, why: Missing },
}

/// Where resolving a directory path ended: at the directory, or at the first path on the
/// way that is missing or not a directory.
enum Walk {
    Dir(Vec<u8>),
    Missing(Vec<u8>),
    NotDir(Vec<u8>),
}

/// Every path of the image by tree key (a normalized path without its leading `/`).
#[derive(Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<Vec<u8>, Node>,
    /// Paths that a layer removed and none wrote again: which layer, for messages.
    removed: BTreeMap<Vec<u8>, usize>,
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut k = Vec::with_capacity(dir.len() + 1 + name.len());
    k.extend_from_slice(dir);
    k.push(b'/');
    k.extend_from_slice(name);
    k
}

/// (parent, name) of a tree key.
fn split(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().rposition(|&b| b == b'/') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => (b"", key),
    }
}

/// As the path is written in messages: absolute.
pub fn display(key: &[u8]) -> String {
    format!("/{}", shown(key))
}

fn implicit_dir(layer: usize) -> Node {
    Node {
        kind: NodeKind::Dir,
        hardlink: None,
        mode: 0o755,
        uid: 0,
        gid: 0,
        uname: Vec::new(),
        gname: Vec::new(),
        layer,
    }
}

impl Tree {
    /// Applies layer `layer`'s entries (as `read_entries` gives them) over the tree.
    pub fn apply(&mut self, layer: usize, items: BTreeMap<Vec<u8>, Item>) -> Result<()> {
        let mut items: Vec<(Vec<u8>, Item)> = items.into_iter().collect();
        // In archive order, as an extractor goes (a hard link follows its target).
        items.sort_by_key(|(_, item)| item.index);
        let (whiteouts, entries): (Vec<_>, Vec<_>) = items
            .into_iter()
            .partition(|(key, _)| split(key).1.starts_with(WHITEOUT_PREFIX));
        for (key, _) in &whiteouts {
            let (parent, name) = split(key);
            // A whiteout whose directory is not there has nothing to hide.
            let Walk::Dir(dir) = self.resolve_dir(parent)? else {
                continue;
            };
            if name == OPAQUE {
                self.remove_below(&dir, layer);
            } else {
                let hidden = join(&dir, &name[WHITEOUT_PREFIX.len()..]);
                if self.nodes.remove(&hidden).is_some() {
                    self.removed.insert(hidden.clone(), layer);
                }
                self.remove_below(&hidden, layer);
            }
        }
        let (links, others): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(_, item)| matches!(item.kind, Kind::HardLink { .. }));
        for (key, item) in others {
            let kind = match item.kind {
                Kind::File { offset, size } => NodeKind::File {
                    layer,
                    offset,
                    size,
                },
                Kind::Dir => NodeKind::Dir,
                Kind::Symlink(t) => NodeKind::Symlink(t),
                Kind::Fifo => NodeKind::Fifo,
                Kind::HardLink { .. } => unreachable!("partitioned out"),
            };
            let node = Node {
                kind,
                hardlink: None,
                mode: item.mode,
                uid: item.owner.0,
                gid: item.owner.1,
                uname: item.names.0,
                gname: item.names.1,
                layer,
            };
            self.put(&key, node, layer)?;
        }
        // After the other entries: a link may name a file of this layer.
        for (key, item) in links {
            let Kind::HardLink { target, .. } = &item.kind else {
                unreachable!("partitioned");
            };
            let (parent, name) = split(target);
            let resolved = match self.resolve_dir(parent)? {
                Walk::Dir(d) => join(&d, name),
                Walk::Missing(_) | Walk::NotDir(_) => target.clone(),
            };
            let Some(inode) = self.nodes.get_mut(&resolved) else {
                bail!(
                    "{}: hard link to {}, which no layer up to this one has",
                    display(&key),
                    display(target)
                );
            };
            if inode.kind == NodeKind::Dir {
                bail!(
                    "{}: hard link to {}, a directory",
                    display(&key),
                    display(target)
                );
            }
            (inode.mode, inode.uid, inode.gid) = (item.mode, item.owner.0, item.owner.1);
            (inode.uname, inode.gname) = item.names.clone();
            let node = Node {
                hardlink: Some(resolved),
                layer,
                ..inode.clone()
            };
            self.put(&key, node, layer)?;
        }
        Ok(())
    }

    /// Writes `node` at `key` (its parents resolved, or made), replacing what is there.
    fn put(&mut self, key: &[u8], node: Node, layer: usize) -> Result<()> {
        let (parent, name) = split(key);
        let dir = loop {
            match self.resolve_dir(parent)? {
                Walk::Dir(d) => break d,
                Walk::NotDir(at) => {
                    bail!("{}: {} is not a directory", display(key), display(&at))
                }
                // Made one at a time: the next one may be reached through a symlink.
                Walk::Missing(at) => {
                    self.removed.remove(&at);
                    self.nodes.insert(at, implicit_dir(layer));
                }
            }
        };
        let at = join(&dir, name);
        let dir_over_dir = node.kind == NodeKind::Dir
            && self.nodes.get(&at).map(|n| &n.kind) == Some(&NodeKind::Dir);
        if !dir_over_dir {
            self.remove_below(&at, layer);
        }
        self.removed.remove(&at);
        self.nodes.insert(at, node);
        Ok(())
    }

    /// Removes every path below `dir` (the whole tree for the root, ""), noting who did.
    fn remove_below(&mut self, dir: &[u8], layer: usize) {
        let below: Vec<Vec<u8>> = if dir.is_empty() {
            self.nodes.keys().cloned().collect()
        } else {
            // Keys below `dir` are those from "dir/" up to "dir0" ('0' follows '/').
            let from = join(dir, b"");
            let mut to = dir.to_vec();
            to.push(b'0');
            self.nodes.range(from..to).map(|(k, _)| k.clone()).collect()
        };
        for k in below {
            self.nodes.remove(&k);
            self.removed.insert(k, layer);
        }
    }

    /// Resolves a directory path, following symlinks at every step, up to the first path on
    /// the way that is missing or not a directory.
    fn resolve_dir(&self, path: &[u8]) -> Result<Walk> {
        let mut todo: VecDeque<Vec<u8>> = path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        let mut cur: Vec<u8> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            match &c[..] {
                b"" | b"." => continue,
                // The root is its own parent.
                b".." => {
                    cur.truncate(split(&cur).0.len());
                    continue;
                }
                _ => {}
            }
            let next = join(&cur, &c);
            match self.nodes.get(&next).map(|n| &n.kind) {
                Some(NodeKind::Dir) => cur = next,
                Some(NodeKind::Symlink(target)) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        bail!(
                            "{}: more than {MAX_HOPS} symbolic links on the way",
                            display(path)
                        );
                    }
                    if target.starts_with(b"/") {
                        cur.clear();
                    }
                    for t in target.split(|&b| b == b'/').rev() {
                        todo.push_front(t.to_vec());
                    }
                }
                Some(_) => return Ok(Walk::NotDir(next)),
                None => return Ok(Walk::Missing(next)),
            }
        }
        Ok(Walk::Dir(cur))
    }

    /// The node at `key` (a spec path, see `spec::path_key`): parents are followed through
    /// symlinks, the last component is not (a symlink is asserted on as itself).
    pub fn lookup(&self, key: &[u8]) -> Result<Lookup<'_>> {
        let (parent, name) = split(key);
        let at = match self.resolve_dir(parent)? {
            Walk::Dir(d) => join(&d, name),
            Walk::Missing(at) => return Ok(self.missing(at)),
            Walk::NotDir(at) => {
                return Ok(Lookup::Missing {
                    at,
                    why: Missing::NotDir,
                });
            }
        };
        match self.nodes.get(&at) {
            Some(node) => Ok(Lookup::Found { key: at, node }),
            None => Ok(self.missing(at)),
        }
    }

    fn missing(&self, at: Vec<u8>) -> Lookup<'_> {
        let why = match self.removed.get(&at) {
            Some(&layer) => Missing::RemovedBy(layer),
            None => Missing::Never,
        };
        Lookup::Missing { at, why }
    }

    /// Every path of the image and what is there, in path order.
    pub fn nodes(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        self.nodes.iter().map(|(k, n)| (k.as_slice(), n))
    }

    /// Every path, for tests.
    #[cfg(test)]
    pub fn keys(&self) -> Vec<String> {
        self.nodes.keys().map(|k| display(k)).collect()
    }
}
