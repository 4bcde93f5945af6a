//! `push`: blobs first (skipped when present, mounted when another repository of the same
//! registry has them, else uploaded and checked), the manifest by digest last (an index after
//! its children's manifests), then tags. If
//! any blob fails, no manifest or tag is written anywhere: a tag never points at a broken image.

use super::client::{
    Body, Client, HttpError, HttpResult, Scope, Transfer, body_reader, header, read_manifest,
    resolve_location, status_error, with_query,
};
use super::progress::{Progress, Stats, human};
use super::referrers::{self, Artifact, Referrer};
use super::sign::SignSettings;
use crate::input::{Blob, Content, Input};
use crate::io::output;
use crate::io::untrusted::shown_str;
use crate::oci::media_type::MANIFEST_ACCEPT;
use crate::oci::reference::{Repo, valid_tag};
use crate::oci::{Descriptor, Digest, json};
use crate::stamp::Status;
use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One image (or index) to push: where, and with which tags.
pub struct PushJob {
    /// The `image_push` target, for messages (may be empty).
    pub label: String,
    /// One image, or an index and its images.
    pub input: Input,
    pub destinations: Vec<Repo>,
    /// Tag templates (`{KEY}` from status files, `{IMAGE_DIGEST}`, `{IMAGE_DIGEST_SHORT}`).
    pub tags: Vec<String>,
    pub status_files: Vec<PathBuf>,
    /// Artifacts to attach to the top manifest (OCI 1.1 referrers).
    pub referrers: Vec<Referrer>,
}

/// How to push: the same for every job of one run.
pub struct PushSettings {
    pub summary_json: Option<PathBuf>,
    pub jobs: usize,
    pub chunk_size: u64,
    pub insecure_http: bool,
    /// Sign every pushed top manifest, after its referrers and before any tag.
    pub sign: Option<SignSettings>,
}

/// `--summary-json` of `push`: what was pushed where.
#[derive(Serialize)]
struct PushSummary {
    digest: Digest,
    destinations: Vec<DestinationSummary>,
    /// The artifact manifests attached to it (referrers), in the order given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    referrers: Vec<Digest>,
}

/// `--summary-json` of `deploy`: one entry per job, in order. A destination's counters cover
/// everything the run sent there, for whichever job.
#[derive(Serialize)]
struct DeploySummary {
    pushes: Vec<JobSummary>,
}

#[derive(Serialize)]
struct JobSummary {
    label: String,
    #[serde(flatten)]
    push: PushSummary,
}

#[derive(Serialize)]
struct DestinationSummary {
    registry: String,
    repository: String,
    tags: Vec<String>,
    /// `REGISTRY/REPOSITORY@DIGEST`, then `REGISTRY/REPOSITORY:TAG` for each tag.
    references: Vec<String>,
    bytes_uploaded: u64,
    bytes_skipped: u64,
    bytes_mounted: u64,
    blobs_uploaded: u64,
    blobs_skipped: u64,
    blobs_mounted: u64,
}

/// A manifest to PUT: exact bytes, media type, digest.
struct ManifestPut<'a> {
    bytes: &'a [u8],
    media_type: String,
    digest: Digest,
}

impl<'a> ManifestPut<'a> {
    fn new(bytes: &'a [u8], desc: Descriptor) -> ManifestPut<'a> {
        ManifestPut {
            bytes,
            media_type: desc.media_type,
            digest: desc.digest,
        }
    }
}

/// A job made ready: its manifests in push order (an index's images first), its tags and
/// the artifacts that refer to it.
struct Planned<'a> {
    manifests: Vec<ManifestPut<'a>>,
    digest: Digest,
    tags: Vec<String>,
    artifacts: Vec<Artifact>,
}

impl<'a> Planned<'a> {
    fn new(job: &'a PushJob) -> Result<Planned<'a>> {
        let named = |e: anyhow::Error| {
            if job.label.is_empty() {
                e
            } else {
                e.context(job.label.clone())
            }
        };
        if job.destinations.is_empty() {
            return Err(named(anyhow!(
                "no destination: give --registry and --repository, or --default-destination"
            )));
        }
        // Every image's manifest before the index that refers to them; the tags on the top one.
        let mut manifests: Vec<ManifestPut> = match &job.input {
            Input::Image(_) => Vec::new(),
            Input::Index(x) => x
                .children
                .iter()
                .map(|i| ManifestPut::new(&i.manifest, i.descriptor()))
                .collect(),
        };
        let (top_bytes, top_desc) = job.input.top();
        manifests.push(ManifestPut::new(top_bytes, top_desc.clone()));
        let digest = manifests.last().expect("the top manifest").digest;
        let tags = Status::read(&job.status_files)
            .and_then(|status| expand_tags(&job.tags, &status, &digest))
            .map_err(named)?;
        let artifacts = job
            .referrers
            .iter()
            .map(|r| r.artifact(&top_desc))
            .collect::<Result<Vec<_>>>()
            .map_err(named)?;
        let fallback = referrers::fallback_tag(&digest);
        if !artifacts.is_empty() && tags.contains(&fallback) {
            return Err(named(anyhow!(
                "the tag {fallback} is where registries without the referrers API list the image's referrers; choose another tag, or push no referrers"
            )));
        }
        Ok(Planned {
            manifests,
            digest,
            tags,
            artifacts,
        })
    }

    fn top(&self) -> &ManifestPut<'a> {
        self.manifests.last().expect("the top manifest")
    }
}

