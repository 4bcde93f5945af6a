//! `pull`, `fetch-blob` and `resolve`. Content is only ever addressed by digest and checked
//! against it; a tag is resolved (for the user to pin) but never trusted for content.

use super::client::{
    Client, HttpError, Scope, Transfer, body_reader, header, read_manifest, status_error,
};
use crate::build::layer::LayerMetadata;
use crate::io::output::{self, AtomicFile, BUF_SIZE};
use crate::oci::digest::HashingWriter;
use crate::oci::manifest::kind_of;
use crate::oci::media_type::{Kind, MANIFEST_ACCEPT};
use crate::oci::reference::{Reference, Repo};
use crate::oci::{Digest, ImageIndex, ImageManifest, Platform, json};
use crate::repo_dir::{self, ImageDir, Origin};
use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

fn manifest_url(c: &Client, repo: &Repo, reference: &str) -> String {
    format!(
        "{}/v2/{}/manifests/{reference}",
        c.base_url(&repo.registry),
        repo.repository
    )
}

/// GETs a manifest by digest and checks its bytes hash to that digest.
fn get_manifest(c: &Client, repo: &Repo, d: &Digest) -> Result<Vec<u8>> {
    let scope = Scope::pull(&repo.registry, &repo.repository);
    let url = manifest_url(c, repo, &d.to_string());
    let bytes = c.retry(&|| format!("cannot fetch manifest {repo}@{d}"), || {
        let mut r = c.get(
            &scope,
            &url,
            &[("accept", MANIFEST_ACCEPT)],
            Transfer::Small,
        )?;
        if r.status() != 200 {
            return Err(status_error(&mut r));
        }
        read_manifest(&mut r)
    })?;
    let got = Digest::of(&bytes);
    if got != *d {
        bail!("manifest {repo}@{d} from the registry has digest {got}: refusing it");
    }
    Ok(bytes)
}

/// The digest a tag currently points to.
pub fn resolve(c: &Client, r: &Reference) -> Result<Digest> {
    let repo = &r.repo;
    let tag = r.tag.as_deref().unwrap_or("latest");
    let scope = Scope::pull(&repo.registry, &repo.repository);
    let url = manifest_url(c, repo, tag);
    let accept = [("accept", MANIFEST_ACCEPT)];
    c.retry(&|| format!("cannot resolve {repo}:{tag}"), || {
        let r = c.request(
            &scope,
            "HEAD",
            &url,
            &accept,
            Transfer::Small,
            super::client::Body::Empty,
        )?;
        if r.status() == 200
            && let Some(d) =
                header(&r, "docker-content-digest").and_then(|v| Digest::parse(v.trim()).ok())
        {
            return Ok(d);
        }
        // No usable HEAD (or an error, whose explanation only a GET carries): GET and hash.
        let mut r = c.get(&scope, &url, &accept, Transfer::Small)?;
        if r.status() != 200 {
            return Err(status_error(&mut r));
        }
        Ok(Digest::of(&read_manifest(&mut r)?))
    })
}

pub fn run_resolve(reference: &str, insecure_http: bool) -> Result<()> {
    let r = Reference::parse(reference)?;
    let c = Client::new(insecure_http)?;
    let d = match r.digest {
        Some(d) => d,
        None => resolve(&c, &r)?,
    };
    println!("{d}");
    Ok(())
}

/// The image of an index for `want`; attestations are never chosen.
fn select_platform(index: &ImageIndex, want: &Platform) -> Result<Digest> {
    let platforms: Vec<Platform> = index
        .manifests
        .iter()
        .map(|d| d.platform.clone().unwrap_or_default())
        .collect();
    let i = want.select_or_explain(&platforms, "the index")?;
    Ok(index.manifests[i].digest)
}

fn parse_index(repo: &Repo, d: &Digest, bytes: &[u8]) -> Result<ImageIndex> {
    ImageIndex::parse(bytes).with_context(|| format!("malformed index {repo}@{d}"))
}

