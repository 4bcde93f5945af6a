//! `image-test`: assertions on an image's files and config (`spec`), checked by reading the
//! layers themselves, no container engine needed.
//!
//! The layers are applied in order into one tree (`tree`), from their entries' metadata; file
//! contents are read afterwards, only for `contains`/`matches`, only from the layers that hold
//! them. Every failed assertion is reported, each naming the image, the path and the layer
//! (index and digest) that last wrote it or removed it.
//!
//! `run` assertions, if any, are the exception: their commands run in containers of the image
//! by a container engine (`container`).

pub mod container;
pub mod spec;
pub mod tree;

use crate::import::foreign_layer::read_entries;
use crate::input::{BlobSource, Image, Input};
use crate::io::compress::Decompressor;
use crate::io::untrusted::{shown, shown_str, terminal_safe};
use crate::oci::Platform;
use crate::oci::config::{diff_ids, run_config};
use anyhow::{Context, Result, bail};
use container::Runner;
use spec::{ConfigAssertions, FileAssertions, FileType, Spec, path_key};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use tree::{Lookup, Missing, Node, NodeKind, Tree, display};

/// The most of one file that `contains` and `matches` read into memory.
pub const MAX_CONTENT: u64 = 64 << 20;

/// The outcome of a spec on one image.
#[derive(Debug, Default)]
pub struct Report {
    /// Failed assertions (a missing path fails all of its own at once).
    pub failed: usize,
    /// One line per failure.
    pub messages: Vec<String>,
    /// What the test log shows after the failures, e.g. a failed command's output.
    pub notes: Vec<String>,
}

impl Report {
    fn fail(&mut self, count: usize, message: String) {
        self.failed += count;
        self.messages.push(message);
    }
}

/// Checks `spec` on the image, or on each image of an index (only the one for `platform`,
/// if given); prints every failure, and fails if there was one. `run` assertions run on one
/// image, by `runner`: the image, `platform`'s, or else the index's for this machine.
pub fn run(input: Input, spec: &Spec, platform: Option<&Platform>, runner: &Runner) -> Result<()> {
    let runs_on = match (&input, platform) {
        _ if spec.run.is_empty() => None,
        (Input::Index(x), None) => Some(
            Platform::host()
                .select_or_explain(&x.platforms, "the index")
                .context("`run` runs the index's image for this machine (or for `platform`)")?,
        ),
        _ => Some(0),
    };
    let images: Vec<(String, Image)> = match (input, platform) {
        (Input::Image(i), None) => vec![(spec.image.clone(), i)],
        (Input::Image(_), Some(_)) => {
            bail!(
                "{} is a single image: a platform picks an image of an index",
                spec.image
            )
        }
        (Input::Index(mut x), Some(p)) => {
            let i = x.position(p)?;
            let name = format!("{} ({})", spec.image, x.platforms[i]);
            vec![(name, x.children.swap_remove(i))]
        }
        (Input::Index(x), None) => x
            .platforms
            .iter()
            .zip(x.children)
            .map(|(p, i)| (format!("{} ({p})", spec.image), i))
            .collect(),
    };
    let (mut failed, mut total) = (0, 0);
    for (i, (name, image)) in images.iter().enumerate() {
        let mut report = check(image, spec).with_context(|| format!("image {name}"))?;
        total += spec.assertion_count();
        if runs_on == Some(i) {
            runner
                .check(image, &spec.image, &spec.run, &mut report)
                .with_context(|| format!("image {name}"))?;
            total += spec.run_assertion_count();
        }
        for m in &report.messages {
            eprintln!("{}", terminal_safe(&format!("FAIL {name}: {m}")));
        }
        for n in &report.notes {
            eprintln!("{}", terminal_safe(n));
        }
        failed += report.failed;
    }
    let names: Vec<&str> = images.iter().map(|(n, _)| n.as_str()).collect();
    if failed > 0 {
        bail!(
            "{failed} of {total} assertions failed on {}",
            names.join(", ")
        );
    }
    println!("{total} assertions passed on {}", names.join(", "));
    Ok(())
}