/// `push`: one image or index to its destinations.
pub fn run(job: &PushJob, settings: &PushSettings) -> Result<()> {
    let summaries = run_all(std::slice::from_ref(job), settings)?;
    let summary = summaries.into_iter().next().expect("one job");
    if let Some(p) = &settings.summary_json {
        output::write_all_atomic(&[(p.as_path(), &json::canonical(&summary))])?;
    }
    Ok(())
}

/// `deploy`: many images and indexes in one run. Each distinct blob is one work item for
/// every destination of every job that needs it (read once, uploaded in parallel with the
/// rest); only when all of them arrived are manifests pushed by digest, and tags last, so no
/// tag moves anywhere unless every image is complete everywhere.
pub fn deploy(jobs: &[PushJob], settings: &PushSettings) -> Result<()> {
    let pushes = run_all(jobs, settings)?
        .into_iter()
        .zip(jobs)
        .map(|(push, job)| JobSummary {
            label: job.label.clone(),
            push,
        })
        .collect();
    if let Some(p) = &settings.summary_json {
        let summary = DeploySummary { pushes };
        output::write_all_atomic(&[(p.as_path(), &json::canonical(&summary))])?;
    }
    Ok(())
}

fn run_all(jobs: &[PushJob], settings: &PushSettings) -> Result<Vec<PushSummary>> {
    let planned = jobs.iter().map(Planned::new).collect::<Result<Vec<_>>>()?;
    // Every destination once, in first-seen order; each job's destinations as indexes.
    let mut dests: Vec<Repo> = Vec::new();
    let mut job_dests: Vec<Vec<usize>> = Vec::new();
    for job in jobs {
        let mut mine = Vec::new();
        for d in &job.destinations {
            let i = dests.iter().position(|x| x == d).unwrap_or_else(|| {
                dests.push(d.clone());
                dests.len() - 1
            });
            if !mine.contains(&i) {
                mine.push(i);
            }
        }
        job_dests.push(mine);
    }
    let work = blob_work(jobs, &planned, &job_dests);

    let client = Client::new(settings.insecure_http)?;
    let names: Vec<String> = dests.iter().map(Repo::to_string).collect();
    let mut progress = Progress::new(&names);
    let pusher = Pusher {
        client: &client,
        chunk_size: settings.chunk_size,
        progress: &progress,
    };
    if let Err(e) = pusher.blobs(&dests, &work, settings.jobs) {
        progress.finish();
        return Err(e);
    }
    let manifests = |tags: bool| -> Result<()> {
        for (p, mine) in planned.iter().zip(&job_dests) {
            for dest in mine.iter().map(|&i| &dests[i]) {
                if tags {
                    let top = p.top();
                    for t in &p.tags {
                        pusher.manifest(dest, t, top.bytes, &top.media_type, &p.digest)?;
                    }
                } else {
                    for m in &p.manifests {
                        let d = m.digest;
                        pusher.manifest(dest, &d.to_string(), m.bytes, &m.media_type, &d)?;
                    }
                    // The artifacts after their subject, which some registries require.
                    for a in &p.artifacts {
                        let d = a.descriptor.digest;
                        pusher.manifest(
                            dest,
                            &d.to_string(),
                            &a.manifest,
                            &a.descriptor.media_type,
                            &d,
                        )?;
                    }
                }
            }
        }
        Ok(())
    };
    // Where registries have no referrers API, the fallback tags list the artifacts.
    let referrer_tags = || -> Result<()> {
        for (p, mine) in planned.iter().zip(&job_dests) {
            if p.artifacts.is_empty() {
                continue;
            }
            let added: Vec<Descriptor> = p.artifacts.iter().map(|a| a.descriptor.clone()).collect();
            for dest in mine.iter().map(|&i| &dests[i]) {
                let put = |tag: &str, bytes: &[u8], media_type: &str, digest: &Digest| {
                    pusher.manifest(dest, tag, bytes, media_type, digest)
                };
                if referrers::update_fallback(&client, dest, &p.digest, &added, &put)? {
                    eprintln!(
                        "listed {} referrers of {dest}@{} under {dest}:{}",
                        added.len(),
                        p.digest,
                        referrers::fallback_tag(&p.digest)
                    );
                }
            }
        }
        Ok(())
    };
    let signatures = || -> Result<()> {
        let Some(sign) = &settings.sign else {
            return Ok(());
        };
        for (p, mine) in planned.iter().zip(&job_dests) {
            for dest in mine.iter().map(|&i| &dests[i]) {
                sign.sign(dest, &p.digest)?;
            }
        }
        Ok(())
    };
    // Every manifest of every job by digest (artifacts after their subjects), the referrers'
    // fallback tags, the signatures, then the tags of all: no tag moves to an image that is
    // not complete, attached and signed.
    let pushed = manifests(false)
        .and_then(|()| referrer_tags())
        .and_then(|()| signatures())
        .and_then(|()| manifests(true));
    progress.finish();
    pushed?;
    let mut summaries = Vec::new();
    for (p, mine) in planned.iter().zip(&job_dests) {
        let destinations = mine
            .iter()
            .map(|&i| DestinationSummary::new(&dests[i], &p.digest, &p.tags, &progress.dests[i].1))
            .collect();
        for &i in mine {
            eprintln!(
                "pushed {}@{} (tags: {})",
                dests[i],
                p.digest,
                if p.tags.is_empty() {
                    "none".to_string()
                } else {
                    p.tags.join(", ")
                }
            );
        }
        println!("{}", p.digest);
        summaries.push(PushSummary {
            digest: p.digest,
            destinations,
            referrers: p.artifacts.iter().map(|a| a.descriptor.digest).collect(),
        });
    }
    Ok(summaries)
}

