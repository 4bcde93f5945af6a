//! Which image (or index) of an OCI layout or docker-save archive is imported, with its
//! manifests, index and config read and verified against their digests. Layers are only
//! located here; they are verified when they are copied.

use super::source::{Source, normalize_rel};
use crate::oci::descriptor::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::oci::layout::{DockerSaveEntry, LAYOUT_VERSION, OciLayout, blob_path};
use crate::oci::media_type::{self, Kind};
use crate::oci::reference::{docker_qualified, tag_part};
use crate::oci::{Descriptor, Digest, ImageIndex, ImageManifest, Platform, json};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OciLayout,
    DockerSave,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::OciLayout => "oci-layout",
            Format::DockerSave => "docker-save",
        }
    }
}

/// A manifest as read from the source: its exact bytes and what they say.
pub struct SourceManifest {
    pub bytes: Vec<u8>,
    pub parsed: ImageManifest,
}

/// One layer of a selected image: where its blob is and, for an OCI layout, the manifest's
/// descriptor (a docker-save archive has none: its digest is computed).
pub struct LayerSrc {
    pub rel: String,
    pub desc: Option<Descriptor>,
}

/// One selected image.
pub struct ImageSrc {
    /// For messages: `image sha256:... (linux/amd64) in SRC`.
    pub what: String,
    /// None for a docker-save archive, which has no manifest (one is written).
    pub manifest: Option<SourceManifest>,
    pub config: Vec<u8>,
    pub cfg: Map<String, Value>,
    /// rootfs.diff_ids of the config, as many as there are layers.
    pub diff_ids: Vec<Digest>,
    pub layers: Vec<LayerSrc>,
}

/// One platform of a selected index.
pub struct Child {
    /// The index's descriptor of the child, as read (platform, annotations...).
    pub desc: Descriptor,
    pub platform: Platform,
    pub image: ImageSrc,
}

pub struct IndexSrc {
    pub bytes: Vec<u8>,
    pub parsed: ImageIndex,
    /// The imported children, in index order.
    pub children: Vec<Child>,
    /// Whether some entries (attestations, entries without a platform) were left out.
    pub skipped: bool,
}

// Few exist at a time (one per image): boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
pub enum Selected {
    Image(ImageSrc),
    Index(IndexSrc),
}

/// What to import from `src`.
pub fn select(
    src: &Source,
    want_ref: Option<&str>,
    want_platform: Option<&Platform>,
) -> Result<(Format, Selected)> {
    if src.exists("index.json") && src.exists("oci-layout") {
        let sel = select_oci(src, want_ref, want_platform)?;
        Ok((Format::OciLayout, sel))
    } else if src.exists("manifest.json") {
        let img = select_docker(src, want_ref)?;
        check_platform(&img, want_platform)?;
        Ok((Format::DockerSave, Selected::Image(img)))
    } else {
        bail!(
            "{} is neither an OCI image layout (index.json, oci-layout) nor a docker save tarball (manifest.json)",
            src.name()
        )
    }
}

/// A single image asked for with --platform must be for that platform.
fn check_platform(img: &ImageSrc, want: Option<&Platform>) -> Result<()> {
    if let Some(want) = want {
        let have = Platform::of_config(&img.cfg);
        if want.select([&have]).is_none() {
            bail!("{} is for platform {have}, not {want}", img.what);
        }
    }
    Ok(())
}

fn verify(what: &str, src: &Source, d: &Digest, size: u64, bytes: &[u8]) -> Result<()> {
    let got = Digest::of(bytes);
    if got != *d || bytes.len() as u64 != size {
        bail!(
            "{what} {d} in {}: content has digest {got} ({} bytes), expected {d} ({size} bytes)",
            src.name(),
            bytes.len()
        );
    }
    Ok(())
}

/// A manifest, index or config blob of an OCI layout, verified.
fn read_blob(src: &Source, what: &str, desc: &Descriptor) -> Result<Vec<u8>> {
    let rel = blob_path(&desc.digest);
    if !src.exists(&rel) {
        bail!("{what} {} is not in {} (no {rel})", desc.digest, src.name());
    }
    let bytes = src.read_small(&rel)?;
    verify(what, src, &desc.digest, desc.size, &bytes)?;
    Ok(bytes)
}

