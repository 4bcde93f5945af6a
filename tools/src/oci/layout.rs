//! The two archive formats images travel in besides registries: the OCI image layout
//! (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`) and docker-save's `manifest.json`.
//! Written by `write/`, read by `import/`.

use super::digest::Digest;
use serde::{Deserialize, Serialize};

/// The `oci-layout` file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciLayout {
    pub image_layout_version: String,
}

pub const LAYOUT_VERSION: &str = "1.0.0";

impl OciLayout {
    pub fn current() -> OciLayout {
        OciLayout {
            image_layout_version: LAYOUT_VERSION.into(),
        }
    }
}

/// Where a blob lives in a layout (and in docker-save archives written by Docker >= 25).
pub fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// One image of docker-save's `manifest.json` (a JSON array of these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerSaveEntry {
    /// Path of the config in the archive; its file name is the config's digest.
    pub config: String,
    #[serde(default, deserialize_with = "super::json::null_is_empty")]
    pub repo_tags: Vec<String>,
    /// Paths of the layer tars, in order.
    #[serde(default, deserialize_with = "super::json::null_is_empty")]
    pub layers: Vec<String>,
}
