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
