//! What this tool reads of an image config itself. A config is otherwise kept as an untyped
//! JSON object, so that the fields of configs built elsewhere survive a read-modify-write.

use super::Digest;
use super::json::null_is_empty;
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `rootfs.diff_ids`: the sha256 of each layer's uncompressed tar, in layer order (none when
/// the config has no rootfs).
pub fn diff_ids(config: &Map<String, Value>) -> Result<Vec<Digest>> {
    let ids = match config.get("rootfs") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(r)) => match r.get("diff_ids") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => bail!("rootfs.diff_ids is not an array"),
        },
        Some(_) => bail!("rootfs is not an object"),
    };
    ids.iter()
        .enumerate()
        .map(|(i, v)| {
            let s = v
                .as_str()
                .ok_or_else(|| anyhow!("rootfs.diff_ids[{i}] is not a string"))?;
            Digest::parse(s).map_err(|e| anyhow!("rootfs.diff_ids[{i}]: {e}"))
        })
        .collect()
}

/// The fields of a config's `config` object (how the image runs) that `image-test` checks.
/// Configs come from other builders too, so absent and `null` fields read as empty and
/// other fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(deserialize_with = "null_is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(deserialize_with = "null_is_empty")]
    pub cmd: Vec<String>,
    /// `KEY=VALUE` strings, in order.
    #[serde(deserialize_with = "null_is_empty")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "null_is_empty")]
    pub user: String,
    #[serde(deserialize_with = "null_is_empty")]
    pub working_dir: String,
    /// `port/protocol` -> `{}`.
    #[serde(deserialize_with = "null_is_empty")]
    pub exposed_ports: BTreeMap<String, Value>,
    #[serde(deserialize_with = "null_is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The config's `config` object (an empty one when there is none).
pub fn run_config(config: &Map<String, Value>) -> Result<RunConfig> {
    match config.get("config") {
        None | Some(Value::Null) => Ok(RunConfig::default()),
        Some(v) => RunConfig::deserialize(v).context("malformed config.config"),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC) for seconds since the Unix epoch: the form of a
/// config's `created` and its history's times.
pub fn rfc3339(secs: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(500), "1970-01-01T00:08:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
