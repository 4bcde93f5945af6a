//! Canonical JSON: compact, keys sorted at every level. These are the bytes that get hashed.
//!
//! Serializing goes through `serde_json::Value`, whose maps are BTreeMaps (the crate is used
//! without `preserve_order`), so typed structs and untyped maps give the same sorted bytes.
//! Reading reports the path of a malformed field (`layers[2].digest: ...`).

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::Path;

/// Compact JSON with sorted keys.
pub fn canonical<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Our types serialize to JSON without failing: no non-string map keys, no NaN.
    let value = serde_json::to_value(v).expect("serializing to a JSON value");
    serde_json::to_vec(&value).expect("serializing a JSON value")
}

/// Parses JSON into `T`, naming the path of the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow::Error::new(inner)
        } else {
            anyhow::anyhow!("{path}: {inner}")
        }
    })?;
    de.end()
        .context("trailing characters after the JSON document")?;
    Ok(v)
}

/// Reads a JSON file into `T`, naming the file (as `what`) in every error.
pub fn read<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    parse(&bytes).with_context(|| format!("malformed {what} {}", path.display()))
}

/// A JSON object whose fields are kept as they are (an image config, merged field by field).
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>> {
    match parse(bytes)? {
        Value::Object(m) => Ok(m),
        _ => bail!("expected a JSON object"),
    }
}

pub fn read_object(path: &Path, what: &str) -> Result<Map<String, Value>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    parse_object(&bytes).with_context(|| format!("malformed {what} {}", path.display()))
}

/// For `#[serde(deserialize_with)]`: a `null` list (string, map) is an empty one, as Go's JSON
/// decoding (and so registries and Docker) reads it.
pub fn null_is_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(<Option<T> as serde::Deserialize>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_is_compact() {
        let v = json!({"z": 1, "a": {"y": [1, 2], "b": null}, "m": "x"});
        assert_eq!(
            canonical(&v),
            br#"{"a":{"b":null,"y":[1,2]},"m":"x","z":1}"#
        );
        // Parsing text with unsorted keys and writing it back sorts them too.
        let parsed: Value = parse(br#"{"b":1,"a":2}"#).unwrap();
        assert_eq!(canonical(&parsed), br#"{"a":2,"b":1}"#);
        // Typed structs too, whatever their field order.
        #[derive(Serialize)]
        struct T {
            zeta: u8,
            alpha: u8,
        }
        assert_eq!(
            canonical(&T { zeta: 1, alpha: 2 }),
            br#"{"alpha":2,"zeta":1}"#
        );
    }

    #[test]
    fn errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        struct Inner {
            #[allow(dead_code)]
            n: u64,
        }
        #[derive(serde::Deserialize, Debug)]
        struct Outer {
            #[allow(dead_code)]
            items: Vec<Inner>,
        }
        let e = parse::<Outer>(br#"{"items":[{"n":1},{"n":-1}]}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("items[1].n: invalid value"),
            "{e}"
        );
        assert!(parse::<Value>(b"{} x").is_err());
        assert!(parse_object(b"[]").is_err());
    }
}