/// Checks `spec` on one image. An error (as opposed to a failure in the report) means the
/// image could not be read.
pub fn check(image: &Image, spec: &Spec) -> Result<Report> {
    let mut report = Report::default();
    check_config(image, &spec.config, &mut report)?;
    if !spec.files.is_empty() {
        let tree = flatten(image)?;
        check_files(image, &tree, &spec.files, &mut report)?;
    }
    Ok(report)
}

/// How messages name layer `i`.
fn layer_name(image: &Image, i: usize) -> String {
    format!("layers[{i}] {}", image.parsed.layers[i].digest)
}

/// Applies every layer, in order, into one tree; each layer's tar must have the diff_id the
/// (digest-checked) config lists for it, so what is asserted on is what the image holds.
pub fn flatten(image: &Image) -> Result<Tree> {
    let remote: Vec<String> = image
        .blobs
        .iter()
        .enumerate()
        .filter_map(|(i, b)| match b {
            BlobSource::Remote(repo) => Some(format!("{} (in {repo})", layer_name(image, i))),
            BlobSource::Local(_) | BlobSource::Cas(_) => None,
        })
        .collect();
    if !remote.is_empty() {
        bail!(
            "file assertions read every layer, but these are not local: {}; image_test \
             downloads a pulled image's layers when it has file assertions (by hand: pass \
             their blobs with --blob)",
            remote.join(", ")
        );
    }
    let cfg = crate::oci::json::parse_object(&image.config)?;
    let want = diff_ids(&cfg)?;
    if want.len() != image.blobs.len() {
        bail!(
            "the config lists {} diff_ids for {} layers",
            want.len(),
            image.blobs.len()
        );
    }
    let mut tree = Tree::default();
    for (i, blob) in image.blobs.iter().enumerate() {
        let stored = blob.stored().expect("remote layers are refused above");
        let name = || format!("{} ({stored})", layer_name(image, i));
        let layer = stored
            .open(&image.parsed.layers[i])
            .and_then(Decompressor::new)
            .with_context(name)?;
        let (diff_id, items) = read_entries(layer).with_context(name)?;
        if diff_id != want[i] {
            bail!(
                "{}: its tar has digest {diff_id}, but the config's rootfs.diff_ids[{i}] is {}",
                name(),
                want[i]
            );
        }
        tree.apply(i, items).with_context(name)?;
    }
    Ok(tree)
}

/// The failure of an exact-value assertion, if it was made and fails.
fn differs<T: PartialEq + std::fmt::Debug>(
    field: &str,
    want: &Option<T>,
    have: &T,
) -> Option<String> {
    match want {
        Some(want) if want != have => Some(format!("{field} is {have:?}, want {want:?}")),
        _ => None,
    }
}

fn check_config(image: &Image, want: &ConfigAssertions, report: &mut Report) -> Result<()> {
    let cfg = crate::oci::json::parse_object(&image.config)?;
    let have = run_config(&cfg)?;
    let mut fail = |m: String| report.fail(1, format!("config: {m}"));
    let exact = [
        differs("entrypoint", &want.entrypoint, &have.entrypoint),
        differs("cmd", &want.cmd, &have.cmd),
        differs("user", &want.user, &have.user),
        differs("working_dir", &want.working_dir, &have.working_dir),
    ];
    for m in exact.into_iter().flatten() {
        fail(m);
    }
    // Later entries win, as when a container starts.
    let env: HashMap<&str, &str> = have
        .env
        .iter()
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect();
    let have_labels: HashMap<&str, &str> = have
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (field, want, have) in [
        ("env", &want.env, &env),
        ("labels", &want.labels, &have_labels),
    ] {
        for (k, v) in want {
            match have.get(k.as_str()) {
                None => fail(format!("{field} {k:?} is not set, want {v:?}")),
                Some(h) if h != v => fail(format!("{field} {k:?} is {h:?}, want {v:?}")),
                Some(_) => {}
            }
        }
    }
    for port in &want.exposed_ports {
        let port = if port.contains('/') {
            port.clone()
        } else {
            format!("{port}/tcp")
        };
        if !have.exposed_ports.contains_key(&port) {
            let exposed: Vec<&String> = have.exposed_ports.keys().collect();
            fail(format!(
                "exposed_ports: {port:?} is not exposed (exposed: {exposed:?})"
            ));
        }
    }
    if let Some(p) = &want.platform
        && !image.platform.same(p)
    {
        fail(format!("platform is {}, want {p}", image.platform));
    }
    Ok(())
}