/// Every config and layer blob of every job (and of its artifacts) once, with the destinations
/// that need it; a local copy of a layer wins over a remote one (`Blob::prefer_local`).
fn blob_work(
    jobs: &[PushJob],
    planned: &[Planned],
    job_dests: &[Vec<usize>],
) -> Vec<(Blob, Vec<usize>)> {
    let mut work: Vec<(Blob, Vec<usize>)> = Vec::new();
    for ((job, p), mine) in jobs.iter().zip(planned).zip(job_dests) {
        let artifact_blobs = p.artifacts.iter().flat_map(|a| a.blobs.iter().cloned());
        for blob in job.input.blobs().into_iter().chain(artifact_blobs) {
            match work
                .iter_mut()
                .find(|(b, _)| b.desc.digest == blob.desc.digest)
            {
                Some((have, targets)) => {
                    have.prefer_local(blob);
                    for i in mine {
                        if !targets.contains(i) {
                            targets.push(*i);
                        }
                    }
                }
                None => work.push((blob, mine.clone())),
            }
        }
    }
    work
}

impl DestinationSummary {
    fn new(dest: &Repo, digest: &Digest, tags: &[String], stats: &Stats) -> DestinationSummary {
        let mut references = vec![format!("{dest}@{digest}")];
        references.extend(tags.iter().map(|t| format!("{dest}:{t}")));
        let g = Stats::get;
        DestinationSummary {
            registry: dest.registry.clone(),
            repository: dest.repository.clone(),
            tags: tags.to_vec(),
            references,
            bytes_uploaded: g(&stats.bytes_uploaded),
            bytes_skipped: g(&stats.bytes_skipped),
            bytes_mounted: g(&stats.bytes_mounted),
            blobs_uploaded: g(&stats.blobs_uploaded),
            blobs_skipped: g(&stats.blobs_skipped),
            blobs_mounted: g(&stats.blobs_mounted),
        }
    }
}

/// The tags, each template expanded, each once.
fn expand_tags(templates: &[String], status: &Status, digest: &Digest) -> Result<Vec<String>> {
    let mut tags: Vec<String> = Vec::new();
    for t in templates {
        let t = expand_tag(t, status, digest)?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Ok(tags)
}

/// Expands `{KEY}` (workspace status, `{IMAGE_DIGEST}`, `{IMAGE_DIGEST_SHORT}`); the result
/// must be a valid tag.
pub fn expand_tag(template: &str, status: &Status, digest: &Digest) -> Result<String> {
    let out = status.expand(template, "tag template", |key| match key {
        "IMAGE_DIGEST" => Some(format!("sha256-{}", digest.hex())),
        "IMAGE_DIGEST_SHORT" => Some(digest.hex()[..12].to_string()),
        _ => None,
    })?;
    if !valid_tag(&out) {
        bail!(
            "tag {out:?} (from template {template:?}) is not a valid tag: [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
        );
    }
    Ok(out)
}

/// Blobs up to this size go in one PUT (when no chunk size is asked for).
const MONOLITHIC_MAX: u64 = 16 << 20;
const OCTET: (&str, &str) = ("content-type", "application/octet-stream");

/// Feeds written bytes to a hasher (to hash a prefix with `io::copy`).
struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Pusher<'a> {
    client: &'a Client,
    /// 0: blobs above MONOLITHIC_MAX in one streaming PATCH; else PATCH chunks of this size.
    chunk_size: u64,
    progress: &'a Progress,
}

enum Head {
    Missing,
    Present(Option<u64>),
}

/// Reads a blob's bytes for one upload attempt, counting what is sent and checking size and
/// digest: the read that completes the blob fails if the bytes are wrong, so the registry never
/// receives a complete wrong blob. A mismatch is recorded in `failure` (fatal, not retried).
struct Verifier<'a> {
    inner: Box<dyn Read + 'a>,
    hasher: Sha256,
    count: u64,
    size: u64,
    digest: Digest,
    what: &'a str,
    sent: &'a AtomicU64,
    failure: &'a RefCell<Option<String>>,
}

