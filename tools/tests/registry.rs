//! push / pull / fetch-blob / resolve against a tiny in-process registry that implements just
//! enough of the distribution API, with optional Basic or Bearer auth, optional TLS and
//! injected faults. Real registries are exercised by the e2e suite.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

#[derive(Default)]
struct State {
    /// repository -> digest -> bytes
    blobs: HashMap<String, HashMap<String, Vec<u8>>>,
    uploads: HashMap<u64, Vec<u8>>,
    next_upload: u64,
    /// (repository, reference) -> (content type, bytes)
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    /// `METHOD /path?query` of every request.
    log: Vec<String>,
    /// Answer the next N requests with `fail_status` (and `Retry-After: 1` for 429).
    fail_next: usize,
    fail_status: u16,
    /// Close the connection half-way through the body of the next N PATCHes.
    drop_patch: usize,
    /// With `drop_patch`: keep the half that arrived, as a registry that writes uploads as
    /// they stream in does (GET on the upload then reports it in `Range`).
    keep_dropped: bool,
    /// Expected `Authorization: Basic …` value (with `bearer`, checked by the token endpoint).
    basic: Option<String>,
    bearer: bool,
    tokens_issued: usize,
    reject_blob: Option<String>,
    /// The message of the `fail_next` errors (default "try again").
    fail_message: Option<String>,
    /// A TLS fake's requests that arrived in clear text: (`METHOD /path?query`, whether they
    /// carried `Authorization`).
    clear: Vec<(String, bool)>,
    /// Over TLS, blob GETs answer `307` to the same URL over plain http.
    redirect_blob_to_http: bool,
    /// Over TLS, uploads start with a plain-http `Location`.
    upload_location_http: bool,
    /// Blob HEADs answer `307` to `/redirected/v2/...`, which answers as the blob URL would.
    head_redirect: bool,
    /// The next N PATCHes keep only the first half of their body (and say so in `Range`).
    partial_patch: usize,
    /// Blob GETs send their body one byte per this interval (for at most 8 s).
    drip: Option<Duration>,
    /// Manifest requests wait this long before answering.
    silent: Option<Duration>,
}

struct Fake {
    addr: String,
    state: Arc<Mutex<State>>,
    /// The CA a TLS fake's certificate is signed by, as a PEM file (for `SSL_CERT_FILE`).
    ca: Option<(tempfile::TempDir, PathBuf)>,
}

impl Fake {
    /// Plain HTTP on `127.0.0.1:PORT`.
    fn start() -> Fake {
        Fake::start_with(None)
    }

