//! `manifest`: assembles an image config and manifest from an optional base image, layer
//! metadata files and a config fragment written by the Starlark rules.

use crate::oci::digest::Digest;
use crate::io::output;
use crate::oci::spec::{self, Descriptor};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

pub const EPOCH: &str = "1970-01-01T00:00:00Z";
const DEFAULT_CREATED_BY: &str = "rules_image layer";

/// Layer metadata as written by `layer` (or by importers for base-image style layers).
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub descriptor: Descriptor,
}

pub fn read_layer_meta(path: &Path) -> Result<LayerInfo> {
    let m = spec::read_json_object(path, "layer metadata")?;
    let parse = || -> Result<LayerInfo> {
        let s = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("missing string field {k:?}"))
        };
        let diff_id = Digest::parse(s("diff_id")?).map_err(|e| anyhow!("diff_id: {e}"))?;
        let digest = Digest::parse(s("digest")?).map_err(|e| anyhow!("digest: {e}"))?;
        let media_type = s("media_type")?;
        let size = m
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("missing non-negative integer field \"size\""))?;
        Ok(LayerInfo {
            diff_id,
            descriptor: Descriptor::new(media_type, digest, size),
        })
    };
    parse().with_context(|| format!("malformed layer metadata {}", path.display()))
}

/// The fragment's fields; absent and null are the same ("inherit").
struct Fragment(Map<String, Value>);

impl Fragment {
    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn str(&self, k: &str) -> Result<Option<&str>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => bail!("field {k:?} must be a string"),
        }
    }

    /// Non-empty string, else None: an empty string means "inherit".
    fn nonempty(&self, k: &str) -> Result<Option<&str>> {
        Ok(self.str(k)?.filter(|s| !s.is_empty()))
    }

    fn strings(&self, k: &str) -> Result<Option<Vec<String>>> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| anyhow!("field {k:?} must be a list of strings"))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => bail!("field {k:?} must be a list of strings"),
        }
    }

    fn string_map(&self, k: &str) -> Result<Map<String, Value>> {
        match self.get(k) {
            None => Ok(Map::new()),
            Some(Value::Object(m)) => {
                if m.values().any(|v| !v.is_string()) {
                    bail!("field {k:?} must map strings to strings");
                }
                Ok(m.clone())
            }
            Some(_) => bail!("field {k:?} must be an object of strings"),
        }
    }
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

fn merge_set(cfg: &mut Map<String, Value>, field: &str, items: Vec<String>) {
    if items.is_empty() {
        return;
    }
    let slot = cfg
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let obj = slot.as_object_mut().expect("just made an object");
    for i in items {
        obj.insert(i, json!({}));
    }
}

pub struct BaseImage {
    pub config: Map<String, Value>,
    pub layers: Vec<Descriptor>,
}

/// A base layer's descriptor for an OCI manifest: Docker layer media types become their OCI
/// equivalents; everything else (urls, annotations) is kept.
fn oci_layer_descriptor(d: &Descriptor) -> Value {
    let mut raw = d.raw.clone();
    raw["mediaType"] = Value::from(spec::oci_layer_media_type(&d.media_type));
    raw
}

pub fn read_base(manifest_path: &Path, config_path: &Path) -> Result<BaseImage> {
    let manifest = spec::read_json_object(manifest_path, "base manifest")?;
    let config = spec::read_json_object(config_path, "base config")?;
    let bad_m = || format!("malformed base manifest {}", manifest_path.display());
    spec::manifest_config(&manifest).with_context(bad_m)?;
    let layers = spec::manifest_layers(&manifest).with_context(bad_m)?;
    let n = diff_ids(&config)
        .with_context(|| format!("malformed base config {}", config_path.display()))?
        .len();
    if n != layers.len() {
        bail!(
            "base manifest {} has {} layers but base config {} has {n} rootfs.diff_ids",
            manifest_path.display(),
            layers.len(),
            config_path.display()
        );
    }
    Ok(BaseImage { config, layers })
}

fn diff_ids(config: &Map<String, Value>) -> Result<Vec<Value>> {
    match config.get("rootfs") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(r)) => match r.get("diff_ids") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => {
                for d in a {
                    let s = d
                        .as_str()
                        .ok_or_else(|| anyhow!("rootfs.diff_ids contains a non-string"))?;
                    Digest::parse(s).map_err(|e| anyhow!("rootfs.diff_ids: {e}"))?;
                }
                Ok(a.clone())
            }
            Some(_) => bail!("rootfs.diff_ids is not an array"),
        },
        Some(_) => bail!("rootfs is not an object"),
    }
}

/// The assembled image: exact bytes of config and manifest plus the manifest's descriptor.
#[derive(Debug)]
pub struct Assembled {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: Digest,
    pub descriptor: Vec<u8>,
}

