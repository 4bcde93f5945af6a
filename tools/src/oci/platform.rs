//! Image platforms (`os/architecture[/variant]`) and THE matcher that picks an index's image
//! for a wanted platform.
//!
//! Every choice of a platform's image goes through `Platform::select`: `import --platform`,
//! `pull --platform`, `load --platform` (and its host default), and the image a tarball of an
//! index tags for docker. The Starlark rules choose a base image's platform with the same rules
//! (`rules/private/platform.bzl`); both run the cases of `rules/private/platform_cases.bzl`
//! in their tests, whose docstring states the rules.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The platform of an image, as in an index's descriptor (`platform`) or a config's
/// `os`/`architecture`/`variant` fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `os.version`, `os.features`, `features`: kept as read, never matched on.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The variant an image without one is for (as containerd assumes).
fn default_variant(architecture: &str) -> Option<&'static str> {
    match architecture {
        "amd64" => Some("v1"),
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// The oldest variant of an architecture whose variants are numbered levels that run the
/// code of every older one (amd64 microarchitecture levels, 32-bit arm versions).
fn oldest_level(architecture: &str) -> Option<u32> {
    match architecture {
        "amd64" => Some(1),
        "arm" => Some(5),
        _ => None,
    }
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
            extra: BTreeMap::new(),
        }
    }

    /// Parses `os/architecture[/variant]`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform::new(os, arch, None)),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(Platform::new(os, arch, Some(v)))
            }
            _ => bail!("platform {s:?} is not os/arch[/variant]"),
        }
    }

    /// The platform fields of an image config (its other fields are not platform fields).
    pub fn of_config(config: &Map<String, Value>) -> Platform {
        let field = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("");
        Platform::new(field("os"), field("architecture"), Some(field("variant")))
    }

    /// The platform `rules_image` runs on, as an image platform: linux/<Go arch name>.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform::new("linux", arch, None)
    }

    /// Whether this names an image to run: attestations (`unknown/unknown`) and descriptors
    /// without os or architecture do not.
    pub fn is_image(&self) -> bool {
        !self.os.is_empty() && self.os != "unknown" && !self.architecture.is_empty()
    }

    /// Directory-name form: `os_arch[_variant]`.
    pub fn dir_name(&self) -> String {
        self.to_string().replace('/', "_")
    }

    /// The variant, or the architecture's default one when there is none.
    fn effective_variant(&self) -> Option<&str> {
        self.variant
            .as_deref()
            .filter(|v| !v.is_empty())
            .or_else(|| default_variant(&self.architecture))
    }

    /// Whether two platforms are the same once default variants are filled in.
    pub fn same(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && self.effective_variant() == other.effective_variant()
    }

    /// The variants an image may have to run here, best first: this one, then the older
    /// levels of architectures whose levels are backward compatible.
    fn acceptable_variants(&self) -> Vec<Option<String>> {
        let own = self.effective_variant().map(str::to_string);
        let level = own
            .as_deref()
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|n| n.parse::<u32>().ok());
        match (level, oldest_level(&self.architecture)) {
            (Some(n), Some(oldest)) if n >= oldest => {
                (oldest..=n).rev().map(|l| Some(format!("v{l}"))).collect()
            }
            _ => vec![own],
        }
    }

    /// The position of the image to use for this (wanted) platform among `candidates`:
    /// the best acceptable variant, the first in order among equals. See the module docs.
    pub fn select<'a>(&self, candidates: impl IntoIterator<Item = &'a Platform>) -> Option<usize> {
        let candidates: Vec<&Platform> = candidates.into_iter().collect();
        self.acceptable_variants().iter().find_map(|variant| {
            candidates.iter().position(|c| {
                c.is_image()
                    && c.os == self.os
                    && c.architecture == self.architecture
                    && c.effective_variant() == variant.as_deref()
            })
        })
    }

    /// `select`, or an error listing the platforms there are (`what`: e.g. "the index").
    pub fn select_or_explain<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a Platform> + Clone,
        what: &str,
    ) -> Result<usize> {
        match self.select(candidates.clone()) {
            Some(i) => Ok(i),
            None => {
                let have: Vec<String> = candidates
                    .into_iter()
                    .filter(|p| p.is_image())
                    .map(Platform::to_string)
                    .collect();
                bail!(
                    "no image for platform {self} in {what}; available: {}",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                )
            }
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases shared with the Starlark matcher: the JSON inside `json.decode("""...""")`.
    const SHARED_CASES: &str = include_str!("../../../rules/private/platform_cases.bzl");

    #[derive(Deserialize)]
    struct Case {
        candidates: Vec<String>,
        want: String,
        pick: Option<usize>,
    }

    fn shared_cases() -> Vec<Case> {
        let start = SHARED_CASES
            .find("json.decode(\"\"\"")
            .expect("platform_cases.bzl has json.decode(\"\"\"")
            + "json.decode(\"\"\"".len();
        let end = start
            + SHARED_CASES[start..]
                .find("\"\"\")")
                .expect("closing \"\"\")");
        serde_json::from_str(&SHARED_CASES[start..end]).expect("the cases are JSON")
    }

    #[test]
    fn agrees_with_the_shared_cases() {
        let cases = shared_cases();
        assert!(cases.len() >= 20, "{} cases", cases.len());
        for c in cases {
            let candidates: Vec<Platform> = c
                .candidates
                .iter()
                .map(|p| Platform::parse(p).unwrap())
                .collect();
            let want = Platform::parse(&c.want).unwrap();
            assert_eq!(
                want.select(&candidates),
                c.pick,
                "{} among {:?}",
                c.want,
                c.candidates
            );
        }
    }

    #[test]
    fn parse_display_and_config() {
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("linux/arm/v7/x").is_err());
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().dir_name(),
            "linux_arm_v7"
        );
        let cfg = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "", "rootfs": {}});
        let p = Platform::of_config(cfg.as_object().unwrap());
        assert_eq!(p, Platform::parse("linux/arm64").unwrap());
        assert!(p.same(&Platform::parse("linux/arm64/v8").unwrap()));
    }

    #[test]
    fn descriptor_platforms_keep_their_other_fields() {
        let json =
            r#"{"architecture":"amd64","os":"windows","os.version":"10.0.20348.1","variant":""}"#;
        let p: Platform = serde_json::from_str(json).unwrap();
        assert_eq!(p.to_string(), "windows/amd64");
        assert_eq!(crate::oci::json::canonical(&p), json.as_bytes());
    }

    #[test]
    fn errors_list_the_image_platforms() {
        let have = [
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("unknown/unknown").unwrap(),
            Platform::parse("linux/arm64/v8").unwrap(),
        ];
        let e = Platform::parse("linux/s390x")
            .unwrap()
            .select_or_explain(&have, "the index")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no image for platform linux/s390x in the index; available: linux/amd64, linux/arm64/v8"
        );
    }
}
