//! The client against a fake CAS on loopback that serves ByteStream Read the way a REAPI
//! server does, and can be told to break a stream, lack a blob or send wrong bytes.

use super::proto::{ReadRequest, ReadResponse};
use super::*;
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context as TaskContext, Poll};
use tokio_stream::Stream;
use tonic::codegen::{Body, BoxFuture, StdError, http};

/// How the fake answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Honest,
    /// The first read of each blob breaks (UNAVAILABLE) after one chunk.
    BreakOnce,
    /// Every read breaks before sending anything.
    AlwaysUnavailable,
    /// The blob's bytes with the last one flipped.
    Corrupt,
}

/// (resource name, read_offset, the `authorization` header) of each call.
type Calls = Arc<Mutex<Vec<(String, i64, Option<String>)>>>;

#[derive(Clone)]
struct FakeCas {
    /// By resource name.
    blobs: Arc<HashMap<String, Vec<u8>>>,
    mode: Mode,
    calls: Calls,
}

const CHUNK: usize = 1000;

type ReadStream = Pin<Box<dyn Stream<Item = Result<ReadResponse, Status>> + Send>>;

impl tonic::server::ServerStreamingService<ReadRequest> for FakeCas {
    type Response = ReadResponse;
    type ResponseStream = ReadStream;
    type Future = BoxFuture<tonic::Response<ReadStream>, Status>;

    fn call(&mut self, request: Request<ReadRequest>) -> Self::Future {
        let auth = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        let r = request.into_inner();
        let mut calls = self.calls.lock().unwrap();
        calls.push((r.resource_name.clone(), r.read_offset, auth));
        let first = calls.iter().filter(|c| c.0 == r.resource_name).count() == 1;
        let Some(blob) = self.blobs.get(&r.resource_name) else {
            return Box::pin(async { Err(Status::not_found("no such blob")) });
        };
        let mut bytes = blob[r.read_offset as usize..].to_vec();
        if self.mode == Mode::Corrupt {
            *bytes.last_mut().unwrap() ^= 1;
        }
        let mut items: Vec<Result<ReadResponse, Status>> = bytes
            .chunks(CHUNK)
            .map(|c| Ok(ReadResponse { data: c.to_vec() }))
            .collect();
        match self.mode {
            Mode::BreakOnce if first => {
                items.truncate(1);
                items.push(Err(Status::unavailable("connection reset")));
            }
            Mode::AlwaysUnavailable => items = vec![Err(Status::unavailable("down"))],
            _ => {}
        }
        Box::pin(async move {
            Ok(tonic::Response::new(
                Box::pin(tokio_stream::iter(items)) as ReadStream
            ))
        })
    }
}

impl<B> tonic::codegen::Service<http::Request<B>> for FakeCas
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            assert_eq!(req.uri().path(), READ_PATH);
            let codec = tonic_prost::ProstCodec::<ReadResponse, ReadRequest>::default();
            Ok(tonic::server::Grpc::new(codec)
                .server_streaming(service, req)
                .await)
        })
    }
}

impl tonic::server::NamedService for FakeCas {
    const NAME: &'static str = "google.bytestream.ByteStream";
}

/// A running fake: its address, what it was asked, and the runtime serving it.
struct Served {
    endpoint: String,
    calls: Calls,
    _runtime: tokio::runtime::Runtime,
}

fn serve(blobs: &[(&str, &[u8])], mode: Mode) -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = FakeCas {
        blobs: Arc::new(
            blobs
                .iter()
                .map(|(name, b)| (name.to_string(), b.to_vec()))
                .collect(),
        ),
        mode,
        calls: Arc::default(),
    };
    let calls = Arc::clone(&fake.calls);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(fake)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Served {
        endpoint: format!("grpc://{addr}"),
        calls,
        _runtime: runtime,
    }
}