/// The kind of a blob per its descriptor, checked against the blob's own mediaType.
fn check_kind(what: &str, src: &Source, desc: &Descriptor, bytes: &[u8]) -> Result<Kind> {
    let Some(kind) = media_type::kind(&desc.media_type) else {
        bail!(
            "{what} {} in {} has media type {}, which is neither an image manifest nor an image index",
            desc.digest,
            src.name(),
            desc.media_type
        );
    };
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Own {
        media_type: Option<String>,
    }
    let own: Own = json::parse(bytes)
        .with_context(|| format!("malformed {what} {} in {}", desc.digest, src.name()))?;
    if let Some(own) = own.media_type.as_deref()
        && media_type::kind(own).is_some_and(|k| k != kind)
    {
        bail!(
            "{what} {} in {}: its descriptor says {} but the content says {own}",
            desc.digest,
            src.name(),
            desc.media_type
        );
    }
    Ok(kind)
}

/// Whether an index.json entry is the image `name`: its ref.name annotation, its containerd
/// name (compared as given and fully qualified: `app` is `docker.io/library/app:latest`), or
/// the tag part of its containerd name.
fn ref_matches(desc: &Descriptor, name: &str) -> bool {
    if desc.annotation(ANNOTATION_REF_NAME) == Some(name) {
        return true;
    }
    match desc.annotation(ANNOTATION_CONTAINERD_NAME) {
        Some(c) => {
            c == name || tag_part(c) == name || docker_qualified(c) == docker_qualified(name)
        }
        None => false,
    }
}

/// How an index.json entry is named in messages.
fn entry_names(desc: &Descriptor) -> String {
    let names: Vec<&str> = [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME]
        .iter()
        .filter_map(|k| desc.annotation(k))
        .collect();
    if names.is_empty() {
        format!("{} (no name)", desc.digest)
    } else {
        names.join(" / ")
    }
}

/// The distinct images (by digest) among `entries`, in order, with all their names.
fn distinct(entries: &[&Descriptor]) -> Vec<(Descriptor, String)> {
    let mut out: Vec<(Descriptor, Vec<String>)> = Vec::new();
    for e in entries {
        let n = entry_names(e);
        match out.iter_mut().find(|(d, _)| d.digest == e.digest) {
            Some((_, names)) => {
                if !names.contains(&n) {
                    names.push(n)
                }
            }
            None => out.push(((*e).clone(), vec![n])),
        }
    }
    out.into_iter()
        .map(|(d, n)| {
            let names = n.join(", ");
            (d, names)
        })
        .collect()
}