pub fn run_pull(
    image: &str,
    platform: &str,
    all_platforms: bool,
    output_dir: &Path,
    insecure_http: bool,
) -> Result<()> {
    let want = Platform::parse(platform)?;
    let r = Reference::parse(image)?;
    let c = Client::new(insecure_http)?;
    let Some(top) = r.digest else {
        let d = resolve(&c, &r)?;
        bail!(
            "pull needs a digest, not a tag: {image} currently resolves to {d}; pin it as {}@{d}",
            r.repo
        );
    };
    let repo = &r.repo;
    let top_bytes = get_manifest(&c, repo, &top)?;
    let is_index = kind_of(&top_bytes)
        .with_context(|| format!("malformed manifest {repo}@{top}"))?
        == Kind::Index;
    // Printed: the image's manifest digest, or with --all-platforms the index's.
    let mut printed = top;
    let files = if !is_index {
        pull_image(&c, repo, &top, top_bytes, None, None)?.files("")
    } else if all_platforms {
        pull_all(&c, repo, &top, &top_bytes)?
    } else {
        let index = parse_index(repo, &top, &top_bytes)?;
        let child =
            select_platform(&index, &want).with_context(|| format!("in index {repo}@{top}"))?;
        let manifest = get_manifest(&c, repo, &child)?;
        printed = child;
        let mut files = pull_image(&c, repo, &child, manifest, Some(top), None)?.files("");
        files.push((repo_dir::INDEX.into(), top_bytes));
        files
    };
    std::fs::create_dir_all(output_dir)
        .with_context(|| format!("cannot create {}", output_dir.display()))?;
    let outs: Vec<(std::path::PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|(n, b)| (output_dir.join(n), b))
        .collect();
    for (p, _) in &outs {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    let refs: Vec<(&Path, &[u8])> = outs
        .iter()
        .map(|(p, b)| (p.as_path(), b.as_slice()))
        .collect();
    output::write_all_atomic(&refs)?;
    println!("{printed}");
    Ok(())
}

/// `--all-platforms` on an index: every platform's image (attestations skipped).
fn pull_all(
    c: &Client,
    repo: &Repo,
    top: &Digest,
    top_bytes: &[u8],
) -> Result<Vec<repo_dir::File>> {
    let index = parse_index(repo, top, top_bytes)?;
    let kept: Vec<_> = index
        .manifests
        .iter()
        .filter_map(|d| Some((d, d.platform.clone().filter(Platform::is_image)?)))
        .collect();
    let platforms: Vec<Platform> = kept.iter().map(|(_, p)| p.clone()).collect();
    repo_dir::check_distinct(&platforms, &format!("index {repo}@{top}"))?;
    let images = kept
        .into_iter()
        .map(|(d, p)| {
            let manifest = get_manifest(c, repo, &d.digest)?;
            pull_image(c, repo, &d.digest, manifest, Some(*top), Some(p))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(repo_dir::index_files(top_bytes, &images))
}

/// Fetches one image's config; its layers stay in the registry.
fn pull_image(
    c: &Client,
    repo: &Repo,
    manifest_digest: &Digest,
    manifest: Vec<u8>,
    index_digest: Option<Digest>,
    platform: Option<Platform>,
) -> Result<ImageDir> {
    let what = || format!("manifest {repo}@{manifest_digest}");
    if kind_of(&manifest).with_context(what)? == Kind::Index {
        bail!("{repo}@{manifest_digest} is a nested index, which is not supported");
    }
    let m = ImageManifest::parse(&manifest).with_context(what)?;
    let config = fetch_small_blob(c, repo, &m.config.digest, m.config.size)?;
    let bad_config = || format!("malformed config {repo}@{}", m.config.digest);
    let cfg = json::parse_object(&config).with_context(bad_config)?;
    let diff_ids = crate::oci::config::diff_ids(&cfg).with_context(bad_config)?;
    if diff_ids.len() != m.layers.len() {
        bail!(
            "config {repo}@{} lists {} diff_ids for {} layers",
            m.config.digest,
            diff_ids.len(),
            m.layers.len()
        );
    }
    let layers = m
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| LayerMetadata {
            diff_id,
            digest: l.digest,
            media_type: l.media_type.clone(),
            size: l.size,
            // A seekable layer's TOC annotations stay with it, so lazy pulling still works.
            annotations: l.annotations.clone().unwrap_or_default(),
        })
        .collect();
    Ok(ImageDir {
        platform: platform.unwrap_or_else(|| Platform::of_config(&cfg)),
        manifest,
        config,
        layers,
        origin: Origin::Registry {
            registry: repo.registry.clone(),
            repository: repo.repository.clone(),
            index_digest,
        },
    })
}

/// The largest blob `fetch-blob` fetches (1 TiB): a bigger `--size` is a mistake, and a size
/// near `u64::MAX` would overflow.
pub const MAX_BLOB: u64 = 1 << 40;

/// The largest config `pull` reads into memory.
const MAX_CONFIG: u64 = 64 << 20;

/// A config-sized blob, in memory, verified.
fn fetch_small_blob(c: &Client, repo: &Repo, d: &Digest, size: u64) -> Result<Vec<u8>> {
    if size > MAX_CONFIG {
        bail!(
            "config {repo}@{d} has size {size}, more than the {MAX_CONFIG} bytes a config may have"
        );
    }
    let buf = std::cell::RefCell::new(Vec::new());
    fetch_blob_into(c, repo, d, size, &mut || {
        buf.borrow_mut().clear();
        Ok(VecWriter(&buf))
    })?;
    Ok(buf.into_inner())
}

/// Downloads a blob into the writer `start` returns (called afresh for every attempt),
/// checking its size and digest.
fn fetch_blob_into<W: Write>(
    c: &Client,
    repo: &Repo,
    d: &Digest,
    size: u64,
    start: &mut dyn FnMut() -> Result<W>,
) -> Result<()> {
    // One byte past the size is read, to tell a longer body from a complete one.
    let Some(read_limit) = size.checked_add(1).filter(|_| size <= MAX_BLOB) else {
        bail!("blob {repo}@{d}: size {size} is more than the {MAX_BLOB} bytes this tool fetches");
    };
    let scope = Scope::pull(&repo.registry, &repo.repository);
    let url = format!(
        "{}/v2/{}/blobs/{d}",
        c.base_url(&repo.registry),
        repo.repository
    );
    c.retry(&|| format!("cannot fetch blob {repo}@{d}"), || {
        let mut r = c.get(&scope, &url, &[], Transfer::Blob(size))?;
        if r.status() != 200 {
            return Err(status_error(&mut r));
        }
        let w = start().map_err(HttpError::Fatal)?;
        let mut hw = HashingWriter::new(w);
        let mut body = body_reader(r).take(read_limit);
        let mut buf = vec![0u8; 256 << 10];
        loop {
            // Read errors are the network's (retried); write errors are local (fatal).
            let n = body.read(&mut buf).map_err(|e| HttpError::Transport(e.to_string()))?;
            if n == 0 {
                break;
            }
            hw.write_all(&buf[..n])
                .map_err(|e| HttpError::Fatal(anyhow!("cannot write the blob: {e}")))?;
        }
        let (mut w, got, n) = hw.finish();
        w.flush().map_err(|e| HttpError::Fatal(anyhow!("{e}")))?;
        if n < size {
            return Err(HttpError::Transport(format!("body ended after {n} of {size} bytes")));
        }
        if n != size || got != *d {
            return Err(HttpError::Fatal(anyhow!(
                "the registry sent {n} bytes with digest {got}, expected {size} bytes with digest {d}"
            )));
        }
        Ok(())
    })
}

/// Writes into a shared buffer, so each attempt can start it over.
struct VecWriter<'a>(&'a std::cell::RefCell<Vec<u8>>);

impl Write for VecWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn run_fetch_blob(
    repository: &str,
    digest: &str,
    size: u64,
    out: &Path,
    insecure_http: bool,
) -> Result<()> {
    let repo = Repo::parse(repository)?;
    let d = Digest::parse(digest).map_err(|e| anyhow!(e))?;
    let c = Client::new(insecure_http)?;
    let mut file: Option<AtomicFile> = None;
    fetch_blob_into(&c, &repo, &d, size, &mut || {
        // A fresh temp file per attempt: a partial earlier attempt is simply dropped.
        file = Some(AtomicFile::create(out)?);
        let f = file
            .as_mut()
            .expect("just set")
            .file()
            .try_clone()
            .with_context(|| format!("cannot write {}", out.display()))?;
        Ok(BufWriter::with_capacity(BUF_SIZE, f))
    })?;
    file.expect("fetched into a file").commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Descriptor, media_type};

    #[test]
    fn platform_selection() {
        let d = |c: char| Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let entry = |c, p: &str| {
            Descriptor::new(media_type::MANIFEST, d(c), 1)
                .with_platform(Platform::parse(p).unwrap())
        };
        let i = ImageIndex::new(
            vec![
                entry('a', "linux/amd64"),
                entry('b', "linux/arm64/v8"),
                entry('c', "unknown/unknown"),
                entry('e', "linux/arm/v7"),
            ],
            Default::default(),
        );
        let sel = |p: &str| {
            select_platform(&i, &Platform::parse(p).unwrap()).map(|d| d.hex()[..1].to_string())
        };
        assert_eq!(sel("linux/amd64").unwrap(), "a");
        assert_eq!(sel("linux/amd64/v1").unwrap(), "a");
        assert_eq!(sel("linux/arm64").unwrap(), "b");
        assert_eq!(sel("linux/arm64/v8").unwrap(), "b");
        assert_eq!(sel("linux/arm/v7").unwrap(), "e");
        let e = sel("windows/amd64").unwrap_err().to_string();
        assert_eq!(
            e,
            "no image for platform windows/amd64 in the index; available: linux/amd64, linux/arm64/v8, linux/arm/v7"
        );
    }
}
