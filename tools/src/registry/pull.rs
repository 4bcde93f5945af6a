//! `pull`, `fetch-blob` and `resolve`. Content is only ever addressed by digest and checked
//! against it; a tag is resolved (for the user to pin) but never trusted for content.

use super::client::{
    Client, HttpError, MANIFEST_ACCEPT, Scope, header, read_manifest, status_error,
};
use crate::oci::reference::{Reference, Repo};
use crate::oci::digest::{Digest, HashingWriter};
use crate::io::output::{self, AtomicFile, BUF_SIZE};
use crate::oci::spec::{self, MT_DOCKER_LIST, MT_INDEX, Platform};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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
        let mut r = c.get(&scope, &url, &[("accept", MANIFEST_ACCEPT)])?;
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
        let r = c.request(&scope, "HEAD", &url, &accept, super::client::Body::Empty)?;
        if r.status() == 200
            && let Some(d) =
                header(&r, "docker-content-digest").and_then(|v| Digest::parse(v.trim()).ok())
        {
            return Ok(d);
        }
        // No usable HEAD (or an error, whose explanation only a GET carries): GET and hash.
        let mut r = c.get(&scope, &url, &accept)?;
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

fn is_index(m: &Map<String, Value>) -> bool {
    match m.get("mediaType").and_then(Value::as_str) {
        Some(mt) => mt == MT_INDEX || mt == MT_DOCKER_LIST,
        None => m.contains_key("manifests") && !m.contains_key("config"),
    }
}

/// The child manifest of an index for `want`; attestations (`unknown/unknown`) are skipped.
pub fn select_platform(index: &Map<String, Value>, want: &Platform) -> Result<Digest> {
    let children = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("index has no \"manifests\" array"))?;
    let mut available = Vec::new();
    for c in children {
        let Some(p) = c.get("platform") else { continue };
        let have = Platform::from_json(p);
        if have.os == "unknown" || have.os.is_empty() {
            continue;
        }
        if want.matches(&have) {
            let d = spec::Descriptor::from_value(c).context("index entry")?;
            return Ok(d.digest);
        }
        available.push(have.to_string());
    }
    bail!(
        "no manifest for platform {want}; available: {}",
        if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        }
    )
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
    let top_m = spec::parse_json_object(&top_bytes)
        .with_context(|| format!("malformed manifest {repo}@{top}"))?;
    if all_platforms && is_index(&top_m) {
        return pull_all(&c, repo, &top, &top_bytes, &top_m, output_dir);
    }
    let (index, manifest_digest, manifest) = if is_index(&top_m) {
        let child =
            select_platform(&top_m, &want).with_context(|| format!("in index {repo}@{top}"))?;
        (Some(top_bytes), child, get_manifest(&c, repo, &child)?)
    } else {
        (None, top, top_bytes)
    };
    let index_digest = index.as_ref().map(|_| top);
    let files = pull_image(&c, repo, &manifest_digest, manifest, index_digest)?;
    std::fs::create_dir_all(output_dir)
        .with_context(|| format!("cannot create {}", output_dir.display()))?;
    let mut outs: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|(n, b)| (output_dir.join(n), b))
        .collect();
    if let Some(i) = index {
        outs.push((output_dir.join("index.json"), i));
    }
    write_outputs(&outs)?;
    println!("{manifest_digest}");
    Ok(())
}

fn write_outputs(outs: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let refs: Vec<(&Path, &[u8])> = outs
        .iter()
        .map(|(p, b)| (p.as_path(), b.as_slice()))
        .collect();
    output::write_all_atomic(&refs)
}

/// `--all-platforms` on an index: index.json, one directory per platform (attestations
/// skipped) holding what a single-image pull writes, and platforms.json listing them.
fn pull_all(
    c: &Client,
    repo: &Repo,
    top: &Digest,
    top_bytes: &[u8],
    index: &Map<String, Value>,
    output_dir: &Path,
) -> Result<()> {
    let bad = || format!("malformed index {repo}@{top}");
    let entries = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("index has no \"manifests\" array"))
        .with_context(bad)?;
    let mut outs = vec![(output_dir.join("index.json"), top_bytes.to_vec())];
    let mut listing = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let p = Platform::from_json(e.get("platform").unwrap_or(&Value::Null));
        if p.os == "unknown" || p.os.is_empty() || p.arch.is_empty() {
            continue;
        }
        let d = spec::Descriptor::from_value(e)
            .with_context(|| format!("manifests[{i}]"))
            .with_context(bad)?;
        let dir = p.dir_name();
        if listing.iter().any(|l: &Value| l["dir"] == dir.as_str()) {
            bail!("index {repo}@{top} lists platform {p} twice");
        }
        let manifest = get_manifest(c, repo, &d.digest)?;
        let files = pull_image(c, repo, &d.digest, manifest, Some(*top))?;
        let sub = output_dir.join(&dir);
        std::fs::create_dir_all(&sub)
            .with_context(|| format!("cannot create {}", sub.display()))?;
        outs.extend(files.into_iter().map(|(n, b)| (sub.join(n), b)));
        let mut l =
            json!({"dir": dir, "os": p.os, "architecture": p.arch, "digest": d.digest.to_string()});
        if let Some(v) = &p.variant {
            l["variant"] = v.as_str().into();
        }
        listing.push(l);
    }
    outs.push((
        output_dir.join("platforms.json"),
        spec::canonical(&Value::Array(listing)),
    ));
    write_outputs(&outs)?;
    println!("{top}");
    Ok(())
}

