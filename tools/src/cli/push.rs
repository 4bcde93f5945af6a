use super::image_args::ImageArgs;
use crate::input::Resolver;
use crate::oci::reference::Repo;
use crate::registry::push::{self, PushJob, PushSettings};
use crate::registry::referrers::Referrer;
use crate::registry::sign::SignSettings;
use anyhow::{Result, bail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image; with --index the tags go on the index.
    #[command(flatten)]
    pub image: ImageArgs,
    /// `REGISTRY/REPOSITORY` (repeatable), used unless --registry/--repository is given.
    #[arg(long = "default-destination")]
    pub default_destinations: Vec<String>,
    /// Tag templates used unless any --tag is given.
    #[arg(long = "default-tag")]
    pub default_tags: Vec<String>,
    /// Replaces the default destinations (repository from the first default if not given).
    #[arg(long)]
    pub registry: Option<String>,
    /// Replaces the default destinations (registry from the first default if not given).
    #[arg(long)]
    pub repository: Option<String>,
    /// Tag templates replacing the default tags: `{KEY}` from the status files,
    /// `{IMAGE_DIGEST}`, `{IMAGE_DIGEST_SHORT}`.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Bazel workspace status files (`KEY value` lines).
    #[arg(long = "status-file")]
    pub status_files: Vec<PathBuf>,
    /// `ARTIFACT_TYPE=FILE`: attach FILE to the image as an OCI 1.1 artifact (repeatable).
    #[arg(long = "referrer")]
    pub referrers: Vec<String>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// How to push, shared by `push` and `deploy`.
#[derive(clap::Args, Debug)]
pub struct SettingsArgs {
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Blobs uploaded at a time, across all images and destinations.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Upload larger blobs in PATCH chunks of this many bytes (blobs up to it go in one PUT),
    /// for registries or proxies that limit request bodies. 0 (the default): blobs up to 16 MiB
    /// in one PUT, larger ones in one streaming PATCH.
    #[arg(long, default_value_t = 0)]
    pub chunk_size: u64,
    /// Allow plain http to non-loopback registries.
    #[arg(long)]
    pub insecure_http: bool,
    /// Sign each pushed image with cosign and this key (a file, or a cosign key URI such as
    /// `env://COSIGN_PRIVATE_KEY`); the key's password comes from `COSIGN_PASSWORD`.
    #[arg(long)]
    pub sign_key: Option<String>,
    /// The cosign executable (default: `RULES_IMAGE_COSIGN`, else `cosign` on PATH).
    #[arg(long)]
    pub cosign: Option<PathBuf>,
    /// Do not record signatures in a transparency log (for registries and keys that are not
    /// public, or machines that cannot reach the log).
    #[arg(long)]
    pub no_transparency_log: bool,
}

impl SettingsArgs {
    pub fn settings(self, resolver: &Resolver) -> PushSettings {
        let sign = self.sign_key.map(|key| SignSettings {
            cosign: self
                .cosign
                .map(|p| resolver.user_path(p))
                .or_else(|| std::env::var_os("RULES_IMAGE_COSIGN").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("cosign")),
            // A key file named relative to where `bazel run` was started; URIs as they are.
            key: if key.contains("://") {
                key
            } else {
                resolver
                    .user_path(PathBuf::from(key))
                    .to_string_lossy()
                    .into_owned()
            },
            transparency_log: !self.no_transparency_log,
            insecure_http: self.insecure_http,
        });
        PushSettings {
            summary_json: self.summary_json.map(|p| resolver.user_path(p)),
            jobs: self.jobs,
            chunk_size: self.chunk_size,
            insecure_http: self.insecure_http,
            sign,
        }
    }
}

impl Args {
    pub fn run(self) -> Result<()> {
        let resolver = self.image.resolver()?;
        let job = self.job("", &resolver)?;
        push::run(&job, &self.settings.settings(&resolver))
    }

    /// The image, its destinations and tags (what `deploy` reads of each push's arguments).
    pub fn job(&self, label: &str, resolver: &Resolver) -> Result<PushJob> {
        Ok(PushJob {
            label: label.to_string(),
            input: self.image.read(resolver)?,
            destinations: self.destinations()?,
            tags: if self.tags.is_empty() {
                self.default_tags.clone()
            } else {
                self.tags.clone()
            },
            status_files: self
                .status_files
                .iter()
                .map(|p| resolver.resolve(p))
                .collect::<Result<_>>()?,
            referrers: self
                .referrers
                .iter()
                .map(|r| {
                    let mut r = Referrer::parse(r)?;
                    r.file = resolver.resolve(&r.file)?;
                    Ok(r)
                })
                .collect::<Result<_>>()?,
        })
    }

    /// The defaults, or the one destination --registry/--repository name (the missing half
    /// from the first default).
    fn destinations(&self) -> Result<Vec<Repo>> {
        let defaults = self
            .default_destinations
            .iter()
            .map(|d| Repo::parse(d))
            .collect::<Result<Vec<_>>>()?;
        if self.registry.is_none() && self.repository.is_none() {
            return Ok(defaults);
        }
        let first = defaults.first();
        let registry = match (&self.registry, first) {
            (Some(r), _) => r.clone(),
            (None, Some(f)) => f.registry.clone(),
            (None, None) => {
                bail!("--repository needs --registry (there is no default destination)")
            }
        };
        let repository = match (&self.repository, first) {
            (Some(r), _) => r.clone(),
            (None, Some(f)) => f.repository.clone(),
            (None, None) => {
                bail!("--registry needs --repository (there is no default destination)")
            }
        };
        Ok(vec![Repo::new(&registry, &repository)?])
    }
}
