//! `provenance`: an in-toto Statement (v1) with a SLSA provenance (v1) predicate for an image,
//! from what Bazel knows of its build: the subject is the manifest digest; the resolved
//! dependencies are every source file the image's targets were built from (sha256 of each),
//! the base images its layers come from, and the Nix store paths its Nix layers hold; the
//! builder is rules_image and Bazel, with their versions.
//!
//! No field depends on the time or the machine (SLSA's `metadata` times are left out), so the
//! same build gives the same bytes.

use crate::io::output;
use crate::oci::Digest;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `buildDefinition` means: a Bazel build of `externalParameters.target`.
pub const BUILD_TYPE: &str = "https://rules-image.invalid/provenance/bazel-build/v1";
pub const BUILDER_ID: &str = "https://rules-image.invalid/builder/bazel";

pub struct ProvenanceOptions<'a> {
    /// The image's label: the subject's name and the build's target.
    pub target: &'a str,
    /// The file holding `sha256:<hex>` of the manifest.
    pub digest_file: &'a Path,
    /// (name, file): the sources, named as users name them (`app/hello.c`, `@repo//path`).
    pub sources: &'a [(String, PathBuf)],
    /// `REGISTRY/REPOSITORY@sha256:...`, or a repository rule and a digest.
    pub base_images: &'a [String],
    pub store_paths: &'a [String],
    pub bazel_version: &'a str,
    pub output: &'a Path,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: Vec<Resource>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Provenance<'a>,
}

#[derive(Serialize)]
struct Provenance<'a> {
    #[serde(rename = "buildDefinition")]
    build_definition: BuildDefinition<'a>,
    #[serde(rename = "runDetails")]
    run_details: RunDetails<'a>,
}

#[derive(Serialize)]
struct BuildDefinition<'a> {
    #[serde(rename = "buildType")]
    build_type: &'static str,
    #[serde(rename = "externalParameters")]
    external_parameters: BTreeMap<&'static str, &'a str>,
    #[serde(rename = "resolvedDependencies")]
    resolved_dependencies: Vec<Resource>,
}

#[derive(Serialize)]
struct RunDetails<'a> {
    builder: Builder<'a>,
}

#[derive(Serialize)]
struct Builder<'a> {
    id: &'static str,
    version: BTreeMap<&'static str, &'a str>,
}

/// An in-toto ResourceDescriptor.
#[derive(Serialize, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Resource {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    uri: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    digest: BTreeMap<&'static str, String>,
}

pub fn run(o: &ProvenanceOptions) -> Result<()> {
    let text = std::fs::read_to_string(o.digest_file)
        .with_context(|| format!("cannot read {}", o.digest_file.display()))?;
    let digest = Digest::parse(text.trim())
        .map_err(|e| anyhow::anyhow!("{}: {e}", o.digest_file.display()))?;
    let mut deps = Vec::new();
    for (name, path) in o.sources {
        let (d, _) = Digest::of_file(path)
            .with_context(|| format!("cannot read the source {}", path.display()))?;
        deps.push(Resource {
            name: name.clone(),
            uri: String::new(),
            digest: BTreeMap::from([("sha256", d.hex())]),
        });
    }
    for origin in o.base_images {
        deps.push(base_image(origin)?);
    }
    for path in o.store_paths {
        deps.push(Resource {
            name: path.clone(),
            uri: String::new(),
            digest: BTreeMap::new(),
        });
    }
    deps.sort();
    deps.dedup();
    let version = env!("CARGO_PKG_VERSION");
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: vec![Resource {
            name: o.target.into(),
            uri: String::new(),
            digest: BTreeMap::from([("sha256", digest.hex())]),
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE,
                external_parameters: BTreeMap::from([("target", o.target)]),
                resolved_dependencies: deps,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: BUILDER_ID,
                    version: BTreeMap::from([("bazel", o.bazel_version), ("rules_image", version)]),
                },
            },
        },
    };
    let mut bytes = serde_json::to_vec_pretty(&statement).context("cannot write the provenance")?;
    bytes.push(b'\n');
    output::stage(o.output, &bytes)?.commit()
}

/// A base image as a resolved dependency: its origin (`REGISTRY/REPOSITORY@sha256:...`, or
/// `<repository rule> sha256:...`) named, with the manifest digest.
fn base_image(origin: &str) -> Result<Resource> {
    let Some(i) = origin.rfind("sha256:") else {
        bail!("base image origin {origin:?} names no sha256 digest");
    };
    let digest = Digest::parse(&origin[i..])
        .map_err(|e| anyhow::anyhow!("base image origin {origin:?}: {e}"))?;
    let name = origin[..i].trim_end_matches(['@', ' ']);
    let uri = if origin[..i].ends_with('@') {
        format!("oci://{origin}")
    } else {
        String::new()
    };
    Ok(Resource {
        name: name.into(),
        uri,
        digest: BTreeMap::from([("sha256", digest.hex())]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_images_are_named_with_their_digest() {
        let hex = "ab".repeat(32);
        let pulled = base_image(&format!("registry.example/base@sha256:{hex}")).unwrap();
        assert_eq!(pulled.name, "registry.example/base");
        assert_eq!(
            pulled.uri,
            format!("oci://registry.example/base@sha256:{hex}")
        );
        assert_eq!(pulled.digest["sha256"], hex);
        let imported = base_image(&format!("image_import(name = \"v\") sha256:{hex}")).unwrap();
        assert_eq!(imported.name, "image_import(name = \"v\")");
        assert_eq!(imported.uri, "");
        assert!(base_image("registry.example/base:latest").is_err());
    }
}
