//! The directory `pull` and `import` write, and the repository rules
//! (`rules/private/repo/image_repo.bzl`) turn into targets: one contract, typed, written
//! only here.
//!
//! One image (at the top, or in a platform's directory):
//!
//! | file | content |
//! | --- | --- |
//! | `manifest.json` | the manifest, exact bytes |
//! | `config.json` | the config, exact bytes |
//! | `layers.json` | `[LayerMetadata]` in layer order: what `manifest` needs of each layer |
//! | `image.json` | `ImageInfo`: manifest digest, platform, where the image came from |
//! | `digest` | `sha256:<hex>` of the manifest |
//! | `descriptor.json` | the manifest's descriptor with its platform (what `index` lists) |
//!
//! An index adds, at the top: `index.json` (exact bytes), `digest` (of the index) and
//! `platforms.json` (`[PlatformDir]`, in index order), and puts each platform's image in a
//! directory `os_arch[_variant]`. `import` also writes every layer blob, verified, to the
//! top-level `blobs/sha256/<hex>`; pulled layers are fetched by build actions instead.

use crate::build::layer::LayerMetadata;
use crate::oci::{Descriptor, Digest, Platform, json};
use serde::{Deserialize, Serialize};

pub const MANIFEST: &str = "manifest.json";
pub const CONFIG: &str = "config.json";
pub const LAYERS: &str = "layers.json";
pub const IMAGE: &str = "image.json";
pub const DIGEST: &str = "digest";
pub const DESCRIPTOR: &str = "descriptor.json";
pub const INDEX: &str = "index.json";
pub const PLATFORMS: &str = "platforms.json";

/// `image.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    pub manifest_digest: Digest,
    /// `os/architecture[/variant]`, as the config says.
    pub platform: String,
    #[serde(flatten)]
    pub origin: Origin,
}

/// Where a repository's image came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "origin", rename_all = "lowercase")]
pub enum Origin {
    /// `pull`: its layers are in this repository of this registry.
    Registry {
        registry: String,
        repository: String,
        /// The index the image was chosen from, if it was.
        index_digest: Option<Digest>,
    },
    /// `import` of a file: `oci-layout` or `docker-save`; `normalized` if rewritten.
    Import { format: String, normalized: bool },
}

/// One entry of `platforms.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformDir {
    /// The directory holding the platform's image: `Platform::dir_name`.
    pub dir: String,
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The platform's manifest digest.
    pub digest: Digest,
}

/// The files of one image, to be written into its directory.
pub struct ImageDir {
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layers: Vec<LayerMetadata>,
    /// The image's platform as its index names it, else as its config does.
    pub platform: Platform,
    pub origin: Origin,
}

/// A file to write: its path relative to the repository directory, and its bytes.
pub type File = (String, Vec<u8>);

impl ImageDir {
    pub fn digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }

    fn descriptor(&self) -> Descriptor {
        let media_type = crate::oci::manifest::ImageManifest::parse(&self.manifest)
            .map(|m| m.media_type().to_string())
            .unwrap_or_else(|_| crate::oci::media_type::MANIFEST.to_string());
        let platform = Platform::new(
            &self.platform.os,
            &self.platform.architecture,
            self.platform.variant.as_deref(),
        );
        Descriptor::of(&media_type, &self.manifest).with_platform(platform)
    }

    /// The files under `prefix` (`""` or `<dir>/`).
    pub fn files(&self, prefix: &str) -> Vec<File> {
        let digest = self.digest();
        let config_platform = json::parse_object(&self.config)
            .map(|c| Platform::of_config(&c))
            .unwrap_or_default();
        let info = ImageInfo {
            manifest_digest: digest,
            platform: config_platform.to_string(),
            origin: self.origin.clone(),
        };
        [
            (MANIFEST, self.manifest.clone()),
            (CONFIG, self.config.clone()),
            (LAYERS, json::canonical(&self.layers)),
            (IMAGE, json::canonical(&info)),
            (DIGEST, digest.to_string().into_bytes()),
            (DESCRIPTOR, json::canonical(&self.descriptor())),
        ]
        .into_iter()
        .map(|(name, bytes)| (format!("{prefix}{name}"), bytes))
        .collect()
    }
}

