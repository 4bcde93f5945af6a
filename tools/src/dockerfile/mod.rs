//! `dockerfile-build`: a Dockerfile built as a Bazel action on Bazel-provided base images.
//!
//! 1. The context is staged from the declared files only, with modes reduced to 0644/0755
//!    and mtimes at `source_date_epoch`, so neither the checkout's umask nor its times reach
//!    the image.
//! 2. Each base (any image a Bazel target provides) is written as an OCI layout and put into a
//!    private Buildah store under the name the Dockerfile uses for it (`buildah::Buildah`).
//! 3. Buildah builds with `--pull=never` (a FROM that is not a base fails) and exports the
//!    result as an OCI layout.
//! 4. The result must be the final stage's base plus new layers: the base's diff_ids must be
//!    the first ones. The new layers are squashed into one normalized layer
//!    (`import::foreign_layer::squash_layers`: sorted, mtimes clamped), so the image is the
//!    base's own layer blobs (shared, never rewritten) plus exactly one new layer, which is
//!    what the Starlark rule declares.
//! 5. The config is the builder's with the base's history kept as it was, the new history
//!    entries at `source_date_epoch`, and build-host fields removed; the manifest lists the
//!    base's layer descriptors as they were.

mod buildah;

use self::buildah::Buildah;
use crate::build::layer::LayerMetadata;
use crate::build::manifest::{Assembled, ImageOutputs, listed_base_layers};
use crate::import::foreign_layer::{Normalize, squash_layers};
use crate::input::{Image, ImageFiles, Input, Resolver};
use crate::io::output::parent_dir;
use crate::oci::config::{diff_ids, rfc3339};
use crate::oci::layout::blob_path;
use crate::oci::{Descriptor, Digest, ImageIndex, ImageManifest, json, media_type};
use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The name the final stage's base has when it is no image (`FROM scratch`).
pub const SCRATCH: &str = "scratch";

pub struct DockerfileOptions<'a> {
    pub buildah: &'a Path,
    pub dockerfile: &'a Path,
    /// (path in the context, file): the context, file by file.
    pub context: &'a [(String, PathBuf)],
    /// (name in the Dockerfile, child file of the image).
    pub bases: &'a [(String, PathBuf)],
    /// Which of `bases` the final stage builds on, or `SCRATCH`.
    pub final_base: &'a str,
    pub build_args: &'a [(String, String)],
    pub target: Option<&'a str>,
    /// Let RUN steps use the network of the machine (else they have none).
    pub network: bool,
    pub normalize: Normalize,
    pub output_layer: &'a Path,
    pub output_layer_metadata: &'a Path,
    pub outputs: ImageOutputs,
}

/// The tag of the built image in the private store.
const RESULT_TAG: &str = "localhost/rules-image-dockerfile-result:latest";

pub fn run(o: &DockerfileOptions) -> Result<Digest> {
    let resolver = Resolver::new(false)?;
    let bases = o
        .bases
        .iter()
        .map(|(name, child)| {
            let image = Image::read(&ImageFiles::from_child_file(child, &resolver)?)
                .with_context(|| format!("base {name:?}"))?;
            Ok((name.as_str(), image))
        })
        .collect::<Result<BTreeMap<&str, Image>>>()?;
    let final_base =
        match o.final_base {
            SCRATCH => None,
            name => Some(bases.get(name).with_context(|| {
                format!("the final stage's base {name:?} is not one of the bases")
            })?),
        };

    // Scratch space next to the outputs: inside the sandbox, and removed on every exit.
    let work = tempfile::Builder::new()
        .prefix(".dockerfile-build")
        .tempdir_in(parent_dir(&o.outputs.manifest))
        .context("cannot create the scratch directory")?;
    let context = work.path().join("context");
    stage_context(&context, o.context, o.normalize.source_date_epoch)?;
    let dockerfile = work.path().join("Dockerfile");
    std::fs::copy(o.dockerfile, &dockerfile)
        .with_context(|| format!("cannot read the Dockerfile {}", o.dockerfile.display()))?;

    let builder = Buildah::new(o.buildah, &work.path().join("buildah"))?;
    for (name, image) in &bases {
        let layout = work.path().join(format!("base-{}", hex_name(name)));
        crate::write::layout::run(&Input::Image(image.clone()), &[], &layout)
            .with_context(|| format!("writing base {name:?} as an OCI layout"))?;
        builder.add_base(&layout, name)?;
        std::fs::remove_dir_all(&layout).ok();
    }
    builder.build(
        &dockerfile,
        &context,
        RESULT_TAG,
        &build_flags(o),
        o.network,
    )?;
    let built_dir = work.path().join("built");
    builder.export(RESULT_TAG, &built_dir)?;
    let built = Built::read(&built_dir)?;

    let base_ids = match final_base {
        Some(b) => diff_ids(&json::parse_object(&b.config)?)?,
        None => Vec::new(),
    };
    check_base(&built.diff_ids, &base_ids, o.final_base, &bases)?;
    let new_blobs: Vec<PathBuf> = built.layers[base_ids.len()..]
        .iter()
        .map(|d| built_dir.join(blob_path(&d.digest)))
        .collect();
    let (source_ids, layer) = squash_layers(&new_blobs, &o.normalize, o.output_layer)
        .context("the layers the Dockerfile added")?;
    if source_ids[..] != built.diff_ids[base_ids.len()..] {
        bail!("the exported layers do not have the diff_ids of the built image's config");
    }

    let config = result_config(
        &built.config,
        final_base,
        base_ids.len(),
        &layer,
        o.normalize.source_date_epoch,
    )?;
    let manifest = result_manifest(&config, final_base, o.final_base, &layer);
    let image = Assembled::new(config, manifest)?;
    image.write(&o.outputs, &[(o.output_layer_metadata, &layer.to_bytes())])?;
    let digest = image.digest;
    Ok(digest)
}

