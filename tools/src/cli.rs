//! Command-line interface (the contract with the Starlark rules) and dispatch.

use crate::io::compress::Compression;
use crate::index::ChildFile;
use crate::layout::{ImageInput, IndexInput, Resolver};
use crate::load::Daemon;
use crate::nix::layering::Algorithm;
use crate::registry::push::{BlobSource, PushImage, PushOptions};
use crate::oci::reference::Repo;
use crate::{image, import, index, layer, layout, load, nix, registry};
use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rules-image-tool",
    version,
    about = "Byte-level worker of rules_image"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Bazel label of the target being built; prefixes every error message.
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build a deterministic layer blob and its metadata JSON.
    Layer(LayerArgs),
    /// Assemble an image config and manifest.
    Manifest(ManifestArgs),
    /// Assemble a multi-platform OCI image index from manifest descriptors.
    Index(IndexArgs),
    /// Write an OCI image layout directory.
    Layout(LayoutArgs),
    /// Write one tar that is an OCI layout and `docker load` input.
    Tarball(TarballArgs),
    /// Stream the image into `docker load` or `podman load`.
    Load(LoadArgs),
    /// Push the image to registries: blobs, then the manifest by digest, then tags.
    Push(PushArgs),
    /// Fetch an image's manifest and config (by digest) from a registry.
    Pull(PullArgs),
    /// Download one blob, verified.
    FetchBlob(FetchBlobArgs),
    /// Print the digest a tag currently points to.
    Resolve(ResolveArgs),
    /// Plan the layers of a Nix closure from `nix path-info -r --json`.
    NixLayers(NixLayersArgs),
    /// Import an image from an OCI image layout or a `docker save` tarball, verified, into the
    /// directory shape `pull --all-platforms` writes, with the layer blobs.
    Import(ImportArgs),
}

#[derive(Args, Debug)]
pub struct LayerArgs {
    #[command(flatten)]
    pub common: Common,
    /// Layer blob to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Metadata JSON to write: diff_id, digest, media_type, size.
    #[arg(long)]
    pub metadata: PathBuf,
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: Compression,
    /// gzip 0-9 (default 6), zstd 1-22 (default 3); ignored for none.
    #[arg(long, allow_negative_numbers = true)]
    pub compression_level: Option<i32>,
    /// Mode override, `/dest=OCTAL`.
    #[arg(long = "mode")]
    pub modes: Vec<String>,
    /// Numeric owner override, `/dest=UID:GID`.
    #[arg(long = "owner")]
    pub owners: Vec<String>,
    /// `file|exec|symlink<TAB>/dest<TAB>src-or-target`, `dir<TAB>/dest`, or a Nix store path:
    /// `store<TAB>/nix/store/...` (at its own path) or `root<TAB>/nix/store/...` (its
    /// contents at `/`).
    pub entries: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ManifestArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long)]
    pub config_fragment: PathBuf,
    #[arg(long, requires = "base_config")]
    pub base_manifest: Option<PathBuf>,
    #[arg(long, requires = "base_manifest")]
    pub base_config: Option<PathBuf>,
    /// Layer metadata JSON, in layer order.
    #[arg(long = "layer")]
    pub layers: Vec<PathBuf>,
    #[arg(long)]
    pub output_manifest: PathBuf,
    #[arg(long)]
    pub output_config: PathBuf,
    #[arg(long)]
    pub output_digest: PathBuf,
    #[arg(long)]
    pub output_descriptor: PathBuf,
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    #[command(flatten)]
    pub common: Common,
    /// Manifest descriptor JSON written by `manifest`, in index order.
    #[arg(long = "child-descriptor", required = true, num_args = 1..)]
    pub child_descriptors: Vec<PathBuf>,
    /// Index annotation `KEY=VALUE` (repeatable).
    #[arg(long = "annotation")]
    pub annotations: Vec<String>,
    #[arg(long)]
    pub output_index: PathBuf,
    #[arg(long)]
    pub output_digest: PathBuf,
}