impl Read for Verifier<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = (self.size - self.count).min(buf.len() as u64) as usize;
        let n = if room == 0 {
            // Anything past the declared size is wrong.
            let mut probe = [0u8; 1];
            let extra = self.inner.read(&mut probe)?;
            if extra > 0 {
                return Err(self.fail(format!("{} is larger than {} bytes", self.what, self.size)));
            }
            return Ok(0);
        } else {
            match self.inner.read(&mut buf[..room]) {
                Ok(n) => n,
                // What reading again cannot fix: a remote cache's blob that is gone or wrong.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::InvalidData
                    ) =>
                {
                    return Err(self.fail(e.to_string()));
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Err(self.fail(format!(
                "{} ended after {} of {} bytes",
                self.what, self.count, self.size
            )));
        }
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.count == self.size {
            let got = Digest(self.hasher.clone().finalize().into());
            if got != self.digest {
                return Err(self.fail(format!(
                    "{} has digest {got} but the manifest expects {}",
                    self.what, self.digest
                )));
            }
        }
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Verifier<'_> {
    fn fail(&self, msg: String) -> io::Error {
        *self.failure.borrow_mut() = Some(msg.clone());
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }
}

/// One destination's view of a blob that is read once for several: chunks arrive over a
/// channel. If the feed stops before `size` bytes, reading fails with an I/O error (not a
/// short, "complete" blob), so that upload attempt fails and is retried on its own.
struct SharedReader {
    rx: std::sync::mpsc::Receiver<Arc<[u8]>>,
    chunk: Arc<[u8]>,
    pos: usize,
    left: u64,
}

impl SharedReader {
    fn new(rx: std::sync::mpsc::Receiver<Arc<[u8]>>, size: u64) -> Self {
        SharedReader {
            rx,
            chunk: Arc::from(&[][..]),
            pos: 0,
            left: size,
        }
    }
}

