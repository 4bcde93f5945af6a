//! Layer blobs read from a Bazel remote cache (the CAS of a REAPI server: BuildGrid,
//! buildbarn, bazel-remote, ...) instead of from local files, so that `push`, `load` and
//! `image-test` work on a client that built with `--remote_download_minimal`.
//!
//! A layer blob's OCI digest and size are its CAS digest (Bazel hashes outputs with SHA-256 by
//! default), so the blob is `[{instance}/]blobs/{hex}/{size}` to ByteStream `Read`. Each read
//! streams: chunks go from the gRPC task through a small bounded channel to the reader, so a
//! blob is never held whole in memory. A stream that breaks is resumed at the offset reached
//! (`read_offset`), with backoff, as Bazel retries its own remote calls; a blob the cache does
//! not have is an error naming the digest and endpoint. The reader checks the digest and size
//! at the end, so no caller can use a byte the cache got wrong.
//!
//! Headers (credentials, mostly) go only to this endpoint, are marked sensitive, and appear in
//! no message: `Debug` and errors name the endpoint alone.

mod proto;

use crate::oci::Digest;
use anyhow::{Context, Result, anyhow, bail};
use proto::{READ_PATH, ReadRequest, ReadResponse};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{AsciiMetadataValue, MetadataKey};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

/// How long a connection may take, and how long a stream may go without a message.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Retries of one blob's read (each resumes where the last stopped), with doubling backoff.
const MAX_RETRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(if cfg!(test) { 5 } else { 200 });
/// Chunks in flight between the gRPC task and the reader.
const CHANNEL_CHUNKS: usize = 8;
/// The largest message accepted: servers send chunks of 16 KiB to a few MiB.
const MAX_MESSAGE: usize = 64 << 20;
/// The variable that holds headers for the cache, one `NAME=VALUE` per line, for credentials
/// that should not be on a command line.
pub const HEADERS_ENV: &str = "RULES_IMAGE_REMOTE_HEADERS";

/// A connection to one remote cache; cheap to share between threads.
pub struct RemoteCache {
    /// As given (`grpc://host:port`): how messages name the cache.
    endpoint: String,
    instance_name: String,
    headers: Vec<(MetadataKey<tonic::metadata::Ascii>, AsciiMetadataValue)>,
    channel: Channel,
    runtime: tokio::runtime::Runtime,
}

impl fmt::Debug for RemoteCache {
    // Never the headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteCache({})", self.endpoint)
    }
}

impl PartialEq for RemoteCache {
    fn eq(&self, other: &Self) -> bool {
        self.endpoint == other.endpoint && self.instance_name == other.instance_name
    }
}

impl fmt::Display for RemoteCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.endpoint)?;
        if !self.instance_name.is_empty() {
            write!(f, " (instance {})", self.instance_name)?;
        }
        Ok(())
    }
}