/// The build's flags after `build`: arguments, stage. `SOURCE_DATE_EPOCH` is passed as a
/// build argument unless given (Buildah also takes it as the time of what it records).
fn build_flags(o: &DockerfileOptions) -> Vec<OsString> {
    let mut flags: Vec<OsString> = Vec::new();
    let epoch = o.normalize.source_date_epoch.to_string();
    let mut args: BTreeMap<&str, &str> = BTreeMap::new();
    args.insert("SOURCE_DATE_EPOCH", &epoch);
    for (k, v) in o.build_args {
        args.insert(k, v);
    }
    for (k, v) in args {
        flags.push("--build-arg".into());
        flags.push(format!("{k}={v}").into());
    }
    if let Some(t) = o.target {
        flags.push("--target".into());
        flags.push(t.into());
    }
    flags
}

/// A file name for a base's layout (base names contain `/` and `:`).
fn hex_name(name: &str) -> String {
    hex::encode(name)
}

/// Copies the context files to `dir`: regular files only (links followed), mode 0755 if the
/// source is executable by anyone, else 0644; directories 0755; every mtime `epoch`.
pub(crate) fn stage_context(dir: &Path, files: &[(String, PathBuf)], epoch: u64) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    let mut dirs = std::collections::BTreeSet::new();
    for (rel, src) in files {
        let bad = rel.is_empty()
            || rel.starts_with('/')
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..");
        if bad {
            bail!("context path {rel:?} is not a relative path inside the context");
        }
        let dest = dir.join(rel);
        let parent = parent_dir(&dest);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let meta =
            std::fs::metadata(src).with_context(|| format!("context file {}", src.display()))?;
        if !meta.is_file() {
            bail!(
                "context file {} is not a regular file (pass a directory's files, e.g. with glob)",
                src.display()
            );
        }
        if dest.exists() {
            bail!("context path {rel:?} is given twice");
        }
        std::fs::copy(src, &dest)
            .with_context(|| format!("cannot copy {} into the context", src.display()))?;
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        let f = std::fs::File::options()
            .write(true)
            .open(&dest)
            .with_context(|| format!("cannot open {}", dest.display()))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.set_modified(time)?;
        let mut d = parent;
        while d != dir {
            dirs.insert(d.to_path_buf());
            d = parent_dir(d);
        }
    }
    dirs.insert(dir.to_path_buf());
    // Deepest first: setting a directory's time after its children were written.
    for d in dirs.iter().rev() {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        std::fs::File::open(d)
            .and_then(|f| f.set_modified(time))
            .with_context(|| format!("cannot set the time of {}", d.display()))?;
    }
    Ok(())
}

/// The image Buildah exported: its manifest's layers and its config.
struct Built {
    layers: Vec<Descriptor>,
    config: Map<String, Value>,
    diff_ids: Vec<Digest>,
}

impl Built {
    fn read(dir: &Path) -> Result<Built> {
        let read = |rel: &str| {
            let p = dir.join(rel);
            std::fs::read(&p).with_context(|| format!("cannot read the built image's {rel}"))
        };
        let index = ImageIndex::parse(&read("index.json")?)?;
        let [top] = index.manifests.as_slice() else {
            bail!(
                "the exported image layout has {} manifests, not 1",
                index.manifests.len()
            );
        };
        let manifest = ImageManifest::parse(&read(&blob_path(&top.digest))?)?;
        let config = json::parse_object(&read(&blob_path(&manifest.config.digest))?)?;
        let ids = diff_ids(&config)?;
        if ids.len() != manifest.layers.len() {
            bail!(
                "the built image's config lists {} diff_ids for {} layers",
                ids.len(),
                manifest.layers.len()
            );
        }
        Ok(Built {
            layers: manifest.layers,
            config,
            diff_ids: ids,
        })
    }
}