/// The image read by layout, tarball and load: one image, or an index and its children.
#[derive(Args, Debug)]
pub struct ImageArgs {
    #[arg(long, required_unless_present = "index")]
    pub manifest: Option<PathBuf>,
    #[arg(long, required_unless_present = "index")]
    pub config: Option<PathBuf>,
    /// Layer blobs, in manifest layer order.
    #[arg(long = "blob")]
    pub blobs: Vec<PathBuf>,
    /// A multi-platform image: this OCI index, with --child files instead of
    /// --manifest/--config/--blob.
    #[arg(long, conflicts_with_all = ["manifest", "config", "blobs"], requires = "children")]
    pub index: Option<PathBuf>,
    /// Child file (`{"manifest", "config", "blobs"}`) of each index entry, in index order.
    #[arg(long = "child", requires = "index")]
    pub children: Vec<PathBuf>,
    /// Image reference to tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

/// What ImageArgs name.
enum Input {
    Image(ImageInput),
    Index(IndexInput),
}

impl ImageArgs {
    fn read(&self, resolver: &Resolver) -> Result<Input> {
        if let Some(index) = &self.index {
            let children = self
                .children
                .iter()
                .map(|c| ChildFile::read(c, resolver))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Input::Index(IndexInput::read(
                &resolver.resolve(index)?,
                &children,
            )?));
        }
        let (Some(manifest), Some(config)) = (&self.manifest, &self.config) else {
            bail!("give --manifest and --config, or --index and --child");
        };
        let blobs = self
            .blobs
            .iter()
            .map(|b| resolver.resolve(b))
            .collect::<Result<Vec<_>>>()?;
        Ok(Input::Image(ImageInput::read(
            &resolver.resolve(manifest)?,
            &resolver.resolve(config)?,
            &blobs,
        )?))
    }
}

#[derive(Args, Debug)]
pub struct LayoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub image: ImageArgs,
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct TarballArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub image: ImageArgs,
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub image: ImageArgs,
    #[arg(long, value_enum)]
    pub daemon: Daemon,
    /// With --index, the platform to load (os/arch[/variant]); default: this machine's.
    #[arg(long, requires = "index")]
    pub platform: Option<String>,
    /// Input paths are rlocation paths, resolved through this program's runfiles.
    #[arg(long)]
    pub rlocation: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    pub common: Common,
    /// Path arguments are rlocation paths, resolved through this program's runfiles.
    #[arg(long)]
    pub rlocation: bool,
    #[arg(long, required_unless_present = "index")]
    pub manifest: Option<PathBuf>,
    #[arg(long, required_unless_present = "index")]
    pub config: Option<PathBuf>,
    /// Layer blobs in manifest layer order: a file, or `remote:REGISTRY/REPOSITORY` for a
    /// layer that is only in that repository.
    #[arg(long = "blob")]
    pub blobs: Vec<String>,
    /// A multi-platform image: this OCI index, with --child files instead of
    /// --manifest/--config/--blob. Tags go on the index.
    #[arg(long, conflicts_with_all = ["manifest", "config", "blobs"], requires = "children")]
    pub index: Option<PathBuf>,
    /// Child file (`{"manifest", "config", "blobs"}`) of each index entry, in index order.
    #[arg(long = "child", requires = "index")]
    pub children: Vec<PathBuf>,
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
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Blobs uploaded at a time, across all destinations.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
    #[arg(long, default_value_t = 16 << 20)]
    pub chunk_size: u64,
    /// Allow plain http to non-loopback registries.
    #[arg(long)]
    pub insecure_http: bool,
}

