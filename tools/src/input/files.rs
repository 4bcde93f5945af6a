//! Which files make up an image or index: given on the command line (`--manifest`,
//! `--config`, `--blob`, or `--index` with one `--child` file per image), resolved through
//! the runfiles of a `bazel run` target when asked to (`--rlocation`).

use crate::oci::reference::Repo;
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where a layer's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobSource {
    Local(PathBuf),
    /// Not local: in this repository (mounted or streamed from there by a push).
    Remote(Repo),
}

impl BlobSource {
    /// A file path, or `remote:REGISTRY/REPOSITORY`.
    pub fn parse(s: &str) -> Result<BlobSource> {
        match s.strip_prefix("remote:") {
            Some(r) => Ok(BlobSource::Remote(
                Repo::parse(r).with_context(|| format!("blob {s}"))?,
            )),
            None => Ok(BlobSource::Local(s.into())),
        }
    }

    fn resolved(self, resolver: &Resolver) -> Result<BlobSource> {
        match self {
            BlobSource::Local(p) => Ok(BlobSource::Local(resolver.resolve(&p)?)),
            remote => Ok(remote),
        }
    }
}

/// The files of one image.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    pub manifest: PathBuf,
    pub config: PathBuf,
    /// One per layer, in manifest order.
    pub blobs: Vec<BlobSource>,
    /// The child file that listed these files, for messages.
    pub child_file: Option<PathBuf>,
}

/// A child file, as `image_index`, `image_push` and `image_load` write one per image of an
/// index: `{"manifest": PATH, "config": PATH, "blobs": [PATH or "remote:REGISTRY/REPOSITORY"]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChildFile {
    manifest: PathBuf,
    config: PathBuf,
    #[serde(default, deserialize_with = "crate::oci::json::null_is_empty")]
    blobs: Vec<String>,
}

/// What the image arguments of a command name.
#[derive(Debug, Clone)]
pub enum InputFiles {
    Image(ImageFiles),
    Index {
        index: PathBuf,
        children: Vec<ImageFiles>,
    },
}

impl ImageFiles {
    /// `--manifest`, `--config` and `--blob` values; paths go through `resolver`.
    pub fn new(
        manifest: &Path,
        config: &Path,
        blobs: &[String],
        resolver: &Resolver,
    ) -> Result<ImageFiles> {
        Ok(ImageFiles {
            manifest: resolver.resolve(manifest)?,
            config: resolver.resolve(config)?,
            blobs: blobs
                .iter()
                .map(|b| BlobSource::parse(b)?.resolved(resolver))
                .collect::<Result<_>>()?,
            child_file: None,
        })
    }

    /// Reads a child file; every path (the file's own too) goes through `resolver`.
    pub fn from_child_file(path: &Path, resolver: &Resolver) -> Result<ImageFiles> {
        let resolved = resolver.resolve(path)?;
        let child: ChildFile = crate::oci::json::read(&resolved, "child file")?;
        let bad = || format!("malformed child file {}", path.display());
        Ok(ImageFiles {
            manifest: resolver.resolve(&child.manifest)?,
            config: resolver.resolve(&child.config)?,
            blobs: child
                .blobs
                .iter()
                .map(|b| BlobSource::parse(b).with_context(bad)?.resolved(resolver))
                .collect::<Result<_>>()?,
            child_file: Some(resolved),
        })
    }
}

impl InputFiles {
    /// From the image arguments: a single image, or an index with its child files.
    pub fn new(
        single: Option<(&Path, &Path, &[String])>,
        index: Option<(&Path, &[PathBuf])>,
        resolver: &Resolver,
    ) -> Result<InputFiles> {
        match (single, index) {
            (Some((manifest, config, blobs)), None) => Ok(InputFiles::Image(ImageFiles::new(
                manifest, config, blobs, resolver,
            )?)),
            (None, Some((index, children))) => Ok(InputFiles::Index {
                index: resolver.resolve(index)?,
                children: children
                    .iter()
                    .map(|c| ImageFiles::from_child_file(c, resolver))
                    .collect::<Result<_>>()?,
            }),
            _ => bail!("give --manifest and --config, or --index and --child"),
        }
    }
}

/// Resolves `--rlocation` paths through the runfiles of a `bazel run` target; other paths
/// are used as given.
pub struct Resolver(Option<runfiles::Runfiles>);

impl Resolver {
    pub fn new(rlocation: bool) -> Result<Resolver> {
        if !rlocation {
            return Ok(Resolver(None));
        }
        let r = runfiles::Runfiles::create().map_err(|e| {
            anyhow!(
                "--rlocation: cannot find this program's runfiles ({e}); run it with `bazel run`"
            )
        })?;
        Ok(Resolver(Some(r)))
    }

    pub fn resolve(&self, p: &Path) -> Result<PathBuf> {
        let Some(r) = &self.0 else {
            return Ok(p.to_path_buf());
        };
        let got = r
            .rlocation(p)
            .ok_or_else(|| anyhow!("--rlocation: {} is not in the runfiles", p.display()))?;
        if !got.exists() {
            bail!(
                "--rlocation: {} resolved to {}, which does not exist",
                p.display(),
                got.display()
            );
        }
        Ok(got)
    }

    /// An output path the user typed: under `bazel run` the tool runs in its runfiles, so a
    /// relative path is meant relative to where they ran bazel.
    pub fn user_path(&self, p: PathBuf) -> PathBuf {
        match std::env::var_os("BUILD_WORKING_DIRECTORY") {
            Some(wd) if self.0.is_some() && p.is_relative() => PathBuf::from(wd).join(p),
            _ => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_sources() {
        assert!(matches!(
            BlobSource::parse("a/b.tgz").unwrap(),
            BlobSource::Local(_)
        ));
        match BlobSource::parse("remote:127.0.0.1:5000/base").unwrap() {
            BlobSource::Remote(r) => assert_eq!(r.to_string(), "127.0.0.1:5000/base"),
            _ => panic!(),
        }
        assert!(BlobSource::parse("remote:reg.io/x:tag").is_err());
    }

    #[test]
    fn child_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("child.json");
        std::fs::write(
            &p,
            r#"{"manifest":"m","config":"c","blobs":["l","remote:reg.io/base"]}"#,
        )
        .unwrap();
        let f = ImageFiles::from_child_file(&p, &Resolver::new(false).unwrap()).unwrap();
        assert_eq!(f.manifest, Path::new("m"));
        assert_eq!(
            f.blobs[1],
            BlobSource::Remote(Repo::parse("reg.io/base").unwrap())
        );
        std::fs::write(&p, r#"{"manifest":"m"}"#).unwrap();
        let e = format!(
            "{:#}",
            ImageFiles::from_child_file(&p, &Resolver::new(false).unwrap()).unwrap_err()
        );
        assert!(e.contains("child.json") && e.contains("config"), "{e}");
    }
}