/// Fetches one image's config and returns the files a pull writes for it: manifest.json,
/// config.json, layers.json, image.json.
fn pull_image(
    c: &Client,
    repo: &Repo,
    manifest_digest: &Digest,
    manifest: Vec<u8>,
    index_digest: Option<Digest>,
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let m = spec::parse_json_object(&manifest)
        .with_context(|| format!("malformed manifest {repo}@{manifest_digest}"))?;
    if is_index(&m) {
        bail!("{repo}@{manifest_digest} is a nested index, which is not supported");
    }
    let bad = || format!("manifest {repo}@{manifest_digest}");
    let config_desc = spec::manifest_config(&m).with_context(bad)?;
    let layers = spec::manifest_layers(&m).with_context(bad)?;
    let config = fetch_small_blob(c, repo, &config_desc.digest, config_desc.size)?;
    let cfg = spec::parse_json_object(&config)
        .with_context(|| format!("malformed config {repo}@{}", config_desc.digest))?;
    let diff_ids = cfg
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if diff_ids.len() != layers.len() {
        bail!(
            "config {repo}@{} lists {} diff_ids for {} layers",
            config_desc.digest,
            diff_ids.len(),
            layers.len()
        );
    }
    let layers_json: Vec<Value> = layers
        .iter()
        .zip(&diff_ids)
        .map(|(l, id)| json!({"digest": l.digest.to_string(), "diff_id": id, "media_type": l.media_type, "size": l.size}))
        .collect();
    let platform = Platform::from_json(&Value::Object(cfg.clone()));
    let image_json = json!({
        "registry": repo.registry,
        "repository": repo.repository,
        "manifest_digest": manifest_digest.to_string(),
        "index_digest": index_digest.map(|d| d.to_string()),
        "platform": platform.to_string(),
    });
    Ok(vec![
        ("manifest.json", manifest),
        ("config.json", config),
        ("layers.json", spec::canonical(&Value::Array(layers_json))),
        ("image.json", spec::canonical(&image_json)),
    ])
}

/// A config-sized blob, in memory, verified.
fn fetch_small_blob(c: &Client, repo: &Repo, d: &Digest, size: u64) -> Result<Vec<u8>> {
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
    let scope = Scope::pull(&repo.registry, &repo.repository);
    let url = format!(
        "{}/v2/{}/blobs/{d}",
        c.base_url(&repo.registry),
        repo.repository
    );
    c.retry(&|| format!("cannot fetch blob {repo}@{d}"), || {
        let mut r = c.get(&scope, &url, &[])?;
        if r.status() != 200 {
            return Err(status_error(&mut r));
        }
        let w = start().map_err(HttpError::Fatal)?;
        let mut hw = HashingWriter::new(w);
        let mut body = r.into_body().into_reader().take(size + 1);
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

    fn idx() -> Map<String, Value> {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        spec::parse_json_object(
            json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
                {"mediaType": spec::MT_MANIFEST, "digest": d('a'), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": spec::MT_MANIFEST, "digest": d('b'), "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": spec::MT_MANIFEST, "digest": d('c'), "size": 1, "platform": {"os": "unknown", "architecture": "unknown"}},
                {"mediaType": spec::MT_MANIFEST, "digest": d('e'), "size": 1, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            ]}).to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn platform_selection() {
        let i = idx();
        let sel = |p: &str| {
            select_platform(&i, &Platform::parse(p).unwrap()).map(|d| d.hex()[..1].to_string())
        };
        assert_eq!(sel("linux/amd64").unwrap(), "a");
        assert_eq!(sel("linux/arm64").unwrap(), "b");
        assert_eq!(sel("linux/arm64/v8").unwrap(), "b");
        assert_eq!(sel("linux/arm/v7").unwrap(), "e");
        let e = sel("windows/amd64").unwrap_err().to_string();
        assert_eq!(
            e,
            "no manifest for platform windows/amd64; available: linux/amd64, linux/arm64/v8, linux/arm/v7"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(is_index(&i));
    }
}
