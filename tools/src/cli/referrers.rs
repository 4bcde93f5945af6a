use crate::registry::referrers;
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `REGISTRY/REPOSITORY@sha256:...`: the image whose referrers are listed.
    pub reference: String,
    #[arg(long)]
    pub insecure_http: bool,
}

impl Args {
    pub fn run(self) -> Result<()> {
        referrers::run_list(&self.reference, self.insecure_http)
    }
}