/// Checks that the built image starts with the final base's layers; else says which base it
/// does start with, if any.
fn check_base(
    built: &[Digest],
    base: &[Digest],
    final_base: &str,
    bases: &BTreeMap<&str, Image>,
) -> Result<()> {
    if built.starts_with(base) {
        return Ok(());
    }
    let mut found: Option<(&str, usize)> = None;
    for (name, image) in bases {
        let ids = json::parse_object(&image.config)
            .and_then(|c| diff_ids(&c))
            .unwrap_or_default();
        if !ids.is_empty() && built.starts_with(&ids) && found.is_none_or(|(_, n)| ids.len() > n) {
            found = Some((name, ids.len()));
        }
    }
    let actual = match found {
        Some((name, _)) => format!("on the base {name:?}"),
        None => "on none of the bases".to_string(),
    };
    bail!(
        "the Dockerfile's final stage builds {actual}, not on {final_base:?} (`final_base`): the built image's first layers are not {final_base:?}'s"
    )
}

/// The result's config: the builder's, with the base's history entries as the base has them,
/// the new ones at `epoch` (all but the last that added a layer marked empty: their layers
/// are squashed into one), the new diff_ids, and no build-host fields.
fn result_config(
    built: &Map<String, Value>,
    base: Option<&Image>,
    base_layers: usize,
    layer: &LayerMetadata,
    epoch: u64,
) -> Result<Vec<u8>> {
    let mut cfg = built.clone();
    let created = Value::String(rfc3339(epoch));
    cfg.insert("created".into(), created.clone());
    cfg.remove("container");
    cfg.remove("container_config");
    if let Some(Value::Object(c)) = cfg.get_mut("config") {
        c.remove("Image");
    }
    let base_cfg = match base {
        Some(b) => json::parse_object(&b.config)?,
        None => Map::new(),
    };
    let base_history = history(&base_cfg);
    let built_history = history(built);
    if built_history.len() < base_history.len() {
        bail!("the built image has less history than its base");
    }
    let mut new: Vec<Value> = built_history[base_history.len()..].to_vec();
    for e in new.iter_mut() {
        if let Value::Object(e) = e {
            e.insert("created".into(), created.clone());
            e.insert("empty_layer".into(), Value::Bool(true));
        }
    }
    let adds_layer = |e: &Value| {
        !e.get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    match built_history[base_history.len()..]
        .iter()
        .rposition(adds_layer)
    {
        Some(i) => {
            if let Some(Value::Object(e)) = new.get_mut(i) {
                e.remove("empty_layer");
            }
        }
        None => new.push(serde_json::json!({
            "created": created,
            "created_by": "dockerfile_image: the files the Dockerfile added (none)",
        })),
    }
    let mut all = base_history;
    all.extend(new);
    cfg.insert("history".into(), Value::Array(all));
    let mut ids: Vec<Value> = diff_ids(&base_cfg)?
        .iter()
        .take(base_layers)
        .map(|d| d.to_string().into())
        .collect();
    ids.push(layer.diff_id.to_string().into());
    cfg.insert(
        "rootfs".into(),
        serde_json::json!({"type": "layers", "diff_ids": ids}),
    );
    Ok(json::canonical(&cfg))
}

fn history(cfg: &Map<String, Value>) -> Vec<Value> {
    match cfg.get("history") {
        Some(Value::Array(h)) => h.clone(),
        _ => Vec::new(),
    }
}

/// The result's manifest: the base's layer descriptors as they are (with the OCI media type
/// of a Docker-format layer, as `image_manifest` lists them), then the new layer; annotated
/// with the base's digest and name.
fn result_manifest(
    config: &[u8],
    base: Option<&Image>,
    base_name: &str,
    layer: &LayerMetadata,
) -> Vec<u8> {
    let mut layers = base
        .map(|b| listed_base_layers(&b.parsed.layers))
        .unwrap_or_default();
    layers.push(layer.descriptor());
    let mut annotations = BTreeMap::new();
    if let Some(b) = base {
        annotations.insert(
            "org.opencontainers.image.base.digest".to_string(),
            b.descriptor().digest.to_string(),
        );
        annotations.insert(
            "org.opencontainers.image.base.name".to_string(),
            base_name.to_string(),
        );
    }
    ImageManifest::new(
        Descriptor::of(media_type::CONFIG, config),
        layers,
        annotations,
    )
    .to_bytes()
}

#[cfg(test)]
mod tests;
