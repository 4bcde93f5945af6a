//! `index`: assembles a multi-platform OCI image index from the manifest descriptors that
//! `manifest` writes (one per platform, in index order).

use crate::io::output;
use crate::oci::{Descriptor, Digest, ImageIndex, Platform, json};
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The canonical index over `descriptors` (name for messages, descriptor), in the given
/// order; `annotations` are `KEY=VALUE`.
pub fn assemble(descriptors: &[(String, Descriptor)], annotations: &[String]) -> Result<Vec<u8>> {
    let mut seen: Vec<(&Platform, &str)> = Vec::new();
    for (name, d) in descriptors {
        let Some(p) = &d.platform else {
            bail!("descriptor {name} has no platform");
        };
        if p.os.is_empty() || p.architecture.is_empty() {
            bail!("descriptor {name} has a platform without os or architecture");
        }
        if let Some((_, other)) = seen.iter().find(|(q, _)| q.same(p)) {
            bail!("platform {p} appears twice: in {other} and in {name}");
        }
        seen.push((p, name));
    }
    let mut a = BTreeMap::new();
    for kv in annotations {
        let (k, v) = kv
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| anyhow!("--annotation {kv:?} is not KEY=VALUE"))?;
        a.insert(k.to_string(), v.to_string());
    }
    let manifests = descriptors.iter().map(|(_, d)| d.clone()).collect();
    Ok(ImageIndex::new(manifests, a).to_bytes())
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
            json::read::<Descriptor>(p, "manifest descriptor").map(|d| (p.display().to_string(), d))
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
    use crate::oci::media_type;
    use serde_json::Value;
    use serde_json::json as value;

    fn desc(c: char, os: &str, arch: &str, variant: Option<&str>) -> (String, Descriptor) {
        let digest = Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap();
        let d = Descriptor::new(media_type::MANIFEST, digest, 10)
            .with_platform(Platform::new(os, arch, variant));
        (format!("{c}.json"), d)
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
        assert_eq!(v["mediaType"], media_type::INDEX);
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
            value!({"org.opencontainers.image.source": "https://x/y=z"})
        );
        assert_eq!(out, json::canonical(&v), "canonical");
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
        no_platform.1.platform = None;
        let e = assemble(&[no_platform], &[]).unwrap_err().to_string();
        assert_eq!(e, "descriptor d.json has no platform");
    }

    #[test]
    fn run_writes_index_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let (_, a) = desc('a', "linux", "amd64", None);
        let (_, b) = desc('b', "linux", "arm64", None);
        std::fs::write(p("a.json"), json::canonical(&a)).unwrap();
        std::fs::write(p("b.json"), json::canonical(&b)).unwrap();
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