/// What `grpcs://` connections trust and present, beyond the system roots (Bazel's
/// --tls_certificate, --tls_client_certificate and --tls_client_key), as PEM.
#[derive(Default)]
pub struct Tls {
    pub ca_certificate: Option<Vec<u8>>,
    /// The client's certificate and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// `NAME=VALUE` headers from the command line and from `RULES_IMAGE_REMOTE_HEADERS`.
pub fn headers_from(args: &[String], env: Option<&str>) -> Result<Vec<(String, String)>> {
    let lines = env
        .into_iter()
        .flat_map(|e| e.lines())
        .filter(|l| !l.trim().is_empty());
    args.iter()
        .map(String::as_str)
        .chain(lines)
        .map(|h| {
            // The value is a secret: only the name may appear in a message.
            let (name, value) = h
                .split_once('=')
                .ok_or_else(|| anyhow!("a remote cache header has no '=' (NAME=VALUE)"))?;
            Ok((name.trim().to_ascii_lowercase(), value.to_string()))
        })
        .collect()
}

impl RemoteCache {
    /// Prepares the connection (made on first use). `endpoint` is Bazel's `--remote_cache`
    /// syntax: `grpc://HOST:PORT` (plain), `grpcs://HOST:PORT` or `HOST:PORT` (TLS, verified
    /// against the system roots, `SSL_CERT_FILE` and `tls`'s certificate).
    pub fn new(
        endpoint: &str,
        instance_name: &str,
        headers: Vec<(String, String)>,
        tls_files: &Tls,
    ) -> Result<RemoteCache> {
        let (uri, tls) = if let Some(rest) = endpoint.strip_prefix("grpc://") {
            (format!("http://{rest}"), false)
        } else if let Some(rest) = endpoint.strip_prefix("grpcs://") {
            (format!("https://{rest}"), true)
        } else if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            bail!(
                "remote cache {endpoint}: an HTTP cache serves no ByteStream; pushes and loads \
                 read blobs from gRPC caches (grpc:// or grpcs://) only"
            );
        } else if endpoint.contains("://") {
            bail!("remote cache {endpoint}: unsupported scheme (use grpc:// or grpcs://)");
        } else {
            (format!("https://{endpoint}"), true)
        };
        let headers = headers
            .into_iter()
            .map(|(name, value)| {
                if name.ends_with("-bin") {
                    bail!("remote cache header {name}: binary (-bin) headers are not supported");
                }
                let key = MetadataKey::from_bytes(name.as_bytes())
                    .map_err(|_| anyhow!("remote cache header name {name:?} is not valid"))?;
                let mut value = AsciiMetadataValue::try_from(value.as_str())
                    .map_err(|_| anyhow!("the value of remote cache header {name} is not valid"))?;
                value.set_sensitive(true);
                Ok((key, value))
            })
            .collect::<Result<Vec<_>>>()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("remote-cache")
            .enable_all()
            .build()
            .context("cannot start the remote cache client's runtime")?;
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| anyhow!("remote cache {endpoint}: not a valid address: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        if tls {
            let mut config = ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = &tls_files.ca_certificate {
                config = config.ca_certificate(Certificate::from_pem(pem));
            }
            if let Some((cert, key)) = &tls_files.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            ep = ep
                .tls_config(config)
                .with_context(|| format!("remote cache {endpoint}: TLS"))?;
        }
        let channel = {
            let _in_runtime = runtime.enter();
            ep.connect_lazy()
        };
        Ok(RemoteCache {
            endpoint: endpoint.to_string(),
            instance_name: instance_name.trim_matches('/').to_string(),
            headers,
            channel,
            runtime,
        })
    }

    fn resource_name(&self, digest: &Digest, size: u64) -> String {
        let blob = format!("blobs/{}/{size}", digest.hex());
        if self.instance_name.is_empty() {
            blob
        } else {
            format!("{}/{blob}", self.instance_name)
        }
    }

