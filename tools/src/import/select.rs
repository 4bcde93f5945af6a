//! Which image (or index) of an OCI layout or docker-save archive is imported, with its
//! manifests, index and config read and verified against their digests. Layers are only
//! located here; they are verified when they are copied.

use super::source::{Source, normalize_rel};
use crate::oci::digest::Digest;
use crate::oci::spec::{
    self, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, MT_DOCKER_LIST, MT_INDEX,
    MT_MANIFEST, Platform,
};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};

pub const MT_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

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

/// A manifest as read from the source.
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub map: Map<String, Value>,
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
    pub manifest: Option<Manifest>,
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
    pub map: Map<String, Value>,
    /// The imported children, in index order.
    pub children: Vec<Child>,
    /// Whether some entries (attestations, entries without a platform) were left out.
    pub skipped: bool,
}

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

/// A wanted platform matches; a missing variant is the architecture's default one.
pub fn platform_matches(want: &Platform, have: &Platform) -> bool {
    if want.matches(have) {
        return true;
    }
    let default = match have.arch.as_str() {
        "arm64" => "v8",
        "amd64" => "v1",
        _ => return false,
    };
    have.variant.is_none()
        && want.os == have.os
        && want.arch == have.arch
        && want.variant.as_deref() == Some(default)
}

/// The platform of a config.
pub fn config_platform(cfg: &Map<String, Value>) -> Platform {
    Platform::from_json(&Value::Object(cfg.clone()))
}

/// A single image asked for with --platform must be for that platform.
fn check_platform(img: &ImageSrc, want: Option<&Platform>) -> Result<()> {
    if let Some(want) = want {
        let have = config_platform(&img.cfg);
        if !platform_matches(want, &have) {
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

pub fn blob_rel(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A manifest, index or config blob of an OCI layout, verified.
fn read_blob(src: &Source, what: &str, desc: &Descriptor) -> Result<Vec<u8>> {
    let rel = blob_rel(&desc.digest);
    if !src.exists(&rel) {
        bail!("{what} {} is not in {} (no {rel})", desc.digest, src.name());
    }
    let bytes = src.read_small(&rel)?;
    verify(what, src, &desc.digest, desc.size, &bytes)?;
    Ok(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Manifest,
    Index,
}

fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        MT_MANIFEST | MT_DOCKER_MANIFEST => Some(Kind::Manifest),
        MT_INDEX | MT_DOCKER_LIST => Some(Kind::Index),
        _ => None,
    }
}

/// The kind of a blob per its descriptor, checked against the blob's own mediaType.
fn check_kind(what: &str, src: &Source, desc: &Descriptor, m: &Map<String, Value>) -> Result<Kind> {
    let Some(kind) = kind_of(&desc.media_type) else {
        bail!(
            "{what} {} in {} has media type {}, which is neither an image manifest nor an image index",
            desc.digest,
            src.name(),
            desc.media_type
        );
    };
    if let Some(own) = m.get("mediaType").and_then(Value::as_str)
        && kind_of(own).is_some_and(|k| k != kind)
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

fn annotation<'a>(desc: &'a Descriptor, key: &str) -> Option<&'a str> {
    desc.raw
        .get("annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// `name[:tag]` in the fully qualified form containerd uses (`alpine` ->
/// `docker.io/library/alpine:latest`); digests are left as they are.
fn docker_qualified(name: &str) -> String {
    if name.contains('@') {
        return name.to_string();
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let tagged = if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    match tagged.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            tagged
        }
        Some(_) => format!("docker.io/{tagged}"),
        None => format!("docker.io/library/{tagged}"),
    }
}

/// Whether an index.json entry is the image `name`: its ref.name annotation, its containerd
/// name (compared as given and fully qualified: `app` is `docker.io/library/app:latest`), or
/// the tag part of its containerd name.
fn ref_matches(desc: &Descriptor, name: &str) -> bool {
    if annotation(desc, ANNOTATION_REF_NAME) == Some(name) {
        return true;
    }
    match annotation(desc, ANNOTATION_CONTAINERD_NAME) {
        Some(c) => {
            c == name
                || crate::layout::tag_part(c) == name
                || docker_qualified(c) == docker_qualified(name)
        }
        None => false,
    }
}

/// How an index.json entry is named in messages.
fn entry_names(desc: &Descriptor) -> String {
    let names: Vec<&str> = [ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME]
        .iter()
        .filter_map(|k| annotation(desc, k))
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
    let layout = spec::parse_json_object(&src.read_small("oci-layout")?)
        .with_context(|| format!("malformed oci-layout in {name}"))?;
    match layout.get("imageLayoutVersion").and_then(Value::as_str) {
        Some("1.0.0") => {}
        v => bail!(
            "oci-layout in {name} has imageLayoutVersion {}, only \"1.0.0\" is supported",
            v.map_or("(none)".to_string(), |v| format!("{v:?}"))
        ),
    }
    let index_json = src.read_small("index.json")?;
    let bad = || format!("malformed index.json in {name}");
    let top = spec::parse_json_object(&index_json).with_context(bad)?;
    let entries = top
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no \"manifests\" array"))
        .with_context(bad)?
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Descriptor::from_value(e)
                .with_context(|| format!("manifests[{i}]"))
                .with_context(bad)
        })
        .collect::<Result<Vec<_>>>()?;
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
    let what = match kind_of(&chosen.media_type) {
        Some(Kind::Index) => "index",
        Some(Kind::Manifest) => "manifest",
        None => bail!(
            "the image {} in {name} has media type {}, which is neither an image manifest nor an image index",
            chosen.digest,
            chosen.media_type
        ),
    };
    let bytes = read_blob(src, what, &chosen)?;
    let m = spec::parse_json_object(&bytes)
        .with_context(|| format!("malformed {what} {} in {name}", chosen.digest))?;
    match check_kind(what, src, &chosen, &m)? {
        Kind::Manifest => {
            let img = read_image(
                src,
                Manifest { bytes, map: m },
                format!("image {} in {name}", chosen.digest),
            )?;
            check_platform(&img, want_platform)?;
            Ok(Selected::Image(img))
        }
        Kind::Index => select_from_index(src, &chosen, bytes, m, want_platform),
    }
}