impl PushArgs {
    fn images(&self, r: &Resolver) -> Result<Vec<PushImage>> {
        if self.index.is_some() {
            return self
                .children
                .iter()
                .map(|c| {
                    let c = ChildFile::read(c, r)?;
                    Ok(PushImage {
                        manifest: c.manifest,
                        config: c.config,
                        blobs: c.blobs,
                    })
                })
                .collect();
        }
        let (Some(manifest), Some(config)) = (&self.manifest, &self.config) else {
            bail!("give --manifest and --config, or --index and --child");
        };
        let blobs = self
            .blobs
            .iter()
            .map(|b| match BlobSource::parse(b)? {
                BlobSource::Local(p) => Ok(BlobSource::Local(r.resolve(&p)?)),
                remote => Ok(remote),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![PushImage {
            manifest: r.resolve(manifest)?,
            config: r.resolve(config)?,
            blobs,
        }])
    }

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

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    pub common: Common,
    /// `REGISTRY/REPOSITORY@sha256:HEX`
    #[arg(long)]
    pub image: String,
    /// Platform chosen from an index: os/arch[/variant].
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
    /// If the digest is an index: write index.json, one `os_arch[_variant]` directory per
    /// platform and platforms.json, instead of choosing one platform.
    #[arg(long, conflicts_with = "platform")]
    pub all_platforms: bool,
    #[arg(long)]
    pub output_dir: PathBuf,
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Args, Debug)]
pub struct FetchBlobArgs {
    #[command(flatten)]
    pub common: Common,
    /// `REGISTRY/REPOSITORY`
    #[arg(long)]
    pub repository: String,
    #[arg(long)]
    pub digest: String,
    #[arg(long)]
    pub size: u64,
    #[arg(long)]
    pub output: PathBuf,
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Args, Debug)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub common: Common,
    /// `REGISTRY/REPOSITORY:TAG`
    pub reference: String,
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Args, Debug)]
pub struct NixLayersArgs {
    #[command(flatten)]
    pub common: Common,
    /// Output of `nix path-info -r --json [--json-format N] ROOTS...`.
    #[arg(long)]
    pub path_info: PathBuf,
    /// Store paths whose closure goes in the image (repeatable; full path or base name).
    #[arg(long = "root", required = true, num_args = 1..)]
    pub roots: Vec<String>,
    /// Total number of layers, explicit groups included.
    #[arg(long, default_value_t = 100)]
    pub max_layers: usize,
    /// An explicit layer, `NAME=PATH[,PATH...]`: these paths and their closures, first.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    #[arg(long, value_enum, default_value = "rules_image")]
    pub algorithm: Algorithm,
    /// Plan JSON to write; standard output if not given.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub common: Common,
    /// The image: an OCI image layout (a directory, or a tar of one: plain, gzip or zstd) or a
    /// `docker save` tarball (Docker <= 24 `manifest.json` form, or Docker >= 25 OCI form).
    #[arg(long)]
    pub src: PathBuf,
    /// Directory to write (replaced atomically): manifest.json, config.json, layers.json,
    /// image.json and blobs/sha256/ for one image; index.json, platforms.json and one
    /// directory per platform (with blobs/ shared at the top) for an index.
    #[arg(long)]
    pub output_dir: PathBuf,
    /// Rewrite layers (entry mtimes clamped to --source-date-epoch, recompressed) and write
    /// the config, manifests and index anew, canonical and without build-host timestamps.
    #[arg(long)]
    pub normalize: bool,
    /// With --normalize: seconds since the Unix epoch for mtimes and `created` timestamps.
    #[arg(long, default_value_t = 0)]
    pub source_date_epoch: u64,
    /// With --normalize: compression of the rewritten layers.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: Compression,
    /// With --normalize: gzip 0-9 (default 6), zstd 1-22 (default 3); ignored for none.
    #[arg(long, allow_negative_numbers = true)]
    pub compression_level: Option<i32>,
    /// The image to import when the source holds several: an index.json
    /// `org.opencontainers.image.ref.name` or `io.containerd.image.name` (or its tag part),
    /// or a docker-save RepoTag (`repo:tag`; `repo` means `repo:latest`).
    #[arg(long = "ref")]
    pub reference: Option<String>,
    /// Import only this platform (os/arch[/variant]) of an index, as a single image; without
    /// it every platform of an index is imported (attestations are skipped).
    #[arg(long)]
    pub platform: Option<String>,
}

/// Under `bazel run` the tool runs in its runfiles; an output path the user typed after `--`
/// is meant relative to where they ran bazel.
fn under_working_dir(rlocation: bool, p: PathBuf) -> PathBuf {
    match std::env::var_os("BUILD_WORKING_DIRECTORY") {
        Some(wd) if rlocation && p.is_relative() => PathBuf::from(wd).join(p),
        _ => p,
    }
}

impl Command {
    pub fn label(&self) -> Option<&str> {
        let c = match self {
            Command::Layer(a) => &a.common,
            Command::Manifest(a) => &a.common,
            Command::Index(a) => &a.common,
            Command::Layout(a) => &a.common,
            Command::Tarball(a) => &a.common,
            Command::Load(a) => &a.common,
            Command::Push(a) => &a.common,
            Command::Pull(a) => &a.common,
            Command::FetchBlob(a) => &a.common,
            Command::Resolve(a) => &a.common,
            Command::NixLayers(a) => &a.common,
            Command::Import(a) => &a.common,
        };
        c.label.as_deref()
    }