/// The files of an index: its own and every platform's image, in index order.
pub fn index_files(index: &[u8], images: &[ImageDir]) -> Vec<File> {
    let listing: Vec<PlatformDir> = images
        .iter()
        .map(|i| PlatformDir {
            dir: i.platform.dir_name(),
            os: i.platform.os.clone(),
            architecture: i.platform.architecture.clone(),
            variant: i.platform.variant.clone().filter(|v| !v.is_empty()),
            digest: i.digest(),
        })
        .collect();
    let mut files = vec![
        (INDEX.to_string(), index.to_vec()),
        (
            DIGEST.to_string(),
            Digest::of(index).to_string().into_bytes(),
        ),
        (PLATFORMS.to_string(), json::canonical(&listing)),
    ];
    for (image, entry) in images.iter().zip(&listing) {
        files.extend(image.files(&format!("{}/", entry.dir)));
    }
    files
}

/// The platform directories of an index must differ: two entries for one platform would
/// write one directory twice.
pub fn check_distinct(platforms: &[Platform], what: &str) -> anyhow::Result<()> {
    for (i, p) in platforms.iter().enumerate() {
        if platforms[..i].iter().any(|q| q.dir_name() == p.dir_name()) {
            anyhow::bail!("{what} lists platform {p} twice");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::media_type;

    fn image(platform: &str) -> ImageDir {
        let p = Platform::parse(platform).unwrap();
        let config = crate::oci::json::canonical(&serde_json::json!({
            "os": p.os, "architecture": p.architecture, "variant": p.variant,
        }));
        let manifest = crate::oci::ImageManifest::new(
            Descriptor::of(media_type::CONFIG, &config),
            vec![],
            Default::default(),
        )
        .to_bytes();
        ImageDir {
            manifest,
            config,
            layers: vec![],
            platform: Platform::parse(platform).unwrap(),
            origin: Origin::Import {
                format: "oci-layout".into(),
                normalized: false,
            },
        }
    }

    #[test]
    fn an_image_directory() {
        let i = image("linux/arm64/v8");
        let files: std::collections::BTreeMap<String, Vec<u8>> = i.files("").into_iter().collect();
        assert_eq!(files["digest"], i.digest().to_string().as_bytes());
        let d: Descriptor = json::parse(&files["descriptor.json"]).unwrap();
        assert_eq!(d.digest, i.digest());
        assert_eq!(d.media_type, media_type::MANIFEST);
        assert_eq!(d.platform.unwrap().to_string(), "linux/arm64/v8");
        assert_eq!(
            String::from_utf8(files["image.json"].clone()).unwrap(),
            format!(
                r#"{{"format":"oci-layout","manifest_digest":"{}","normalized":false,"origin":"import","platform":"linux/arm64/v8"}}"#,
                i.digest()
            )
        );
        assert_eq!(files["layers.json"], b"[]");
    }

    #[test]
    fn an_index_directory() {
        let images = [image("linux/amd64"), image("linux/arm/v7")];
        let files = index_files(b"{}", &images);
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(&names[..3], ["index.json", "digest", "platforms.json"]);
        assert!(names.contains(&"linux_arm_v7/descriptor.json"), "{names:?}");
        let listing: Vec<PlatformDir> = json::parse(&files[2].1).unwrap();
        assert_eq!(listing[1].dir, "linux_arm_v7");
        assert_eq!(listing[1].variant.as_deref(), Some("v7"));
        assert_eq!(listing[0].variant, None);
        let ps = [
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/amd64").unwrap(),
        ];
        assert!(
            check_distinct(&ps, "index x")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
