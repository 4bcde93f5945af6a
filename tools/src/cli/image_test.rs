use super::image_args::ImageArgs;
use crate::oci::Platform;
use crate::verify::container::{Engine, Runner};
use crate::verify::{self, spec::Spec};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub image: ImageArgs,
    /// The assertions, as image_test writes them (JSON; see verify/spec.rs).
    #[arg(long)]
    pub spec: PathBuf,
    /// With --index, test only the image for this platform (os/arch[/variant]); default:
    /// every image of the index.
    #[arg(long, requires = "index")]
    pub platform: Option<String>,
    /// The engine that runs the spec's `run` commands (its CLI must be on PATH, or named by
    /// RULES_IMAGE_DOCKER / RULES_IMAGE_PODMAN); unused without them. The last one given
    /// counts, so `bazel test --test_arg=--engine=podman` replaces the target's.
    #[arg(long, value_enum, default_value = "docker", overrides_with = "engine")]
    pub engine: Engine,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let resolver = self.image.resolver()?;
        let spec = Spec::read(&resolver.resolve(&self.spec)?)?;
        let platform = self.platform.as_deref().map(Platform::parse).transpose()?;
        let runner = Runner::new(self.engine);
        verify::run(
            self.image.read(&resolver)?,
            &spec,
            platform.as_ref(),
            &runner,
        )
    }
}