fn type_name(node: &Node) -> &'static str {
    match (&node.kind, &node.hardlink) {
        (NodeKind::File { .. }, Some(_)) => FileType::Hardlink.name(),
        (NodeKind::File { .. }, None) => FileType::File.name(),
        (NodeKind::Dir, _) => FileType::Dir.name(),
        (NodeKind::Symlink(_), _) => FileType::Symlink.name(),
        (NodeKind::Fifo, _) => FileType::Fifo.name(),
    }
}

fn is_type(node: &Node, t: FileType) -> bool {
    match t {
        // A hard link is a regular file too.
        FileType::File => matches!(node.kind, NodeKind::File { .. }),
        FileType::Hardlink => node.hardlink.is_some(),
        FileType::Dir => node.kind == NodeKind::Dir,
        FileType::Symlink => matches!(node.kind, NodeKind::Symlink(_)),
        FileType::Fifo => node.kind == NodeKind::Fifo,
    }
}

/// Where a file's bytes are: (layer, offset in its tar, size).
type Range = (usize, u64, u64);

fn check_files(
    image: &Image,
    tree: &Tree,
    files: &BTreeMap<String, FileAssertions>,
    report: &mut Report,
) -> Result<()> {
    // Looked up first, so that the contents wanted are read in one pass per layer.
    let mut looked_up = Vec::new();
    let mut wanted: BTreeSet<Range> = BTreeSet::new();
    for (path, a) in files {
        let key = path_key(path)?;
        let found = tree.lookup(&key)?;
        if let Lookup::Found { node, .. } = &found
            && let NodeKind::File {
                layer,
                offset,
                size,
            } = node.kind
            && a.needs_content()
            && size <= MAX_CONTENT
        {
            wanted.insert((layer, offset, size));
        }
        looked_up.push((path, a, key, found));
    }
    let contents = read_contents(image, &wanted)?;
    for (path, a, key, found) in looked_up {
        match found {
            Lookup::Found { key: at, node } => {
                let mut place = format!("written by {}", layer_name(image, node.layer));
                if at != key {
                    place = format!("at {}, {place}", display(&at));
                }
                let mut problems = Vec::new();
                check_node(a, node, &contents, &mut problems);
                for p in problems {
                    report.fail(1, format!("{path}: {p} ({place})"));
                }
            }
            Lookup::Missing { .. } if a.absent => {}
            Lookup::Missing { at, why } => {
                let reason = match why {
                    Missing::Never => "no layer has it".to_string(),
                    Missing::RemovedBy(l) => format!("removed by {}", layer_name(image, l)),
                    Missing::NotDir => "not a directory".to_string(),
                };
                let reason = if at == key {
                    reason
                } else {
                    format!("{}: {reason}", display(&at))
                };
                // Every assertion of a missing path fails with it.
                report.fail(
                    a.assertion_count(),
                    format!("{path}: does not exist ({reason})"),
                );
            }
        }
    }
    Ok(())
}

