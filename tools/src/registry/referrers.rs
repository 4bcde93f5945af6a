//! OCI 1.1 referrers: artifacts (an SBOM, a provenance statement) attached to an image by
//! their manifest's `subject`, pushed with it by `push`, and listed by `referrers`.
//!
//! Each artifact is an image manifest with `artifactType`, the empty config (`{}`) and one
//! layer, the artifact file. A registry with the referrers API indexes it by itself; for one
//! without (distribution 2.8 answers `GET /v2/<name>/referrers/<digest>` with 404), the
//! pusher keeps the subject's fallback tag `sha256-<hex>` up to date: an image index of the
//! referrers' descriptors, read, merged and written back, as the distribution spec's
//! "referrers tag schema" says. Readers try the API first, then that tag.

use super::client::{Client, Scope, Transfer, read_manifest, status_error};
use crate::input::{Blob, Content, Stored};
use crate::oci::manifest::ImageManifest;
use crate::oci::media_type::{INDEX, MANIFEST};
use crate::oci::reference::{Reference, Repo};
use crate::oci::{Descriptor, Digest, ImageIndex};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The OCI empty descriptor's content and media type: the config of an artifact.
pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const TITLE: &str = "org.opencontainers.image.title";

/// A file to attach to the pushed image as an artifact of this type.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub artifact_type: String,
    pub file: PathBuf,
}

/// A referrer made ready to push: its manifest, that manifest's descriptor (with
/// `artifactType`, as the referrers list carries it) and its blobs.
pub struct Artifact {
    pub manifest: Vec<u8>,
    pub descriptor: Descriptor,
    pub blobs: Vec<Blob>,
}

impl Referrer {
    /// Parses `ARTIFACT_TYPE=FILE`.
    pub fn parse(s: &str) -> Result<Referrer> {
        let Some((t, f)) = s.split_once('=') else {
            bail!("--referrer {s:?} is not ARTIFACT_TYPE=FILE");
        };
        if !t.contains('/') {
            bail!("--referrer {s:?}: {t:?} is not a media type");
        }
        Ok(Referrer {
            artifact_type: t.into(),
            file: PathBuf::from(f),
        })
    }

    /// The artifact manifest of this file, about `subject`.
    pub fn artifact(&self, subject: &Descriptor) -> Result<Artifact> {
        let (digest, size) = Digest::of_file(&self.file)
            .with_context(|| format!("cannot read {}", self.file.display()))?;
        let mut layer = Descriptor::new(&self.artifact_type, digest, size);
        if let Some(name) = self.file.file_name() {
            layer.annotations = Some(BTreeMap::from([(
                TITLE.to_string(),
                name.to_string_lossy().into_owned(),
            )]));
        }
        let config = Descriptor::of(EMPTY_MEDIA_TYPE, EMPTY_CONFIG);
        let subject = Descriptor::new(&subject.media_type, subject.digest, subject.size);
        let manifest = ImageManifest {
            artifact_type: Some(self.artifact_type.clone()),
            subject: Some(subject),
            ..ImageManifest::new(config.clone(), vec![layer.clone()], Default::default())
        }
        .to_bytes();
        let mut descriptor = Descriptor::of(MANIFEST, &manifest);
        descriptor.extra.insert(
            "artifactType".into(),
            Value::String(self.artifact_type.clone()),
        );
        Ok(Artifact {
            manifest,
            descriptor,
            blobs: vec![
                Blob {
                    desc: config,
                    content: Content::Bytes(EMPTY_CONFIG.to_vec()),
                },
                Blob {
                    desc: layer,
                    content: Content::Stored(Stored::File(self.file.clone())),
                },
            ],
        })
    }
}

/// The tag under which a registry without the referrers API lists `subject`'s referrers.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

fn referrers_url(c: &Client, repo: &Repo, subject: &Digest) -> String {
    format!(
        "{}/v2/{}/referrers/{subject}",
        c.base_url(&repo.registry),
        repo.repository
    )
}

fn manifest_url(c: &Client, repo: &Repo, reference: &str) -> String {
    format!(
        "{}/v2/{}/manifests/{reference}",
        c.base_url(&repo.registry),
        repo.repository
    )
}

/// The referrers index from the registry's API, or None if it has no such API.
fn from_api(c: &Client, repo: &Repo, subject: &Digest) -> Result<Option<ImageIndex>> {
    let scope = Scope::pull(&repo.registry, &repo.repository);
    let url = referrers_url(c, repo, subject);
    c.retry(
        &|| format!("cannot list the referrers of {repo}@{subject}"),
        || {
            let mut r = c.get(&scope, &url, &[("accept", INDEX)], Transfer::Small)?;
            match r.status().as_u16() {
                200 => {
                    let bytes = read_manifest(&mut r)?;
                    Ok(ImageIndex::parse(&bytes).ok())
                }
                404 => Ok(None),
                _ => Err(status_error(&mut r)),
            }
        },
    )
}

