//! OCI image layouts, as a directory (`layout`) or as one tar stream (`tarball`, `load`) that is
//! both an OCI layout and `docker load` input (it also carries a docker-save `manifest.json`).
//!
//! Layer blobs are copied from their files while being hashed; a blob that does not match its
//! manifest descriptor is an error, so a stale or swapped file can never produce an image.

use crate::oci::digest::{Digest, HashingReader};
use crate::index::ChildFile;
use crate::io::output::{AtomicDir, AtomicFile, BUF_SIZE};
use crate::oci::spec::{self, Descriptor, Platform};
use crate::io::tarfmt::TarWriter;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where the bytes of one blob come from.
#[derive(Clone)]
pub enum Source {
    Bytes(Vec<u8>),
    /// A layer blob file, verified against its descriptor while copying.
    File(PathBuf, Descriptor),
}

/// A complete image: manifest, config and every layer blob.
pub struct ImageInput {
    manifest: Vec<u8>,
    manifest_media_type: String,
    manifest_digest: Digest,
    config_digest: Digest,
    platform: Value,
    layer_digests: Vec<Digest>,
    /// Every blob by digest; a BTreeMap deduplicates and gives the sorted write order.
    blobs: BTreeMap<Digest, Source>,
}

impl ImageInput {
    pub fn read(
        manifest_path: &Path,
        config_path: &Path,
        blob_paths: &[PathBuf],
    ) -> Result<ImageInput> {
        let manifest = std::fs::read(manifest_path)
            .with_context(|| format!("cannot read manifest {}", manifest_path.display()))?;
        let config = std::fs::read(config_path)
            .with_context(|| format!("cannot read config {}", config_path.display()))?;
        let bad = || format!("malformed manifest {}", manifest_path.display());
        let m = spec::parse_json_object(&manifest).with_context(bad)?;
        let config_desc = spec::manifest_config(&m).with_context(bad)?;
        let layers = spec::manifest_layers(&m).with_context(bad)?;

        let config_digest = Digest::of(&config);
        if config_digest != config_desc.digest || config.len() as u64 != config_desc.size {
            bail!(
                "config {} has digest {config_digest} and size {}, but manifest {} expects {} and size {}",
                config_path.display(),
                config.len(),
                manifest_path.display(),
                config_desc.digest,
                config_desc.size
            );
        }
        if layers.len() != blob_paths.len() {
            bail!(
                "manifest {} has {} layers but {} --blob files were given",
                manifest_path.display(),
                layers.len(),
                blob_paths.len()
            );
        }
        let cfg = spec::parse_json_object(&config)
            .with_context(|| format!("malformed config {}", config_path.display()))?;
        let mut platform = Map::new();
        for k in ["architecture", "os", "variant"] {
            if let Some(v) = cfg
                .get(k)
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            {
                platform.insert(k.into(), v.clone());
            }
        }

        let mut blobs = BTreeMap::new();
        let mut layer_digests = Vec::new();
        for (desc, path) in layers.into_iter().zip(blob_paths) {
            // Catch a wrong file before streaming starts (the digest is checked while copying).
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
            layer_digests.push(desc.digest);
            blobs
                .entry(desc.digest)
                .or_insert_with(|| Source::File(path.clone(), desc));
        }
        blobs.insert(config_digest, Source::Bytes(config));
        let manifest_digest = Digest::of(&manifest);
        let manifest_media_type = m
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(spec::MT_MANIFEST)
            .to_string();
        blobs.insert(manifest_digest, Source::Bytes(manifest.clone()));
        Ok(ImageInput {
            manifest,
            manifest_media_type,
            manifest_digest,
            config_digest,
            platform: Value::Object(platform),
            layer_digests,
            blobs,
        })
    }

    fn manifest_descriptor(&self, annotations: Map<String, Value>) -> Value {
        let mut d = json!({
            "mediaType": self.manifest_media_type,
            "digest": self.manifest_digest.to_string(),
            "size": self.manifest.len(),
            "annotations": annotations,
        });
        if self
            .platform
            .as_object()
            .is_some_and(|p| p.contains_key("os"))
        {
            d["platform"] = self.platform.clone();
        }
        d
    }

    /// This image's entry in a docker-save `manifest.json`.
    fn docker_entry(&self, tags: &[String]) -> Value {
        let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        json!({
            "Config": path(&self.config_digest),
            "RepoTags": tags,
            "Layers": self.layer_digests.iter().map(path).collect::<Vec<_>>(),
        })
    }
}