    /// `localhost:PORT` with a certificate for `localhost` from a fresh CA (`ca_file`). The
    /// port also answers plain HTTP (told apart by the first byte: 0x16 opens a TLS
    /// handshake), so a test sees what a client sends in clear text (`State::clear`).
    fn start_tls() -> Fake {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let mut f = Fake::start_with(Some(Arc::new(config)));
        f.ca = Some((dir, ca_file));
        f
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let addr = match tls {
            Some(_) => format!("localhost:{port}"),
            None => format!("127.0.0.1:{port}"),
        };
        let state = Arc::new(Mutex::new(State::default()));
        let (st, a) = (state.clone(), addr.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (st, a, tls) = (st.clone(), a.clone(), tls.clone());
                std::thread::spawn(move || serve(conn, &st, &a, tls));
            }
        });
        Fake {
            addr,
            state,
            ca: None,
        }
    }

    fn ca_file(&self) -> String {
        path(&self.ca.as_ref().expect("a TLS fake").1)
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn log(&self) -> Vec<String> {
        self.st().log.clone()
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Wait this long before answering.
    delay: Option<Duration>,
    /// Send the body a byte at a time, one per interval.
    drip: Option<Duration>,
}

fn resp(status: u16) -> Resp {
    Resp {
        status,
        headers: vec![],
        body: vec![],
        delay: None,
        drip: None,
    }
}

fn err(status: u16, code: &str, msg: &str) -> Resp {
    let mut r = resp(status);
    r.body = json!({"errors": [{"code": code, "message": msg, "detail": null}]})
        .to_string()
        .into_bytes();
    r.headers
        .push(("Content-Type".into(), "application/json".into()));
    r
}

impl Resp {
    fn h(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// How a request reached the fake.
#[derive(Clone, Copy)]
struct Via {
    /// The fake serves TLS (and plain HTTP only to catch what a client sends in clear).
    tls_fake: bool,
    /// This request came over TLS.
    tls: bool,
}

fn serve(tcp: TcpStream, st: &Mutex<State>, addr: &str, tls: Option<Arc<rustls::ServerConfig>>) {
    let Some(config) = tls else {
        let mut tcp = tcp;
        handle(
            &mut tcp,
            st,
            addr,
            Via {
                tls_fake: false,
                tls: false,
            },
        );
        return;
    };
    let mut first = [0u8; 1];
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    match tcp.peek(&mut first) {
        Ok(1) if first[0] == 0x16 => {
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            handle(
                &mut s,
                st,
                addr,
                Via {
                    tls_fake: true,
                    tls: true,
                },
            );
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        Ok(1) => {
            let mut tcp = tcp;
            handle(
                &mut tcp,
                st,
                addr,
                Via {
                    tls_fake: true,
                    tls: false,
                },
            );
        }
        _ => {}
    }
}

fn handle<S: Read + Write>(conn: &mut S, st: &Mutex<State>, addr: &str, via: Via) {
    let mut r = BufReader::new(&mut *conn);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if method == "PATCH" {
        let mut s = st.lock().unwrap();
        if s.drop_patch > 0 {
            s.drop_patch -= 1;
            s.log.push(format!("{method} {target} (dropped)"));
            let keep = s.keep_dropped;
            drop(s);
            let mut half = vec![0u8; len / 2];
            let _ = r.read_exact(&mut half);
            if keep {
                let id = target
                    .split("/uploads/")
                    .nth(1)
                    .and_then(|rest| rest.split('?').next())
                    .and_then(|id| id.parse::<u64>().ok());
                let mut s = st.lock().unwrap();
                if let Some(up) = id.and_then(|id| s.uploads.get_mut(&id)) {
                    up.extend_from_slice(&half);
                }
            }
            // Dropping the connection unanswered closes it.
            return;
        }
    }
    let mut body = vec![0u8; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    drop(r);
    let res = route(&method, &target, &headers, body, st, addr, via);
    if let Some(d) = res.delay {
        std::thread::sleep(d);
    }
    let out = conn;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", res.status);
    let mut has_len = false;
    for (k, v) in &res.headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        head.push_str(&format!("Content-Length: {}\r\n", res.body.len()));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.flush();
    if method == "HEAD" {
        return;
    }
    match res.drip {
        None => {
            let _ = out.write_all(&res.body);
        }
        Some(every) => {
            let start = Instant::now();
            for b in &res.body {
                if start.elapsed() > Duration::from_secs(8)
                    || out.write_all(&[*b]).and_then(|_| out.flush()).is_err()
                {
                    return;
                }
                std::thread::sleep(every);
            }
        }
    }
}

fn route(
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
    body: Vec<u8>,
    st: &Mutex<State>,
    addr: &str,
    via: Via,
) -> Resp {
    let mut s = st.lock().unwrap();
    s.log.push(format!("{method} {target}"));
    let auth = headers.get("authorization").cloned().unwrap_or_default();
    if via.tls_fake && !via.tls {
        s.clear
            .push((format!("{method} {target}"), !auth.is_empty()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.strip_prefix("/redirected").unwrap_or(path);
    let q: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    if path == "/token" {
        if let Some(b) = &s.basic
            && &auth != b
        {
            return err(401, "UNAUTHORIZED", "bad credentials");
        }
        s.tokens_issued += 1;
        return Resp {
            body: br#"{"token":"tok"}"#.to_vec(),
            ..resp(200)
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return err(404, "NOT_FOUND", "no");
    };
    // Repository names here have no "/blobs/" or "/manifests/" in them.
    let (repo, kind, reference) = if let Some(i) = rest.find("/blobs/uploads") {
        (
            rest[..i].to_string(),
            "uploads",
            rest[i + "/blobs/uploads".len()..]
                .trim_start_matches('/')
                .to_string(),
        )
    } else if let Some(i) = rest.find("/blobs/") {
        (rest[..i].to_string(), "blobs", rest[i + 7..].to_string())
    } else if let Some(i) = rest.find("/manifests/") {
        (
            rest[..i].to_string(),
            "manifests",
            rest[i + 11..].to_string(),
        )
    } else {
        return err(404, "NOT_FOUND", "no");
    };
    if s.bearer && auth != "Bearer tok" {
        return err(401, "UNAUTHORIZED", "authentication required").h(
            "WWW-Authenticate",
            format!(r#"Bearer realm="{}://{addr}/token",service="fake",scope="repository:{repo}:pull,push""#, if via.tls_fake { "https" } else { "http" }),
        );
    }
    if !s.bearer
        && let Some(b) = &s.basic
        && &auth != b
    {
        return err(401, "UNAUTHORIZED", "authentication required")
            .h("WWW-Authenticate", r#"Basic realm="fake""#);
    }
    if s.fail_next > 0 {
        s.fail_next -= 1;
        let st = s.fail_status;
        let msg = s.fail_message.clone().unwrap_or_else(|| "try again".into());
        let r = err(st, "UNAVAILABLE", &msg);
        return if st == 429 {
            r.h("Retry-After", "1")
        } else {
            r
        };
    }
    let redirected = target.starts_with("/redirected/");
    if method == "HEAD" && kind == "blobs" && s.head_redirect && !redirected {
        return resp(307).h("Location", format!("/redirected{path}"));
    }
    if method == "GET" && kind == "blobs" && s.redirect_blob_to_http && via.tls {
        return resp(307).h("Location", format!("http://{addr}{target}"));
    }
    match (method, kind) {
        ("HEAD" | "GET", "blobs") => match s.blobs.get(&repo).and_then(|b| b.get(&reference)) {
            Some(b) => Resp {
                body: b.clone(),
                drip: s.drip,
                ..resp(200)
            }
            .h("Docker-Content-Digest", reference.clone()),
            None => err(404, "BLOB_UNKNOWN", "blob unknown to registry"),
        },
        ("POST", "uploads") => {
            if let (Some(d), Some(from)) = (q.get("mount"), q.get("from")) {
                let d = d.replace("%3A", ":");
                if let Some(b) = s.blobs.get(*from).and_then(|m| m.get(&d)).cloned() {
                    s.blobs
                        .entry(repo.clone())
                        .or_default()
                        .insert(d.clone(), b);
                    return resp(201).h("Location", format!("/v2/{repo}/blobs/{d}"));
                }
            }
            s.next_upload += 1;
            let id = s.next_upload;
            s.uploads.insert(id, vec![]);
            let origin = if s.upload_location_http && via.tls {
                format!("http://{addr}")
            } else {
                String::new()
            };
            resp(202).h(
                "Location",
                format!("{origin}/v2/{repo}/blobs/uploads/{id}?_state=s{id}"),
            )
        }
        ("GET", "uploads") => {
            let id: u64 = reference.parse().unwrap_or(0);
            match s.uploads.get(&id) {
                Some(up) if !up.is_empty() => resp(204).h("Range", format!("0-{}", up.len() - 1)),
                Some(_) => resp(204),
                None => err(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown"),
            }
        }
        ("PATCH" | "PUT", "uploads") => {
            let id: u64 = reference.parse().unwrap_or(0);
            let partial = method == "PATCH" && s.partial_patch > 0;
            if partial {
                s.partial_patch -= 1;
            }
            let Some(up) = s.uploads.get_mut(&id) else {
                return err(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
            };
            if method == "PATCH"
                && let Some(range) = headers.get("content-range")
                && !range.starts_with(&format!("{}-", up.len()))
            {
                return err(416, "BLOB_UPLOAD_INVALID", "bad range");
            }
            let keep = if partial { body.len() / 2 } else { body.len() };
            up.extend_from_slice(&body[..keep]);
            let n = up.len();
            if method == "PATCH" {
                return resp(202)
                    .h(
                        "Location",
                        format!("/v2/{repo}/blobs/uploads/{id}?_state=p{n}"),
                    )
                    .h("Range", format!("0-{}", n - 1));
            }
            let data = s.uploads.remove(&id).unwrap();
            let d = q
                .get("digest")
                .map(|d| d.replace("%3A", ":"))
                .unwrap_or_default();
            if sha(&data) != d || s.reject_blob.as_deref() == Some(&d) {
                return err(
                    400,
                    "DIGEST_INVALID",
                    "provided digest did not match uploaded content",
                );
            }
            s.blobs
                .entry(repo.clone())
                .or_default()
                .insert(d.clone(), data);
            resp(201)
                .h("Location", format!("/v2/{repo}/blobs/{d}"))
                .h("Docker-Content-Digest", d)
        }
        ("PUT", "manifests") => {
            let ct = headers.get("content-type").cloned().unwrap_or_default();
            let d = sha(&body);
            s.manifests
                .insert((repo.clone(), reference), (ct.clone(), body.clone()));
            s.manifests.insert((repo, d.clone()), (ct, body));
            resp(201).h("Docker-Content-Digest", d)
        }
        ("HEAD" | "GET", "manifests") => match s.manifests.get(&(repo, reference)) {
            Some((ct, b)) => Resp {
                body: b.clone(),
                delay: s.silent,
                ..resp(200)
            }
            .h("Content-Type", ct.clone())
            .h("Docker-Content-Digest", sha(b)),
            None => err(404, "MANIFEST_UNKNOWN", "manifest unknown"),
        },
        _ => err(405, "UNSUPPORTED", "unsupported"),
    }
}

/// A small image on disk: config, layers (files `l0`, `l1`, ...) and manifest.
struct Image {
    dir: tempfile::TempDir,
    digest: String,
    layers: Vec<Vec<u8>>,
    manifest: Vec<u8>,
}

fn image(layers: Vec<Vec<u8>>) -> Image {
    image_for(layers, "amd64")
}

fn image_for(layers: Vec<Vec<u8>>, arch: &str) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| sha(&[l.as_slice(), b"-diff"].concat()))
        .collect();
    let config = json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}).to_string().into_bytes();
    let descs: Vec<Value> = layers.iter().map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(l), "size": l.len()})).collect();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": descs}).to_string().into_bytes();
    std::fs::write(p.join("config.json"), &config).unwrap();
    std::fs::write(p.join("manifest.json"), &manifest).unwrap();
    for (i, l) in layers.iter().enumerate() {
        std::fs::write(p.join(format!("l{i}")), l).unwrap();
    }
    Image {
        digest: sha(&manifest),
        dir,
        layers,
        manifest,
    }
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn tool(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_rules-image-tool"));
    c.args(args)
        .env("HOME", home.path())
        .env("RULES_IMAGE_RETRY_BASE_MS", "1")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn push_args(img: &Image, extra: &[&str]) -> Vec<String> {
    let p = img.dir.path();
    let mut a = vec![
        "push".to_string(),
        "--manifest".into(),
        path(&p.join("manifest.json")),
        "--config".into(),
        path(&p.join("config.json")),
    ];
    for i in 0..img.layers.len() {
        a.push("--blob".into());
        a.push(path(&p.join(format!("l{i}"))));
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn push(img: &Image, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let args = push_args(img, extra);
    tool(&strs(&args), env)
}

/// `fetch-blob` of `digest` (declared `size` bytes) from `repository` into `output`.
fn fetch_blob_args(repository: &str, digest: &str, size: &str, output: &Path) -> Vec<String> {
    [
        "fetch-blob",
        "--repository",
        repository,
        "--digest",
        digest,
        "--size",
        size,
    ]
    .into_iter()
    .map(String::from)
    .chain(["--output".to_string(), path(output)])
    .collect()
}

fn fetch_blob(
    repository: &str,
    digest: &str,
    size: &str,
    output: &Path,
    env: &[(&str, &str)],
) -> Output {
    tool(
        &strs(&fetch_blob_args(repository, digest, size, output)),
        env,
    )
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn summary(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn push_uploads_blobs_then_manifest_and_tags_and_a_second_push_uploads_nothing() {
    let reg = Fake::start();
    let img = image(vec![bytes(3000, 1), bytes(100, 2)]);
    let out = tempfile::tempdir().unwrap();
    let status = out.path().join("stable-status.txt");
    std::fs::write(&status, "STABLE_GIT_COMMIT abc123\n").unwrap();
    let sum = out.path().join("summary.json");
    let dest = format!("{}/team/app", reg.addr);
    let o = push(
        &img,
        &[
            "--default-destination",
            &dest,
            "--default-tag",
            "latest",
            "--default-tag",
            "git-{STABLE_GIT_COMMIT}",
            "--status-file",
            &path(&status),
            "--summary-json",
            &path(&sum),
            "--chunk-size",
            "1024",
            "--label",
            "//app:push",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), img.digest);
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "pushed {dest}@{} (tags: latest, git-abc123)",
            img.digest
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "pushed {} (2.9 KiB) to {dest}",
            sha(&img.layers[0])
        )),
        "{e}"
    );
    {
        let s = reg.st();
        let blobs = &s.blobs["team/app"];
        assert_eq!(blobs.len(), 3);
        for l in &img.layers {
            assert_eq!(&blobs[&sha(l)], l);
        }
        for r in [img.digest.as_str(), "latest", "git-abc123"] {
            let (ct, b) = &s.manifests[&("team/app".to_string(), r.to_string())];
            assert_eq!(ct, "application/vnd.oci.image.manifest.v1+json");
            assert_eq!(b, &img.manifest);
        }
    }
    let log = reg.log();
    // The 3000-byte layer went in 1024-byte PATCH chunks; the manifest after every blob, by
    // digest before the tags.
    assert_eq!(
        log.iter().filter(|l| l.starts_with("PATCH")).count(),
        3,
        "{log:#?}"
    );
    let last_blob_put = log
        .iter()
        .rposition(|l| l.starts_with("PUT /v2/team/app/blobs/"))
        .unwrap();
    let manifest_puts: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("PUT /v2/team/app/manifests/"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(manifest_puts.len(), 3);
    assert!(manifest_puts[0] > last_blob_put);
    assert!(log[manifest_puts[0]].ends_with(&img.digest), "{log:#?}");
    let s = summary(&sum);
    assert_eq!(s["digest"], img.digest.as_str());
    let d = &s["destinations"][0];
    assert_eq!(d["registry"], reg.addr.as_str());
    assert_eq!(d["repository"], "team/app");
    assert_eq!(d["tags"], json!(["latest", "git-abc123"]));
    assert_eq!(
        d["references"],
        json!([
            format!("{dest}@{}", img.digest),
            format!("{dest}:latest"),
            format!("{dest}:git-abc123")
        ])
    );
    let config_len = std::fs::metadata(img.dir.path().join("config.json"))
        .unwrap()
        .len();
    assert_eq!(d["bytes_uploaded"], 3100 + config_len);
    assert_eq!(d["blobs_uploaded"], 3);
    assert_eq!(d["blobs_skipped"], 0);

    // Again, with --tag overriding the default tags and --repository the destination.
    let o = push(
        &img,
        &[
            "--default-destination",
            &dest,
            "--default-tag",
            "latest",
            "--repository",
            "team/app",
            "--tag",
            "dev",
            "--summary-json",
            &path(&sum),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = &summary(&sum)["destinations"][0];
    assert_eq!(d["bytes_uploaded"], 0);
    assert_eq!(d["blobs_skipped"], 3);
    assert_eq!(d["bytes_skipped"], 3100 + config_len);
    assert_eq!(d["tags"], json!(["dev"]));
    assert!(stderr(&o).contains("exists "), "{}", stderr(&o));
}

#[test]
fn same_registry_remote_blobs_are_mounted_and_other_registries_streamed() {
    let reg = Fake::start();
    let other = Fake::start();
    let base = image(vec![bytes(500, 7)]);
    let o = push(
        &base,
        &["--default-destination", &format!("{}/base", reg.addr)],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = push(
        &base,
        &["--default-destination", &format!("{}/base", other.addr)],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // An image on top of the base whose base layer is not local.
    let app = image(vec![base.layers[0].clone(), bytes(200, 9)]);
    let p = app.dir.path();
    let sum = p.join("s.json");
    let run = |remote: &str, dest: &str| {
        tool(
            &[
                "push",
                "--manifest",
                &path(&p.join("manifest.json")),
                "--config",
                &path(&p.join("config.json")),
                "--blob",
                remote,
                "--blob",
                &path(&p.join("l1")),
                "--default-destination",
                dest,
                "--summary-json",
                &path(&sum),
            ],
            &[],
        )
    };
    let o = run(
        &format!("remote:{}/base", reg.addr),
        &format!("{}/app", reg.addr),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = &summary(&sum)["destinations"][0];
    assert_eq!(d["blobs_mounted"], 1);
    assert_eq!(d["bytes_mounted"], 500);
    assert_eq!(d["blobs_uploaded"], 2);
    assert!(reg.log().iter().any(|l| l.starts_with("POST /v2/app/blobs/uploads/?mount=") && l.contains("from=base")));
    assert!(
        !reg.log()
            .iter()
            .any(|l| l.starts_with(&format!("GET /v2/base/blobs/{}", sha(&base.layers[0]))))
    );
    assert_eq!(reg.st().blobs["app"][&sha(&base.layers[0])], base.layers[0]);

    // From another registry: streamed through, verified.
    let o = run(
        &format!("remote:{}/base", other.addr),
        &format!("{}/app2", reg.addr),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let d = &summary(&sum)["destinations"][0];
    assert_eq!(d["blobs_mounted"], 0);
    assert_eq!(d["blobs_uploaded"], 3);
    assert!(
        other
            .log()
            .iter()
            .any(|l| l.starts_with(&format!("GET /v2/base/blobs/{}", sha(&base.layers[0]))))
    );
    assert_eq!(
        reg.st().blobs["app2"][&sha(&base.layers[0])],
        base.layers[0]
    );
}

#[test]
fn a_failed_blob_means_no_manifest_or_tag() {
    let reg = Fake::start();
    let img = image(vec![bytes(300, 1), bytes(400, 2)]);
    reg.st().reject_blob = Some(sha(&img.layers[1]));
    let dest = format!("{}/app", reg.addr);
    let o = push(
        &img,
        &["--default-destination", &dest, "--default-tag", "latest"],
        &[],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains(&format!("cannot push blob {} to {dest}: 400 DIGEST_INVALID: provided digest did not match uploaded content", sha(&img.layers[1]))), "{e}");
    assert!(e.contains("no manifest or tag was pushed"), "{e}");
    assert!(!reg.log().iter().any(|l| l.contains("/manifests/")));

    // A local file that does not match its descriptor (same size, other bytes).
    reg.st().reject_blob = None;
    std::fs::write(img.dir.path().join("l0"), bytes(300, 99)).unwrap();
    let dest = format!("{}/app2", reg.addr);
    let o = push(
        &img,
        &["--default-destination", &dest, "--default-tag", "latest"],
        &[],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("layer blob {}", path(&img.dir.path().join("l0"))))
            && e.contains("but the manifest expects"),
        "{e}"
    );
    assert!(!reg.log().iter().any(|l| l.contains("/manifests/")));
    assert!(
        !reg.st()
            .blobs
            .get("app2")
            .is_some_and(|b| b.contains_key(&sha(&img.layers[0])))
    );

    // A missing repository half with no default destination.
    let o = push(&img, &["--registry", &reg.addr], &[]);
    assert!(
        stderr(&o).contains("--registry needs --repository"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn retries_server_errors_rate_limits_and_dropped_connections() {
    let reg = Fake::start();
    let img = image(vec![bytes(5000, 3)]);
    let sum = img.dir.path().join("s.json");
    let dest = format!("{}/app", reg.addr);
    {
        let mut s = reg.st();
        s.fail_next = 3;
        s.fail_status = 500;
    }
    let o = push(&img, &["--default-destination", &dest, "--jobs", "1"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("retrying in"), "{}", stderr(&o));

    let img = image(vec![bytes(5000, 4)]);
    {
        let mut s = reg.st();
        s.fail_next = 1;
        s.fail_status = 429;
        s.drop_patch = 1;
    }
    let t = std::time::Instant::now();
    let o = push(
        &img,
        &[
            "--default-destination",
            &dest,
            "--chunk-size",
            "2048",
            "--summary-json",
            &path(&sum),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert!(reg.log().iter().any(|l| l.ends_with("(dropped)")));
    let d = &summary(&sum)["destinations"][0];
    let config_len = std::fs::metadata(img.dir.path().join("config.json"))
        .unwrap()
        .len();
    assert!(
        d["bytes_uploaded"].as_u64().unwrap() > 5000 + config_len,
        "{d}"
    );
    assert_eq!(reg.st().blobs["app"][&sha(&img.layers[0])], img.layers[0]);

    // Persistent failure: gives up, names the attempt count.
    reg.st().fail_next = 100;
    reg.st().fail_status = 503;
    let img = image(vec![bytes(10, 5)]);
    let o = push(&img, &["--default-destination", &dest], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("503 Service Unavailable (gave up after 6 attempts)"),
        "{}",
        stderr(&o)
    );
}

fn auth_file(dir: &Path, registry: &str, user: &str, pass: &str) -> PathBuf {
    use base64::Engine as _;
    let f = dir.join("auth.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(&f, json!({"auths": {registry: {"auth": auth}}}).to_string()).unwrap();
    f
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[test]
fn basic_auth_and_wrong_credentials() {
    let reg = Fake::start();
    reg.st().basic = Some(basic("me", "s3cret"));
    let img = image(vec![bytes(100, 1)]);
    let dest = format!("{}/app", reg.addr);
    let dir = tempfile::tempdir().unwrap();
    let good = auth_file(dir.path(), &format!("http://{}", reg.addr), "me", "s3cret");
    let o = push(
        &img,
        &["--default-destination", &dest],
        &[("REGISTRY_AUTH_FILE", &path(&good))],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let o = push(&img, &["--default-destination", &dest], &[]);
    assert!(!o.status.success());
    // The first request is a HEAD, whose 401 has no error body.
    assert!(
        stderr(&o).contains("401 Unauthorized (no credentials found for"),
        "{}",
        stderr(&o)
    );

    let bad = auth_file(dir.path(), &reg.addr, "me", "hunter2-wrong");
    let o = push(
        &img,
        &["--default-destination", &dest],
        &[("REGISTRY_AUTH_FILE", &path(&bad))],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("401 Unauthorized") && e.contains("rejected the credentials from auth file"),
        "{e}"
    );
    assert!(
        !e.contains("hunter2") && !e.contains(&basic("me", "hunter2-wrong")[6..]),
        "{e}"
    );
}

#[test]
fn bearer_tokens_are_fetched_once_and_reused() {
    let reg = Fake::start();
    {
        let mut s = reg.st();
        s.bearer = true;
        s.basic = Some(basic("u", "pw-secret"));
    }
    let img = image(vec![bytes(100, 1), bytes(200, 2), bytes(300, 3)]);
    let dest = format!("{}/app", reg.addr);
    let dir = tempfile::tempdir().unwrap();
    let good = auth_file(dir.path(), &reg.addr, "u", "pw-secret");
    let o = push(
        &img,
        &[
            "--default-destination",
            &dest,
            "--default-tag",
            "v1",
            "--jobs",
            "1",
        ],
        &[("REGISTRY_AUTH_FILE", &path(&good))],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.st().tokens_issued, 1);
    assert!(
        reg.log()
            .iter()
            .any(|l| l.starts_with("GET /token?service=fake&scope=repository%3Aapp%3Apull%2Cpush")),
        "{:#?}",
        reg.log()
    );

    let bad = auth_file(dir.path(), &reg.addr, "u", "pw-wrong");
    let o = push(
        &img,
        &["--default-destination", &dest],
        &[("REGISTRY_AUTH_FILE", &path(&bad))],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("401 UNAUTHORIZED: bad credentials (token server")
            && e.contains("rejected the credentials"),
        "{e}"
    );
    assert!(!e.contains("pw-wrong"), "{e}");
}

#[test]
fn pull_fetch_blob_and_resolve() {
    let reg = Fake::start();
    let img = image(vec![bytes(1000, 1), bytes(10, 2)]);
    let repo = format!("{}/app", reg.addr);
    let o = push(
        &img,
        &["--default-destination", &repo, "--default-tag", "v1"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // An index with an attestation and an arm64 entry next to the image.
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(b"x"), "size": 1, "platform": {"os": "unknown", "architecture": "unknown"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(b"y"), "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": img.digest, "size": img.manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).to_string().into_bytes();
    let index_digest = sha(&index);
    reg.st().manifests.insert(
        ("app".into(), index_digest.clone()),
        (
            "application/vnd.oci.image.index.v1+json".into(),
            index.clone(),
        ),
    );

    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("pulled");
    let o = tool(
        &[
            "pull",
            "--image",
            &format!("{repo}@{index_digest}"),
            "--output-dir",
            &path(&dir),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), img.digest);
    assert_eq!(
        std::fs::read(dir.join("manifest.json")).unwrap(),
        img.manifest
    );
    assert_eq!(std::fs::read(dir.join("index.json")).unwrap(), index);
    assert_eq!(
        std::fs::read(dir.join("config.json")).unwrap(),
        std::fs::read(img.dir.path().join("config.json")).unwrap()
    );
    let layers: Value =
        serde_json::from_slice(&std::fs::read(dir.join("layers.json")).unwrap()).unwrap();
    assert_eq!(
        layers[0],
        json!({"digest": sha(&img.layers[0]), "diff_id": sha(&[img.layers[0].as_slice(), b"-diff"].concat()), "media_type": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1000})
    );
    let image_json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("image.json")).unwrap()).unwrap();
    assert_eq!(
        image_json,
        json!({"origin": "registry", "registry": reg.addr, "repository": "app", "manifest_digest": img.digest, "index_digest": index_digest, "platform": "linux/amd64"})
    );

    // No index: no index.json, index_digest null.
    let dir2 = out.path().join("pulled2");
    let o = tool(
        &[
            "pull",
            "--image",
            &format!("{repo}@{}", img.digest),
            "--output-dir",
            &path(&dir2),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!dir2.join("index.json").exists());

    let o = tool(
        &[
            "pull",
            "--image",
            &format!("{repo}@{index_digest}"),
            "--platform",
            "linux/s390x",
            "--output-dir",
            &path(&dir2),
        ],
        &[],
    );
    assert!(
        stderr(&o).contains(
            "no image for platform linux/s390x in the index; available: linux/arm64/v8, linux/amd64"
        ),
        "{}",
        stderr(&o)
    );

    let o = tool(
        &[
            "pull",
            "--image",
            &format!("{repo}:v1"),
            "--output-dir",
            &path(&dir2),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "currently resolves to {}; pin it as {repo}@{}",
            img.digest, img.digest
        )),
        "{}",
        stderr(&o)
    );

    let o = tool(&["resolve", &format!("{repo}:v1")], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), img.digest);

    let blob = out.path().join("blob");
    let d0 = sha(&img.layers[0]);
    let o = fetch_blob(&repo, &d0, "1000", &blob, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&blob).unwrap(), img.layers[0]);
    let bad = out.path().join("bad");
    let o = fetch_blob(&repo, &d0, "999", &bad, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("expected 999 bytes"), "{}", stderr(&o));
    assert!(!bad.exists());
    let names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "temp files left behind: {names:?}");

    // A corrupted manifest in the registry is refused.
    reg.st()
        .manifests
        .get_mut(&("app".to_string(), img.digest.clone()))
        .unwrap()
        .1
        .push(b' ');
    let o = tool(
        &[
            "pull",
            "--image",
            &format!("{repo}@{}", img.digest),
            "--output-dir",
            &path(&dir2),
        ],
        &[],
    );
    assert!(stderr(&o).contains("refusing it"), "{}", stderr(&o));
}

#[test]
fn several_destinations_get_one_read_of_each_blob_and_fail_independently() {
    let (a, b) = (Fake::start(), Fake::start());
    // Several chunks, so the shared stream is cut mid-way when `b` drops a PATCH.
    let img = image(vec![bytes(5000, 7), bytes(300, 8)]);
    b.st().drop_patch = 1;
    let out = tempfile::tempdir().unwrap();
    let sum = out.path().join("summary.json");
    let (da, db) = (format!("{}/one/app", a.addr), format!("{}/two/app", b.addr));
    let o = push(
        &img,
        &[
            "--default-destination",
            &da,
            "--default-destination",
            &db,
            "--default-tag",
            "v1",
            "--chunk-size",
            "1024",
            "--summary-json",
            &path(&sum),
        ],
        &[("RULES_IMAGE_RETRY_BASE_MS", "1")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for (reg, repo) in [(&a, "one/app"), (&b, "two/app")] {
        let s = reg.st();
        for l in &img.layers {
            assert_eq!(&s.blobs[repo][&sha(l)], l, "{repo}");
        }
        let (_, m) = &s.manifests[&(repo.to_string(), "v1".to_string())];
        assert_eq!(m, &img.manifest);
    }
    let s = summary(&sum);
    let m: Value = serde_json::from_slice(&img.manifest).unwrap();
    let total: u64 = img.layers.iter().map(|l| l.len() as u64).sum::<u64>()
        + m["config"]["size"].as_u64().unwrap();
    assert_eq!(s["destinations"][0]["bytes_uploaded"], json!(total));
    // `b` lost part of one upload and sent it again.
    assert!(s["destinations"][1]["bytes_uploaded"].as_u64().unwrap() > total);
}

/// A two-platform image: amd64 and arm64 children sharing one layer, an index over them (in
/// the first child's directory) and one child file each.
struct Multi {
    amd: Image,
    arm: Image,
    index: Vec<u8>,
    index_path: PathBuf,
    children: [PathBuf; 2],
}

fn multi() -> Multi {
    let shared = bytes(700, 5);
    let amd = image_for(vec![shared.clone(), bytes(300, 6)], "amd64");
    let arm = image_for(vec![shared, bytes(200, 7)], "arm64");
    let entry = |i: &Image, arch: &str| {
        let mut p = json!({"os": "linux", "architecture": arch});
        if arch == "arm64" {
            p["variant"] = "v8".into();
        }
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": i.digest, "size": i.manifest.len(), "platform": p})
    };
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")]})
    .to_string()
    .into_bytes();
    let index_path = amd.dir.path().join("index.json");
    std::fs::write(&index_path, &index).unwrap();
    let child = |i: &Image, name: &str| {
        let p = i.dir.path();
        let blobs: Vec<String> = (0..i.layers.len())
            .map(|n| path(&p.join(format!("l{n}"))))
            .collect();
        let f = amd.dir.path().join(name);
        std::fs::write(
            &f,
            json!({"manifest": p.join("manifest.json"), "config": p.join("config.json"), "blobs": blobs}).to_string(),
        )
        .unwrap();
        f
    };
    let children = [child(&amd, "amd.child.json"), child(&arm, "arm.child.json")];
    Multi {
        amd,
        arm,
        index,
        index_path,
        children,
    }
}

fn push_index(m: &Multi, extra: &[&str]) -> Output {
    let mut a = vec!["push".to_string(), "--index".into(), path(&m.index_path)];
    for c in &m.children {
        a.push("--child".into());
        a.push(path(c));
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    tool(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

#[test]
fn push_an_index_children_first_then_the_index_then_tags() {
    let reg = Fake::start();
    let m = multi();
    let dest = format!("{}/multi", reg.addr);
    let sum = m.amd.dir.path().join("summary.json");
    let args = [
        "--default-destination",
        &dest,
        "--default-tag",
        "v1",
        "--summary-json",
        &path(&sum),
    ];
    let o = push_index(&m, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let index_digest = sha(&m.index);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), index_digest);
    let s = summary(&sum);
    assert_eq!(s["digest"], index_digest.as_str());
    let d = &s["destinations"][0];
    // 2 configs + 3 distinct layers (one shared).
    assert_eq!(d["blobs_uploaded"], 5);
    let log = reg.log();
    let puts: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("PUT /v2/multi/manifests/"))
        .collect();
    let want: Vec<String> = [&m.amd.digest, &m.arm.digest, &index_digest]
        .iter()
        .map(|d| format!("PUT /v2/multi/manifests/{d}"))
        .chain(["PUT /v2/multi/manifests/v1".to_string()])
        .collect();
    assert_eq!(puts, want.iter().collect::<Vec<_>>(), "{log:#?}");
    let last_blob_put = log
        .iter()
        .rposition(|l| l.starts_with("PUT /v2/multi/blobs/"))
        .unwrap();
    assert!(log.iter().position(|l| l == &want[0]).unwrap() > last_blob_put);
    {
        let st = reg.st();
        let (ct, b) = &st.manifests[&("multi".to_string(), "v1".to_string())];
        assert_eq!(ct, "application/vnd.oci.image.index.v1+json");
        assert_eq!(b, &m.index);
        for i in [&m.amd, &m.arm] {
            for l in &i.layers {
                assert_eq!(&st.blobs["multi"][&sha(l)], l);
            }
        }
    }

    // Again: every blob is already there.
    let o = push_index(&m, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = &summary(&sum)["destinations"][0];
    assert_eq!(d["bytes_uploaded"], 0);
    assert_eq!(d["blobs_uploaded"], 0);
    assert_eq!(d["blobs_skipped"], 5);

    // A failed blob: no child manifest, no index, no tag.
    reg.st().reject_blob = Some(sha(&m.arm.layers[1]));
    let dest2 = format!("{}/multi2", reg.addr);
    let o = push_index(
        &m,
        &["--default-destination", &dest2, "--default-tag", "v1"],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no manifest or tag was pushed"),
        "{}",
        stderr(&o)
    );
    assert!(
        !reg.log()
            .iter()
            .any(|l| l.contains("/v2/multi2/manifests/"))
    );

    // Children given in the wrong order do not match the index.
    reg.st().reject_blob = None;
    let swapped = Multi {
        children: [m.children[1].clone(), m.children[0].clone()],
        ..m
    };
    let o = push_index(&swapped, &["--default-destination", &dest2]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("(child 1) has digest"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pull_all_platforms_of_an_index() {
    let reg = Fake::start();
    let m = multi();
    let repo = format!("{}/multi", reg.addr);
    let o = push_index(&m, &["--default-destination", &repo]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Docker-style: an attestation entry next to the images, which is skipped.
    let mut index: Value = serde_json::from_slice(&m.index).unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(b"att"), "size": 3, "platform": {"os": "unknown", "architecture": "unknown"}}));
    let index = index.to_string().into_bytes();
    let index_digest = sha(&index);
    reg.st().manifests.insert(
        ("multi".into(), index_digest.clone()),
        (
            "application/vnd.oci.image.index.v1+json".into(),
            index.clone(),
        ),
    );
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("all");
    let o = tool(
        &[
            "pull",
            "--image",
            &format!("{repo}@{index_digest}"),
            "--all-platforms",
            "--output-dir",
            &path(&dir),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.join("index.json")).unwrap(), index);
    let platforms = std::fs::read(dir.join("platforms.json")).unwrap();
    assert_eq!(
        String::from_utf8(platforms).unwrap(),
        json!([
            {"dir": "linux_amd64", "os": "linux", "architecture": "amd64", "digest": m.amd.digest},
            {"dir": "linux_arm64_v8", "os": "linux", "architecture": "arm64", "variant": "v8", "digest": m.arm.digest},
        ])
        .to_string()
    );
    for (sub, img, plat) in [
        ("linux_amd64", &m.amd, "linux/amd64"),
        ("linux_arm64_v8", &m.arm, "linux/arm64"),
    ] {
        let d = dir.join(sub);
        assert_eq!(
            std::fs::read(d.join("manifest.json")).unwrap(),
            img.manifest
        );
        assert_eq!(
            std::fs::read(d.join("config.json")).unwrap(),
            std::fs::read(img.dir.path().join("config.json")).unwrap()
        );
        let layers: Value =
            serde_json::from_slice(&std::fs::read(d.join("layers.json")).unwrap()).unwrap();
        assert_eq!(layers.as_array().unwrap().len(), 2);
        let image_json: Value =
            serde_json::from_slice(&std::fs::read(d.join("image.json")).unwrap()).unwrap();
        assert_eq!(
            image_json,
            json!({"origin": "registry", "registry": reg.addr, "repository": "multi", "manifest_digest": img.digest, "index_digest": index_digest, "platform": plat})
        );
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "digest",
            "index.json",
            "linux_amd64",
            "linux_arm64_v8",
            "platforms.json"
        ]
    );

    // A single manifest: exactly what a plain pull writes.
    let one = out.path().join("one");
    let o = tool(
        &[
            "pull",
            "--image",
            &format!("{repo}@{}", m.arm.digest),
            "--all-platforms",
            "--output-dir",
            &path(&one),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&one)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config.json",
            "descriptor.json",
            "digest",
            "image.json",
            "layers.json",
            "manifest.json"
        ]
    );
}

/// A TLS fake with Basic credentials `me:s3cret`, an image pushed to `REG/app` over TLS, and
/// the environment that trusts the fake and finds the credentials.
struct Secured {
    reg: Fake,
    img: Image,
    _auth_dir: tempfile::TempDir,
    auth_file: String,
}

impl Secured {
    fn new(bearer: bool) -> Secured {
        let reg = Fake::start_tls();
        {
            let mut s = reg.st();
            s.basic = Some(basic("me", "s3cret"));
            s.bearer = bearer;
        }
        let dir = tempfile::tempdir().unwrap();
        let auth_file = path(&auth_file(dir.path(), &reg.addr, "me", "s3cret"));
        let s = Secured {
            img: image(vec![bytes(1000, 1)]),
            reg,
            _auth_dir: dir,
            auth_file,
        };
        let env = s.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let o = push(&s.img, &["--default-destination", &s.dest()], &env);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(s.reg.st().clear.is_empty(), "{:?}", s.reg.st().clear);
        assert!(!s.reg.st().manifests.is_empty());
        s
    }

    fn dest(&self) -> String {
        format!("{}/app", self.reg.addr)
    }

    fn env(&self) -> [(&str, String); 2] {
        [
            ("REGISTRY_AUTH_FILE", self.auth_file.clone()),
            ("SSL_CERT_FILE", self.reg.ca_file()),
        ]
    }

    fn run(&self, args: &[&str]) -> Output {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        tool(args, &env)
    }

    /// What reached the fake in clear text carrying `Authorization`.
    fn leaked(&self) -> Vec<String> {
        let s = self.reg.st();
        s.clear
            .iter()
            .filter(|(_, auth)| *auth)
            .map(|(l, _)| l.clone())
            .collect()
    }
}

#[test]
fn a_blob_redirect_to_plain_http_is_refused_and_no_credentials_go_in_clear_text() {
    // Basic credentials, fetch-blob.
    let s = Secured::new(false);
    s.reg.st().redirect_blob_to_http = true;
    let d = sha(&s.img.layers[0]);
    let out = tempfile::tempdir().unwrap();
    let o = s.run(&strs(&fetch_blob_args(
        &s.dest(),
        &d,
        "1000",
        &out.path().join("blob"),
    )));
    assert_eq!(s.leaked(), Vec::<String>::new());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "{}: refusing GET http://{}/v2/app/blobs/{d}: plain http",
            s.reg.addr, s.reg.addr
        )),
        "{e}"
    );
    assert!(
        !e.contains("gave up after"),
        "refusals are not retried: {e}"
    );

    // A bearer token, pull (the config blob is redirected).
    let s = Secured::new(true);
    s.reg.st().redirect_blob_to_http = true;
    let o = s.run(&[
        "pull",
        "--image",
        &format!("{}@{}", s.dest(), s.img.digest),
        "--output-dir",
        &path(&out.path().join("pulled")),
    ]);
    assert_eq!(s.leaked(), Vec::<String>::new());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "{}: refusing GET http://{}/v2/app/blobs/",
            s.reg.addr, s.reg.addr
        )),
        "{e}"
    );
    assert!(!e.contains("tok"), "{e}");
}

#[test]
fn an_upload_location_on_plain_http_is_refused_and_nothing_is_tagged() {
    let s = Secured::new(false);
    s.reg.st().upload_location_http = true;
    let manifests_before = s.reg.st().manifests.len();
    let img = image(vec![bytes(700, 4)]);
    let env = s.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = push(
        &img,
        &["--default-destination", &s.dest(), "--default-tag", "v2"],
        &env,
    );
    assert_eq!(s.leaked(), Vec::<String>::new());
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "{}: refusing PUT http://{}/v2/app/blobs/uploads/",
            s.reg.addr, s.reg.addr
        )) && e.contains("plain http"),
        "{e}"
    );
    assert!(e.contains("no manifest or tag was pushed"), "{e}");
    assert_eq!(s.reg.st().manifests.len(), manifests_before);
    assert!(s.reg.st().clear.is_empty(), "{:?}", s.reg.st().clear);
}

#[test]
fn a_silent_or_dripping_registry_fails_within_the_configured_limits() {
    let reg = Fake::start();
    let img = image(vec![bytes(1000, 1)]);
    let repo = format!("{}/app", reg.addr);
    let limits = [
        ("RULES_IMAGE_HTTP_HEADER_TIMEOUT", "0.5"),
        ("RULES_IMAGE_HTTP_BODY_TIMEOUT", "0.2"),
        ("RULES_IMAGE_HTTP_MIN_RATE", "2000"),
        ("RULES_IMAGE_HTTP_GLOBAL_TIMEOUT", "5"),
    ];
    // A normal push and pull work under small limits.
    let o = push(&img, &["--default-destination", &repo], &limits);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tempfile::tempdir().unwrap();
    let pull = |dir: &str| {
        tool(
            &[
                "pull",
                "--image",
                &format!("{repo}@{}", img.digest),
                "--output-dir",
                &path(&out.path().join(dir)),
            ],
            &limits,
        )
    };
    let o = pull("ok");
    assert!(o.status.success(), "{}", stderr(&o));

    // 1 byte every 200 ms: 1000 bytes would take 200 s; the budget is 0.2 s + 1000 / 2000.
    reg.st().drip = Some(Duration::from_millis(200));
    let d = sha(&img.layers[0]);
    let t = Instant::now();
    let o = fetch_blob(&repo, &d, "1000", &out.path().join("blob"), &limits);
    assert!(!o.status.success());
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("cannot fetch blob {repo}@{d}"))
            && e.contains(&format!("GET http://{}/v2/app/blobs/{d}: a body of 1000 bytes not received within 0.7s (0.2s + 1000 bytes at 2000 bytes/s: RULES_IMAGE_HTTP_BODY_TIMEOUT, RULES_IMAGE_HTTP_MIN_RATE)", reg.addr))
            && e.contains("gave up after 6 attempts"),
        "{e}"
    );

    // No answer at all to a manifest request.
    reg.st().drip = None;
    reg.st().silent = Some(Duration::from_secs(15));
    let t = Instant::now();
    let o = pull("silent");
    assert!(!o.status.success());
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("GET http://{}/v2/app/manifests/{}: no response headers within 0.5s (RULES_IMAGE_HTTP_HEADER_TIMEOUT)", reg.addr, img.digest)),
        "{e}"
    );

    // A malformed limit is an error before any request.
    let o = tool(
        &["resolve", &format!("{repo}:latest")],
        &[("RULES_IMAGE_HTTP_MIN_RATE", "fast")],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("RULES_IMAGE_HTTP_MIN_RATE=fast is not a positive number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_hostile_error_message_cannot_drive_the_terminal_or_forge_lines() {
    let reg = Fake::start();
    {
        let mut s = reg.st();
        s.fail_next = 100;
        s.fail_status = 503;
        s.fail_message = Some("\u{1b}]0;x\u{7}\nerror: fake".into());
    }
    // A GET, whose error has a body (a HEAD's has none).
    let out = tempfile::tempdir().unwrap();
    let o = fetch_blob(
        &format!("{}/app", reg.addr),
        &sha(b"x"),
        "1",
        &out.path().join("blob"),
        &[],
    );
    assert!(!o.status.success());
    assert!(!o.stderr.contains(&0x1b), "{:?}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("retrying in"), "{e}");
    assert!(e.contains("\\x1b]0;x\\x07\\nerror: fake"), "{e}");
    assert!(!e.lines().any(|l| l.starts_with("error: fake")), "{e}");
}

/// A large blob goes in one streaming PATCH; when the connection breaks half-way, the push
/// asks the registry what it kept and sends only the rest, in the same upload session.
#[test]
fn a_broken_streaming_upload_resumes_at_the_registry_offset() {
    let reg = Fake::start();
    let dest = format!("{}/resume", reg.addr);
    let big = bytes(20 << 20, 9); // above the 16 MiB that go in one PUT
    let img = image(vec![big.clone()]);
    {
        let mut s = reg.st();
        s.drop_patch = 1;
        s.keep_dropped = true;
    }
    let sum = img.dir.path().join("summary.json");
    let o = push(
        &img,
        &[
            "--default-destination",
            &dest,
            "--summary-json",
            &path(&sum),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
    let log = reg.log();
    let blob_posts = log.iter().filter(|l| l.starts_with("POST")).count();
    // One upload session for the layer (and one for the config): no restart from byte 0.
    assert_eq!(blob_posts, 2, "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET") && l.contains("/blobs/uploads/")),
        "{log:#?}"
    );
    let patches: Vec<&String> = log.iter().filter(|l| l.starts_with("PATCH")).collect();
    assert_eq!(patches.len(), 2, "{log:#?}");
    // Bytes sent: the whole blob once, plus at most the part of the first PATCH that the
    // registry never got (less than the blob, so nothing was sent twice from byte 0).
    let d = &summary(&sum)["destinations"][0];
    let sent = d["bytes_uploaded"].as_u64().unwrap();
    assert!(sent < 2 * big.len() as u64, "{d}");
    // What the registry stored is the blob.
    let out = img.dir.path().join("fetched");
    let f = fetch_blob(&dest, &sha(&big), &big.len().to_string(), &out, &[]);
    assert!(f.status.success(), "{}", stderr(&f));
    assert_eq!(std::fs::read(&out).unwrap(), big);
}

#[test]
fn fetch_blob_refuses_an_impossible_size_before_any_request() {
    let reg = Fake::start();
    let out = tempfile::tempdir().unwrap();
    let o = fetch_blob(
        &format!("{}/app", reg.addr),
        &sha(b"x"),
        "18446744073709551615",
        &out.path().join("blob"),
        &[],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--size") && e.contains("18446744073709551615"),
        "{e}"
    );
    assert!(!e.contains("retrying"), "{e}");
    assert_eq!(reg.log(), Vec::<String>::new());
}

#[test]
fn a_chunked_upload_resumes_where_the_registry_says_it_stopped() {
    let reg = Fake::start();
    let img = image(vec![bytes(5000, 3)]);
    reg.st().partial_patch = 2;
    let dest = format!("{}/app", reg.addr);
    let o = push(
        &img,
        &["--default-destination", &dest, "--chunk-size", "1024"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.st().blobs["app"][&sha(&img.layers[0])], img.layers[0]);
    let log = reg.log();
    // Two POSTs at most (config, layer): one upload session, resumed, not restarted.
    assert_eq!(
        log.iter().filter(|l| l.starts_with("POST")).count(),
        2,
        "{log:#?}"
    );
    // 0-1023 sent, 0-511 kept; 512-1535 sent, 512-1023 kept; then 4 chunks from 1024.
    assert_eq!(
        log.iter().filter(|l| l.starts_with("PATCH")).count(),
        6,
        "{log:#?}"
    );
}

#[test]
fn a_redirected_blob_head_is_followed_and_only_a_final_200_means_present() {
    let reg = Fake::start();
    reg.st().head_redirect = true;
    let img = image(vec![bytes(300, 1)]);
    let dest = format!("{}/app", reg.addr);
    let o = push(&img, &["--default-destination", &dest], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.st().blobs["app"][&sha(&img.layers[0])], img.layers[0]);
    assert!(
        reg.log()
            .iter()
            .any(|l| l.starts_with("HEAD /redirected/v2/app/blobs/"))
    );
    // Again: now present behind the redirect, nothing is uploaded.
    let o = push(&img, &["--default-destination", &dest], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("exists "), "{}", stderr(&o));
}

/// `deploy`: two images sharing a layer, pushed in one run to their own repositories; the
/// shared layer is one blob in the request log per repository. A deploy in which one job's
/// destination fails pushes no manifest or tag anywhere.
#[test]
fn deploy_pushes_many_images_and_tags_only_when_all_arrived() {
    let reg = Fake::start();
    let shared = bytes(4000, 1);
    let (one, two) = (
        image(vec![shared.clone(), bytes(100, 2)]),
        image(vec![shared.clone(), bytes(100, 3)]),
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = |name: &str, img: &Image, dest: &str, tag: &str| {
        let mut lines = vec![format!("--label=//app:{name}")];
        lines.extend(
            push_args(img, &["--default-destination", dest, "--default-tag", tag])
                .into_iter()
                .skip(1),
        );
        let f = dir.path().join(format!("{name}.args"));
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
        path(&f)
    };
    let (d1, d2) = (
        format!("{}/team/one", reg.addr),
        format!("{}/team/two", reg.addr),
    );
    // One job to a registry that refuses connections: nothing may be tagged at the good one.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let broken = [
        spec("one", &one, &d1, "v1"),
        spec("dead", &two, &format!("{dead}/x/y"), "v1"),
    ];
    let o = tool(&["deploy", "--push", &broken[0], "--push", &broken[1]], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&dead) && e.contains("no manifest or tag was pushed"),
        "{e}"
    );
    assert!(
        reg.st().manifests.is_empty(),
        "a manifest was pushed by a failed deploy"
    );

    let sum = dir.path().join("deploy.json");
    let ok = [spec("one", &one, &d1, "v1"), spec("two", &two, &d2, "v2")];
    let o = tool(
        &[
            "deploy",
            "--push",
            &ok[0],
            "--push",
            &ok[1],
            "--summary-json",
            &path(&sum),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = reg.st();
    for (repo, tag, img) in [("team/one", "v1", &one), ("team/two", "v2", &two)] {
        assert_eq!(
            s.manifests[&(repo.to_string(), tag.to_string())].1,
            img.manifest,
            "{repo}:{tag}"
        );
        assert_eq!(s.blobs[repo][&sha(&shared)], shared);
        let puts = s
            .log
            .iter()
            .filter(|l| l.starts_with(&format!("POST /v2/{repo}/blobs/uploads/")))
            .count();
        assert_eq!(puts, 3, "{repo}: one upload per blob (2 layers + config)");
    }
    drop(s);
    let v = summary(&sum);
    assert_eq!(v["pushes"][0]["label"], "//app:one");
    assert_eq!(v["pushes"][1]["digest"], json!(two.digest));
    assert_eq!(
        v["pushes"][1]["destinations"][0]["references"][1],
        json!(format!("{d2}:v2"))
    );
}

/// Referrers on a registry without the referrers API (this fake, like distribution 2.8): the
/// artifact manifest goes after the image and names it as subject; the fallback tag
/// `sha256-<hex>` becomes an index that keeps what others listed there; all of it before the
/// image's tags; a second push writes the fallback tag no more; a tag that is the fallback
/// tag is refused.
#[test]
fn referrers_go_after_the_image_into_the_fallback_index_before_tags() {
    let reg = Fake::start();
    let img = image(vec![bytes(500, 3)]);
    let dest = format!("{}/team/app", reg.addr);
    let hex = img.digest.trim_start_matches("sha256:").to_string();
    let fallback = format!("sha256-{hex}");
    // Someone else's referrer is listed already.
    let foreign = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(b"foreign"), "size": 7, "artifactType": "application/vnd.example.sig"});
    let seeded = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [foreign]})
    .to_string()
    .into_bytes();
    reg.st().manifests.insert(
        ("team/app".into(), fallback.clone()),
        ("application/vnd.oci.image.index.v1+json".into(), seeded),
    );
    let sbom = img.dir.path().join("sbom.spdx.json");
    std::fs::write(&sbom, br#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let referrer = format!("--referrer=application/spdx+json={}", path(&sbom));
    let args = [
        "--default-destination",
        &dest,
        "--default-tag",
        "latest",
        &referrer,
    ];
    let o = push(&img, &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    let s = reg.st();
    let (_, index) = &s.manifests[&("team/app".to_string(), fallback.clone())];
    let index: Value = serde_json::from_slice(index).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{index}");
    assert_eq!(listed[0], foreign);
    assert_eq!(listed[1]["artifactType"], "application/spdx+json");
    let artifact = listed[1]["digest"].as_str().unwrap().to_string();
    let (_, m) = &s.manifests[&("team/app".to_string(), artifact.clone())];
    let m: Value = serde_json::from_slice(m).unwrap();
    assert_eq!(m["subject"]["digest"], img.digest);
    assert_eq!(
        m["layers"][0]["digest"],
        sha(&std::fs::read(&sbom).unwrap())
    );
    assert!(
        s.blobs["team/app"].contains_key(&sha(b"{}")),
        "the empty config was not pushed"
    );
    let put = |reference: &str| {
        s.log
            .iter()
            .position(|l| l == &format!("PUT /v2/team/app/manifests/{reference}"))
            .unwrap_or_else(|| panic!("no PUT of {reference}: {:?}", s.log))
    };
    assert!(put(&img.digest) < put(&artifact), "{:?}", s.log);
    assert!(put(&artifact) < put(&fallback), "{:?}", s.log);
    assert!(put(&fallback) < put("latest"), "{:?}", s.log);
    let fallback_puts = |s: &State| {
        s.log
            .iter()
            .filter(|l| *l == &format!("PUT /v2/team/app/manifests/{fallback}"))
            .count()
    };
    assert_eq!(fallback_puts(&s), 1);
    drop(s);

    let o = push(&img, &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fallback_puts(&reg.st()),
        1,
        "a second push rewrote the fallback tag"
    );

    let o = push(
        &img,
        &[
            "--default-destination",
            &dest,
            "--default-tag",
            "{IMAGE_DIGEST}",
            &referrer,
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "the tag {fallback} is where registries without the referrers API list"
        )),
        "{}",
        stderr(&o)
    );
}
