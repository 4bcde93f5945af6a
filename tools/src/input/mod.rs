//! An image or index on disk, read and checked once, for every command that writes one out
//! (`layout`, `tarball`, `load`) or pushes one (`push`).
//!
//! Reading checks everything that can be checked without reading layer bytes: the manifest
//! parses, the config has the digest and size its descriptor says, there is one blob per
//! layer and each local blob has its descriptor's size, and an index lists exactly the given
//! images in order. Layer digests are checked by whoever reads the bytes (while copying or
//! uploading them), so each layer is read once.

pub mod files;

pub use files::{BlobSource, ImageFiles, InputFiles, Resolver};

use crate::oci::manifest::ImageManifest;
use crate::oci::reference::Repo;
use crate::oci::{Descriptor, Digest, ImageIndex, Platform, media_type};
use crate::remote_cache::RemoteCache;
use anyhow::{Context, Result, bail};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One image, read and checked.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's exact bytes.
    pub manifest: Vec<u8>,
    pub parsed: ImageManifest,
    pub config: Vec<u8>,
    /// The config's os/architecture/variant.
    pub platform: Platform,
    /// One per layer of the manifest.
    pub blobs: Vec<BlobSource>,
    pub files: ImageFiles,
}

/// A multi-platform image: the index and its images, in index order.
#[derive(Debug, Clone)]
pub struct Index {
    pub bytes: Vec<u8>,
    /// The platform of each entry, as the index says.
    pub platforms: Vec<Platform>,
    pub children: Vec<Image>,
}

#[derive(Debug, Clone)]
// Few exist at a time (one per image): boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum Input {
    Image(Image),
    Index(Index),
}

/// Where the bytes of one blob of an input come from.
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    Stored(Stored),
    Remote(Repo),
}

/// Layer bytes that this program reads itself: a file, or a blob of a remote cache.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    File(PathBuf),
    Cas(Arc<RemoteCache>),
}

impl Stored {
    /// A reader of the blob that `desc` describes. A file is read as it is (callers check
    /// its digest as they copy it); a remote cache's blob is also checked by its reader.
    pub fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send>> {
        Ok(match self {
            Stored::File(p) => Box::new(
                std::fs::File::open(p)
                    .with_context(|| format!("cannot open layer blob {}", p.display()))?,
            ),
            Stored::Cas(cache) => Box::new(cache.open(desc.digest, desc.size)),
        })
    }
}

/// How messages name it: the file, or the cache.
impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stored::File(p) => write!(f, "{}", p.display()),
            Stored::Cas(cache) => write!(f, "the remote cache {cache}"),
        }
    }
}

impl BlobSource {
    /// Where a reader of the layer gets its bytes.
    pub fn content(&self) -> Content {
        match self {
            BlobSource::Local(p) => Content::Stored(Stored::File(p.clone())),
            BlobSource::Cas(c) => Content::Stored(Stored::Cas(Arc::clone(c))),
            BlobSource::Remote(r) => Content::Remote(r.clone()),
        }
    }

    /// The bytes this program can read itself, if any (not a layer only in a registry).
    pub fn stored(&self) -> Option<Stored> {
        match self.content() {
            Content::Stored(s) => Some(s),
            _ => None,
        }
    }
}

/// A config or layer blob of an input.
#[derive(Debug, Clone)]
pub struct Blob {
    pub desc: Descriptor,
    pub content: Content,
}

impl Blob {
    /// Takes the bytes of `other`, the same blob, if only a remote copy is known so far: a
    /// local copy wins over a remote one.
    pub fn prefer_local(&mut self, other: Blob) {
        if matches!(self.content, Content::Remote(_))
            && !matches!(other.content, Content::Remote(_))
        {
            self.content = other.content;
        }
    }

    /// How messages name the blob's bytes.
    pub fn name(&self) -> String {
        match &self.content {
            Content::Bytes(_) => format!("config {}", self.desc.digest),
            Content::Stored(Stored::File(p)) => format!("layer blob {}", p.display()),
            Content::Stored(s @ Stored::Cas(_)) => format!("blob {} in {s}", self.desc.digest),
            Content::Remote(src) => format!("blob {} from {src}", self.desc.digest),
        }
    }
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

impl Image {
    pub fn read(files: &ImageFiles) -> Result<Image> {
        let image = Image::read_files(files);
        match &files.child_file {
            Some(c) => image.with_context(|| format!("child file {}", c.display())),
            None => image,
        }
    }