pub fn assemble(
    frag: Map<String, Value>,
    base: Option<&BaseImage>,
    layers: &[LayerInfo],
) -> Result<Assembled> {
    let frag = Fragment(frag);
    let mut config = base.map(|b| b.config.clone()).unwrap_or_default();

    // Platform: the fragment decides; a base for another platform is a mistake worth naming.
    for field in ["os", "architecture"] {
        let want = frag.nonempty(field)?;
        let have = base
            .and_then(|b| b.config.get(field))
            .and_then(Value::as_str);
        match (want, have) {
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
    if let Some(v) = frag.nonempty("variant")? {
        config.insert("variant".into(), v.into());
    }

    let created = frag.nonempty("created")?.unwrap_or(EPOCH).to_string();
    config.insert("created".into(), created.clone().into());

    // rootfs and history: base entries first, then one per new layer.
    let mut ids = diff_ids(&config).context("base config")?;
    ids.extend(layers.iter().map(|l| Value::String(l.diff_id.to_string())));
    config.insert("rootfs".into(), json!({"type": "layers", "diff_ids": ids}));
    let mut history = match config.remove("history") {
        Some(Value::Array(h)) => h,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => bail!("base config history is not an array"),
    };
    let created_by = frag.strings("layer_history")?.unwrap_or_default();
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

    // The runtime config ("config" in the image config JSON), Docker's merge semantics.
    let mut rc = match config.remove("config") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(_) => bail!("base config field \"config\" is not an object"),
    };
    if let Some(env) = frag.strings("env")? {
        let mut cur = match rc.remove("Env") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        merge_env(&mut cur, &env);
        if !cur.is_empty() {
            rc.insert("Env".into(), Value::Array(cur));
        }
    }
    let entrypoint = frag.strings("entrypoint")?;
    let cmd = frag.strings("cmd")?;
    if let Some(ep) = entrypoint {
        rc.insert("Entrypoint".into(), json!(ep));
        if cmd.is_none() {
            // Docker: a new ENTRYPOINT resets the inherited CMD.
            rc.remove("Cmd");
        }
    }
    if let Some(c) = cmd {
        rc.insert("Cmd".into(), json!(c));
    }
    for (field, key) in [
        ("working_dir", "WorkingDir"),
        ("user", "User"),
        ("stop_signal", "StopSignal"),
    ] {
        if let Some(v) = frag.nonempty(field)? {
            rc.insert(key.into(), v.into());
        }
    }
    let labels = frag.string_map("labels")?;
    if !labels.is_empty() {
        let slot = rc
            .entry("Labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        slot.as_object_mut().expect("object").extend(labels);
    }
    let ports = frag.strings("exposed_ports")?.unwrap_or_default();
    merge_set(
        &mut rc,
        "ExposedPorts",
        ports.iter().map(|p| normalize_port(p)).collect(),
    );
    merge_set(
        &mut rc,
        "Volumes",
        frag.strings("volumes")?.unwrap_or_default(),
    );
    config.insert("config".into(), Value::Object(rc));

    let config_bytes = spec::canonical(&Value::Object(config));
    let mut manifest_layers: Vec<Value> = base
        .map(|b| b.layers.iter().map(oci_layer_descriptor).collect())
        .unwrap_or_default();
    manifest_layers.extend(layers.iter().map(|l| l.descriptor.raw.clone()));
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": spec::MT_MANIFEST,
        "config": {
            "mediaType": spec::MT_CONFIG,
            "digest": Digest::of(&config_bytes).to_string(),
            "size": config_bytes.len(),
        },
        "layers": manifest_layers,
    });
    let annotations = frag.string_map("annotations")?;
    if !annotations.is_empty() {
        manifest["annotations"] = Value::Object(annotations);
    }
    let manifest_bytes = spec::canonical(&manifest);
    let digest = Digest::of(&manifest_bytes);

    let cfg: Value = serde_json::from_slice(&config_bytes).expect("just serialized");
    let mut platform = json!({"architecture": cfg["architecture"], "os": cfg["os"]});
    if let Some(v) = cfg
        .get("variant")
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    {
        platform["variant"] = v.clone();
    }
    let descriptor = spec::canonical(&json!({
        "digest": digest.to_string(),
        "mediaType": spec::MT_MANIFEST,
        "platform": platform,
        "size": manifest_bytes.len(),
    }));
    Ok(Assembled {
        config: config_bytes,
        manifest: manifest_bytes,
        digest,
        descriptor,
    })
}

pub struct ManifestOptions {
    pub config_fragment: PathBuf,
    pub base_manifest: Option<PathBuf>,
    pub base_config: Option<PathBuf>,
    pub layers: Vec<PathBuf>,
    pub output_manifest: PathBuf,
    pub output_config: PathBuf,
    pub output_digest: PathBuf,
    pub output_descriptor: PathBuf,
}

pub fn run(o: &ManifestOptions) -> Result<Assembled> {
    let frag = spec::read_json_object(&o.config_fragment, "config fragment")?;
    let base = match (&o.base_manifest, &o.base_config) {
        (Some(m), Some(c)) => Some(read_base(m, c)?),
        (None, None) => None,
        _ => bail!("--base-manifest and --base-config must be given together"),
    };
    let layers = o
        .layers
        .iter()
        .map(|p| read_layer_meta(p))
        .collect::<Result<Vec<_>>>()?;
    let a = assemble(frag, base.as_ref(), &layers)
        .with_context(|| format!("config fragment {}", o.config_fragment.display()))?;
    let digest = a.digest.to_string();
    output::write_all_atomic(&[
        (&o.output_config, &a.config),
        (&o.output_manifest, &a.manifest),
        (&o.output_digest, digest.as_bytes()),
        (&o.output_descriptor, &a.descriptor),
    ])?;
    Ok(a)
}

#[cfg(test)]
mod tests;
