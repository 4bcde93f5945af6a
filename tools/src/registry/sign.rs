//! Signing pushed images with cosign: a key-based signature of each pushed manifest digest,
//! stored by cosign in the registry next to the image (as an OCI 1.1 referrer, or under its
//! fallback tag where the registry has no referrers API).
//!
//! cosign is run as it is installed (`--cosign`, `RULES_IMAGE_COSIGN`, or `cosign` on PATH):
//! it reads the key's password from `COSIGN_PASSWORD` and registry credentials from the same
//! Docker config as the push. Nothing of the key or its password passes through this tool's
//! arguments or output.

use crate::io::untrusted::quoted;
use crate::oci::Digest;
use crate::oci::reference::{Repo, is_loopback};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// How pushed images are signed.
#[derive(Debug, Clone)]
pub struct SignSettings {
    pub cosign: PathBuf,
    /// A key file, or a cosign key URI (`env://VAR`, `awskms://...`).
    pub key: String,
    /// Record the signature in the transparency log (Rekor) that cosign's signing config
    /// names; needs that service to be reachable.
    pub transparency_log: bool,
    /// Plain http for non-loopback registries, as the push allows.
    pub insecure_http: bool,
}

impl SignSettings {
    /// Signs `dest@digest`; cosign's output is shown only if it fails.
    pub fn sign(&self, dest: &Repo, digest: &Digest) -> Result<()> {
        let reference = format!("{dest}@{digest}");
        let mut c = Command::new(&self.cosign);
        c.arg("sign").arg("--key").arg(&self.key).arg("--yes");
        if !self.transparency_log {
            // Without a transparency log: cosign's deprecated switch, which needs the signing
            // config (which would name the public log) off.
            c.args(["--use-signing-config=false", "--tlog-upload=false"]);
        }
        if self.insecure_http || is_loopback(&dest.registry) {
            c.arg("--allow-http-registry");
        }
        c.arg(&reference);
        let out = c.output().with_context(|| {
            format!(
                "cannot run cosign ({}) to sign {reference}: install cosign, or name it with --cosign / RULES_IMAGE_COSIGN",
                self.cosign.display()
            )
        })?;
        if !out.status.success() {
            let end = &out.stderr[out.stderr.len().saturating_sub(8000)..];
            bail!(
                "cosign could not sign {reference} ({}):\n{}",
                out.status,
                quoted(end)
            );
        }
        eprintln!("signed {reference} with cosign");
        Ok(())
    }
}