/// The fallback tag's index, or None if the tag does not exist.
fn from_tag(c: &Client, repo: &Repo, subject: &Digest) -> Result<Option<ImageIndex>> {
    let scope = Scope::pull(&repo.registry, &repo.repository);
    let tag = fallback_tag(subject);
    let url = manifest_url(c, repo, &tag);
    let bytes = c.retry(&|| format!("cannot read {repo}:{tag}"), || {
        let mut r = c.get(&scope, &url, &[("accept", INDEX)], Transfer::Small)?;
        match r.status().as_u16() {
            200 => Ok(Some(read_manifest(&mut r)?)),
            404 => Ok(None),
            _ => Err(status_error(&mut r)),
        }
    })?;
    bytes
        .map(|b| {
            ImageIndex::parse(&b)
                .with_context(|| format!("{repo}:{tag} is not an image index of referrers"))
        })
        .transpose()
}

/// Writes a manifest under a tag: (tag, bytes, media type, digest).
pub type PutTag<'a> = dyn Fn(&str, &[u8], &str, &Digest) -> Result<()> + 'a;

/// After the artifacts' manifests were pushed to `repo`: on a registry without the
/// referrers API, adds their descriptors to the subject's fallback tag (kept as it was if it
/// lists them all already), written by `put_tag(tag, bytes, media_type, digest)` (the push's
/// manifest PUT, digest checked). Returns whether the tag was written.
pub fn update_fallback(
    c: &Client,
    repo: &Repo,
    subject: &Digest,
    added: &[Descriptor],
    put_tag: &PutTag,
) -> Result<bool> {
    if from_api(c, repo, subject)?.is_some() {
        return Ok(false);
    }
    let mut index = from_tag(c, repo, subject)?
        .unwrap_or_else(|| ImageIndex::new(Vec::new(), Default::default()));
    let before = index.manifests.len();
    for d in added {
        if !index.manifests.iter().any(|m| m.digest == d.digest) {
            index.manifests.push(d.clone());
        }
    }
    if index.manifests.len() == before {
        return Ok(false);
    }
    let bytes = index.to_bytes();
    put_tag(&fallback_tag(subject), &bytes, INDEX, &Digest::of(&bytes))?;
    Ok(true)
}

/// `referrers REGISTRY/REPOSITORY@DIGEST`: prints one line per referrer, `ARTIFACT_TYPE
/// DIGEST SIZE`, from the referrers API or else the fallback tag; and where they came from.
pub fn run_list(reference: &str, insecure_http: bool) -> Result<()> {
    let r = Reference::parse(reference)?;
    let Some(subject) = r.digest else {
        bail!("{reference}: name the image by digest (REGISTRY/REPOSITORY@sha256:...)");
    };
    let c = Client::new(insecure_http)?;
    let (index, how) = match from_api(&c, &r.repo, &subject)? {
        Some(i) => (i, "the referrers API".to_string()),
        None => match from_tag(&c, &r.repo, &subject)? {
            Some(i) => (i, format!("the fallback tag {}", fallback_tag(&subject))),
            None => (
                ImageIndex::new(Vec::new(), Default::default()),
                "nowhere".into(),
            ),
        },
    };
    for d in &index.manifests {
        let t = d
            .extra
            .get("artifactType")
            .and_then(Value::as_str)
            .unwrap_or("-");
        println!("{t} {} {}", d.digest, d.size);
    }
    eprintln!(
        "{} referrers of {}@{subject}, from {how}",
        index.manifests.len(),
        r.repo
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_name_their_subject_and_type() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("sbom.spdx.json");
        std::fs::write(&f, b"{\"spdxVersion\":\"SPDX-2.3\"}").unwrap();
        let r = Referrer::parse(&format!("application/spdx+json={}", f.display())).unwrap();
        let subject = Descriptor::of(MANIFEST, b"the image manifest")
            .with_platform(crate::oci::Platform::new("linux", "amd64", None));
        let a = r.artifact(&subject).unwrap();
        let m: Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["artifactType"], "application/spdx+json");
        assert_eq!(m["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            m["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m["subject"]["digest"], subject.digest.to_string());
        assert!(m["subject"].get("platform").is_none());
        assert_eq!(m["layers"][0]["annotations"][TITLE], "sbom.spdx.json");
        assert_eq!(a.descriptor.digest, Digest::of(&a.manifest));
        assert_eq!(a.descriptor.extra["artifactType"], "application/spdx+json");
        assert_eq!(a.blobs.len(), 2);
        assert!(Referrer::parse("no-type").is_err());
        assert!(Referrer::parse("plain=file").is_err());
        assert_eq!(
            fallback_tag(&subject.digest),
            format!("sha256-{}", subject.digest.hex())
        );
    }
}
