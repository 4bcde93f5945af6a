//! The arguments that name an image or index on disk, shared by layout, tarball, load and push.

use crate::build::manifest::ImageOutputs;
use crate::input::{Input, InputFiles, Resolver};
use crate::remote_cache::{self, RemoteCache, Tls};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    #[arg(long, required_unless_present = "index")]
    pub manifest: Option<PathBuf>,
    #[arg(long, required_unless_present = "index")]
    pub config: Option<PathBuf>,
    /// Layer blobs in manifest layer order: a file, or (for push) `remote:REGISTRY/REPOSITORY`
    /// for a layer that is only in that repository.
    #[arg(long = "blob")]
    pub blobs: Vec<String>,
    /// A multi-platform image: this OCI index, with --child files instead of
    /// --manifest/--config/--blob.
    #[arg(long, conflicts_with_all = ["manifest", "config", "blobs"], requires = "children")]
    pub index: Option<PathBuf>,
    /// Child file (`{"manifest", "config", "blobs"}`) of each index entry, in index order.
    #[arg(long = "child", requires = "index")]
    pub children: Vec<PathBuf>,
    /// Path arguments are rlocation paths, resolved through this program's runfiles.
    #[arg(long)]
    pub rlocation: bool,
    #[command(flatten)]
    pub remote_cache: RemoteCacheArgs,
}

/// The remote cache that `cas:` blobs are read from.
#[derive(clap::Args)]
pub struct RemoteCacheArgs {
    /// `grpc://HOST:PORT` or `grpcs://HOST:PORT`: a REAPI cache (Bazel's --remote_cache)
    /// holding the `cas:` blobs.
    #[arg(long)]
    pub remote_cache: Option<String>,
    /// Its instance name (Bazel's --remote_instance_name).
    #[arg(long, default_value = "", requires = "remote_cache")]
    pub remote_instance_name: String,
    /// `NAME=VALUE` header sent to the cache with every call (repeatable; Bazel's
    /// --remote_header). Also read from RULES_IMAGE_REMOTE_HEADERS, one per line.
    #[arg(long = "remote-header", requires = "remote_cache")]
    pub remote_headers: Vec<String>,
    /// A PEM file of certificates to trust for a grpcs:// cache, besides the system roots
    /// (Bazel's --tls_certificate).
    #[arg(long, requires = "remote_cache")]
    pub remote_tls_certificate: Option<PathBuf>,
    /// The client certificate (PEM) for caches that ask for one (Bazel's
    /// --tls_client_certificate), with --remote-tls-client-key.
    #[arg(long, requires_all = ["remote_cache", "remote_tls_client_key"])]
    pub remote_tls_client_certificate: Option<PathBuf>,
    /// The client certificate's key (PEM; Bazel's --tls_client_key).
    #[arg(long, requires = "remote_tls_client_certificate")]
    pub remote_tls_client_key: Option<PathBuf>,
}

// By hand: the headers are secrets.
impl std::fmt::Debug for RemoteCacheArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCacheArgs")
            .field("remote_cache", &self.remote_cache)
            .field("remote_instance_name", &self.remote_instance_name)
            .field("remote_headers", &self.remote_headers.len())
            .field("remote_tls_certificate", &self.remote_tls_certificate)
            .field(
                "remote_tls_client_certificate",
                &self.remote_tls_client_certificate,
            )
            .field("remote_tls_client_key", &self.remote_tls_client_key)
            .finish()
    }
}

impl RemoteCacheArgs {
    /// The cache, if one was given (connected on first use). Files are named relative to
    /// where `bazel run` was started.
    pub fn cache(&self, resolver: &Resolver) -> Result<Option<Arc<RemoteCache>>> {
        let Some(endpoint) = &self.remote_cache else {
            return Ok(None);
        };
        let env = std::env::var(remote_cache::HEADERS_ENV).ok();
        let headers = remote_cache::headers_from(&self.remote_headers, env.as_deref())?;
        let read = |p: &PathBuf, what: &str| {
            let p = resolver.user_path(p.clone());
            std::fs::read(&p).with_context(|| format!("cannot read {what} {}", p.display()))
        };
        let tls = Tls {
            ca_certificate: match &self.remote_tls_certificate {
                Some(p) => Some(read(p, "--remote-tls-certificate")?),
                None => None,
            },
            identity: match (
                &self.remote_tls_client_certificate,
                &self.remote_tls_client_key,
            ) {
                (Some(c), Some(k)) => Some((
                    read(c, "--remote-tls-client-certificate")?,
                    read(k, "--remote-tls-client-key")?,
                )),
                (None, None) => None,
                _ => bail!(
                    "give --remote-tls-client-certificate and --remote-tls-client-key together"
                ),
            },
        };
        Ok(Some(Arc::new(RemoteCache::new(
            endpoint,
            &self.remote_instance_name,
            headers,
            &tls,
        )?)))
    }
}

/// An image to write out, and the references it is tagged with there.
#[derive(clap::Args, Debug)]
pub struct TaggedImageArgs {
    #[command(flatten)]
    pub image: ImageArgs,
    /// Image reference to tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

impl TaggedImageArgs {
    pub fn read(&self) -> Result<Input> {
        self.image.read(&self.image.resolver()?)
    }
}

impl ImageArgs {
    pub fn resolver(&self) -> Result<Resolver> {
        let resolver = Resolver::new(self.rlocation)?;
        let cache = self.remote_cache.cache(&resolver)?;
        Ok(resolver.with_remote_cache(cache))
    }

    /// Reads and checks the image or index.
    pub fn read(&self, resolver: &Resolver) -> Result<Input> {
        let single = match (&self.manifest, &self.config) {
            (Some(m), Some(c)) => Some((m.as_path(), c.as_path(), self.blobs.as_slice())),
            _ => None,
        };
        let index = self.index.as_deref().map(|i| (i, self.children.as_slice()));
        Input::read(&InputFiles::new(single, index, resolver)?)
    }
}

/// Where a command that builds an image writes its manifest, config, digest and descriptor.
#[derive(clap::Args, Debug)]
pub struct ImageOutputArgs {
    #[arg(long)]
    pub output_manifest: PathBuf,
    #[arg(long)]
    pub output_config: PathBuf,
    #[arg(long)]
    pub output_digest: PathBuf,
    #[arg(long)]
    pub output_descriptor: PathBuf,
}

impl ImageOutputArgs {
    pub fn outputs(self) -> ImageOutputs {
        ImageOutputs {
            manifest: self.output_manifest,
            config: self.output_config,
            digest: self.output_digest,
            descriptor: self.output_descriptor,
        }
    }
}