fn blob(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn name_of(instance: &str, bytes: &[u8]) -> String {
    let blob = format!("blobs/{}/{}", Digest::of(bytes).hex(), bytes.len());
    if instance.is_empty() {
        blob
    } else {
        format!("{instance}/{blob}")
    }
}

fn read_all(cache: &Arc<RemoteCache>, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    cache
        .open(Digest::of(bytes), bytes.len() as u64)
        .read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn reads_a_blob_by_digest_with_the_instance_name_and_headers() {
    let data = blob(10 * CHUNK + 17);
    let name = name_of("main/ci", &data);
    let fake = serve(&[(&name, &data)], Mode::Honest);
    let headers = headers_from(&["Authorization=Bearer s3cret".into()], None).unwrap();
    let cache =
        Arc::new(RemoteCache::new(&fake.endpoint, "/main/ci/", headers, &Tls::default()).unwrap());
    assert_eq!(read_all(&cache, &data).unwrap(), data);
    let calls = fake.calls.lock().unwrap();
    assert_eq!(
        *calls,
        vec![(name, 0, Some("Bearer s3cret".to_string()))],
        "one call, at offset 0, with the header"
    );
    // The secret is in no text about the cache.
    let shown = format!("{cache:?} {cache}");
    assert!(
        !shown.contains("s3cret") && shown.contains(&fake.endpoint),
        "{shown}"
    );
}

#[test]
fn a_broken_stream_resumes_at_the_offset_reached() {
    let data = blob(5 * CHUNK);
    let name = name_of("", &data);
    let fake = serve(&[(&name, &data)], Mode::BreakOnce);
    let cache =
        Arc::new(RemoteCache::new(&fake.endpoint, "", Vec::new(), &Tls::default()).unwrap());
    assert_eq!(read_all(&cache, &data).unwrap(), data);
    let offsets: Vec<i64> = fake.calls.lock().unwrap().iter().map(|c| c.1).collect();
    assert_eq!(offsets, vec![0, CHUNK as i64]);
}

#[test]
fn a_missing_blob_is_an_error_naming_it_and_the_cache() {
    let fake = serve(&[], Mode::Honest);
    let cache =
        Arc::new(RemoteCache::new(&fake.endpoint, "", Vec::new(), &Tls::default()).unwrap());
    let data = blob(3);
    let e = read_all(&cache, &data).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let msg = e.to_string();
    assert!(
        msg.contains(&Digest::of(&data).to_string())
            && msg.contains(&fake.endpoint)
            && msg.contains("build the image again"),
        "{msg}"
    );
    assert_eq!(fake.calls.lock().unwrap().len(), 1, "not retried");
}

#[test]
fn wrong_bytes_are_refused() {
    let data = blob(2 * CHUNK);
    let fake = serve(&[(&name_of("", &data), &data)], Mode::Corrupt);
    let cache =
        Arc::new(RemoteCache::new(&fake.endpoint, "", Vec::new(), &Tls::default()).unwrap());
    let e = read_all(&cache, &data).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("has digest"), "{e}");
}

#[test]
fn a_cache_that_stays_down_fails_after_the_retries() {
    let data = blob(10);
    let fake = serve(&[(&name_of("", &data), &data)], Mode::AlwaysUnavailable);
    let cache =
        Arc::new(RemoteCache::new(&fake.endpoint, "", Vec::new(), &Tls::default()).unwrap());
    let e = read_all(&cache, &data).unwrap_err();
    assert!(e.to_string().contains("retries"), "{e}");
    assert_eq!(fake.calls.lock().unwrap().len() as u32, MAX_RETRIES + 1);
}

#[test]
fn the_empty_blob_needs_no_call() {
    let fake = serve(&[], Mode::Honest);
    let cache =
        Arc::new(RemoteCache::new(&fake.endpoint, "", Vec::new(), &Tls::default()).unwrap());
    assert_eq!(read_all(&cache, b"").unwrap(), b"");
    assert!(fake.calls.lock().unwrap().is_empty());
}

#[test]
fn endpoints_and_headers_are_checked() {
    let e = RemoteCache::new("https://cache.example", "", Vec::new(), &Tls::default()).unwrap_err();
    assert!(format!("{e}").contains("HTTP cache"), "{e}");
    let e =
        RemoteCache::new("unix:///run/cache.sock", "", Vec::new(), &Tls::default()).unwrap_err();
    assert!(format!("{e}").contains("unsupported scheme"), "{e}");
    // No scheme: TLS, as Bazel reads it.
    assert!(RemoteCache::new("cache.example:443", "", Vec::new(), &Tls::default()).is_ok());
    let e = headers_from(&["no-equals-sign".into()], None).unwrap_err();
    assert!(format!("{e}").contains("NAME=VALUE"), "{e}");
    let h = headers_from(&["A=1".into()], Some("X-Token=t=2\n\n")).unwrap();
    assert_eq!(
        h,
        vec![("a".into(), "1".into()), ("x-token".into(), "t=2".into())]
    );
    let bad_value = vec![("x-token".to_string(), "line\nbreak s3cret".to_string())];
    let e = RemoteCache::new("grpc://127.0.0.1:1", "", bad_value, &Tls::default()).unwrap_err();
    assert!(!format!("{e}").contains("s3cret"), "{e}");
}