    /// A reader of the blob with this digest and size. The read starts at once, in the
    /// background; errors (a blob the cache lacks, a broken stream after the retries, wrong
    /// bytes) come out of `read` as I/O errors that say which blob and which cache.
    pub fn open(self: &Arc<Self>, digest: Digest, size: u64) -> CasReader {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        if size > 0 {
            // Bazel never stores the empty blob: every cache "has" it.
            let cache = Arc::clone(self);
            self.runtime.spawn(async move {
                if let Err(msg) = cache.stream(digest, size, &tx).await {
                    let _ = tx.send(Err(msg)).await;
                }
            });
        }
        CasReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
            hasher: Sha256::new(),
            count: 0,
            digest,
            size,
            cache: Arc::clone(self),
            done: false,
        }
    }

    /// Sends the blob's bytes to `tx`, resuming a broken stream where it stopped. Returns
    /// when all `size` bytes were sent or the reader went away; Err: why it cannot be read
    /// (`NotFound`: the cache lacks it; `Other`: it kept failing).
    async fn stream(&self, digest: Digest, size: u64, tx: &Chunks) -> Result<(), io::Error> {
        let what = || format!("blob {digest} ({size} bytes) in the remote cache {self}");
        let mut offset = 0u64;
        let mut retries = 0;
        let mut backoff = FIRST_BACKOFF;
        while offset < size {
            let before = offset;
            let failure = match self.read_from(digest, size, &mut offset, tx).await {
                Ok(true) => return Ok(()), // the reader is gone
                Ok(false) if offset == size => return Ok(()),
                Ok(false) => format!("the stream ended at byte {offset}"),
                Err(status) if status.code() == Code::NotFound => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "{} is not there (evicted, or never uploaded): build the image \
                             again so that Bazel uploads it, then run again",
                            what()
                        ),
                    ));
                }
                Err(status) if !retryable(status.code()) => {
                    return Err(io::Error::other(format!(
                        "reading {}: {}",
                        what(),
                        status_text(&status)
                    )));
                }
                Err(status) => status_text(&status),
            };
            if offset > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is longer than {size} bytes", what()),
                ));
            }
            if offset == before {
                retries += 1;
            } else {
                retries = 1; // progress was made: the budget starts again
            }
            if retries > MAX_RETRIES {
                return Err(io::Error::other(format!(
                    "reading {}: {failure} ({MAX_RETRIES} retries)",
                    what()
                )));
            }
            eprintln!(
                "{}",
                crate::io::untrusted::terminal_safe(&format!(
                    "resuming {digest} from the remote cache at byte {offset} of {size} ({failure})"
                ))
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        Ok(())
    }

    /// One `Read` from `offset` on; `offset` follows what was sent to `tx`. Ok(true): the
    /// reader went away; Ok(false): the server ended the stream.
    async fn read_from(
        &self,
        digest: Digest,
        size: u64,
        offset: &mut u64,
        tx: &Chunks,
    ) -> Result<bool, Status> {
        let mut request = Request::new(ReadRequest {
            resource_name: self.resource_name(&digest, size),
            read_offset: *offset as i64,
            read_limit: 0,
        });
        for (k, v) in &self.headers {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        let mut grpc =
            tonic::client::Grpc::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE);
        tokio::time::timeout(CONNECT_TIMEOUT, grpc.ready())
            .await
            .map_err(|_| Status::unavailable("no connection within 30 s"))?
            .map_err(|e| Status::unavailable(format!("cannot connect: {e}")))?;
        let codec = tonic_prost::ProstCodec::<ReadRequest, ReadResponse>::default();
        let mut stream = grpc
            .server_streaming(request, PathAndQuery::from_static(READ_PATH), codec)
            .await?
            .into_inner();
        loop {
            let message = tokio::time::timeout(IDLE_TIMEOUT, stream.message())
                .await
                .map_err(|_| Status::deadline_exceeded("no data for 120 s"))??;
            let Some(message) = message else {
                return Ok(false);
            };
            if message.data.is_empty() {
                continue;
            }
            *offset += message.data.len() as u64;
            if *offset > size {
                return Ok(false);
            }
            if tx.send(Ok(message.data)).await.is_err() {
                return Ok(true);
            }
        }
    }
}

/// The codes Bazel's own remote client retries.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Internal
            | Code::ResourceExhausted
            | Code::Cancelled
    )
}

/// A status as one line: its code and the server's message (untrusted text, quoted).
fn status_text(status: &Status) -> String {
    let msg = status.message();
    if msg.is_empty() {
        format!("{:?}", status.code())
    } else {
        format!(
            "{:?}: {}",
            status.code(),
            crate::io::untrusted::quoted(msg.as_bytes())
        )
    }
}

/// What the gRPC task sends the reader: chunks in order, or the error that ended the read.
type Chunks = mpsc::Sender<Result<Vec<u8>, io::Error>>;

/// A blob's bytes from the remote cache, checked against its digest and size at the end.
/// Its errors are final (the stream was already resumed as often as it makes sense):
/// `NotFound` for a blob the cache lacks, `InvalidData` for wrong bytes.
pub struct CasReader {
    rx: mpsc::Receiver<Result<Vec<u8>, io::Error>>,
    chunk: Vec<u8>,
    pos: usize,
    hasher: Sha256,
    count: u64,
    digest: Digest,
    size: u64,
    cache: Arc<RemoteCache>,
    done: bool,
}

impl Read for CasReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.hasher.update(&chunk);
                    self.count += chunk.len() as u64;
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => {
                    self.done = true;
                    let got = Digest(self.hasher.clone().finalize().into());
                    if got != self.digest || self.count != self.size {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "blob {} from the remote cache {} has digest {got} ({} bytes), \
                                 not {} ({} bytes)",
                                self.digest, self.cache, self.count, self.digest, self.size
                            ),
                        ));
                    }
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