    fn read_files(files: &ImageFiles) -> Result<Image> {
        let manifest = read_file(&files.manifest, "manifest")?;
        let config = read_file(&files.config, "config")?;
        let parsed = ImageManifest::parse(&manifest)
            .with_context(|| format!("malformed manifest {}", files.manifest.display()))?;
        let want = &parsed.config;
        if !want.matches(&config) {
            bail!(
                "config {} has digest {} and size {}, but manifest {} expects {} and size {}",
                files.config.display(),
                Digest::of(&config),
                config.len(),
                files.manifest.display(),
                want.digest,
                want.size
            );
        }
        if parsed.layers.len() != files.blobs.len() {
            bail!(
                "manifest {} has {} layers but {} --blob values were given",
                files.manifest.display(),
                parsed.layers.len(),
                files.blobs.len()
            );
        }
        for (desc, blob) in parsed.layers.iter().zip(&files.blobs) {
            // Catch a wrong file before anything is written (digests are checked on reading).
            if let BlobSource::Local(path) = blob {
                let len = std::fs::metadata(path)
                    .with_context(|| format!("cannot read layer blob {}", path.display()))?
                    .len();
                if len != desc.size {
                    bail!(
                        "layer blob {} has {len} bytes but the manifest descriptor {} says {}",
                        path.display(),
                        desc.digest,
                        desc.size
                    );
                }
            }
        }
        let cfg = crate::oci::json::parse_object(&config)
            .with_context(|| format!("malformed config {}", files.config.display()))?;
        Ok(Image {
            platform: Platform::of_config(&cfg),
            manifest,
            parsed,
            config,
            blobs: files.blobs.clone(),
            files: files.clone(),
        })
    }

    /// The manifest's descriptor: its media type, digest and size, and the config's platform.
    pub fn descriptor(&self) -> Descriptor {
        let d = Descriptor::of(self.parsed.media_type(), &self.manifest);
        if self.platform.os.is_empty() {
            d
        } else {
            d.with_platform(self.platform.clone())
        }
    }

    pub fn digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }

    /// Whether a layer is zstd-compressed.
    pub fn has_zstd_layers(&self) -> bool {
        self.parsed
            .layers
            .iter()
            .any(|l| media_type::is_zstd_layer(&l.media_type))
    }

    /// The config, then every layer.
    fn blobs(&self) -> impl Iterator<Item = Blob> + '_ {
        let config = Blob {
            desc: self.parsed.config.clone(),
            content: Content::Bytes(self.config.clone()),
        };
        let layers = self
            .parsed
            .layers
            .iter()
            .zip(&self.blobs)
            .map(|(d, b)| Blob {
                desc: d.clone(),
                content: b.content(),
            });
        std::iter::once(config).chain(layers)
    }
}

impl Index {
    /// Reads the index and its images (in index order), checking that they match it.
    pub fn read(index: &Path, children: &[ImageFiles]) -> Result<Index> {
        let bytes = read_file(index, "index")?;
        let parsed = ImageIndex::parse(&bytes)
            .with_context(|| format!("malformed index {}", index.display()))?;
        let images = children
            .iter()
            .map(Image::read)
            .collect::<Result<Vec<_>>>()?;
        if parsed.manifests.len() != images.len() {
            bail!(
                "index {} lists {} manifests but {} --child files were given",
                index.display(),
                parsed.manifests.len(),
                images.len()
            );
        }
        for (i, (d, image)) in parsed.manifests.iter().zip(&images).enumerate() {
            if !d.matches(&image.manifest) {
                bail!(
                    "manifest {} (child {}) has digest {} and size {}, but index {} expects {} and size {} there",
                    image.files.manifest.display(),
                    i + 1,
                    image.digest(),
                    image.manifest.len(),
                    index.display(),
                    d.digest,
                    d.size
                );
            }
        }
        Ok(Index {
            platforms: parsed
                .manifests
                .into_iter()
                .map(|d| d.platform.unwrap_or_default())
                .collect(),
            bytes,
            children: images,
        })
    }

    pub fn descriptor(&self) -> Descriptor {
        Descriptor::of(media_type::INDEX, &self.bytes)
    }

    /// The position of the image for `want` (see `Platform::select`), else an error listing
    /// the index's platforms.
    pub fn position(&self, want: &Platform) -> Result<usize> {
        want.select_or_explain(&self.platforms, "the index")
    }
}

impl Input {
    pub fn read(files: &InputFiles) -> Result<Input> {
        Ok(match files {
            InputFiles::Image(f) => Input::Image(Image::read(f)?),
            InputFiles::Index { index, children } => Input::Index(Index::read(index, children)?),
        })
    }

    /// The images: the one, or the index's in index order.
    pub fn images(&self) -> &[Image] {
        match self {
            Input::Image(i) => std::slice::from_ref(i),
            Input::Index(x) => &x.children,
        }
    }

    /// The manifest tags point at: its exact bytes and descriptor.
    pub fn top(&self) -> (&[u8], Descriptor) {
        match self {
            Input::Image(i) => (&i.manifest, i.descriptor()),
            Input::Index(x) => (&x.bytes, x.descriptor()),
        }
    }

    /// Every config and layer blob of every image, once each, in first-seen order; a local
    /// copy of a layer wins over a remote one.
    pub fn blobs(&self) -> Vec<Blob> {
        let mut out: Vec<Blob> = Vec::new();
        for blob in self.images().iter().flat_map(Image::blobs) {
            match out.iter_mut().find(|b| b.desc.digest == blob.desc.digest) {
                Some(have) => have.prefer_local(blob),
                None => out.push(blob),
            }
        }
        out
    }

    /// The image of an index for `want` (an image is its own), as an input of its own.
    pub fn into_platform(self, want: &Platform) -> Result<Image> {
        match self {
            Input::Image(i) => Ok(i),
            Input::Index(mut x) => {
                let i = x.position(want)?;
                Ok(x.children.swap_remove(i))
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