/// What a layout or tarball is written from: one image, or an index and its images.
pub trait LayoutInput {
    /// Every blob by digest; a BTreeMap deduplicates and gives the sorted write order.
    fn blobs(&self) -> &BTreeMap<Digest, Source>;
    /// The descriptor index.json points at, with these annotations.
    fn top_descriptor(&self, annotations: Map<String, Value>) -> Value;
    /// The entries of docker's `manifest.json`.
    fn docker_entries(&self, tags: &[String]) -> Vec<Value>;
}

impl LayoutInput for ImageInput {
    fn blobs(&self) -> &BTreeMap<Digest, Source> {
        &self.blobs
    }
    fn top_descriptor(&self, annotations: Map<String, Value>) -> Value {
        self.manifest_descriptor(annotations)
    }
    fn docker_entries(&self, tags: &[String]) -> Vec<Value> {
        vec![self.docker_entry(tags)]
    }
}

/// A multi-platform image: an OCI index and one ImageInput per entry, in index order.
pub struct IndexInput {
    index: Vec<u8>,
    digest: Digest,
    children: Vec<ImageInput>,
    /// The index entries' platforms, in order.
    platforms: Vec<Platform>,
    blobs: BTreeMap<Digest, Source>,
}

impl IndexInput {
    /// Reads the index and its children (in index order), checking that they match it.
    pub fn read(index_path: &Path, children: &[ChildFile]) -> Result<IndexInput> {
        let index = std::fs::read(index_path)
            .with_context(|| format!("cannot read index {}", index_path.display()))?;
        let imgs = children
            .iter()
            .map(|c| {
                ImageInput::read(&c.manifest, &c.config, &c.local_blobs()?)
                    .with_context(|| format!("child file {}", c.path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let listed: Vec<(&Path, &[u8])> = children
            .iter()
            .zip(&imgs)
            .map(|(c, i)| (c.manifest.as_path(), i.manifest.as_slice()))
            .collect();
        let platforms = crate::index::check_children(&index, index_path, &listed)?;
        let digest = Digest::of(&index);
        let mut blobs = BTreeMap::new();
        for img in &imgs {
            for (d, src) in &img.blobs {
                blobs.entry(*d).or_insert_with(|| src.clone());
            }
        }
        blobs.insert(digest, Source::Bytes(index.clone()));
        Ok(IndexInput {
            index,
            digest,
            children: imgs,
            platforms,
            blobs,
        })
    }

    /// The child for `want`, else an error listing the platforms there are.
    pub fn select(&self, want: &Platform) -> Result<&ImageInput> {
        match self.platforms.iter().position(|p| want.matches(p)) {
            Some(i) => Ok(&self.children[i]),
            None => bail!(
                "no image for platform {want} in the index; available: {}",
                self.platforms
                    .iter()
                    .map(Platform::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl LayoutInput for IndexInput {
    fn blobs(&self) -> &BTreeMap<Digest, Source> {
        &self.blobs
    }
    fn top_descriptor(&self, annotations: Map<String, Value>) -> Value {
        json!({
            "mediaType": spec::MT_INDEX,
            "digest": self.digest.to_string(),
            "size": self.index.len(),
            "annotations": annotations,
        })
    }
    /// Docker's manifest.json names one image per tag: the tags go on the linux/amd64 child.
    fn docker_entries(&self, tags: &[String]) -> Vec<Value> {
        let amd64 = Platform::parse("linux/amd64").expect("valid platform");
        let tagged = self.platforms.iter().position(|p| amd64.matches(p));
        self.children
            .iter()
            .enumerate()
            .map(|(i, c)| c.docker_entry(if Some(i) == tagged { tags } else { &[] }))
            .collect()
    }
}

/// index.json: one descriptor of the image (or index) per tag (`latest` without tags).
fn index_json(input: &impl LayoutInput, tags: &[String], tarball: bool) -> Vec<u8> {
    let mut manifests = Vec::new();
    if tags.is_empty() {
        let mut a = Map::new();
        a.insert(spec::ANNOTATION_REF_NAME.into(), "latest".into());
        manifests.push(input.top_descriptor(a));
    }
    for tag in tags {
        let mut a = Map::new();
        if tarball {
            // containerd (and docker with the containerd store) reads the full reference,
            // OCI tools read the tag part.
            a.insert(spec::ANNOTATION_REF_NAME.into(), tag_part(tag).into());
            a.insert(spec::ANNOTATION_CONTAINERD_NAME.into(), tag.as_str().into());
        } else {
            a.insert(spec::ANNOTATION_REF_NAME.into(), tag.as_str().into());
        }
        manifests.push(input.top_descriptor(a));
    }
    spec::canonical(&json!({
        "schemaVersion": 2,
        "mediaType": spec::MT_INDEX,
        "manifests": manifests,
    }))
}

/// docker-save `manifest.json`, read by `docker load` (classic image store).
fn docker_manifest_json(input: &impl LayoutInput, tags: &[String]) -> Vec<u8> {
    spec::canonical(&Value::Array(input.docker_entries(tags)))
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The tag part of a reference (`reg:5000/app:v1` -> `v1`), `latest` when it has none.
pub fn tag_part(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rsplit_once(':').map_or("latest", |(_, t)| t)
}

fn dedup_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

fn verify(path: &Path, desc: &Descriptor, got: Digest, n: u64) -> Result<()> {
    if got != desc.digest || n != desc.size {
        bail!(
            "layer blob {} has digest {got} ({n} bytes) but the manifest expects {} ({} bytes)",
            path.display(),
            desc.digest,
            desc.size
        );
    }
    Ok(())
}

fn open_blob(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("cannot open layer blob {}", path.display()))
}

/// Copies a layer blob into the tar as `name`, verifying its digest and size on the way.
fn copy_verified<W: Write>(
    tw: &mut TarWriter<W>,
    name: &str,
    path: &Path,
    desc: &Descriptor,
    buf: &mut [u8],
) -> Result<()> {
    let mut r = HashingReader::new(open_blob(path)?);
    tw.file(name, 0o644, desc.size, &mut r, buf)
        .with_context(|| format!("copying layer blob {}", path.display()))?;
    let (got, n) = r.finish();
    verify(path, desc, got, n)
}

/// Writes the image as one deterministic tar stream: an OCI layout plus docker's manifest.json.
pub fn write_tarball<W: Write>(img: &impl LayoutInput, tags: &[String], w: W) -> Result<W> {
    let tags = dedup_tags(tags);
    let mut tw = TarWriter::new(w);
    let mut buf = vec![0u8; BUF_SIZE];
    // Sorted names: "blobs/" < "blobs/sha256/" < "blobs/sha256/<hex>"... < "index.json" <
    // "manifest.json" < "oci-layout".
    tw.dir("blobs/", 0o755)?;
    tw.dir("blobs/sha256/", 0o755)?;
    for (digest, src) in img.blobs() {
        let name = format!("blobs/sha256/{}", digest.hex());
        match src {
            Source::Bytes(b) => tw.file_bytes(&name, 0o644, b)?,
            Source::File(path, desc) => copy_verified(&mut tw, &name, path, desc, &mut buf)?,
        }
    }
    tw.file_bytes("index.json", 0o644, &index_json(img, &tags, true))?;
    tw.file_bytes("manifest.json", 0o644, &docker_manifest_json(img, &tags))?;
    tw.file_bytes("oci-layout", 0o644, OCI_LAYOUT)?;
    Ok(tw.finish()?)
}

/// Whether any layer is zstd-compressed (Docker's classic image store, up to Docker 24 at
/// least, cannot apply those).
pub fn has_zstd_layers(img: &ImageInput) -> bool {
    img.blobs
        .values()
        .any(|s| matches!(s, Source::File(_, d) if d.media_type.ends_with("+zstd")))
}

/// Writes a docker-save stream (manifest.json, config, layers) in which zstd layers are
/// decompressed to plain tars, for engines that cannot read zstd. Docker checks layers by
/// their diff_ids, which decompression keeps, so the loaded image has the same config (and
/// image ID). A zstd blob is read twice (to learn the tar's size, then to stream it) so that
/// nothing is buffered in memory or on disk; both passes verify the blob's digest.
pub fn write_docker_archive<W: Write>(img: &ImageInput, tags: &[String], w: W) -> Result<W> {
    let tags = dedup_tags(tags);
    let mut tw = TarWriter::new(w);
    let mut buf = vec![0u8; BUF_SIZE];
    let mut layer_names = BTreeMap::new();
    tw.dir("blobs/", 0o755)?;
    tw.dir("blobs/sha256/", 0o755)?;
    for (digest, src) in &img.blobs {
        let name = format!("blobs/sha256/{}", digest.hex());
        match src {
            Source::Bytes(b) if *digest == img.config_digest => tw.file_bytes(&name, 0o644, b)?,
            Source::Bytes(_) => {} // the OCI manifest: not part of a docker-save stream
            Source::File(path, desc) if desc.media_type.ends_with("+zstd") => {
                let size = decompressed_size(path, desc)?;
                let mut r = HashingReader::new(open_blob(path)?);
                let mut plain = zstd::stream::read::Decoder::new(&mut r)
                    .with_context(|| format!("decompressing layer blob {}", path.display()))?;
                let tar_name = format!("{name}.tar");
                tw.file(&tar_name, 0o644, size, &mut plain, &mut buf)
                    .with_context(|| format!("decompressing layer blob {}", path.display()))?;
                drop(plain);
                let (got, n) = r.finish();
                verify(path, desc, got, n)?;
                layer_names.insert(*digest, tar_name);
            }
            Source::File(path, desc) => {
                copy_verified(&mut tw, &name, path, desc, &mut buf)?;
                layer_names.insert(*digest, name);
            }
        }
    }
    let manifest = spec::canonical(&json!([{
        "Config": format!("blobs/sha256/{}", img.config_digest.hex()),
        "RepoTags": tags,
        "Layers": img.layer_digests.iter().map(|d| layer_names[d].clone()).collect::<Vec<_>>(),
    }]));
    tw.file_bytes("manifest.json", 0o644, &manifest)?;
    Ok(tw.finish()?)
}

/// Size of a zstd layer once decompressed; also verifies the blob's digest.
fn decompressed_size(path: &Path, desc: &Descriptor) -> Result<u64> {
    let mut r = HashingReader::new(open_blob(path)?);
    let size = {
        let mut plain = zstd::stream::read::Decoder::new(&mut r)
            .with_context(|| format!("decompressing layer blob {}", path.display()))?;
        std::io::copy(&mut plain, &mut std::io::sink())
            .with_context(|| format!("decompressing layer blob {}", path.display()))?
    };
    let (got, n) = r.finish();
    verify(path, desc, got, n)?;
    Ok(size)
}

pub fn run_tarball(img: &impl LayoutInput, tags: &[String], output: &Path) -> Result<()> {
    let mut out = AtomicFile::create(output)?;
    let w = write_tarball(img, tags, BufWriter::with_capacity(BUF_SIZE, out.file()))?;
    w.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", output.display()))?;
    out.commit()
}

/// Writes an OCI image layout directory at `output`, atomically.
pub fn run_layout(img: &impl LayoutInput, tags: &[String], output: &Path) -> Result<()> {
    let tags = dedup_tags(tags);
    let dir = AtomicDir::create(output)?;
    let blob_dir = dir.path().join("blobs").join("sha256");
    std::fs::create_dir_all(&blob_dir)
        .with_context(|| format!("cannot create {}", blob_dir.display()))?;
    for (digest, src) in img.blobs() {
        let dest = blob_dir.join(digest.hex());
        let mut f =
            File::create(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
        match src {
            Source::Bytes(b) => f
                .write_all(b)
                .with_context(|| format!("cannot write {}", dest.display()))?,
            Source::File(path, desc) => {
                let mut r = HashingReader::new(open_blob(path)?);
                let mut w = BufWriter::with_capacity(BUF_SIZE, &mut f);
                std::io::copy(&mut r, &mut w)
                    .and_then(|_| w.flush())
                    .with_context(|| {
                        format!(
                            "copying layer blob {} to {}",
                            path.display(),
                            dest.display()
                        )
                    })?;
                let (got, n) = r.finish();
                verify(path, desc, got, n)?;
            }
        }
    }
    let files: [(&str, Vec<u8>); 2] = [
        ("oci-layout", OCI_LAYOUT.to_vec()),
        ("index.json", index_json(img, &tags, false)),
    ];
    for (name, bytes) in files {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    }
    dir.commit()
}

/// Resolves `--rlocation` paths through the runfiles of a `bazel run` target.
pub struct Resolver(Option<runfiles::Runfiles>);

impl Resolver {
    pub fn new(rlocation: bool) -> Result<Resolver> {
        if !rlocation {
            return Ok(Resolver(None));
        }
        let r = runfiles::Runfiles::create().map_err(|e| {
            anyhow!(
                "--rlocation: cannot find this program's runfiles ({e}); run it with `bazel run`"
            )
        })?;
        Ok(Resolver(Some(r)))
    }

    pub fn resolve(&self, p: &Path) -> Result<PathBuf> {
        let Some(r) = &self.0 else {
            return Ok(p.to_path_buf());
        };
        let got = r
            .rlocation(p)
            .ok_or_else(|| anyhow!("--rlocation: {} is not in the runfiles", p.display()))?;
        if !got.exists() {
            bail!(
                "--rlocation: {} resolved to {}, which does not exist",
                p.display(),
                got.display()
            );
        }
        Ok(got)
    }
}

#[cfg(test)]
pub(crate) mod tests;