    pub fn run(self) -> Result<()> {
        match self {
            Command::Layer(a) => {
                layer::run(&layer::LayerOptions {
                    output: &a.output,
                    metadata: &a.metadata,
                    compression: a.compression,
                    level: a.compression_level,
                    modes: &a.modes,
                    owners: &a.owners,
                    entries: &a.entries,
                })?;
            }
            Command::Manifest(a) => {
                image::run(&image::ManifestOptions {
                    config_fragment: a.config_fragment,
                    base_manifest: a.base_manifest,
                    base_config: a.base_config,
                    layers: a.layers,
                    output_manifest: a.output_manifest,
                    output_config: a.output_config,
                    output_digest: a.output_digest,
                    output_descriptor: a.output_descriptor,
                })?;
            }
            Command::Index(a) => index::run(&index::IndexOptions {
                child_descriptors: a.child_descriptors,
                annotations: a.annotations,
                output_index: a.output_index,
                output_digest: a.output_digest,
            })?,
            Command::Layout(a) => match a.image.read(&Resolver::new(false)?)? {
                Input::Image(img) => layout::run_layout(&img, &a.image.tags, &a.output)?,
                Input::Index(idx) => layout::run_layout(&idx, &a.image.tags, &a.output)?,
            },
            Command::Tarball(a) => match a.image.read(&Resolver::new(false)?)? {
                Input::Image(img) => layout::run_tarball(&img, &a.image.tags, &a.output)?,
                Input::Index(idx) => layout::run_tarball(&idx, &a.image.tags, &a.output)?,
            },
            Command::Load(a) => match a.image.read(&Resolver::new(a.rlocation)?)? {
                Input::Image(img) => load::run(a.daemon, &img, &a.image.tags)?,
                Input::Index(idx) => {
                    load::run_index(a.daemon, &idx, a.platform.as_deref(), &a.image.tags)?
                }
            },
            Command::Push(a) => {
                let r = Resolver::new(a.rlocation)?;
                let tags = if a.tags.is_empty() {
                    a.default_tags.clone()
                } else {
                    a.tags.clone()
                };
                registry::push::run(&PushOptions {
                    images: a.images(&r)?,
                    index: a.index.as_ref().map(|p| r.resolve(p)).transpose()?,
                    destinations: a.destinations()?,
                    tags,
                    status_files: a
                        .status_files
                        .iter()
                        .map(|p| r.resolve(p))
                        .collect::<Result<_>>()?,
                    summary_json: a.summary_json.map(|p| under_working_dir(a.rlocation, p)),
                    jobs: a.jobs,
                    chunk_size: a.chunk_size,
                    insecure_http: a.insecure_http,
                })?;
            }
            Command::Pull(a) => {
                registry::pull::run_pull(
                    &a.image,
                    &a.platform,
                    a.all_platforms,
                    &a.output_dir,
                    a.insecure_http,
                )?;
            }
            Command::FetchBlob(a) => {
                registry::pull::run_fetch_blob(
                    &a.repository,
                    &a.digest,
                    a.size,
                    &a.output,
                    a.insecure_http,
                )?;
            }
            Command::Resolve(a) => registry::pull::run_resolve(&a.reference, a.insecure_http)?,
            Command::NixLayers(a) => nix::run(&nix::NixLayersOptions {
                path_info: &a.path_info,
                roots: &a.roots,
                max_layers: a.max_layers,
                groups: &a.groups,
                algorithm: a.algorithm,
                output: a.output.as_deref(),
            })?,
            Command::Import(a) => {
                let normalize = if a.normalize {
                    let level = a.compression.check_level(
                        a.compression_level.unwrap_or(a.compression.default_level()),
                    )?;
                    Some(import::layer::Normalize {
                        source_date_epoch: a.source_date_epoch,
                        compression: a.compression,
                        level,
                    })
                } else {
                    None
                };
                let top = import::run(&import::ImportOptions {
                    src: &a.src,
                    output_dir: &a.output_dir,
                    reference: a.reference.as_deref(),
                    platform: a.platform.as_deref(),
                    normalize,
                })?;
                println!("{top}");
            }
        }
        Ok(())
    }
}