fn select_from_index(
    src: &Source,
    desc: &Descriptor,
    bytes: Vec<u8>,
    map: Map<String, Value>,
    want: Option<&Platform>,
) -> Result<Selected> {
    let name = src.name();
    let bad = || format!("malformed index {} in {name}", desc.digest);
    let entries = map
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no \"manifests\" array"))
        .with_context(bad)?;
    let mut kept: Vec<(Descriptor, Platform)> = Vec::new();
    let mut skipped = false;
    for (i, e) in entries.iter().enumerate() {
        let p = Platform::from_json(e.get("platform").unwrap_or(&Value::Null));
        if p.os == "unknown" || p.os.is_empty() || p.arch.is_empty() {
            skipped = true;
            continue;
        }
        let d = Descriptor::from_value(e)
            .with_context(|| format!("manifests[{i}]"))
            .with_context(bad)?;
        if kind_of(&d.media_type) == Some(Kind::Index) {
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
        let Some((d, p)) = kept.iter().find(|(_, p)| platform_matches(want, p)) else {
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
    let mut dirs = Vec::new();
    for (_, p) in &kept {
        let dir = p.dir_name();
        if dirs.contains(&dir) {
            bail!("index {} in {name} lists platform {p} twice", desc.digest);
        }
        dirs.push(dir);
    }
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
        map,
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
    if !src.exists(&blob_rel(&d.digest)) {
        let present: Vec<String> = kept
            .iter()
            .filter(|(d, _)| src.exists(&blob_rel(&d.digest)))
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
    let m = spec::parse_json_object(&bytes).with_context(|| format!("malformed {what}"))?;
    if check_kind("manifest", src, d, &m)? == Kind::Index {
        bail!(
            "index {} in {name} contains another index ({} for {p}); nested indexes are not supported",
            index.digest,
            d.digest
        );
    }
    read_image(src, Manifest { bytes, map: m }, what)
}

/// The rootfs.diff_ids of a config, checked against the number of layers.
fn diff_ids(what: &str, cfg: &Map<String, Value>, layers: usize) -> Result<Vec<Digest>> {
    let ids = match cfg.get("rootfs").and_then(|r| r.get("diff_ids")) {
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .ok_or_else(|| anyhow!("rootfs.diff_ids[{i}] is not a string"))
                    .and_then(|s| Digest::parse(s).map_err(|e| anyhow!(e)))
                    .with_context(|| format!("config of {what}"))
            })
            .collect::<Result<Vec<_>>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => bail!("config of {what}: rootfs.diff_ids is not an array"),
    };
    if ids.len() != layers {
        bail!(
            "config of {what} lists {} diff_ids for {layers} layers",
            ids.len()
        );
    }
    Ok(ids)
}

fn read_image(src: &Source, manifest: Manifest, what: String) -> Result<ImageSrc> {
    let bad = || format!("malformed manifest of {what}");
    let config_desc = spec::manifest_config(&manifest.map).with_context(bad)?;
    let layers = spec::manifest_layers(&manifest.map).with_context(bad)?;
    let config = read_blob(src, "config", &config_desc).with_context(|| what.clone())?;
    let cfg = spec::parse_json_object(&config)
        .with_context(|| format!("malformed config {} of {what}", config_desc.digest))?;
    let diff_ids = diff_ids(&what, &cfg, layers.len())?;
    let layers = layers
        .into_iter()
        .map(|d| LayerSrc {
            rel: blob_rel(&d.digest),
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

/// One entry of a docker-save manifest.json.
struct DockerEntry {
    config: String,
    tags: Vec<String>,
    layers: Vec<String>,
}

fn docker_entries(src: &Source) -> Result<Vec<DockerEntry>> {
    let name = src.name();
    let bad = || format!("malformed manifest.json in {name}");
    let v: Value = serde_json::from_slice(&src.read_small("manifest.json")?)
        .context("invalid JSON")
        .with_context(bad)?;
    let arr = v
        .as_array()
        .ok_or_else(|| anyhow!("expected a JSON array"))
        .with_context(bad)?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            let ctx = || format!("malformed manifest.json in {name}: entry {i}");
            let config = e
                .get("Config")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("no string \"Config\""))
                .with_context(ctx)?
                .to_string();
            let strings = |k: &str| -> Result<Vec<String>> {
                match e.get(k) {
                    None | Some(Value::Null) => Ok(Vec::new()),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|s| {
                            s.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| anyhow!("{k:?} is not a list of strings"))
                        })
                        .collect::<Result<_>>()
                        .with_context(ctx),
                    Some(_) => Err(anyhow!("{k:?} is not a list")).with_context(ctx),
                }
            };
            Ok(DockerEntry {
                config,
                tags: strings("RepoTags")?,
                layers: strings("Layers")?,
            })
        })
        .collect()
}