/// What is wrong with `node` by `a`, one line per failed assertion.
fn check_node(
    a: &FileAssertions,
    node: &Node,
    contents: &HashMap<Range, Vec<u8>>,
    problems: &mut Vec<String>,
) {
    if a.absent {
        problems.push(format!("exists (a {}), want absent", type_name(node)));
        return;
    }
    if let Some(t) = a.kind
        && !is_type(node, t)
    {
        problems.push(format!("is a {}, want a {}", type_name(node), t.name()));
    }
    if let Some(m) = a.mode
        && node.mode & 0o7777 != m.0
    {
        problems.push(format!(
            "mode is {:04o}, want {:04o}",
            node.mode & 0o7777,
            m.0
        ));
    }
    for (field, want, have) in [("uid", a.uid, node.uid), ("gid", a.gid, node.gid)] {
        if let Some(want) = want
            && want != have
        {
            problems.push(format!("{field} is {have}, want {want}"));
        }
    }
    for (field, want, have) in [
        ("uname", &a.uname, &node.uname),
        ("gname", &a.gname, &node.gname),
    ] {
        if let Some(want) = want
            && want.as_bytes() != have.as_slice()
        {
            problems.push(format!(
                "{field} is \"{}\", want \"{}\"",
                shown(have),
                shown_str(want)
            ));
        }
    }
    let file = match node.kind {
        NodeKind::File {
            layer,
            offset,
            size,
        } => Some((layer, offset, size)),
        _ => None,
    };
    let not_a_file = |what: &str| format!("{what}: is a {}, not a file", type_name(node));
    if let Some(want) = a.size {
        match file {
            Some((_, _, size)) if size != want => {
                problems.push(format!("size is {size} bytes, want {want}"))
            }
            Some(_) => {}
            None => problems.push(not_a_file("size")),
        }
    }
    if let Some(want) = &a.link_target {
        let have = match (&node.kind, &node.hardlink) {
            (_, Some(target)) => Some(display(target)),
            (NodeKind::Symlink(t), None) => Some(shown(t)),
            _ => None,
        };
        match have {
            Some(have) if have != shown_str(want) => problems.push(format!(
                "link_target is \"{have}\", want \"{}\"",
                shown_str(want)
            )),
            Some(_) => {}
            None => problems.push(format!("link_target: is a {}, not a link", type_name(node))),
        }
    }
    if !a.needs_content() {
        return;
    }
    let content = match file {
        Some(range) if range.2 > MAX_CONTENT => {
            let n = a.contains.len() + a.matches.len();
            problems.extend(std::iter::repeat_n(
                format!(
                    "content: {} bytes, more than the {} MiB that contains/matches read",
                    range.2,
                    MAX_CONTENT >> 20
                ),
                n,
            ));
            return;
        }
        Some(range) => &contents[&range],
        None => {
            let n = a.contains.len() + a.matches.len();
            problems.extend(std::iter::repeat_n(not_a_file("content"), n));
            return;
        }
    };
    for s in &a.contains {
        if !contains(content, s) {
            problems.push(format!("does not contain \"{}\"", shown_str(s)));
        }
    }
    for p in &a.matches {
        if !p.0.is_match(content) {
            problems.push(format!("does not match /{}/", shown_str(p.0.as_str())));
        }
    }
}

/// Whether `haystack` contains `s`.
fn contains(haystack: &[u8], s: &str) -> bool {
    // A literal pattern: the regex crate searches it with memchr's fast substring search.
    let literal = regex::bytes::Regex::new(&regex::escape(s)).expect("an escaped literal");
    literal.is_match(haystack)
}

/// The bytes of each wanted file, read in one pass over each layer that holds some.
fn read_contents(image: &Image, wanted: &BTreeSet<Range>) -> Result<HashMap<Range, Vec<u8>>> {
    let mut out = HashMap::new();
    let mut by_layer: BTreeMap<usize, Vec<Range>> = BTreeMap::new();
    for &r in wanted {
        by_layer.entry(r.0).or_default().push(r);
    }
    for (layer, ranges) in by_layer {
        let stored = image.blobs[layer]
            .stored()
            .expect("flatten refuses remote layers");
        let ctx = || format!("{} ({stored})", layer_name(image, layer));
        let mut r = stored
            .open(&image.parsed.layers[layer])
            .and_then(Decompressor::new)
            .with_context(ctx)?;
        let mut pos = 0;
        // In offset order (the set's), so the stream is read once; entries do not overlap.
        for range @ (_, offset, size) in ranges {
            io::copy(&mut (&mut r).take(offset - pos), &mut io::sink()).with_context(ctx)?;
            let mut buf = Vec::with_capacity(size as usize);
            (&mut r)
                .take(size)
                .read_to_end(&mut buf)
                .with_context(ctx)?;
            if buf.len() as u64 != size {
                bail!("{}: the layer ended inside a file", ctx());
            }
            pos = offset + size;
            out.insert(range, buf);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