fn listing(images: &[(Descriptor, String)]) -> String {
    images
        .iter()
        .map(|(_, n)| n.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn select_oci(
    src: &Source,
    want_ref: Option<&str>,
    want_platform: Option<&Platform>,
) -> Result<Selected> {
    let name = src.name();
    let layout: OciLayout = json::parse(&src.read_small("oci-layout")?)
        .with_context(|| format!("malformed oci-layout in {name}"))?;
    if layout.image_layout_version != LAYOUT_VERSION {
        bail!(
            "oci-layout in {name} has imageLayoutVersion {:?}, only {LAYOUT_VERSION:?} is supported",
            layout.image_layout_version
        );
    }
    let index_json = src.read_small("index.json")?;
    let entries = ImageIndex::parse(&index_json)
        .with_context(|| format!("malformed index.json in {name}"))?
        .manifests;
    let all: Vec<&Descriptor> = entries.iter().collect();
    let chosen = match want_ref {
        Some(r) => {
            let matching: Vec<&Descriptor> = entries.iter().filter(|e| ref_matches(e, r)).collect();
            let images = distinct(&matching);
            match images.len() {
                0 => bail!(
                    "{name} has no image named {r:?}; it has: {}",
                    listing(&distinct(&all))
                ),
                1 => images.into_iter().next().expect("one").0,
                n => bail!(
                    "{n} different images in {name} are named {r:?}: {}",
                    listing(&images)
                ),
            }
        }
        None => {
            let images = distinct(&all);
            match images.len() {
                0 => bail!("index.json of {name} lists no images"),
                1 => images.into_iter().next().expect("one").0,
                n => bail!(
                    "{name} holds {n} images: {}; choose one with `ref`",
                    listing(&images)
                ),
            }
        }
    };
    let what = match media_type::kind(&chosen.media_type) {
        Some(Kind::Index) => "index",
        Some(Kind::Image) => "manifest",
        None => bail!(
            "the image {} in {name} has media type {}, which is neither an image manifest nor an image index",
            chosen.digest,
            chosen.media_type
        ),
    };
    let bytes = read_blob(src, what, &chosen)?;
    let malformed = || format!("malformed {what} {} in {name}", chosen.digest);
    match check_kind(what, src, &chosen, &bytes)? {
        Kind::Image => {
            let parsed = ImageManifest::parse(&bytes).with_context(malformed)?;
            let img = read_image(
                src,
                SourceManifest { bytes, parsed },
                format!("image {} in {name}", chosen.digest),
            )?;
            check_platform(&img, want_platform)?;
            Ok(Selected::Image(img))
        }
        Kind::Index => {
            let parsed = ImageIndex::parse(&bytes).with_context(malformed)?;
            select_from_index(src, &chosen, bytes, parsed, want_platform)
        }
    }
}

fn select_from_index(
    src: &Source,
    desc: &Descriptor,
    bytes: Vec<u8>,
    parsed: ImageIndex,
    want: Option<&Platform>,
) -> Result<Selected> {
    let name = src.name();
    let mut kept: Vec<(Descriptor, Platform)> = Vec::new();
    let mut skipped = false;
    for d in &parsed.manifests {
        let Some(p) = d.platform.clone().filter(Platform::is_image) else {
            skipped = true;
            continue;
        };
        let d = d.clone();
        if media_type::kind(&d.media_type) == Some(Kind::Index) {
            bail!(
                "index {} in {name} contains another index ({} for {p}); nested indexes are not supported",
                desc.digest,
                d.digest
            );
        }
        kept.push((d, p));
    }
    let platforms = |ds: &[(Descriptor, Platform)]| {
        if ds.is_empty() {
            "none".to_string()
        } else {
            ds.iter()
                .map(|(_, p)| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if let Some(want) = want {
        let Some((d, p)) = want.select(kept.iter().map(|(_, p)| p)).map(|i| &kept[i]) else {
            bail!(
                "index {} in {name} has no image for platform {want}; available: {}",
                desc.digest,
                platforms(&kept)
            );
        };
        let image = read_child(src, desc, d, p, &kept)?;
        return Ok(Selected::Image(image));
    }
    if kept.is_empty() {
        bail!(
            "index {} in {name} has no image with a platform (only attestations or entries without one)",
            desc.digest
        );
    }
    let platforms: Vec<Platform> = kept.iter().map(|(_, p)| p.clone()).collect();
    crate::repo_dir::check_distinct(&platforms, &format!("index {} in {name}", desc.digest))?;
    let mut children = Vec::new();
    for (d, p) in &kept {
        let image = read_child(src, desc, d, p, &kept)?;
        children.push(Child {
            desc: d.clone(),
            platform: p.clone(),
            image,
        });
    }
    Ok(Selected::Index(IndexSrc {
        bytes,
        parsed,
        children,
        skipped,
    }))
}

/// One platform's image of an index; a manifest missing from the layout (docker's
/// containerd image store saves only the host's platform) is reported with the platforms
/// that are there.
fn read_child(
    src: &Source,
    index: &Descriptor,
    d: &Descriptor,
    p: &Platform,
    kept: &[(Descriptor, Platform)],
) -> Result<ImageSrc> {
    let name = src.name();
    if !src.exists(&blob_path(&d.digest)) {
        let present: Vec<String> = kept
            .iter()
            .filter(|(d, _)| src.exists(&blob_path(&d.digest)))
            .map(|(_, p)| p.to_string())
            .collect();
        bail!(
            "the manifest {} of platform {p} of index {} is not in {name} (docker saves only the platforms it has pulled); import one platform with `platform`{}",
            d.digest,
            index.digest,
            if present.is_empty() {
                String::new()
            } else {
                format!(" (present: {})", present.join(", "))
            }
        );
    }
    let what = format!("image {} ({p}) in {name}", d.digest);
    let bytes = read_blob(src, "manifest", d)?;
    if check_kind("manifest", src, d, &bytes)? == Kind::Index {
        bail!(
            "index {} in {name} contains another index ({} for {p}); nested indexes are not supported",
            index.digest,
            d.digest
        );
    }
    let parsed = ImageManifest::parse(&bytes).with_context(|| format!("malformed {what}"))?;
    read_image(src, SourceManifest { bytes, parsed }, what)
}

/// The rootfs.diff_ids of a config, checked against the number of layers.
fn diff_ids(what: &str, cfg: &Map<String, Value>, layers: usize) -> Result<Vec<Digest>> {
    let ids = crate::oci::config::diff_ids(cfg).with_context(|| format!("config of {what}"))?;
    if ids.len() != layers {
        bail!(
            "config of {what} lists {} diff_ids for {layers} layers",
            ids.len()
        );
    }
    Ok(ids)
}

fn read_image(src: &Source, manifest: SourceManifest, what: String) -> Result<ImageSrc> {
    let config_desc = manifest.parsed.config.clone();
    let layers = manifest.parsed.layers.clone();
    let config = read_blob(src, "config", &config_desc).with_context(|| what.clone())?;
    let cfg = json::parse_object(&config)
        .with_context(|| format!("malformed config {} of {what}", config_desc.digest))?;
    let diff_ids = diff_ids(&what, &cfg, layers.len())?;
    let layers = layers
        .into_iter()
        .map(|d| LayerSrc {
            rel: blob_path(&d.digest),
            desc: Some(d),
        })
        .collect();
    Ok(ImageSrc {
        what,
        manifest: Some(manifest),
        config,
        cfg,
        diff_ids,
        layers,
    })
}

fn docker_entries(src: &Source) -> Result<Vec<DockerSaveEntry>> {
    json::parse(&src.read_small("manifest.json")?)
        .with_context(|| format!("malformed manifest.json in {}", src.name()))
}

fn docker_names(e: &DockerSaveEntry) -> String {
    if e.repo_tags.is_empty() {
        format!("{} (untagged)", e.config)
    } else {
        e.repo_tags.join(", ")
    }
}

fn select_docker(src: &Source, want_ref: Option<&str>) -> Result<ImageSrc> {
    let name = src.name();
    let entries = docker_entries(src)?;
    let listing = |es: &[&DockerSaveEntry]| {
        es.iter()
            .map(|e| docker_names(e))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let all: Vec<&DockerSaveEntry> = entries.iter().collect();
    let e = match want_ref {
        Some(r) => {
            let latest = format!("{r}:latest");
            let m: Vec<&DockerSaveEntry> = entries
                .iter()
                .filter(|e| e.repo_tags.iter().any(|t| t == r || *t == latest))
                .collect();
            match m.len() {
                0 => bail!(
                    "{name} has no image tagged {r:?}; it has: {}",
                    listing(&all)
                ),
                1 => m[0],
                n => bail!("{n} images in {name} are tagged {r:?}: {}", listing(&m)),
            }
        }
        None => match entries.len() {
            0 => bail!("manifest.json of {name} lists no images"),
            1 => &entries[0],
            n => bail!(
                "{name} holds {n} images: {}; choose one with `ref`",
                listing(&all)
            ),
        },
    };
    let what = match e.repo_tags.first() {
        Some(t) => format!("image {t} in {name}"),
        None => format!("image {} in {name}", e.config),
    };
    let rel = |p: &str, field: &str| {
        normalize_rel(p)
            .map_err(|why| anyhow!("manifest.json of {name}: {field} {p:?} of {what}: {why}"))
    };
    let config_rel = rel(&e.config, "Config")?;
    let config = src.read_small(&config_rel)?;
    // The config's file name is its digest: `<hex>.json` (or `blobs/sha256/<hex>`).
    let base = config_rel.rsplit('/').next().unwrap_or(&config_rel);
    let stem = base.strip_suffix(".json").unwrap_or(base);
    let named = Digest::parse(&format!("sha256:{stem}")).map_err(|_| {
        anyhow!(
            "config {} of {what} is not named after its sha256 digest (<hex>.json)",
            e.config
        )
    })?;
    let got = Digest::of(&config);
    if got != named {
        bail!(
            "config {} of {what}: content has digest {got} ({} bytes), expected {named}",
            e.config,
            config.len()
        );
    }
    let cfg = json::parse_object(&config)
        .with_context(|| format!("malformed config {} of {what}", e.config))?;
    let diff_ids = diff_ids(&what, &cfg, e.layers.len())?;
    let layers = e
        .layers
        .iter()
        .map(|l| {
            Ok(LayerSrc {
                rel: rel(l, "layer")?,
                desc: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ImageSrc {
        what,
        manifest: None,
        config,
        cfg,
        diff_ids,
        layers,
    })
}
