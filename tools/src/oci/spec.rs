//! OCI media types, descriptors and canonical JSON.
//!
//! JSON is handled as `serde_json::Value`: without serde_json's `preserve_order` feature its
//! maps are BTreeMaps, so serializing a Value always gives sorted keys. Unknown fields of base
//! images survive a read-modify-write untouched, which typed structs would drop.

use crate::oci::digest::Digest;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::path::Path;

pub const MT_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MT_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The OCI media type of a Docker schema 2 layer media type (the bytes are the same), so that
/// an OCI manifest built on a Docker-format base carries only OCI layer types.
pub fn oci_layer_media_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MT_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => MT_LAYER_ZSTD,
        "application/vnd.docker.image.rootfs.diff.tar" => MT_LAYER_TAR,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        other => other,
    }
}

pub const MT_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Compact JSON with sorted keys: the bytes that get hashed.
pub fn canonical(v: &Value) -> Vec<u8> {
    // Serializing a Value cannot fail (all map keys are strings).
    serde_json::to_vec(v).expect("serializing a serde_json::Value")
}

/// Reads a file as a JSON object, naming the file in every error.
pub fn read_json_object(path: &Path, what: &str) -> Result<Map<String, Value>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    parse_json_object(&bytes).with_context(|| format!("malformed {what} {}", path.display()))
}

pub fn parse_json_object(bytes: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(bytes).context("invalid JSON")? {
        Value::Object(m) => Ok(m),
        _ => bail!("expected a JSON object"),
    }
}

/// A content descriptor as found in manifests and indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    /// The descriptor as it was read, so optional fields (urls, annotations) are kept.
    pub raw: Value,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        let raw = json!({"mediaType": media_type, "digest": digest.to_string(), "size": size});
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            raw,
        }
    }

    pub fn from_value(v: &Value) -> Result<Descriptor> {
        let obj = v
            .as_object()
            .ok_or_else(|| anyhow!("descriptor is not an object"))?;
        let media_type = obj
            .get("mediaType")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("descriptor has no string mediaType"))?;
        let digest = obj
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("descriptor has no string digest"))?;
        let size = obj
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("descriptor has no non-negative integer size"))?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::parse(digest).map_err(|e| anyhow!(e))?,
            size,
            raw: v.clone(),
        })
    }
}

/// The `layers` of a manifest, validated.
pub fn manifest_layers(manifest: &Map<String, Value>) -> Result<Vec<Descriptor>> {
    let layers = match manifest.get("layers") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(_) => bail!("\"layers\" is not an array"),
    };
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| Descriptor::from_value(l).with_context(|| format!("layers[{i}]")))
        .collect()
}

/// The `config` descriptor of a manifest, rejecting indexes with a helpful message.
pub fn manifest_config(manifest: &Map<String, Value>) -> Result<Descriptor> {
    if let Some(mt) = manifest.get("mediaType").and_then(Value::as_str)
        && (mt == MT_INDEX || mt == MT_DOCKER_LIST)
    {
        bail!(
            "this is an image index ({mt}), not an image manifest; select one platform's manifest"
        );
    }
    if manifest.get("manifests").is_some() && manifest.get("config").is_none() {
        bail!("this is an image index, not an image manifest; select one platform's manifest");
    }
    let cfg = manifest
        .get("config")
        .ok_or_else(|| anyhow!("manifest has no \"config\" descriptor"))?;
    Descriptor::from_value(cfg).context("config descriptor")
}

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.into(),
                arch: arch.into(),
                variant: None,
            }),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
                os: os.into(),
                arch: arch.into(),
                variant: Some(v.into()),
            }),
            _ => bail!("platform {s:?} is not os/arch[/variant]"),
        }
    }

    pub fn from_json(p: &Value) -> Platform {
        let s = |k| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let v = s("variant");
        Platform {
            os: s("os"),
            arch: s("architecture"),
            variant: (!v.is_empty()).then_some(v),
        }
    }

    /// The platform `rules_image` runs on, as an image platform: linux/<Go arch name>.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    /// Directory-name form: `os_arch[_variant]`.
    pub fn dir_name(&self) -> String {
        self.to_string().replace('/', "_")
    }

    /// A wanted platform without a variant matches any variant (linux/arm64 is arm64/v8).
    pub fn matches(&self, have: &Platform) -> bool {
        self.os == have.os
            && self.arch == have.arch
            && (self.variant.is_none()
                || self.variant == have.variant
                || (have.variant.is_none()
                    && self.arch == "arm64"
                    && self.variant.as_deref() == Some("v8")))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_is_compact() {
        let v = json!({"z": 1, "a": {"y": [1, 2], "b": null}, "m": "x"});
        assert_eq!(
            canonical(&v),
            br#"{"a":{"b":null,"y":[1,2]},"m":"x","z":1}"#
        );
        // Parsing text with unsorted keys and writing it back sorts them too.
        let parsed: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        assert_eq!(canonical(&parsed), br#"{"a":2,"b":1}"#);
    }

    #[test]
    fn descriptor_validation() {
        let good = json!({"mediaType": MT_LAYER_GZIP, "digest": format!("sha256:{}", "a".repeat(64)), "size": 3});
        let d = Descriptor::from_value(&good).unwrap();
        assert_eq!(d.size, 3);
        let bad = json!({"mediaType": MT_LAYER_GZIP, "digest": "sha256:xyz", "size": 3});
        assert!(Descriptor::from_value(&bad).is_err());
        let neg = json!({"mediaType": MT_LAYER_GZIP, "digest": format!("sha256:{}", "a".repeat(64)), "size": -1});
        assert!(Descriptor::from_value(&neg).is_err());
    }

    #[test]
    fn index_is_not_a_manifest() {
        let idx = parse_json_object(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#).unwrap();
        let err = manifest_config(&idx).unwrap_err();
        assert!(err.to_string().contains("index"));
    }
}
