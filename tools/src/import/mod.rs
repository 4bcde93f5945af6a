//! `import`: images built elsewhere (OCI layouts, docker-save tarballs) as rules_image inputs.
//!
//! The output is a repository directory (`crate::repo_dir`), the shape `pull --all-platforms`
//! gives (so the same Starlark reads both), with every layer blob in `blobs/sha256/`.
//!
//! Every manifest, index, config and layer is checked against its digest, every layer is
//! scanned (`foreign_layer::scan_layer`) and its diff_id checked against the config. With
//! `--normalize` the layers are rewritten deterministically and the config, manifests and
//! index are written anew (canonical JSON, timestamps from `--source-date-epoch`).
//!
//! All scratch space (a tar source's extracted files, the output being built) is in one
//! directory with a fixed name next to the output (`Work`): removed at the start of every
//! run, so what a killed run left behind goes with the next one, and removed at the end.
//! Blobs of a directory source are copied (the copy is what is hashed and scanned), never
//! hard-linked: a later change to the source cannot change a verified blob.

pub mod foreign_layer;
mod select;
mod source;

use self::foreign_layer::Normalize;
use self::select::{ImageSrc, Selected};
use self::source::Source;
use crate::build::layer::LayerMetadata;
use crate::io::output::{AtomicDir, parent_dir};
use crate::oci::media_type::{self, LAYER_GZIP, LAYER_TAR, LAYER_ZSTD};
use crate::oci::{Descriptor, Digest, ImageIndex, ImageManifest, Platform, json};
use crate::repo_dir::{self, ImageDir, Origin};
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub struct ImportOptions<'a> {
    pub src: &'a Path,
    pub output_dir: &'a Path,
    /// Which image of the source (index.json ref name / containerd name, docker RepoTags).
    pub reference: Option<&'a str>,
    /// Which platform of an index; all of them if not given.
    pub platform: Option<&'a str>,
    /// Rewrite layers, config and manifests deterministically.
    pub normalize: Option<Normalize>,
}

