//! Multi-platform images: `index` assembles an OCI image index from the descriptors `manifest`
//! writes, and *child files* tell layout, tarball, load and push where each platform's
//! manifest, config and layer blobs are.

use crate::oci::digest::Digest;
use crate::layout::Resolver;
use crate::io::output;
use crate::registry::push::BlobSource;
use crate::oci::spec::{self, Descriptor, Platform};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// One platform's image, as listed by a child file
/// `{"manifest": PATH, "config": PATH, "blobs": [PATH or "remote:REGISTRY/REPOSITORY", ...]}`.
#[derive(Debug, Clone)]
pub struct ChildFile {
    /// The child file itself, for error messages.
    pub path: PathBuf,
    pub manifest: PathBuf,
    pub config: PathBuf,
    /// In manifest layer order, like `--blob`.
    pub blobs: Vec<BlobSource>,
}

impl ChildFile {
    /// Reads a child file; every path (the file's own too) goes through `resolver`.
    pub fn read(path: &Path, resolver: &Resolver) -> Result<ChildFile> {
        let resolved = resolver.resolve(path)?;
        let m = spec::read_json_object(&resolved, "child file")?;
        let bad = || format!("malformed child file {}", path.display());
        let s = |k: &str| -> Result<PathBuf> {
            let v = m
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("missing string field {k:?}"))
                .with_context(bad)?;
            resolver.resolve(Path::new(v))
        };
        let (manifest, config) = (s("manifest")?, s("config")?);
        let blobs = match m.get("blobs") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|b| {
                    let b = b
                        .as_str()
                        .ok_or_else(|| anyhow!("\"blobs\" must be a list of strings"))
                        .with_context(bad)?;
                    match BlobSource::parse(b).with_context(bad)? {
                        BlobSource::Local(p) => Ok(BlobSource::Local(resolver.resolve(&p)?)),
                        remote => Ok(remote),
                    }
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(anyhow!("\"blobs\" is not a list")).with_context(bad),
        };
        Ok(ChildFile {
            path: resolved,
            manifest,
            config,
            blobs,
        })
    }

    /// The layer blobs as files: a layout cannot hold a blob that is only in a registry.
    pub fn local_blobs(&self) -> Result<Vec<PathBuf>> {
        self.blobs
            .iter()
            .map(|b| match b {
                BlobSource::Local(p) => Ok(p.clone()),
                BlobSource::Remote(r) => bail!(
                    "child file {} has a layer that is only in {r}; layouts, tarballs and load need every layer locally",
                    self.path.display()
                ),
            })
            .collect()
    }
}

/// Checks that the index at `index_path` lists exactly these child manifests (bytes), in this
/// order, and returns each entry's platform.
pub fn check_children(
    index: &[u8],
    index_path: &Path,
    children: &[(&Path, &[u8])],
) -> Result<Vec<Platform>> {
    let bad = || format!("malformed index {}", index_path.display());
    let m = spec::parse_json_object(index).with_context(bad)?;
    let entries = m
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no \"manifests\" array"))
        .with_context(bad)?;
    if entries.len() != children.len() {
        bail!(
            "index {} lists {} manifests but {} --child files were given",
            index_path.display(),
            entries.len(),
            children.len()
        );
    }
    let mut platforms = Vec::new();
    for (i, (e, (path, manifest))) in entries.iter().zip(children).enumerate() {
        let d = Descriptor::from_value(e)
            .with_context(|| format!("manifests[{i}]"))
            .with_context(bad)?;
        let got = Digest::of(manifest);
        if got != d.digest || manifest.len() as u64 != d.size {
            bail!(
                "manifest {} (child {}) has digest {got} and size {}, but index {} expects {} and size {} there",
                path.display(),
                i + 1,
                manifest.len(),
                index_path.display(),
                d.digest,
                d.size
            );
        }
        platforms.push(Platform::from_json(
            e.get("platform").unwrap_or(&Value::Null),
        ));
    }
    Ok(platforms)
}

