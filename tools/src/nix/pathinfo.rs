//! The reference graph of a Nix closure, read from `nix path-info -r --json` in each shape
//! Nix has written it:
//!
//! - Nix <= 2.18: an array of objects, each with its `path`;
//! - Nix 2.19 and later, and `--json-format 1`: an object keyed by full store path (2.33 adds
//!   non-object `version`/`storeDir` members, skipped);
//! - `--json-format 2`: `{"version": 2, "storeDir": ..., "info": {<basename>: {...}}}`, where
//!   keys and references are base names (`<hash>-<name>`) without the store directory.
//!
//! Every path is normalised to its full form (`/nix/store/<hash>-<name>`), so plans do not
//! depend on which Nix wrote the file.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// Paths sorted by name; a path is its index, so every iteration is in name order.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub paths: Vec<String>,
    pub nar_size: Vec<u64>,
    /// Direct references, without self-references, sorted and deduplicated.
    pub refs: Vec<Vec<usize>>,
    index: BTreeMap<String, usize>,
}

/// A path as written in the file: full, or a base name to put under `store_dir`.
pub fn full_path(p: &str, store_dir: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", store_dir.trim_end_matches('/'))
    }
}

impl Graph {
    pub fn read(path: &Path) -> Result<Graph> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read path-info file {}", path.display()))?;
        Graph::parse(&bytes).with_context(|| format!("malformed path-info file {}", path.display()))
    }

    pub fn parse(bytes: &[u8]) -> Result<Graph> {
        let v: Value = serde_json::from_slice(bytes).context("invalid JSON")?;
        // (full path, info object, store dir that base names in it are relative to)
        let mut raw: Vec<(String, &Map<String, Value>)> = Vec::new();
        let mut store_dir = DEFAULT_STORE_DIR.to_string();
        match &v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let obj = item
                        .as_object()
                        .ok_or_else(|| anyhow!("entry {i} is not an object"))?;
                    let p = obj
                        .get("path")
                        .and_then(Value::as_str)
                        .ok_or_else(|| anyhow!("entry {i} has no string \"path\""))?;
                    if obj.get("valid") == Some(&Value::Bool(false)) {
                        bail!("{p} is not valid in the store (was it built?)");
                    }
                    raw.push((p.to_string(), obj));
                }
            }
            Value::Object(top) => {
                let entries = match top.get("info") {
                    Some(Value::Object(info)) => {
                        if let Some(d) = top.get("storeDir").and_then(Value::as_str) {
                            store_dir = d.to_string();
                        }
                        info
                    }
                    _ => top,
                };
                for (k, val) in entries {
                    match val {
                        Value::Object(obj) => raw.push((k.clone(), obj)),
                        Value::Null => bail!("{k} is not valid in the store (was it built?)"),
                        // Format metadata next to the paths (`version`, `storeDir`).
                        _ if !k.contains('-') => {}
                        _ => bail!("the info of {k} is not an object"),
                    }
                }
            }
            _ => bail!("expected a JSON array or object"),
        }

        let mut nodes: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        for (p, obj) in raw {
            let dir = obj
                .get("storeDir")
                .and_then(Value::as_str)
                .unwrap_or(&store_dir);
            let full = full_path(&p, dir);
            let size = obj
                .get("narSize")
                .or_else(|| obj.get("nar_size"))
                .and_then(Value::as_u64)
                .ok_or_else(|| anyhow!("{full} has no non-negative integer narSize"))?;
            let refs = match obj.get("references") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|r| {
                        r.as_str()
                            .map(|r| full_path(r, dir))
                            .ok_or_else(|| anyhow!("{full} has a reference that is not a string"))
                    })
                    .collect::<Result<Vec<_>>>()?,
                None | Some(Value::Null) => Vec::new(),
                Some(_) => bail!("the references of {full} are not an array"),
            };
            if nodes.insert(full.clone(), (size, refs)).is_some() {
                bail!("{full} is listed twice");
            }
        }
        Graph::from_nodes(nodes)
    }

    /// Builds the graph from `path -> (narSize, references)`; references must be known paths.
    pub fn from_nodes(nodes: BTreeMap<String, (u64, Vec<String>)>) -> Result<Graph> {
        let index: BTreeMap<String, usize> = nodes
            .keys()
            .enumerate()
            .map(|(i, p)| (p.clone(), i))
            .collect();
        let mut g = Graph {
            index,
            ..Graph::default()
        };
        for (i, (p, (size, refs))) in nodes.into_iter().enumerate() {
            let mut ids = refs
                .iter()
                .map(|r| {
                    g.index.get(r).copied().ok_or_else(|| {
                        anyhow!("{p} references {r}, which is not in the path-info (use nix path-info -r)")
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            // A store path referring to itself says nothing about layering.
            ids.retain(|&j| j != i);
            ids.sort_unstable();
            ids.dedup();
            g.paths.push(p);
            g.nar_size.push(size);
            g.refs.push(ids);
        }
        Ok(g)
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The index of a path given in full or as a base name.
    pub fn lookup(&self, p: &str) -> Option<usize> {
        self.index
            .get(p)
            .or_else(|| self.index.get(&full_path(p, DEFAULT_STORE_DIR)))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app-1.0";
    const H2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.40";

    fn check(g: &Graph) {
        let app = format!("/nix/store/{H1}");
        let glibc = format!("/nix/store/{H2}");
        assert_eq!(g.paths, vec![app.clone(), glibc.clone()]);
        assert_eq!(g.nar_size, vec![100, 2000]);
        // Self-references are dropped.
        assert_eq!(g.refs, vec![vec![1], vec![]]);
        assert_eq!(g.lookup(&app), Some(0));
        assert_eq!(g.lookup(H2), Some(1));
    }

    #[test]
    fn reads_every_nix_json_shape() {
        let array = format!(
            r#"[{{"path":"/nix/store/{H1}","narSize":100,"references":["/nix/store/{H1}","/nix/store/{H2}"]}},
                {{"path":"/nix/store/{H2}","narSize":2000,"references":["/nix/store/{H2}"],"valid":true}}]"#
        );
        check(&Graph::parse(array.as_bytes()).unwrap());
        let keyed = format!(
            r#"{{"/nix/store/{H1}":{{"narSize":100,"references":["/nix/store/{H2}"],"version":1,"storeDir":"/nix/store"}},
                "/nix/store/{H2}":{{"narSize":2000,"references":[]}},"storeDir":"/nix/store","version":1}}"#
        );
        check(&Graph::parse(keyed.as_bytes()).unwrap());
        let v2 = format!(
            r#"{{"version":2,"storeDir":"/nix/store","info":{{
                "{H1}":{{"narSize":100,"references":["{H1}","{H2}"],"ca":null,"narHash":{{"algorithm":"sha256","format":"base64","hash":"x"}}}},
                "{H2}":{{"nar_size":2000,"references":["{H2}"]}}}}}}"#
        );
        check(&Graph::parse(v2.as_bytes()).unwrap());
        // Format 2 without storeDir, with full paths mixed in.
        let mixed = format!(
            r#"{{"info":{{"/nix/store/{H1}":{{"narSize":100,"references":["{H2}"]}},"{H2}":{{"narSize":2000,"references":[]}}}}}}"#
        );
        check(&Graph::parse(mixed.as_bytes()).unwrap());
    }

    #[test]
    fn malformed_path_info_is_an_error_naming_the_path() {
        let err = |s: &str| format!("{:#}", Graph::parse(s.as_bytes()).unwrap_err());
        let e = err(r#"{"/nix/store/x-a":{"narSize":1,"references":["/nix/store/y-missing"]}}"#);
        assert!(
            e.contains("/nix/store/x-a") && e.contains("/nix/store/y-missing"),
            "{e}"
        );
        let e = err(r#"{"/nix/store/x-a":{"references":[]}}"#);
        assert!(e.contains("/nix/store/x-a") && e.contains("narSize"), "{e}");
        let e = err(r#"{"/nix/store/x-a":null}"#);
        assert!(
            e.contains("/nix/store/x-a") && e.contains("not valid"),
            "{e}"
        );
        let e = err(r#"[{"path":"/nix/store/x-a","valid":false}]"#);
        assert!(
            e.contains("/nix/store/x-a") && e.contains("not valid"),
            "{e}"
        );
        let e = err(r#"[{"narSize":1}]"#);
        assert!(e.contains("path"), "{e}");
        assert!(err("3").contains("array or object"));
        assert!(err("{").contains("invalid JSON"));
    }
}
