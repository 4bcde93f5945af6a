//! Content descriptors, as found in manifests, indexes and `index.json`.

use super::digest::Digest;
use super::platform::Platform;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `org.opencontainers.image.ref.name`: a tag in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `io.containerd.image.name`: the full image reference containerd (and Docker >= 25) use.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Every other field (urls, artifactType, data, ...), kept as read.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: None,
            extra: Map::new(),
        }
    }

    /// The descriptor of these bytes.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64)
    }

    pub fn with_platform(mut self, platform: Platform) -> Descriptor {
        self.platform = Some(platform);
        self
    }

    pub fn with_annotations(mut self, annotations: BTreeMap<String, String>) -> Descriptor {
        self.annotations = Some(annotations);
        self
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// Whether `bytes` are the content this descriptor names (digest and size).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.size && Digest::of(bytes) == self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{json, media_type};

    #[test]
    fn validation() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let good = format!(
            r#"{{"digest":"{digest}","mediaType":"{}","size":3}}"#,
            media_type::LAYER_GZIP
        );
        let d: Descriptor = json::parse(good.as_bytes()).unwrap();
        assert_eq!(d.size, 3);
        assert_eq!(json::canonical(&d), good.as_bytes());
        let bad = good.replace(&digest, "sha256:xyz");
        assert!(json::parse::<Descriptor>(bad.as_bytes()).is_err());
        let neg = good.replace("\"size\":3", "\"size\":-1");
        let e = json::parse::<Descriptor>(neg.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with("size:"), "{e}");
    }

    #[test]
    fn unknown_fields_survive() {
        let text = format!(
            r#"{{"annotations":{{"a":"b"}},"digest":"sha256:{}","mediaType":"x","size":1,"urls":["https://x/y"],"zz":{{"k":[1]}}}}"#,
            "b".repeat(64)
        );
        let d: Descriptor = json::parse(text.as_bytes()).unwrap();
        assert_eq!(d.annotation("a"), Some("b"));
        assert_eq!(json::canonical(&d), text.as_bytes());
    }
}
