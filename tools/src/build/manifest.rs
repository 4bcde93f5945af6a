//! `manifest`: assembles an image config and manifest from an optional base image, layer
//! metadata files and a config fragment written by the Starlark rules.
//!
//! The config is merged as Docker builds merge it: the base config is the starting point and
//! keeps every field this tool does not set (so unknown fields survive byte for byte in
//! value); the fragment overrides or extends what it names.

use super::layer::LayerMetadata;
use crate::io::output;
use crate::oci::{Descriptor, Digest, ImageManifest, Platform, json, media_type};
use crate::stamp::Status;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const EPOCH: &str = "1970-01-01T00:00:00Z";
const DEFAULT_CREATED_BY: &str = "rules_image layer";

/// The config fragment `image_manifest` writes. Absent and null mean "inherit from the
/// base"; so does an empty string for the string fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFragment {
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE`, merged over the base's by key.
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    /// Manifest annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    pub exposed_ports: Option<Vec<String>>,
    pub volumes: Option<Vec<String>>,
    /// RFC 3339; the epoch unless given.
    pub created: Option<String>,
    /// `created_by` of each new layer's history entry, in layer order.
    pub layer_history: Option<Vec<String>>,
}

impl ConfigFragment {
    /// Fills `{KEY}` templates of `created` and of label and annotation values from the
    /// workspace status when stamping (`status` given). A `created` that is then all digits
    /// is seconds since the epoch (`{BUILD_TIMESTAMP}`, `{SOURCE_DATE_EPOCH}`). Unstamped, a
    /// templated `created` is the epoch and labels and annotations keep their text, so that
    /// the image stays the same from build to build.
    pub fn stamp(&mut self, status: Option<&Status>) -> Result<()> {
        let Some(status) = status else {
            if self.created.as_deref().is_some_and(|c| c.contains('{')) {
                self.created = None;
            }
            return Ok(());
        };
        if let Some(c) = &self.created {
            let c = status.expand(c, "created", |_| None)?;
            let secs = c.parse::<u64>().ok().filter(|_| !c.is_empty());
            self.created = Some(secs.map(crate::oci::config::rfc3339).unwrap_or(c));
        }
        for (what, map) in [
            ("label", &mut self.labels),
            ("annotation", &mut self.annotations),
        ] {
            for (key, value) in map.iter_mut().flatten() {
                *value = status.expand(value, &format!("{what} {key}"), |_| None)?;
            }
        }
        Ok(())
    }
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A base image as `manifest` reads it: its config (merged field by field) and its layers.
pub struct BaseImage {
    pub config: Map<String, Value>,
    pub layers: Vec<Descriptor>,
}

pub fn read_base(manifest_path: &Path, config_path: &Path) -> Result<BaseImage> {
    let manifest_bytes = std::fs::read(manifest_path)
        .with_context(|| format!("cannot read base manifest {}", manifest_path.display()))?;
    let manifest = ImageManifest::parse(&manifest_bytes)
        .with_context(|| format!("malformed base manifest {}", manifest_path.display()))?;
    let config = json::read_object(config_path, "base config")?;
    let n = diff_ids(&config)
        .with_context(|| format!("malformed base config {}", config_path.display()))?
        .len();
    if n != manifest.layers.len() {
        bail!(
            "base manifest {} has {} layers but base config {} has {n} rootfs.diff_ids",
            manifest_path.display(),
            manifest.layers.len(),
            config_path.display()
        );
    }
    Ok(BaseImage {
        config,
        layers: manifest.layers,
    })
}

/// `rootfs.diff_ids` of a config, as JSON strings.
fn diff_ids(config: &Map<String, Value>) -> Result<Vec<Value>> {
    Ok(crate::oci::config::diff_ids(config)?
        .iter()
        .map(|d| Value::String(d.to_string()))
        .collect())
}

/// Merges `K=V` entries into `env`: an existing key is replaced in place, a new one appended.
pub fn merge_env(env: &mut Vec<Value>, updates: &[String]) {
    fn key(s: &str) -> &str {
        s.split_once('=').map_or(s, |(k, _)| k)
    }
    for u in updates {
        let pos = env
            .iter()
            .position(|e| e.as_str().is_some_and(|e| key(e) == key(u)));
        match pos {
            Some(i) => env[i] = Value::String(u.clone()),
            None => env.push(Value::String(u.clone())),
        }
    }
}

/// Docker accepts "8080" for "8080/tcp"; store the canonical form.
fn normalize_port(p: &str) -> String {
    if p.contains('/') {
        p.to_string()
    } else {
        format!("{p}/tcp")
    }
}

/// The object at `field` of `obj`, made one if it is missing or not an object.
fn object_at<'a>(obj: &'a mut Map<String, Value>, field: &str) -> &'a mut Map<String, Value> {
    let slot = obj
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

/// Adds `items` as keys of the set-like object at `field` (`ExposedPorts`, `Volumes`).
fn merge_set(cfg: &mut Map<String, Value>, field: &str, items: Vec<String>) {
    if items.is_empty() {
        return;
    }
    let set = object_at(cfg, field);
    for i in items {
        set.insert(i, json!({}));
    }
}

/// os, architecture and variant: the fragment decides; a base for another platform is a
/// mistake worth naming.
fn set_platform(config: &mut Map<String, Value>, frag: &ConfigFragment) -> Result<()> {
    let base = config.clone();
    for (field, want) in [("os", &frag.os), ("architecture", &frag.architecture)] {
        let have = base.get(field).and_then(Value::as_str);
        match (nonempty(want), have) {
            (Some(w), Some(h)) if w != h => {
                bail!("the base image has {field} {h:?} but this image is for {field} {w:?}")
            }
            (Some(w), _) => {
                config.insert(field.into(), w.into());
            }
            (None, Some(_)) => {}
            (None, None) => {
                bail!("the config fragment does not set {field:?} and there is no base image")
            }
        }
    }
    if let Some(v) = nonempty(&frag.variant) {
        config.insert("variant".into(), v.into());
    }
    Ok(())
}

/// rootfs and history: the base's entries first, then one per new layer.
fn add_layers(
    config: &mut Map<String, Value>,
    frag: &ConfigFragment,
    layers: &[LayerMetadata],
    created: &str,
) -> Result<()> {
    let mut ids = diff_ids(config).context("base config")?;
    ids.extend(layers.iter().map(|l| Value::String(l.diff_id.to_string())));
    config.insert("rootfs".into(), json!({"type": "layers", "diff_ids": ids}));
    let mut history = match config.remove("history") {
        Some(Value::Array(h)) => h,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => bail!("base config history is not an array"),
    };
    let created_by = frag.layer_history.as_deref().unwrap_or_default();
    for i in 0..layers.len() {
        let by = created_by
            .get(i)
            .map(String::as_str)
            .filter(|s| !s.is_empty());
        history.push(json!({"created": created, "created_by": by.unwrap_or(DEFAULT_CREATED_BY)}));
    }
    if !history.is_empty() {
        config.insert("history".into(), Value::Array(history));
    }
    Ok(())
}

/// The runtime config ("config" in the image config JSON), with Docker's merge semantics.
fn merge_runtime_config(config: &mut Map<String, Value>, frag: &ConfigFragment) -> Result<()> {
    let mut rc = match config.remove("config") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(_) => bail!("base config field \"config\" is not an object"),
    };
    if let Some(env) = &frag.env {
        let mut cur = match rc.remove("Env") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        merge_env(&mut cur, env);
        if !cur.is_empty() {
            rc.insert("Env".into(), Value::Array(cur));
        }
    }
    if let Some(ep) = &frag.entrypoint {
        rc.insert("Entrypoint".into(), json!(ep));
        if frag.cmd.is_none() {
            // Docker: a new ENTRYPOINT resets the inherited CMD.
            rc.remove("Cmd");
        }
    }
    if let Some(c) = &frag.cmd {
        rc.insert("Cmd".into(), json!(c));
    }
    for (value, key) in [
        (&frag.working_dir, "WorkingDir"),
        (&frag.user, "User"),
        (&frag.stop_signal, "StopSignal"),
    ] {
        if let Some(v) = nonempty(value) {
            rc.insert(key.into(), v.into());
        }
    }
    if let Some(labels) = frag.labels.as_ref().filter(|l| !l.is_empty()) {
        let slot = object_at(&mut rc, "Labels");
        for (k, v) in labels {
            slot.insert(k.clone(), v.as_str().into());
        }
    }
    let ports = frag.exposed_ports.as_deref().unwrap_or_default();
    merge_set(
        &mut rc,
        "ExposedPorts",
        ports.iter().map(|p| normalize_port(p)).collect(),
    );
    merge_set(&mut rc, "Volumes", frag.volumes.clone().unwrap_or_default());
    config.insert("config".into(), Value::Object(rc));
    Ok(())
}

/// The assembled image: exact bytes of config and manifest plus the manifest's descriptor.
#[derive(Debug)]
pub struct Assembled {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub descriptor: Vec<u8>,
}

/// Where a built image's four files go (`--output-manifest`, `--output-config`,
/// `--output-digest`, `--output-descriptor`).
#[derive(Debug, Clone)]
pub struct ImageOutputs {
    pub manifest: PathBuf,
    pub config: PathBuf,
    pub digest: PathBuf,
    pub descriptor: PathBuf,
}

impl Assembled {
    /// The image of this config and manifest; its descriptor carries the config's platform.
    pub fn new(config: Vec<u8>, manifest: Vec<u8>) -> Result<Assembled> {
        let platform = Platform::of_config(&json::parse_object(&config)?);
        let descriptor = Descriptor::of(media_type::MANIFEST, &manifest).with_platform(platform);
        Ok(Assembled {
            config,
            digest: descriptor.digest,
            descriptor: json::canonical(&descriptor),
            manifest,
        })
    }

    /// Writes the image's files and `more` (other outputs of the same action): all or none.
    pub fn write(&self, to: &ImageOutputs, more: &[(&Path, &[u8])]) -> Result<()> {
        let digest = self.digest.to_string();
        let mut all: Vec<(&Path, &[u8])> = vec![
            (&to.config, &self.config),
            (&to.manifest, &self.manifest),
            (&to.digest, digest.as_bytes()),
            (&to.descriptor, &self.descriptor),
        ];
        all.extend_from_slice(more);
        output::write_all_atomic(&all)
    }
}

pub fn assemble(
    frag: &ConfigFragment,
    base: Option<&BaseImage>,
    layers: &[LayerMetadata],
) -> Result<Assembled> {
    let mut config = base.map(|b| b.config.clone()).unwrap_or_default();
    set_platform(&mut config, frag)?;
    let created = nonempty(&frag.created).unwrap_or(EPOCH).to_string();
    config.insert("created".into(), created.clone().into());
    add_layers(&mut config, frag, layers, &created)?;
    merge_runtime_config(&mut config, frag)?;
    let config_bytes = json::canonical(&config);

    let base_layers = base.map(|b| b.layers.as_slice()).unwrap_or_default();
    let manifest_layers = listed_base_layers(base_layers)
        .into_iter()
        .chain(layers.iter().map(LayerMetadata::descriptor))
        .collect();
    let manifest = ImageManifest::new(
        Descriptor::of(media_type::CONFIG, &config_bytes),
        manifest_layers,
        frag.annotations.clone().unwrap_or_default(),
    )
    .to_bytes();
    Assembled::new(config_bytes, manifest)
}

/// A base image's layers as an image built on it lists them: a Docker-format layer with its
/// OCI media type (the bytes are the same); everything else of the descriptor (urls,
/// annotations) kept.
pub fn listed_base_layers(layers: &[Descriptor]) -> Vec<Descriptor> {
    layers
        .iter()
        .map(|d| Descriptor {
            media_type: media_type::oci_layer(&d.media_type).into(),
            ..d.clone()
        })
        .collect()
}

pub struct ManifestOptions {
    pub config_fragment: PathBuf,
    pub base_manifest: Option<PathBuf>,
    pub base_config: Option<PathBuf>,
    pub layers: Vec<PathBuf>,
    pub outputs: ImageOutputs,
    /// Workspace status files: given only when stamping.
    pub status_files: Vec<PathBuf>,
}

pub fn run(o: &ManifestOptions) -> Result<Assembled> {
    let mut frag: ConfigFragment = json::read(&o.config_fragment, "config fragment")?;
    let status = match o.status_files.as_slice() {
        [] => None,
        files => Some(Status::read(files)?),
    };
    frag.stamp(status.as_ref())?;
    let base = match (&o.base_manifest, &o.base_config) {
        (Some(m), Some(c)) => Some(read_base(m, c)?),
        (None, None) => None,
        _ => bail!("--base-manifest and --base-config must be given together"),
    };
    let layers = o
        .layers
        .iter()
        .map(|p| LayerMetadata::read(p))
        .collect::<Result<Vec<_>>>()?;
    let a = assemble(&frag, base.as_ref(), &layers)
        .with_context(|| format!("config fragment {}", o.config_fragment.display()))?;
    a.write(&o.outputs, &[])?;
    Ok(a)
}

#[cfg(test)]
mod tests;
