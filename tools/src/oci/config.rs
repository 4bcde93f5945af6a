//! What this tool reads of an image config itself. A config is otherwise kept as an untyped
//! JSON object, so that the fields of configs built elsewhere survive a read-modify-write.

use super::Digest;
use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};

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