fn docker_names(e: &DockerEntry) -> String {
    if e.tags.is_empty() {
        format!("{} (untagged)", e.config)
    } else {
        e.tags.join(", ")
    }
}

fn select_docker(src: &Source, want_ref: Option<&str>) -> Result<ImageSrc> {
    let name = src.name();
    let entries = docker_entries(src)?;
    let listing = |es: &[&DockerEntry]| {
        es.iter()
            .map(|e| docker_names(e))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let all: Vec<&DockerEntry> = entries.iter().collect();
    let e = match want_ref {
        Some(r) => {
            let latest = format!("{r}:latest");
            let m: Vec<&DockerEntry> = entries
                .iter()
                .filter(|e| e.tags.iter().any(|t| t == r || *t == latest))
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
    let what = match e.tags.first() {
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
    let cfg = spec::parse_json_object(&config)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_names_are_qualified() {
        assert_eq!(
            docker_qualified("alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(docker_qualified("alpine:3"), "docker.io/library/alpine:3");
        assert_eq!(docker_qualified("me/app:v1"), "docker.io/me/app:v1");
        assert_eq!(docker_qualified("reg:5000/app"), "reg:5000/app:latest");
        assert_eq!(docker_qualified("localhost/app:1"), "localhost/app:1");
    }

    #[test]
    fn default_variants_match() {
        let p = |s| Platform::parse(s).unwrap();
        assert!(platform_matches(&p("linux/arm64/v8"), &p("linux/arm64")));
        assert!(platform_matches(&p("linux/amd64/v1"), &p("linux/amd64")));
        assert!(platform_matches(&p("linux/arm64"), &p("linux/arm64/v8")));
        assert!(!platform_matches(&p("linux/amd64/v2"), &p("linux/amd64")));
        assert!(!platform_matches(&p("linux/arm/v7"), &p("linux/arm/v6")));
    }
}