impl Read for SharedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) if self.left == 0 => return Ok(0),
                Err(_) => {
                    return Err(io::Error::other(
                        "the shared read of this blob stopped early",
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

fn blob_url(c: &Client, repo: &Repo, d: &Digest) -> String {
    format!(
        "{}/v2/{}/blobs/{d}",
        c.base_url(&repo.registry),
        repo.repository
    )
}

impl Pusher<'_> {
    /// Pushes every blob to every destination that lacks it, `jobs` blobs at a time. One work
    /// item per blob covers every destination: a blob several destinations lack is read once
    /// and sent to all of them at the same time (see `blob_everywhere`). After a failure
    /// nothing new starts (no manifest will be pushed anyway); every failure is reported.
    fn blobs(&self, dests: &[Repo], blobs: &[(Blob, Vec<usize>)], jobs: usize) -> Result<()> {
        let all_stats: Vec<&Stats> = self
            .progress
            .dests
            .iter()
            .map(|(_, s)| s.as_ref())
            .collect();
        // Largest first: a big blob started last would finish alone, long after the rest.
        let mut order: Vec<&(Blob, Vec<usize>)> = blobs.iter().collect();
        order.sort_by_key(|(b, _)| std::cmp::Reverse(b.desc.size));
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let errors = Mutex::new(Vec::<String>::new());
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, blobs.len().max(1)) {
                s.spawn(|| {
                    while !failed.load(Ordering::Relaxed) {
                        let Some((blob, targets)) = order.get(next.fetch_add(1, Ordering::Relaxed))
                        else {
                            break;
                        };
                        if let Err(e) = self.blob_everywhere(dests, targets, blob, &all_stats) {
                            failed.store(true, Ordering::Relaxed);
                            errors.lock().unwrap().push(format!("{e:#}"));
                        }
                    }
                });
            }
        });
        let errors = errors.into_inner().unwrap();
        if !errors.is_empty() {
            bail!("{}\nno manifest or tag was pushed", errors.join("\n"));
        }
        Ok(())
    }

    /// Pushes one blob to every destination of `targets` that lacks it. Destinations that can mount it, or
    /// a single one that needs the bytes, go one by one; when several need the bytes, the blob
    /// is read once and streamed to all of them together (each verifies what it sends; one
    /// whose shared stream fails retries on its own, reading the blob again).
    fn blob_everywhere(
        &self,
        dests: &[Repo],
        targets: &[usize],
        blob: &Blob,
        stats: &[&Stats],
    ) -> Result<()> {
        let d = blob.desc.digest;
        let mut need_bytes = Vec::new();
        for &i in targets {
            let dest = &dests[i];
            let what = || format!("cannot push blob {d} to {dest}");
            let scope = Scope::push(&dest.registry, &dest.repository);
            if let Head::Present(_) = self
                .client
                .retry(&what, || self.head_blob(&scope, dest, &d))?
            {
                self.record_skipped(dest, blob, stats[i]);
            } else if self.mount_source(dest, blob).is_some()
                || matches!(blob.content, Content::Bytes(_))
            {
                self.blob(dest, blob, stats[i], None)?;
            } else {
                need_bytes.push(i);
            }
        }
        match need_bytes.as_slice() {
            [] => Ok(()),
            [i] => self.blob(&dests[*i], blob, stats[*i], None),
            many => self.broadcast(dests, many, blob, stats),
        }
    }

    /// Reads the blob once and feeds one upload per destination in `targets`.
    fn broadcast(
        &self,
        dests: &[Repo],
        targets: &[usize],
        blob: &Blob,
        stats: &[&Stats],
    ) -> Result<()> {
        let mut senders = Vec::new();
        let mut readers = Vec::new();
        for _ in targets {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<[u8]>>(4);
            senders.push(Some(tx));
            readers.push(SharedReader::new(rx, blob.desc.size));
        }
        std::thread::scope(|s| {
            let uploads: Vec<_> = targets
                .iter()
                .zip(readers)
                .map(|(&i, reader)| {
                    s.spawn(move || self.blob(&dests[i], blob, stats[i], Some(reader)))
                })
                .collect();
            // Feed every upload still reading; one that stopped (its receiver is gone) retries
            // by itself. A failed source read just ends the feed: the uploads then retry alone.
            if let Ok(mut src) = self.open_content(blob) {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = match src.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let chunk: Arc<[u8]> = Arc::from(&buf[..n]);
                    for tx in senders.iter_mut() {
                        if tx.as_ref().is_some_and(|t| t.send(chunk.clone()).is_err()) {
                            *tx = None;
                        }
                    }
                    if senders.iter().all(Option::is_none) {
                        break;
                    }
                }
            }
            drop(senders);
            uploads
                .into_iter()
                .map(|h| h.join().expect("upload thread panicked"))
                .collect::<Result<Vec<()>>>()
                .map(drop)
        })
    }

    fn record_skipped(&self, dest: &Repo, blob: &Blob, stats: &Stats) {
        let size = blob.desc.size;
        stats.bytes_skipped.fetch_add(size, Ordering::Relaxed);
        stats.blobs_skipped.fetch_add(1, Ordering::Relaxed);
        self.progress.event(&format!(
            "exists {} ({}) in {dest}",
            blob.desc.digest,
            human(size)
        ));
    }

    fn mount_source<'b>(&self, dest: &Repo, blob: &'b Blob) -> Option<&'b Repo> {
        match &blob.content {
            Content::Remote(src) if src.registry == dest.registry && src != dest => Some(src),
            _ => None,
        }
    }

    /// Uploads (or mounts) one blob that `dest` lacks. `shared`, if given, feeds the first
    /// attempt; later attempts read the blob themselves.
    fn blob(
        &self,
        dest: &Repo,
        blob: &Blob,
        stats: &Stats,
        shared: Option<SharedReader>,
    ) -> Result<()> {
        let d = blob.desc.digest;
        let size = blob.desc.size;
        let what = || format!("cannot push blob {d} to {dest}");
        let mount_from = self.mount_source(dest, blob);
        let shared = RefCell::new(shared);
        let mounted = self.client.retry(&what, || {
            self.upload_attempt(dest, blob, mount_from, stats, shared.borrow_mut().take())
        })?;
        if mounted {
            stats.bytes_mounted.fetch_add(size, Ordering::Relaxed);
            stats.blobs_mounted.fetch_add(1, Ordering::Relaxed);
            self.progress.event(&format!(
                "mounted {d} ({}) from {} to {dest}",
                human(size),
                mount_from.map_or(String::new(), |r| r.to_string())
            ));
        } else {
            stats.blobs_uploaded.fetch_add(1, Ordering::Relaxed);
            self.progress
                .event(&format!("pushed {d} ({}) to {dest}", human(size)));
        }
        Ok(())
    }

    /// Whether `repo` has the blob. Only a final 200 means present: a redirect (some
    /// registries send blob HEADs to their storage, signed for HEAD) is followed under
    /// `credential_rule`, as docker does, and its answer counts.
    fn head_blob(&self, scope: &Scope, repo: &Repo, d: &Digest) -> HttpResult<Head> {
        let mut resp = self.client.follow(
            scope,
            "HEAD",
            &blob_url(self.client, repo, d),
            &[],
            Transfer::Small,
        )?;
        match resp.status().as_u16() {
            200 => Ok(Head::Present(
                header(&resp, "content-length").and_then(|v| v.parse().ok()),
            )),
            404 => Ok(Head::Missing),
            _ => Err(status_error(&mut resp)),
        }
    }

    /// One attempt, from a fresh upload session: returns whether the blob was mounted.
    fn upload_attempt(
        &self,
        dest: &Repo,
        blob: &Blob,
        mount_from: Option<&Repo>,
        stats: &Stats,
        shared: Option<SharedReader>,
    ) -> HttpResult<bool> {
        let d = blob.desc.digest;
        let c = self.client;
        let base = c.base_url(&dest.registry);
        let mut scope = Scope::push(&dest.registry, &dest.repository);
        let mut url = format!("{base}/v2/{}/blobs/uploads/", dest.repository);
        if let Some(src) = mount_from {
            scope
                .scopes
                .push(format!("repository:{}:pull", src.repository));
            url = with_query(&url, &format!("mount={d}&from={}", src.repository));
        }
        let mut resp = c.request(&scope, "POST", &url, &[], Transfer::Small, Body::Empty)?;
        let status = resp.status().as_u16();
        if status == 201 && mount_from.is_some() {
            return Ok(true);
        }
        if status != 202 {
            return Err(status_error(&mut resp));
        }
        let loc = header(&resp, "location").ok_or_else(|| {
            HttpError::Fatal(anyhow!(
                "{} started an upload without a Location",
                dest.registry
            ))
        })?;
        let location = resolve_location(&url, &loc);

        if self.chunk_size == 0 && blob.desc.size > MONOLITHIC_MAX {
            self.stream_upload(&scope, &location, blob, stats, shared)?;
            return self.verify_stored(&scope, dest, blob);
        }
        let failure = RefCell::new(None);
        let what = blob.name();
        let inner: Box<dyn Read> = match shared {
            Some(r) => Box::new(r),
            None => self.open_content(blob)?,
        };
        let mut reader = Verifier {
            inner,
            hasher: Sha256::new(),
            count: 0,
            size: blob.desc.size,
            digest: d,
            what: &what,
            sent: &stats.bytes_uploaded,
            failure: &failure,
        };
        let result = self.upload(&scope, &location, &mut reader, &blob.desc);
        if let Some(msg) = failure.borrow_mut().take() {
            return Err(HttpError::Fatal(anyhow!(msg)));
        }
        result?;
        self.verify_stored(&scope, dest, blob)
    }

    /// Checks what the registry stored, not what it said: returns false (not mounted).
    fn verify_stored(&self, scope: &Scope, dest: &Repo, blob: &Blob) -> HttpResult<bool> {
        let d = blob.desc.digest;
        match self.head_blob(scope, dest, &d)? {
            Head::Present(Some(n)) if n != blob.desc.size => Err(HttpError::Fatal(anyhow!(
                "{} reports {n} bytes for blob {d} after upload, expected {}",
                dest.registry,
                blob.desc.size
            ))),
            Head::Present(_) => Ok(false),
            Head::Missing => Err(HttpError::Fatal(anyhow!(
                "{} accepted blob {d} but does not have it afterwards",
                dest.registry
            ))),
        }
    }

    /// Uploads a blob in one streaming PATCH. For local bytes (not a shared or relayed stream,
    /// which cannot be read again from the middle), a broken connection or a short `Range`
    /// is resumed: the registry is asked how much it has (GET on the upload) and the rest is
    /// sent from there, the part it kept hashed again locally. Otherwise, after MAX_RESUMES,
    /// or when the registry kept nothing new, the attempt fails (a fresh one follows).
    fn stream_upload(
        &self,
        scope: &Scope,
        location: &str,
        blob: &Blob,
        stats: &Stats,
        mut shared: Option<SharedReader>,
    ) -> HttpResult<()> {
        const MAX_RESUMES: u32 = 5;
        let c = self.client;
        let (size, d) = (blob.desc.size, blob.desc.digest);
        let resumable = shared.is_none() && !matches!(blob.content, Content::Remote(_));
        let what = blob.name();
        let mut loc = location.to_string();
        let mut offset = 0;
        let mut resumes = 0;
        while offset < size {
            if offset > 0 && !resumable {
                return Err(HttpError::Transport(format!(
                    "{} stored {offset} of the {size} bytes of blob {d}",
                    scope.registry
                )));
            }
            let failure = RefCell::new(None);
            let (inner, hasher): (Box<dyn Read>, Sha256) = match shared.take() {
                Some(r) => (Box::new(r), Sha256::new()),
                None => self.open_at(blob, offset)?,
            };
            let mut reader = Verifier {
                inner,
                hasher,
                count: offset,
                size,
                digest: d,
                what: &what,
                sent: &stats.bytes_uploaded,
                failure: &failure,
            };
            let range = format!("{offset}-{}", size - 1);
            let result = c.request(
                scope,
                "PATCH",
                &loc,
                &[OCTET, ("content-range", &range)],
                Transfer::Blob(size - offset),
                Body::Stream(&mut reader, size - offset),
            );
            if let Some(msg) = failure.borrow_mut().take() {
                return Err(HttpError::Fatal(anyhow!(msg)));
            }
            match result {
                Ok(mut resp) => {
                    if !matches!(resp.status().as_u16(), 202 | 204) {
                        return Err(status_error(&mut resp));
                    }
                    if let Some(l) = header(&resp, "location") {
                        loc = resolve_location(&loc, &l);
                    }
                    offset = accepted_end(&resp, offset, size - offset, &range, &scope.registry)?;
                }
                Err(HttpError::Transport(text)) if resumable && resumes < MAX_RESUMES => {
                    let stored = self.upload_offset(scope, &mut loc)?;
                    if stored <= offset || stored > size {
                        return Err(HttpError::Transport(text));
                    }
                    resumes += 1;
                    self.progress
                        .event(&format!("resuming {d} at byte {stored} of {size} ({text})"));
                    offset = stored;
                }
                Err(e) => return Err(e),
            }
        }
        self.close_upload(scope, &loc, &blob.desc, Body::Empty, Transfer::Small)
    }

    /// How many bytes an upload session holds (its `Range`), from a GET on its location.
    fn upload_offset(&self, scope: &Scope, loc: &mut String) -> HttpResult<u64> {
        let mut resp = self.client.get(scope, loc, &[], Transfer::Small)?;
        if !matches!(resp.status().as_u16(), 200 | 204) {
            return Err(status_error(&mut resp));
        }
        if let Some(l) = header(&resp, "location") {
            *loc = resolve_location(loc, &l);
        }
        Ok(header(&resp, "range")
            .and_then(|v| {
                let (_, last) = v.trim().trim_start_matches("bytes=").split_once('-')?;
                last.trim().parse::<u64>().ok()?.checked_add(1)
            })
            .unwrap_or(0))
    }

    /// The blob's bytes from `offset` on, and a hasher that has seen the bytes before it.
    fn open_at<'b>(&self, blob: &'b Blob, offset: u64) -> HttpResult<(Box<dyn Read + 'b>, Sha256)> {
        let mut hasher = Sha256::new();
        match &blob.content {
            Content::Bytes(b) => {
                let at = (offset as usize).min(b.len());
                hasher.update(&b[..at]);
                Ok((Box::new(&b[at..]), hasher))
            }
            _ => {
                let mut r = self.open_content(blob)?;
                let mut prefix = (&mut r).take(offset);
                let copied = io::copy(&mut prefix, &mut HashWriter(&mut hasher))
                    .map_err(|e| HttpError::Fatal(anyhow!("reading {} again: {e}", blob.name())))?;
                if copied != offset {
                    return Err(HttpError::Fatal(anyhow!(
                        "{} ended after {copied} bytes, before the {offset} the registry has",
                        blob.name()
                    )));
                }
                Ok((r, hasher))
            }
        }
    }

    /// The closing PUT of an upload (`body`: what is left to send, often nothing).
    fn close_upload(
        &self,
        scope: &Scope,
        loc: &str,
        desc: &Descriptor,
        body: Body<'_>,
        transfer: Transfer,
    ) -> HttpResult<()> {
        let digest_q = format!(
            "digest={}",
            super::auth::query_escape(&desc.digest.to_string())
        );
        let mut resp = self.client.request(
            scope,
            "PUT",
            &with_query(loc, &digest_q),
            &[OCTET],
            transfer,
            body,
        )?;
        if !matches!(resp.status().as_u16(), 201 | 202 | 204) {
            return Err(status_error(&mut resp));
        }
        check_digest_header(&resp, &desc.digest, &scope.registry)
    }

    /// A reader of the blob's bytes, from memory, its file, or its source registry.
    fn open_content<'b>(&self, blob: &'b Blob) -> HttpResult<Box<dyn Read + 'b>> {
        let c = self.client;
        let d = blob.desc.digest;
        Ok(match &blob.content {
            Content::Bytes(b) => Box::new(&b[..]),
            Content::Stored(s) => s.open(&blob.desc).map_err(HttpError::Fatal)?,
            Content::Remote(src) => {
                let src_scope = Scope::pull(&src.registry, &src.repository);
                let mut r = c
                    .get(
                        &src_scope,
                        &blob_url(c, src, &d),
                        &[],
                        Transfer::Blob(blob.desc.size),
                    )
                    .map_err(|e| read_error(e, src, &d))?;
                if r.status() != 200 {
                    return Err(read_error(status_error(&mut r), src, &d));
                }
                Box::new(body_reader(r))
            }
        })
    }

    /// Small blobs in one PUT (larger ones, without a chunk size, go in one streaming PATCH:
    /// `stream_upload`); with a chunk size, larger blobs in PATCH chunks of that size (for
    /// registries or proxies that limit request bodies). A chunk is kept in memory until the registry has it: one that takes
    /// only part of a PATCH (its `Range` ends short) gets the rest in the next PATCH, from the
    /// offset it reported.
    fn upload(
        &self,
        scope: &Scope,
        location: &str,
        r: &mut dyn Read,
        desc: &Descriptor,
    ) -> HttpResult<()> {
        let c = self.client;
        let octet = OCTET;
        let mut loc = location.to_string();
        let monolithic_max = if self.chunk_size == 0 {
            MONOLITHIC_MAX
        } else {
            self.chunk_size
        };
        // (With no chunk size, larger blobs went to `stream_upload`.)
        let (body, transfer) = if desc.size <= monolithic_max || self.chunk_size == 0 {
            (Body::Stream(r, desc.size), Transfer::Blob(desc.size))
        } else {
            // `off`: what the registry has; `pending`: bytes read from `r` from `off` on.
            let mut off = 0;
            let mut pending: Vec<u8> = Vec::new();
            while off < desc.size {
                let want = self.chunk_size.min(desc.size - off);
                let have = pending.len() as u64;
                if have < want {
                    (&mut *r)
                        .take(want - have)
                        .read_to_end(&mut pending)
                        .map_err(|e| HttpError::Transport(format!("reading the blob: {e}")))?;
                }
                let n = pending.len() as u64;
                if n < want {
                    return Err(HttpError::Fatal(anyhow!(
                        "the blob ended after {} of {} bytes",
                        off + n,
                        desc.size
                    )));
                }
                let range = format!("{off}-{}", off + n - 1);
                let mut resp = c.request(
                    scope,
                    "PATCH",
                    &loc,
                    &[octet, ("content-range", &range)],
                    Transfer::Blob(n),
                    Body::Bytes(&pending),
                )?;
                if !matches!(resp.status().as_u16(), 202 | 204) {
                    return Err(status_error(&mut resp));
                }
                if let Some(l) = header(&resp, "location") {
                    loc = resolve_location(&loc, &l);
                }
                let end = accepted_end(&resp, off, n, &range, &scope.registry)?;
                pending.drain(..(end - off) as usize);
                off = end;
            }
            (Body::Empty, Transfer::Small)
        };
        self.close_upload(scope, &loc, desc, body, transfer)
    }

    /// PUT the manifest under `reference` (its digest or a tag) and check what was stored.
    fn manifest(
        &self,
        dest: &Repo,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
        digest: &Digest,
    ) -> Result<()> {
        let c = self.client;
        let scope = Scope::push(&dest.registry, &dest.repository);
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            c.base_url(&dest.registry),
            dest.repository
        );
        let what = || {
            if reference.starts_with("sha256:") {
                format!("cannot push manifest {digest} to {dest}")
            } else {
                format!("cannot tag {dest}:{reference} as {digest}")
            }
        };
        c.retry(&what, || {
            let mut resp = c.request(
                &scope,
                "PUT",
                &url,
                &[("content-type", media_type)],
                Transfer::Small,
                Body::Bytes(bytes),
            )?;
            if !matches!(resp.status().as_u16(), 200 | 201 | 202 | 204) {
                return Err(status_error(&mut resp));
            }
            if header(&resp, "docker-content-digest").is_some() {
                return check_digest_header(&resp, digest, &dest.registry);
            }
            // No digest in the answer: ask what the reference now points to.
            let accept = [("accept", media_type)];
            let mut resp =
                c.request(&scope, "HEAD", &url, &accept, Transfer::Small, Body::Empty)?;
            if resp.status() != 200 {
                return Err(status_error(&mut resp));
            }
            if header(&resp, "docker-content-digest").is_some() {
                return check_digest_header(&resp, digest, &dest.registry);
            }
            let mut resp = c.request(
                &scope,
                "GET",
                &url,
                &[("accept", MANIFEST_ACCEPT)],
                Transfer::Small,
                Body::Empty,
            )?;
            if resp.status() != 200 {
                return Err(status_error(&mut resp));
            }
            let got = Digest::of(&read_manifest(&mut resp)?);
            if got != *digest {
                return Err(HttpError::Fatal(anyhow!(
                    "{} stored manifest {got} instead",
                    dest.registry
                )));
            }
            Ok(())
        })
    }
}