/// Builds the canonical index from manifest descriptors (name, descriptor), in the given order.
pub fn assemble(
    descriptors: &[(String, Map<String, Value>)],
    annotations: &[String],
) -> Result<Vec<u8>> {
    let mut seen: Vec<(Platform, &str)> = Vec::new();
    let mut manifests = Vec::new();
    for (name, d) in descriptors {
        let v = Value::Object(d.clone());
        Descriptor::from_value(&v).with_context(|| format!("descriptor {name}"))?;
        let p = match d.get("platform") {
            Some(p @ Value::Object(_)) => Platform::from_json(p),
            _ => bail!("descriptor {name} has no platform"),
        };
        if p.os.is_empty() || p.arch.is_empty() {
            bail!("descriptor {name} has a platform without os or architecture");
        }
        if let Some((_, other)) = seen.iter().find(|(q, _)| *q == p) {
            bail!("platform {p} appears twice: in {other} and in {name}");
        }
        seen.push((p, name));
        manifests.push(v);
    }
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": spec::MT_INDEX,
        "manifests": manifests,
    });
    let mut a = Map::new();
    for kv in annotations {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow!("--annotation {kv:?} is not KEY=VALUE"))?;
        a.insert(k.into(), v.into());
    }
    if !a.is_empty() {
        index["annotations"] = Value::Object(a);
    }
    Ok(spec::canonical(&index))
}

pub struct IndexOptions {
    pub child_descriptors: Vec<PathBuf>,
    pub annotations: Vec<String>,
    pub output_index: PathBuf,
    pub output_digest: PathBuf,
}

pub fn run(o: &IndexOptions) -> Result<()> {
    let descs = o
        .child_descriptors
        .iter()
        .map(|p| {
            spec::read_json_object(p, "manifest descriptor").map(|d| (p.display().to_string(), d))
        })
        .collect::<Result<Vec<_>>>()?;
    let index = assemble(&descs, &o.annotations)?;
    let digest = Digest::of(&index).to_string();
    output::write_all_atomic(&[
        (&o.output_index, &index),
        (&o.output_digest, digest.as_bytes()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(c: char, os: &str, arch: &str, variant: Option<&str>) -> (String, Map<String, Value>) {
        let mut p = json!({"os": os, "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        let d = json!({"digest": format!("sha256:{}", c.to_string().repeat(64)),
            "mediaType": spec::MT_MANIFEST, "size": 10, "platform": p});
        (format!("{c}.json"), d.as_object().unwrap().clone())
    }

    #[test]
    fn index_keeps_order_and_annotations() {
        let descs = [
            desc('b', "linux", "arm64", Some("v8")),
            desc('a', "linux", "amd64", None),
            desc('c', "linux", "arm", Some("v7")),
            desc('e', "linux", "arm", Some("v6")),
        ];
        let out = assemble(
            &descs,
            &["org.opencontainers.image.source=https://x/y=z".into()],
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["mediaType"], spec::MT_INDEX);
        assert_eq!(v["schemaVersion"], 2);
        let digests: Vec<char> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap().chars().last().unwrap())
            .collect();
        assert_eq!(digests, ['b', 'a', 'c', 'e']);
        assert_eq!(v["manifests"][0]["platform"]["variant"], "v8");
        assert_eq!(
            v["annotations"],
            json!({"org.opencontainers.image.source": "https://x/y=z"})
        );
        assert_eq!(out, spec::canonical(&v), "canonical");
        // No annotations: no "annotations" field.
        let v: Value = serde_json::from_slice(&assemble(&descs[..1], &[]).unwrap()).unwrap();
        assert!(v.get("annotations").is_none());
        assert!(assemble(&descs, &["novalue".into()]).is_err());
    }

    #[test]
    fn duplicate_or_missing_platforms_are_errors() {
        let descs = [
            desc('a', "linux", "amd64", None),
            desc('b', "linux", "arm64", None),
            desc('c', "linux", "amd64", None),
        ];
        let e = assemble(&descs, &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "platform linux/amd64 appears twice: in a.json and in c.json"
        );
        let mut no_platform = desc('d', "linux", "amd64", None);
        no_platform.1.remove("platform");
        let e = assemble(&[no_platform], &[]).unwrap_err().to_string();
        assert_eq!(e, "descriptor d.json has no platform");
    }

    #[test]
    fn run_writes_index_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let (_, a) = desc('a', "linux", "amd64", None);
        let (_, b) = desc('b', "linux", "arm64", None);
        std::fs::write(p("a.json"), spec::canonical(&Value::Object(a))).unwrap();
        std::fs::write(p("b.json"), spec::canonical(&Value::Object(b))).unwrap();
        run(&IndexOptions {
            child_descriptors: vec![p("a.json"), p("b.json")],
            annotations: vec![],
            output_index: p("index.json"),
            output_digest: p("digest"),
        })
        .unwrap();
        let index = std::fs::read(p("index.json")).unwrap();
        assert_eq!(
            std::fs::read_to_string(p("digest")).unwrap(),
            Digest::of(&index).to_string()
        );
    }
}