/// Imports the image and returns the digest of what was written at the top: the manifest,
/// or the index.
pub fn run(o: &ImportOptions) -> Result<Digest> {
    let platform = o.platform.map(Platform::parse).transpose()?;
    let work = Work::create(o.output_dir)?;
    let mut src = Source::open(o.src, &work.scratch)?;
    let (format, selected) = select::select(&src, o.reference, platform.as_ref())?;
    let images: Vec<&ImageSrc> = match &selected {
        Selected::Image(i) => vec![i],
        Selected::Index(x) => x.children.iter().map(|c| &c.image).collect(),
    };
    let needed: BTreeMap<String, Option<u64>> = images
        .iter()
        .flat_map(|i| {
            i.layers
                .iter()
                .map(|l| (l.rel.clone(), l.desc.as_ref().map(|d| d.size)))
        })
        .collect();
    src.ensure(&needed)?;

    let out = AtomicDir::create_in(o.output_dir, &work.dir)?;
    let mut blobs = Blobs::new(&src, out.path(), o.normalize)?;
    let origin = Origin::Import {
        format: format.name().into(),
        normalized: o.normalize.is_some(),
    };
    let (top, files) = match &selected {
        Selected::Image(img) => {
            let image = import_image(&mut blobs, img, o.normalize, None, &origin)?;
            (image.digest(), image.files(""))
        }
        Selected::Index(idx) => {
            let mut images = Vec::new();
            let mut descriptors = Vec::new();
            for c in &idx.children {
                let image = import_image(
                    &mut blobs,
                    &c.image,
                    o.normalize,
                    Some(c.platform.clone()),
                    &origin,
                )?;
                let mut d = c.desc.clone();
                if o.normalize.is_some() {
                    d.media_type = media_type::MANIFEST.into();
                    d.digest = image.digest();
                    d.size = image.manifest.len() as u64;
                }
                descriptors.push(d);
                images.push(image);
            }
            // Rewritten only when entries were left out or the manifests were.
            let index = if idx.skipped || o.normalize.is_some() {
                ImageIndex::new(
                    descriptors,
                    idx.parsed.annotations.clone().unwrap_or_default(),
                )
                .to_bytes()
            } else {
                idx.bytes.clone()
            };
            (Digest::of(&index), repo_dir::index_files(&index, &images))
        }
    };
    for (name, bytes) in files {
        let p = out.path().join(&name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    }
    out.commit()?;
    work.remove()?;
    Ok(top)
}

/// The scratch directory of an import: `.<output name>.import` next to the output.
struct Work {
    dir: PathBuf,
    /// Where a tar source is extracted.
    scratch: PathBuf,
}

impl Work {
    fn create(output_dir: &Path) -> Result<Work> {
        let name = output_dir
            .file_name()
            .with_context(|| format!("{} has no file name", output_dir.display()))?;
        let mut n = std::ffi::OsString::from(".");
        n.push(name);
        n.push(".import");
        let dir = parent_dir(output_dir).join(n);
        if dir.symlink_metadata().is_ok() {
            std::fs::remove_dir_all(&dir).with_context(|| {
                format!("cannot remove the scratch directory {}", dir.display())
            })?;
        }
        let scratch = dir.join("src");
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        Ok(Work { dir, scratch })
    }

    /// Removes the scratch directory and reports a failure (`Drop` can only try).
    fn remove(mut self) -> Result<()> {
        // Taken, not `mem::forget`: forgetting leaked the paths (found by fuzz/import_archive).
        let dir = std::mem::take(&mut self.dir);
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove the scratch directory {}", dir.display()))
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Copies (or normalizes) every layer of `img` into the output, checks the diff_ids and
/// returns the image's files. `platform`: the index's, for an image of an index.
fn import_image(
    blobs: &mut Blobs,
    img: &ImageSrc,
    normalize: Option<Normalize>,
    platform: Option<Platform>,
    origin: &Origin,
) -> Result<ImageDir> {
    let mut layers = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let done = blobs
            .layer(&l.rel, l.desc.as_ref())
            .with_context(|| match &l.desc {
                Some(d) => format!("layer {i} ({}) of {}", d.digest, img.what),
                None => format!("layer {i} ({}) of {}", l.rel, img.what),
            })?;
        let want = img.diff_ids[i];
        if done.source_diff_id != want {
            bail!(
                "layer {i} ({}) of {} has diff_id {}, but the config's rootfs.diff_ids[{i}] is {want}",
                done.source_digest,
                img.what,
                done.source_diff_id
            );
        }
        layers.push(done.written);
    }

    let (config, manifest) = match (normalize, &img.manifest) {
        (None, Some(m)) => (img.config.clone(), m.bytes.clone()),
        // A docker-save image has no manifest; a normalized one gets a new one.
        (n, m) => {
            let config = match n {
                Some(n) => normalize_config(
                    &img.cfg,
                    &layers.iter().map(|l| l.diff_id).collect::<Vec<_>>(),
                    n.source_date_epoch,
                ),
                None => img.config.clone(),
            };
            let manifest = ImageManifest {
                annotations: m.as_ref().and_then(|m| m.parsed.annotations.clone()),
                ..ImageManifest::new(
                    Descriptor::of(media_type::CONFIG, &config),
                    layers.iter().map(LayerMetadata::descriptor).collect(),
                    Default::default(),
                )
            };
            (config, manifest.to_bytes())
        }
    };
    Ok(ImageDir {
        platform: platform.unwrap_or_else(|| Platform::of_config(&img.cfg)),
        manifest,
        config,
        layers,
        origin: origin.clone(),
    })
}

/// One layer as written to the output.
#[derive(Debug, Clone)]
struct LayerOut {
    /// The source blob's digest and size.
    source_digest: Digest,
    source_size: u64,
    /// The diff_id of the source blob (checked against the source config).
    source_diff_id: Digest,
    /// The written blob: the source blob, or its normalized form.
    written: LayerMetadata,
}

/// Writes layer blobs into the output's `blobs/sha256/`, each source blob once.
struct Blobs<'a> {
    src: &'a Source,
    dir: PathBuf,
    normalize: Option<Normalize>,
    done: HashMap<String, LayerOut>,
    temp_count: usize,
}

impl<'a> Blobs<'a> {
    fn new(src: &'a Source, out: &Path, normalize: Option<Normalize>) -> Result<Blobs<'a>> {
        let dir = out.join("blobs").join("sha256");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Blobs {
            src,
            dir,
            normalize,
            done: HashMap::new(),
            temp_count: 0,
        })
    }

    fn temp_path(&mut self) -> PathBuf {
        self.temp_count += 1;
        self.dir.join(format!(".import-{}.tmp", self.temp_count))
    }

    /// Moves a finished temp blob to its name; an identical blob may already be there.
    fn place(&self, tmp: &Path, d: &Digest) -> Result<PathBuf> {
        let dest = self.dir.join(d.hex());
        if dest.exists() {
            std::fs::remove_file(tmp)
                .with_context(|| format!("cannot remove {}", tmp.display()))?;
        } else {
            std::fs::rename(tmp, &dest).with_context(|| {
                format!("cannot rename {} to {}", tmp.display(), dest.display())
            })?;
        }
        Ok(dest)
    }

    /// The blob at `rel` of the source, checked against `desc` (docker-save layers have none).
    fn layer(&mut self, rel: &str, desc: Option<&Descriptor>) -> Result<LayerOut> {
        // Two paths may stand for one file (a docker-save layer linked to another).
        let file = self.src.resolve(rel)?;
        let out = match self.done.get(&file) {
            Some(l) => l.clone(),
            None => {
                let l = self.import_layer(rel, desc)?;
                self.done.insert(file, l.clone());
                l
            }
        };
        if let Some(d) = desc {
            check_digest(
                self.src,
                "layer blob",
                d,
                out.source_digest,
                out.source_size,
            )?;
        }
        Ok(out)
    }

    fn import_layer(&mut self, rel: &str, desc: Option<&Descriptor>) -> Result<LayerOut> {
        let path = self.src.path(rel)?;
        let media_type = |p: &Path| -> Result<String> {
            Ok(match desc {
                Some(d) => d.media_type.clone(),
                None => sniff_layer(p)?.to_string(),
            })
        };
        match self.normalize {
            None => {
                let tmp = self.temp_path();
                let (digest, size) = take_blob(&path, self.src.in_place(), &tmp)?;
                if let Some(d) = desc {
                    check_digest(self.src, "layer blob", d, digest, size)?;
                }
                let dest = self.place(&tmp, &digest)?;
                let diff_id = foreign_layer::scan_layer(&dest)?;
                Ok(LayerOut {
                    source_digest: digest,
                    source_size: size,
                    source_diff_id: diff_id,
                    written: LayerMetadata {
                        diff_id,
                        digest,
                        media_type: media_type(&dest)?,
                        size,
                        annotations: Default::default(),
                    },
                })
            }
            Some(n) => {
                // A directory source's blob is copied first: the bytes normalized are the
                // bytes hashed, whatever happens to the source meanwhile.
                let copy = self.src.in_place().then(|| self.temp_path());
                let (digest, size) = match &copy {
                    Some(c) => take_blob(&path, true, c)?,
                    None => hash_file(&path)?,
                };
                let read = copy.as_deref().unwrap_or(&path);
                let checked = desc.map_or(Ok(()), |d| {
                    check_digest(self.src, "layer blob", d, digest, size)
                });
                let tmp = self.temp_path();
                let normalized =
                    checked.and_then(|()| foreign_layer::normalize_layer(read, &n, &tmp));
                if let Some(c) = &copy {
                    std::fs::remove_file(c)
                        .with_context(|| format!("cannot remove {}", c.display()))?;
                }
                let (source_diff_id, meta) = normalized?;
                self.place(&tmp, &meta.digest)?;
                Ok(LayerOut {
                    source_digest: digest,
                    source_size: size,
                    source_diff_id,
                    written: meta,
                })
            }
        }
    }
}

fn check_digest(src: &Source, what: &str, d: &Descriptor, got: Digest, n: u64) -> Result<()> {
    if got != d.digest || n != d.size {
        bail!(
            "{what} {} in {}: content has digest {got} ({n} bytes), expected {} ({} bytes)",
            d.digest,
            src.name(),
            d.digest,
            d.size
        );
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    Digest::of_file(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Puts the blob `src` at `dest` and returns the digest and size of what `dest` holds. A
/// blob of the source itself (`copy`) is copied, with the kernel's copy (which may share
/// extents copy-on-write, never the inode), then hashed; one this tool extracted to its own
/// scratch directory is hard-linked (or copied when that is not possible).
fn take_blob(src: &Path, copy: bool, dest: &Path) -> Result<(Digest, u64)> {
    if !copy && std::fs::hard_link(src, dest).is_ok() {
        return hash_file(dest);
    }
    let ctx = || format!("cannot copy {} to {}", src.display(), dest.display());
    let mut r = File::open(src).with_context(ctx)?;
    if !r.metadata().with_context(ctx)?.is_file() {
        bail!("{} is not a regular file", src.display());
    }
    let mut w = File::create(dest).with_context(ctx)?;
    std::io::copy(&mut r, &mut w).with_context(ctx)?;
    drop(w);
    hash_file(dest)
}

/// The media type of a docker-save layer file, from its magic bytes: `docker save` writes
/// plain tars, other writers of the format compress them.
fn sniff_layer(path: &Path) -> Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut n = 0;
    while n < magic.len() {
        let k = f
            .read(&mut magic[n..])
            .with_context(|| format!("cannot read {}", path.display()))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(match &magic[..n] {
        [0x1f, 0x8b, ..] => LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => LAYER_ZSTD,
        _ => LAYER_TAR,
    })
}

/// The config with the new diff_ids, every timestamp at `epoch`, and the fields that record
/// the build host's state (`container`, `container_config`, `config.Image`) removed.
fn normalize_config(cfg: &Map<String, Value>, diff_ids: &[Digest], epoch: u64) -> Vec<u8> {
    let mut cfg = cfg.clone();
    let created = Value::String(crate::oci::config::rfc3339(epoch));
    cfg.insert("created".into(), created.clone());
    cfg.remove("container");
    cfg.remove("container_config");
    if let Some(Value::Object(c)) = cfg.get_mut("config") {
        c.remove("Image");
    }
    if let Some(Value::Array(h)) = cfg.get_mut("history") {
        for e in h.iter_mut() {
            if let Value::Object(e) = e {
                e.insert("created".into(), created.clone());
            }
        }
    }
    let ids: Vec<Value> = diff_ids.iter().map(|d| d.to_string().into()).collect();
    match cfg.get_mut("rootfs") {
        Some(Value::Object(r)) => {
            r.insert("diff_ids".into(), ids.into());
        }
        _ => {
            cfg.insert(
                "rootfs".into(),
                serde_json::json!({"type": "layers", "diff_ids": ids}),
            );
        }
    }
    json::canonical(&cfg)
}

#[cfg(test)]
mod tests;