fn read_error(e: HttpError, src: &Repo, d: &Digest) -> HttpError {
    match e {
        HttpError::Status {
            status,
            text,
            retry_after,
        } => HttpError::Status {
            status,
            text: format!("reading blob {d} from {src}: {text}"),
            retry_after,
        },
        HttpError::Transport(t) => {
            HttpError::Transport(format!("reading blob {d} from {src}: {t}"))
        }
        HttpError::Fatal(e) => HttpError::Fatal(e.context(format!("reading blob {d} from {src}"))),
    }
}

/// Where the registry's data ends after a PATCH of `n` bytes at `off` (`range`): one past the
/// end of its `Range` answer (`0-LAST`, inclusive), or all of the chunk when it sent none.
fn accepted_end(
    resp: &ureq::http::Response<ureq::Body>,
    off: u64,
    n: u64,
    range: &str,
    registry: &str,
) -> HttpResult<u64> {
    let Some(v) = header(resp, "range") else {
        return Ok(off + n);
    };
    let end = v
        .trim()
        .trim_start_matches("bytes=")
        .split_once('-')
        .filter(|(first, _)| first.trim() == "0")
        .and_then(|(_, last)| last.trim().parse::<u64>().ok())
        .and_then(|last| last.checked_add(1));
    match end {
        Some(e) if e > off && e <= off + n => Ok(e),
        Some(e) if e == off => Err(HttpError::Transport(format!(
            "{registry} took none of PATCH bytes {range} (Range {})",
            shown_str(&v)
        ))),
        _ => Err(HttpError::Fatal(anyhow!(
            "{registry} answered PATCH bytes {range} with Range {}, which is not within what was sent",
            shown_str(&v)
        ))),
    }
}

