//! Which files make up an image or index: given on the command line (`--manifest`,
//! `--config`, `--blob`, or `--index` with one `--child` file per image), resolved through
//! the runfiles of a `bazel run` target when asked to (`--rlocation`), and layer blobs read
//! from a remote cache (`cas:`, with `--remote-cache`).

use crate::oci::reference::Repo;
use crate::remote_cache::RemoteCache;
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a layer's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum BlobSource {
    Local(PathBuf),
    /// Not local: in this repository (mounted or streamed from there by a push).
    Remote(Repo),
    /// In the CAS of this remote cache, under the layer's digest and size.
    Cas(Arc<RemoteCache>),
}

impl BlobSource {
    /// A file path, `remote:REGISTRY/REPOSITORY`, or `cas:` (the remote cache has it); paths
    /// go through `resolver`.
    pub fn parse(s: &str, resolver: &Resolver) -> Result<BlobSource> {
        if let Some(r) = s.strip_prefix("remote:") {
            return Ok(BlobSource::Remote(
                Repo::parse(r).with_context(|| format!("blob {s}"))?,
            ));
        }
        if s == "cas:" {
            return match &resolver.cache {
                Some(c) => Ok(BlobSource::Cas(Arc::clone(c))),
                None => bail!(
                    "blob cas: (in the remote cache) needs --remote-cache; set \
                     @rules_image//rules:remote_cache for builds that name such blobs"
                ),
            };
        }
        Ok(BlobSource::Local(resolver.resolve(Path::new(s))?))
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
                .map(|b| BlobSource::parse(b, resolver))
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
                .map(|b| BlobSource::parse(b, resolver).with_context(bad))
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

/// Resolves `--rlocation` paths through the runfiles of a `bazel run` target (other paths
/// are used as given), and `cas:` blobs to the remote cache, if one was given.
pub struct Resolver {
    runfiles: Option<runfiles::Runfiles>,
    cache: Option<Arc<RemoteCache>>,
}

impl Resolver {
    pub fn new(rlocation: bool) -> Result<Resolver> {
        let runfiles = if rlocation {
            Some(runfiles::Runfiles::create().map_err(|e| {
                anyhow!(
                    "--rlocation: cannot find this program's runfiles ({e}); run it with `bazel run`"
                )
            })?)
        } else {
            None
        };
        Ok(Resolver {
            runfiles,
            cache: None,
        })
    }

    /// `cas:` blobs are read from this cache.
    pub fn with_remote_cache(mut self, cache: Option<Arc<RemoteCache>>) -> Resolver {
        self.cache = cache;
        self
    }

    pub fn resolve(&self, p: &Path) -> Result<PathBuf> {
        let Some(r) = &self.runfiles else {
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
            Some(wd) if self.runfiles.is_some() && p.is_relative() => PathBuf::from(wd).join(p),
            _ => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_sources() {
        let plain = Resolver::new(false).unwrap();
        assert!(matches!(
            BlobSource::parse("a/b.tgz", &plain).unwrap(),
            BlobSource::Local(_)
        ));
        match BlobSource::parse("remote:127.0.0.1:5000/base", &plain).unwrap() {
            BlobSource::Remote(r) => assert_eq!(r.to_string(), "127.0.0.1:5000/base"),
            _ => panic!(),
        }
        assert!(BlobSource::parse("remote:reg.io/x:tag", &plain).is_err());
        let e = format!("{:#}", BlobSource::parse("cas:", &plain).unwrap_err());
        assert!(e.contains("--remote-cache"), "{e}");
        let cache = Arc::new(
            RemoteCache::new("grpc://127.0.0.1:1", "", Vec::new(), &Default::default()).unwrap(),
        );
        let with_cache = Resolver::new(false)
            .unwrap()
            .with_remote_cache(Some(Arc::clone(&cache)));
        assert_eq!(
            BlobSource::parse("cas:", &with_cache).unwrap(),
            BlobSource::Cas(Arc::clone(&cache))
        );
        // As an index's child files name them (image_push and image_load of an index).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("child.json");
        std::fs::write(&p, r#"{"manifest":"m","config":"c","blobs":["l","cas:"]}"#).unwrap();
        let f = ImageFiles::from_child_file(&p, &with_cache).unwrap();
        assert_eq!(f.blobs[1], BlobSource::Cas(cache));
        let e = format!("{:#}", ImageFiles::from_child_file(&p, &plain).unwrap_err());
        assert!(
            e.contains("child.json") && e.contains("--remote-cache"),
            "{e}"
        );
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
