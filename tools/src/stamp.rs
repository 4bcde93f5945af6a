//! Bazel workspace status (`--stamp`): the values of the status files, and `{KEY}` templates
//! filled from them. Push tags and stamped image configs both expand templates here.

use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The values of Bazel's status files (`stable-status.txt`, `volatile-status.txt`).
#[derive(Debug, Default, Clone)]
pub struct Status {
    values: BTreeMap<String, String>,
}

impl Status {
    /// Reads `KEY value...` lines; a later file's key replaces an earlier one's.
    pub fn read(files: &[PathBuf]) -> Result<Status> {
        let mut values = BTreeMap::new();
        for f in files {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read status file {}", f.display()))?;
            for line in text.lines() {
                let (k, v) = line.split_once(' ').unwrap_or((line, ""));
                if !k.is_empty() {
                    values.insert(k.to_string(), v.to_string());
                }
            }
        }
        Ok(Status { values })
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Status {
        Status {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Replaces each `{KEY}` of `template` by `extra(KEY)` or else the status value of KEY;
    /// an unknown key or an unclosed `{` is an error naming `what` (e.g. "tag template").
    pub fn expand(
        &self,
        template: &str,
        what: &str,
        extra: impl Fn(&str) -> Option<String>,
    ) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| anyhow!("{what} {template:?} has an unclosed {{"))?;
            let key = &rest[start + 1..start + end];
            let value = extra(key)
                .or_else(|| self.values.get(key).cloned())
                .ok_or_else(|| {
                    anyhow!(
                        "{what} {template:?}: unknown key {key:?} (not in the workspace status)"
                    )
                })?;
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("stable-status.txt");
        std::fs::write(&f, "STABLE_A one two\nEMPTY\nB x\n").unwrap();
        let g = dir.path().join("volatile-status.txt");
        std::fs::write(&g, "B y\n").unwrap();
        let s = Status::read(&[f, g]).unwrap();
        let get = |k: &str| s.expand(&format!("<{{{k}}}>"), "test", |_| None).unwrap();
        assert_eq!(get("STABLE_A"), "<one two>");
        assert_eq!(get("EMPTY"), "<>");
        assert_eq!(get("B"), "<y>");
    }

    #[test]
    fn templates() {
        let s = Status::from_pairs(&[("K", "v")]);
        let x = |t: &str| s.expand(t, "label", |k| (k == "X").then(|| "x".to_string()));
        assert_eq!(x("a-{K}-{X}-b").unwrap(), "a-v-x-b");
        assert_eq!(x("plain").unwrap(), "plain");
        let e = x("{NOPE}").unwrap_err().to_string();
        assert!(
            e.contains("label \"{NOPE}\"") && e.contains("\"NOPE\""),
            "{e}"
        );
        assert!(x("a{b").unwrap_err().to_string().contains("unclosed"));
    }
}