fn check_digest_header(
    resp: &ureq::http::Response<ureq::Body>,
    want: &Digest,
    registry: &str,
) -> HttpResult<()> {
    match header(resp, "docker-content-digest") {
        Some(got) if got.trim() != want.to_string() => Err(HttpError::Fatal(anyhow!(
            "{registry} answered with digest {} where {want} was expected",
            shown_str(got.trim())
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_templates() {
        let d = Digest::of(b"x");
        let vars = Status::from_pairs(&[("STABLE_GIT_COMMIT", "abc123"), ("BUILD_USER", "me")]);
        assert_eq!(expand_tag("v1", &vars, &d).unwrap(), "v1");
        assert_eq!(
            expand_tag("git-{STABLE_GIT_COMMIT}", &vars, &d).unwrap(),
            "git-abc123"
        );
        assert_eq!(
            expand_tag("{IMAGE_DIGEST}", &vars, &d).unwrap(),
            format!("sha256-{}", d.hex())
        );
        assert_eq!(
            expand_tag("{BUILD_USER}-{IMAGE_DIGEST_SHORT}", &vars, &d).unwrap(),
            format!("me-{}", &d.hex()[..12])
        );
        let e = expand_tag("{NOPE}", &vars, &d).unwrap_err().to_string();
        assert!(e.contains("\"NOPE\""), "{e}");
        assert!(expand_tag("a{b", &vars, &d).is_err());
        assert!(expand_tag("-x", &vars, &d).is_err());
        assert!(expand_tag("{IMAGE_DIGEST}{IMAGE_DIGEST}", &vars, &d).is_err()); // > 128
    }
}
