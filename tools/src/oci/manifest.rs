//! Image manifests and image indexes (OCI, and the Docker schema 2 forms, which have the same
//! fields), typed. Reading keeps unknown fields, so a manifest read and written again is the
//! same document; the bytes of a manifest that is not rewritten are always kept as they were.

use super::descriptor::Descriptor;
use super::json;
use super::media_type::{self, Kind};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "json::null_is_empty")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// An artifact's type (OCI 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifest an artifact refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, deserialize_with = "json::null_is_empty")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Only what tells an image manifest from an index.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    media_type: Option<String>,
    manifests: Option<Value>,
    config: Option<Value>,
}

/// Whether a manifest document is an image manifest or an index: its own mediaType, else
/// its fields (`manifests` without `config` is an index).
pub fn kind_of(bytes: &[u8]) -> Result<Kind> {
    let s: Shape = json::parse(bytes)?;
    if let Some(k) = s.media_type.as_deref().and_then(media_type::kind) {
        return Ok(k);
    }
    Ok(if s.manifests.is_some() && s.config.is_none() {
        Kind::Index
    } else {
        Kind::Image
    })
}

impl ImageManifest {
    /// Parses an image manifest, telling an index apart with a message that says what to do.
    pub fn parse(bytes: &[u8]) -> Result<ImageManifest> {
        if let Ok(Kind::Index) = kind_of(bytes) {
            bail!("this is an image index, not an image manifest; select one platform's manifest");
        }
        json::parse(bytes)
    }

    /// A new OCI image manifest.
    pub fn new(
        config: Descriptor,
        layers: Vec<Descriptor>,
        annotations: BTreeMap<String, String>,
    ) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(media_type::MANIFEST.into()),
            config,
            layers,
            annotations: (!annotations.is_empty()).then_some(annotations),
            artifact_type: None,
            subject: None,
            extra: Map::new(),
        }
    }

    /// The manifest's own media type; OCI when it does not say.
    pub fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(media_type::MANIFEST)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        json::canonical(self)
    }
}

impl ImageIndex {
    pub fn parse(bytes: &[u8]) -> Result<ImageIndex> {
        json::parse(bytes)
    }

    /// A new OCI image index.
    pub fn new(manifests: Vec<Descriptor>, annotations: BTreeMap<String, String>) -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(media_type::INDEX.into()),
            manifests,
            annotations: (!annotations.is_empty()).then_some(annotations),
            extra: Map::new(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        json::canonical(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::Digest;

    #[test]
    fn an_index_is_not_a_manifest() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(
            ImageManifest::parse(idx)
                .unwrap_err()
                .to_string()
                .contains("index")
        );
        assert_eq!(
            kind_of(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            Kind::Index
        );
        assert_eq!(
            kind_of(br#"{"schemaVersion":2,"config":{}}"#).unwrap(),
            Kind::Image
        );
    }

    #[test]
    fn new_manifests_are_canonical_and_round_trip() {
        let config = Descriptor::of(media_type::CONFIG, b"{}");
        let layer = Descriptor::new(media_type::LAYER_GZIP, Digest::of(b"x"), 1);
        let m = ImageManifest::new(config, vec![layer], BTreeMap::new());
        let bytes = m.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"config":{"digest":"sha256:44136fa"#),
            "{text}"
        );
        assert!(!text.contains("annotations"), "{text}");
        assert_eq!(ImageManifest::parse(&bytes).unwrap(), m);
        let e = ImageManifest::parse(text.replace("\"size\":1", "\"size\":\"1\"").as_bytes())
            .unwrap_err();
        assert!(e.to_string().starts_with("layers[0].size:"), "{e}");
        let null_layers = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":null}"#;
        assert!(ImageManifest::parse(null_layers).unwrap().layers.is_empty());
    }
}
