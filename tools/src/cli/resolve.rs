use crate::registry::pull;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `REGISTRY/REPOSITORY:TAG`
    pub reference: String,
    #[arg(long)]
    pub insecure_http: bool,
}

impl Args {
    pub fn run(self) -> Result<()> {
        pull::run_resolve(&self.reference, self.insecure_http)
    }
}
