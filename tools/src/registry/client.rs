//! HTTP to registries: TLS against the system roots, anonymous-first authentication driven by
//! `WWW-Authenticate` challenges, token caching, redirects and retries with backoff.

use super::auth::{self, Credential, Secret, Secrets, query_escape};
use crate::io::untrusted::{shown_str, terminal_safe};
use crate::oci::reference::is_loopback;
use anyhow::{Result, anyhow};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{self, Response};

/// Manifests are small; anything larger than this is not one.
const MAX_MANIFEST: u64 = 16 << 20;

/// What went wrong with one attempt; `retryable` decides whether the attempt is repeated.
#[derive(Debug)]
pub enum HttpError {
    /// The registry answered with an unexpected status. `text` is e.g.
    /// `404 NAME_UNKNOWN: repository name not known to registry`.
    Status {
        status: u16,
        text: String,
        retry_after: Option<Duration>,
    },
    /// Connect/reset/timeout/truncated body: the network, worth another attempt.
    Transport(String),
    /// A local problem or a broken invariant (digest mismatch): retrying cannot help.
    Fatal(anyhow::Error),
}

impl HttpError {
    pub fn retryable(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            HttpError::Transport(_) => true,
            HttpError::Fatal(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status { text, .. } => f.write_str(text),
            HttpError::Transport(t) => write!(f, "connection error: {t}"),
            HttpError::Fatal(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<ureq::Error> for HttpError {
    fn from(e: ureq::Error) -> HttpError {
        use ureq::Error as E;
        // A TLS failure (untrusted certificate, wrong name) will not fix itself.
        if let E::Io(io) = &e
            && let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return HttpError::Fatal(anyhow!("TLS: {tls}"));
        }
        match e {
            E::Io(_)
            | E::Timeout(_)
            | E::ConnectionFailed
            | E::HostNotFound
            | E::Protocol(_)
            | E::BodyStalled => HttpError::Transport(e.to_string()),
            other => HttpError::Fatal(anyhow!("{other}")),
        }
    }
}

pub type HttpResult<T> = std::result::Result<T, HttpError>;

/// Exponential backoff with jitter, honouring `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub attempts: u32,
}

impl RetryPolicy {
    /// `RULES_IMAGE_RETRY_BASE_MS` shrinks the delays (tests).
    pub fn from_env() -> RetryPolicy {
        let base = std::env::var("RULES_IMAGE_RETRY_BASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_millis(200), Duration::from_millis);
        RetryPolicy {
            base,
            cap: Duration::from_secs(5).max(base),
            attempts: 6,
        }
    }

    /// Delay before attempt `attempt + 1` (attempt counts from 0); `jitter` in [0, 1).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        if let Some(ra) = retry_after {
            // A server asking for more than a minute is not going to be waited for here.
            return ra.min(Duration::from_secs(60));
        }
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        // Between half and all of the exponential delay, so parallel workers spread out.
        exp.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// The deadlines of requests, read once from the environment (seconds, fractions allowed;
/// the rate in bytes per second). A server that stops answering or drips its answer fails the
/// attempt at these limits instead of holding the build for ever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeouts {
    /// Connecting, TLS handshake included: `RULES_IMAGE_HTTP_CONNECT_TIMEOUT` (10).
    pub connect: Duration,
    /// From the request sent to its response headers received:
    /// `RULES_IMAGE_HTTP_HEADER_TIMEOUT` (60).
    pub header: Duration,
    /// The fixed part of a blob body's budget: `RULES_IMAGE_HTTP_BODY_TIMEOUT` (60).
    pub body_base: Duration,
    /// The slowest blob transfer tolerated: a blob of `n` bytes, sent or received, gets
    /// `body_base + n / min_rate`: `RULES_IMAGE_HTTP_MIN_RATE` (65536, 64 KiB/s).
    pub min_rate: u64,
    /// All of a small request (manifest, token, HEAD, upload start), body included:
    /// `RULES_IMAGE_HTTP_GLOBAL_TIMEOUT` (300).
    pub global: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            header: Duration::from_secs(60),
            body_base: Duration::from_secs(60),
            min_rate: 64 << 10,
            global: Duration::from_secs(300),
        }
    }
}

impl Timeouts {
    /// The defaults, each overridden by its variable; a malformed or zero value is an error.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Timeouts> {
        let d = Timeouts::default();
        let secs = |name: &str, default: Duration| -> Result<Duration> {
            let Some(v) = env(name).filter(|v| !v.trim().is_empty()) else {
                return Ok(default);
            };
            match v.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 1e9 => Ok(Duration::from_secs_f64(s)),
                _ => Err(anyhow!(
                    "{name}={} is not a positive number of seconds",
                    shown_str(&v)
                )),
            }
        };
        let min_rate = match env("RULES_IMAGE_HTTP_MIN_RATE").filter(|v| !v.trim().is_empty()) {
            None => d.min_rate,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(r) if r > 0 => r,
                _ => {
                    return Err(anyhow!(
                        "RULES_IMAGE_HTTP_MIN_RATE={} is not a positive number of bytes per second",
                        shown_str(&v)
                    ));
                }
            },
        };
        Ok(Timeouts {
            connect: secs("RULES_IMAGE_HTTP_CONNECT_TIMEOUT", d.connect)?,
            header: secs("RULES_IMAGE_HTTP_HEADER_TIMEOUT", d.header)?,
            body_base: secs("RULES_IMAGE_HTTP_BODY_TIMEOUT", d.body_base)?,
            min_rate,
            global: secs("RULES_IMAGE_HTTP_GLOBAL_TIMEOUT", d.global)?,
        })
    }

    /// The body budget of a blob of `size` bytes: `body_base + size / min_rate`.
    pub fn blob_budget(&self, size: u64) -> Duration {
        self.body_base
            .saturating_add(Duration::from_secs_f64(size as f64 / self.min_rate as f64))
    }

    /// The limit a timed-out request hit, in words, with the variable that sets it.
    fn describe(&self, t: ureq::Timeout, transfer: Transfer) -> String {
        use ureq::Timeout as T;
        let s = |d: Duration| format!("{:.1}s", d.as_secs_f64());
        match (t, transfer) {
            (T::Connect | T::Resolve, _) => format!(
                "no connection within {} (RULES_IMAGE_HTTP_CONNECT_TIMEOUT)",
                s(self.connect)
            ),
            (T::RecvResponse, _) => format!(
                "no response headers within {} (RULES_IMAGE_HTTP_HEADER_TIMEOUT)",
                s(self.header)
            ),
            (T::SendBody | T::RecvBody, Transfer::Blob(n)) => format!(
                "a body of {n} bytes not {} within {} ({} + {n} bytes at {} bytes/s: RULES_IMAGE_HTTP_BODY_TIMEOUT, RULES_IMAGE_HTTP_MIN_RATE)",
                if t == T::SendBody { "sent" } else { "received" },
                s(self.blob_budget(n)),
                s(self.body_base),
                self.min_rate
            ),
            (T::Global | T::SendBody | T::RecvBody, Transfer::Small) => format!(
                "not done within {} (RULES_IMAGE_HTTP_GLOBAL_TIMEOUT)",
                s(self.global)
            ),
            (other, _) => format!("timed out ({other}, {} without data)", s(PER_IO)),
        }
    }
}

/// What a request moves, which decides its deadlines (see `Timeouts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// A manifest, a token, a HEAD, an upload's start or end: one global deadline.
    Small,
    /// A blob body of this many bytes, sent or received: a budget that grows with the size.
    Blob(u64),
}

/// The longest silence within one read or write.
const PER_IO: Duration = Duration::from_secs(60);

/// One request as errors name it: method, origin and path, never the query (which may hold
/// a signature), with the deadlines it ran under.
#[derive(Debug, Clone)]
struct Exchange {
    what: String,
    transfer: Transfer,
    timeouts: Timeouts,
}

impl Exchange {
    fn new(method: &str, url: &str, transfer: Transfer, timeouts: Timeouts) -> Exchange {
        Exchange {
            what: format!("{method} {}", url_without_query(url)),
            transfer,
            timeouts,
        }
    }

    /// A ureq error of this exchange; a timeout names the request and the limit it hit.
    fn error(&self, e: ureq::Error) -> HttpError {
        match e {
            ureq::Error::Timeout(t) => HttpError::Transport(format!(
                "{}: {}",
                self.what,
                self.timeouts.describe(t, self.transfer)
            )),
            e => HttpError::from(e),
        }
    }
}

/// The HTTP error of reading a response body, a timeout named with its request and limit.
pub fn body_error(resp: &Response<ureq::Body>, e: ureq::Error) -> HttpError {
    match resp.extensions().get::<Exchange>() {
        Some(x) => x.error(e),
        None => HttpError::from(e),
    }
}

/// A reader of a response body whose errors name the request and the limit it hit.
pub fn body_reader(resp: Response<ureq::Body>) -> impl Read + 'static {
    let x = resp.extensions().get::<Exchange>().cloned();
    BodyReader {
        inner: resp.into_body().into_reader(),
        x,
    }
}

struct BodyReader {
    inner: ureq::BodyReader<'static>,
    x: Option<Exchange>,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let Some(x) = &self.x else { return e };
            match ureq::Error::from(e) {
                ureq::Error::Timeout(t) => std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{}: {}", x.what, x.timeouts.describe(t, x.transfer)),
                ),
                other => other.into_io(),
            }
        })
    }
}

/// `scheme://host/path` of a URL, a query replaced by `?…`, safe to print.
pub fn url_without_query(url: &str) -> String {
    match url.split_once('?') {
        Some((u, _)) => format!("{}?…", shown_str(u)),
        None => shown_str(url),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries and ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn jitter() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (RandomState::new().hash_one(nanos) % 10_000) as f64 / 10_000.0
}

/// A request body. Streams cannot be replayed, which matters for authentication.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut dyn Read, u64),
}

/// Who a request is for: the registry host and the token scopes it needs.
#[derive(Debug, Clone)]
pub struct Scope {
    pub registry: String,
    pub scopes: Vec<String>,
}

impl Scope {
    pub fn pull(registry: &str, repository: &str) -> Scope {
        Scope {
            registry: registry.to_string(),
            scopes: vec![format!("repository:{repository}:pull")],
        }
    }

    pub fn push(registry: &str, repository: &str) -> Scope {
        Scope {
            registry: registry.to_string(),
            scopes: vec![format!("repository:{repository}:pull,push")],
        }
    }

    fn key(&self) -> (String, String) {
        let mut s = self.scopes.clone();
        s.sort();
        (self.registry.clone(), s.join(" "))
    }
}

pub type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct Client {
    agent: ureq::Agent,
    insecure_http: bool,
    retry: RetryPolicy,
    timeouts: Timeouts,
    env: EnvFn,
    /// Credentials per registry, looked up once.
    creds: Mutex<HashMap<String, Option<Credential>>>,
    /// The `Authorization` value per (registry, scopes); `basic` scopes for Basic registries.
    tokens: Mutex<HashMap<(String, String), Secret>>,
    /// Held while a token is fetched, see `request`.
    token_fetch: Mutex<()>,
    /// `http` or `https` per loopback registry, see `base_url`.
    loopback_schemes: Mutex<HashMap<String, &'static str>>,
}

impl Client {
    pub fn new(insecure_http: bool) -> Result<Client> {
        Client::with_env(insecure_http, Box::new(|k| std::env::var(k).ok()))
    }

    pub fn with_env(insecure_http: bool, env: EnvFn) -> Result<Client> {
        let timeouts = Timeouts::from_env(&*env)?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&system_roots()?))
            .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Redirects are followed by `get`, which drops credentials for other hosts.
            .max_redirects(0)
            .timeout_connect(Some(timeouts.connect))
            // The header and body budgets (set per request, see `configure`) are the limits;
            // this only catches a connection that went silent for long.
            .timeout_per_read(Some(PER_IO.max(timeouts.header)))
            .timeout_per_write(Some(PER_IO))
            .user_agent(concat!("rules_image/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Ok(Client {
            agent: config.new_agent(),
            insecure_http,
            retry: RetryPolicy::from_env(),
            timeouts,
            env,
            creds: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            loopback_schemes: Mutex::new(HashMap::new()),
            token_fetch: Mutex::new(()),
        })
    }

    /// `https://`, except with `--insecure-http`, and for loopback registries that do not
    /// speak TLS (probed once per registry, as Docker does for localhost): a registry on this
    /// machine may run plain HTTP, but one that serves TLS is still verified.
    pub fn base_url(&self, registry: &str) -> String {
        let scheme = if self.insecure_http {
            "http"
        } else if is_loopback(registry) {
            let mut schemes = self.loopback_schemes.lock().expect("not poisoned");
            *schemes
                .entry(registry.to_string())
                .or_insert_with(|| self.probe_loopback_scheme(registry))
        } else {
            "https"
        };
        format!("{scheme}://{registry}")
    }

    fn probe_loopback_scheme(&self, registry: &str) -> &'static str {
        let req = http::Request::get(format!("https://{registry}/v2/")).body(());
        let Ok(req) = req else { return "https" };
        match self.agent.run(self.configure(req, Transfer::Small)) {
            Ok(_) => "https",
            // A TLS server whose certificate we do not trust: stay on https, so the request
            // fails with the certificate error rather than a confusing plain-HTTP one.
            Err(e) if e.to_string().to_lowercase().contains("certificate") => "https",
            Err(_) => "http",
        }
    }

    /// Runs `f` until it succeeds, fails for good, or attempts run out; errors are prefixed
    /// with `what()` (e.g. "cannot push blob sha256:… to reg/repo").
    pub fn retry<T>(
        &self,
        what: &dyn Fn() -> String,
        mut f: impl FnMut() -> HttpResult<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if e.retryable() && attempt + 1 < self.retry.attempts => {
                    let d = self.retry.delay(attempt, e.retry_after(), jitter());
                    attempt += 1;
                    // Printed as it happens, not through `main`'s last line of defence: one
                    // line whatever the error quotes.
                    let line = format!("retrying in {:.1}s ({e}): {}", d.as_secs_f64(), what());
                    eprintln!("{}", terminal_safe(&line).replace('\n', "\\n"));
                    std::thread::sleep(d);
                }
                Err(e) => {
                    let mut msg = format!("{}: {e}", what());
                    if e.retryable() {
                        msg.push_str(&format!(" (gave up after {} attempts)", attempt + 1));
                    }
                    return Err(anyhow!(msg));
                }
            }
        }
    }

    /// One request with authentication: anonymous (or a cached token) first; on 401 the
    /// challenge is answered and a replayable request is sent once more. A 401 on a stream
    /// (an upload whose token expired) is reported as retryable: the caller starts over.
    pub fn request(
        &self,
        scope: &Scope,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        transfer: Transfer,
        mut body: Body,
    ) -> HttpResult<Response<ureq::Body>> {
        let credentials = self.destination(&scope.registry, method, url, false)?;
        let key = scope.key();
        let mut auth = if credentials {
            self.cached_auth(&key)
        } else {
            None
        };
        let mut answered = false;
        loop {
            let resp = self.send(method, url, headers, auth.as_ref(), transfer, &mut body)?;
            if resp.status() != 401 || !credentials {
                return Ok(resp);
            }
            if answered {
                return Err(self.unauthorized(scope, resp, true));
            }
            let challenges: Vec<_> = resp
                .headers()
                .get_all("www-authenticate")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(auth::parse_challenges)
                .collect();
            // One token request at a time: parallel uploads that all hit a 401 at once then
            // share the token the first of them fetched.
            let fresh = {
                let _single_flight = self.token_fetch.lock().unwrap();
                let tried = auth.as_ref().map(|a| a.expose().to_string());
                match self.cached_auth(&key) {
                    Some(t) if Some(t.expose()) != tried.as_deref() => Some(t),
                    _ => self.answer(scope, &challenges)?,
                }
            };
            let Some(fresh) = fresh else {
                return Err(self.unauthorized(scope, resp, false));
            };
            self.tokens
                .lock()
                .unwrap()
                .insert(key.clone(), fresh.clone());
            if matches!(body, Body::Stream(..)) {
                return Err(HttpError::Transport(
                    "authorization expired during an upload".into(),
                ));
            }
            auth = Some(fresh);
            answered = true;
        }
    }

    /// GET following redirects (blob downloads often redirect to storage hosts).
    pub fn get(
        &self,
        scope: &Scope,
        url: &str,
        headers: &[(&str, &str)],
        transfer: Transfer,
    ) -> HttpResult<Response<ureq::Body>> {
        self.follow(scope, "GET", url, headers, transfer)
    }

    /// GET or HEAD following redirects. Every hop is a `request`, so `credential_rule`
    /// decides whether it is sent at all and whether it carries credentials.
    pub fn follow(
        &self,
        scope: &Scope,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        transfer: Transfer,
    ) -> HttpResult<Response<ureq::Body>> {
        let mut at = url.to_string();
        for _ in 0..10 {
            let resp = self.request(scope, method, &at, headers, transfer, Body::Empty)?;
            if !resp.status().is_redirection() || resp.status() == 304 {
                return Ok(resp);
            }
            let loc = header(&resp, "location").ok_or_else(|| {
                HttpError::Fatal(anyhow!(
                    "{}: {method} {} answered {} without a Location",
                    scope.registry,
                    url_without_query(&at),
                    resp.status()
                ))
            })?;
            at = resolve_location(&at, &loc);
        }
        Err(HttpError::Fatal(anyhow!(
            "{}: {method} {}: more than 10 redirects",
            scope.registry,
            url_without_query(url)
        )))
    }

    /// `credential_rule` for a request (`what`: its method, or "token realm") to `url` on
    /// behalf of `registry`: whether it carries the registry's credentials, or the error
    /// that refuses it.
    fn destination(&self, registry: &str, what: &str, url: &str, realm: bool) -> HttpResult<bool> {
        credential_rule(&self.base_url(registry), url, realm).map_err(|why| {
            HttpError::Fatal(anyhow!(
                "{registry}: refusing {what} {}: {why}",
                url_without_query(url)
            ))
        })
    }

    /// The per-request deadlines of `transfer` (see `Timeouts`).
    fn configure<S: ureq::AsSendBody>(
        &self,
        req: http::Request<S>,
        transfer: Transfer,
    ) -> http::Request<S> {
        let t = &self.timeouts;
        let b = self
            .agent
            .configure_request(req)
            .timeout_recv_response(Some(t.header));
        match transfer {
            Transfer::Small => b.timeout_global(Some(t.global)),
            Transfer::Blob(n) => {
                let budget = t.blob_budget(n);
                b.timeout_send_body(Some(budget))
                    .timeout_recv_body(Some(budget))
            }
        }
        .build()
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&Secret>,
        transfer: Transfer,
        body: &mut Body,
    ) -> HttpResult<Response<ureq::Body>> {
        let x = Exchange::new(method, url, transfer, self.timeouts);
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = auth {
            b = b.header("authorization", a.expose());
        }
        let invalid = |e: http::Error| HttpError::Fatal(anyhow!("invalid request {}: {e}", x.what));
        let run = |resp: std::result::Result<Response<ureq::Body>, ureq::Error>| {
            let mut resp = resp.map_err(|e| x.error(e))?;
            resp.extensions_mut().insert(x.clone());
            Ok(resp)
        };
        if !matches!(method, "PUT" | "POST" | "PATCH") {
            let req = b.body(()).map_err(invalid)?;
            return run(self.agent.run(self.configure(req, transfer)));
        }
        let mut empty: &[u8] = &[];
        let (len, reader): (u64, &mut dyn Read) = match body {
            Body::Empty => (0, &mut empty),
            Body::Bytes(bytes) => (bytes.len() as u64, bytes),
            Body::Stream(r, n) => (*n, &mut **r),
        };
        // An explicit Content-Length makes ureq stream the reader without chunked encoding.
        let req = b
            .header("content-length", len.to_string())
            .body(ureq::SendBody::from_reader(reader))
            .map_err(invalid)?;
        run(self.agent.run(self.configure(req, transfer)))
    }

    fn cached_auth(&self, key: &(String, String)) -> Option<Secret> {
        let tokens = self.tokens.lock().unwrap();
        tokens
            .get(key)
            .or_else(|| tokens.get(&(key.0.clone(), "basic".into())))
            .cloned()
    }

    fn credential(&self, registry: &str) -> HttpResult<Option<Credential>> {
        let mut creds = self.creds.lock().unwrap();
        if let Some(c) = creds.get(registry) {
            return Ok(c.clone());
        }
        let c =
            auth::lookup(&auth::credential_key(registry), &*self.env).map_err(HttpError::Fatal)?;
        creds.insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// Answers a challenge: Basic with stored credentials, or a Bearer token from the realm.
    /// `None` when there is nothing to answer with.
    fn answer(&self, scope: &Scope, challenges: &[auth::Challenge]) -> HttpResult<Option<Secret>> {
        let cred = self.credential(&scope.registry)?;
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            return self.fetch_token(scope, c, cred.as_ref()).map(Some);
        }
        if challenges.iter().any(|c| c.scheme == "basic")
            && let Some(h) = cred.as_ref().and_then(|c| c.secrets.basic_header())
        {
            // Basic registries take the same header for every repository.
            self.tokens
                .lock()
                .unwrap()
                .insert((scope.registry.clone(), "basic".into()), h.clone());
            return Ok(Some(h));
        }
        Ok(None)
    }

    fn fetch_token(
        &self,
        scope: &Scope,
        ch: &auth::Challenge,
        cred: Option<&Credential>,
    ) -> HttpResult<Secret> {
        let realm = ch.params.get("realm").ok_or_else(|| {
            HttpError::Fatal(anyhow!(
                "{} sent a Bearer challenge without a realm",
                scope.registry
            ))
        })?;
        let realm_host = shown_str(authority(realm));
        self.destination(&scope.registry, "token realm", realm, true)?;
        let service = ch.params.get("service").cloned().unwrap_or_default();
        let mut scopes = scope.scopes.clone();
        if scopes.is_empty()
            && let Some(s) = ch.params.get("scope")
        {
            scopes.push(s.clone());
        }
        let mut query = vec![("service", service.clone())];
        query.extend(scopes.iter().map(|s| ("scope", s.clone())));
        let qs = |extra: &[(&str, String)]| {
            query
                .iter()
                .chain(extra)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("{k}={}", query_escape(v)))
                .collect::<Vec<_>>()
                .join("&")
        };
        let mut body_bytes = Vec::new();
        let (method, url, auth) = match cred.map(|c| &c.secrets) {
            Some(Secrets::IdentityToken(t)) => {
                // OAuth2 refresh-token grant, as docker does with an identity token.
                body_bytes = qs(&[
                    ("grant_type", "refresh_token".into()),
                    ("client_id", "rules_image".into()),
                    ("refresh_token", t.expose().to_string()),
                ])
                .into_bytes();
                ("POST", realm.clone(), None)
            }
            Some(s) => ("GET", with_query(realm, &qs(&[])), s.basic_header()),
            None => ("GET", with_query(realm, &qs(&[])), None),
        };
        let ctype = [("content-type", "application/x-www-form-urlencoded")];
        let headers: &[(&str, &str)] = if method == "POST" { &ctype } else { &[] };
        let body = if method == "POST" {
            Body::Bytes(&body_bytes)
        } else {
            Body::Empty
        };
        let mut resp = self.send(
            method,
            &url,
            headers,
            auth.as_ref(),
            Transfer::Small,
            &mut { body },
        )?;
        if !resp.status().is_success() {
            let e = status_error(&mut resp);
            if let HttpError::Status {
                status: 401 | 403,
                text,
                ..
            } = &e
            {
                let who = match cred {
                    Some(c) => format!("rejected the credentials from {}", c.source),
                    None => format!(
                        "requires credentials, and none were found for {}",
                        scope.registry
                    ),
                };
                return Err(HttpError::Status {
                    status: 401,
                    text: format!("{text} (token server {realm_host} {who})"),
                    retry_after: None,
                });
            }
            return Err(e);
        }
        let bytes = read_limited(&mut resp, 1 << 20)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            HttpError::Fatal(anyhow!(
                "token server {realm_host} answered with malformed JSON"
            ))
        })?;
        let tok = ["token", "access_token"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .ok_or_else(|| {
                HttpError::Fatal(anyhow!("token server {realm_host} returned no token"))
            })?;
        Ok(Secret::new(format!("Bearer {tok}")))
    }

    /// A final 401: the registry's message plus where credentials came from, never them.
    fn unauthorized(&self, scope: &Scope, mut resp: Response<ureq::Body>, sent: bool) -> HttpError {
        let text = status_error(&mut resp).to_string();
        let cred = self.credential(&scope.registry).ok().flatten();
        let hint = match (&cred, sent) {
            (Some(c), true) => format!(
                "{} rejected the credentials from {}",
                scope.registry, c.source
            ),
            (Some(_), false) => {
                format!("{} sent no challenge this tool can answer", scope.registry)
            }
            (None, _) => format!(
                "no credentials found for {} (looked in $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, docker's config.json)",
                auth::credential_key(&scope.registry)
            ),
        };
        HttpError::Status {
            status: 401,
            text: format!("{text} ({hint})"),
            retry_after: None,
        }
    }
}

/// Verified TLS against the system's roots; `SSL_CERT_FILE` / `SSL_CERT_DIR` replace them.
fn system_roots() -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<_> = found
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if certs.is_empty() && !found.errors.is_empty() {
        return Err(anyhow!(
            "cannot load TLS root certificates: {}",
            found
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(certs)
}

pub fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub fn read_limited(resp: &mut Response<ureq::Body>, limit: u64) -> HttpResult<Vec<u8>> {
    let read = resp.body_mut().with_config().limit(limit).read_to_vec();
    read.map_err(|e| body_error(resp, e))
}

pub fn read_manifest(resp: &mut Response<ureq::Body>) -> HttpResult<Vec<u8>> {
    read_limited(resp, MAX_MANIFEST)
}

/// Turns an unexpected response into an error carrying the registry's own message.
pub fn status_error(resp: &mut Response<ureq::Body>) -> HttpError {
    let status = resp.status();
    let retry_after = header(resp, "retry-after").and_then(|v| parse_retry_after(&v));
    let body = read_limited(resp, 64 << 10).unwrap_or_default();
    HttpError::Status {
        status: status.as_u16(),
        text: format_status(status.as_u16(), status.canonical_reason(), &body),
        retry_after,
    }
}

/// `404 NAME_UNKNOWN: repository name not known to registry` from the distribution error
/// JSON, else the status line (plus a short plain-text body). The registry's words are
/// untrusted: control characters escaped, long ones cut.
pub fn format_status(status: u16, reason: Option<&str>, body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && let Some(errs) = v.get("errors").and_then(Value::as_array)
        && !errs.is_empty()
    {
        let parts: Vec<String> = errs
            .iter()
            .map(|e| {
                let code = e.get("code").and_then(Value::as_str).unwrap_or("");
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                match (code.is_empty(), msg.is_empty()) {
                    (false, false) => format!("{}: {}", shown_str(code), shown_str(msg)),
                    (false, true) => shown_str(code),
                    _ => shown_str(msg),
                }
            })
            .collect();
        return format!("{status} {}", parts.join("; "));
    }
    let mut s = format!("{status} {}", reason.unwrap_or(""));
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() && text.len() <= 200 && !text.contains('\n') && !text.starts_with('<') {
        s.push_str(": ");
        s.push_str(&shown_str(text));
    }
    s.trim_end().to_string()
}

/// `host[:port]` of an absolute URL.
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Resolves a `Location` header against the URL of the request that returned it.
pub fn resolve_location(request_url: &str, loc: &str) -> String {
    if loc.contains("://") {
        return loc.to_string();
    }
    let scheme = request_url.split_once("://").map_or("https", |(s, _)| s);
    if let Some(rest) = loc.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let origin = format!("{scheme}://{}", authority(request_url));
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    // Relative to the request path's directory (rare, but legal). `authority` is a prefix of
    // what follows the scheme, so this slice is always in bounds (the fuzzer found a request
    // URL without a scheme, where slicing by `origin.len()` was not).
    let after_scheme = request_url
        .split_once("://")
        .map_or(request_url, |(_, r)| r);
    let path = &after_scheme[authority(request_url).len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{origin}{dir}{loc}")
}

/// THE rule for where a request may go and which requests carry credentials. It is applied
/// to every URL a request is sent to: those built from `Client::base_url`, and those a registry
/// hands out (a redirect, an upload's `Location`, a token realm).
///
/// - Credentials go only to the registry's own origin: scheme, host and port (default ports
///   normalised: https 443, http 80) equal to those of `base_url`. A redirect to another
///   origin (blob storage) is followed without them.
/// - The token realm (`realm`) is the one exception: it takes the credentials on another host
///   too (that is what it is for, and docker does the same), over https.
/// - A plain `http://` URL is refused outright unless the registry itself is plain HTTP
///   (`base_url` is `http://`: a loopback registry without TLS, or `--insecure-http`): an
///   https registry cannot steer credentials, a token or uploads into clear text.
///
/// `Ok(true)`: send it with credentials; `Ok(false)`: send it without; `Err`: why not at all.
pub fn credential_rule(
    base_url: &str,
    url: &str,
    realm: bool,
) -> std::result::Result<bool, String> {
    let base = Origin::of(base_url)
        .ok_or_else(|| format!("{} is not an http(s) URL", shown_str(base_url)))?;
    let to = Origin::of(url).ok_or_else(|| "not an http(s) URL".to_string())?;
    if to.scheme == "http" && base.scheme != "http" {
        return Err(format!(
            "plain http from a registry served over https ({}): credentials and content would travel in clear text",
            shown_str(base_url)
        ));
    }
    Ok(realm || to == base)
}

/// Scheme, host and port of a URL, as `credential_rule` compares them.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &str) -> Option<Origin> {
        let (scheme, _) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let auth = authority(url);
        let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
        let (host, port) = match auth.strip_prefix('[') {
            Some(rest) => {
                let (h, after) = rest.split_once(']')?;
                (format!("[{h}]"), after.strip_prefix(':'))
            }
            None => match auth.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (auth.to_string(), None),
            },
        };
        let port = match port {
            None | Some("") => default,
            Some(p) => p.parse().ok()?,
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// Appends `query` (already escaped) to a URL that may already have a query.
pub fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let p = RetryPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            attempts: 6,
        };
        assert_eq!(p.delay(0, None, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(0, None, 0.0), Duration::from_millis(100));
        assert_eq!(p.delay(2, None, 1.0), Duration::from_millis(800));
        assert_eq!(p.delay(10, None, 1.0), Duration::from_secs(5));
        assert_eq!(p.delay(30, None, 1.0), Duration::from_secs(5));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3)), 0.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3600)), 0.0),
            Duration::from_secs(60)
        );
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn retryable_statuses() {
        let s = |status| HttpError::Status {
            status,
            text: String::new(),
            retry_after: None,
        };
        for st in [500, 502, 503, 429, 408] {
            assert!(s(st).retryable(), "{st}");
        }
        for st in [400, 401, 403, 404, 405, 416] {
            assert!(!s(st).retryable(), "{st}");
        }
        assert!(HttpError::Transport("reset".into()).retryable());
        assert!(!HttpError::Fatal(anyhow!("x")).retryable());
    }

    #[test]
    fn retry_loop_gives_up_and_names_the_operation() {
        let c = Client::with_env(false, Box::new(|_| None)).unwrap();
        let c = Client {
            retry: RetryPolicy {
                base: Duration::from_millis(1),
                cap: Duration::from_millis(2),
                attempts: 3,
            },
            ..c
        };
        let mut n = 0;
        let r: Result<()> = c.retry(&|| "cannot do it".into(), || {
            n += 1;
            Err(HttpError::Transport("reset".into()))
        });
        assert_eq!(n, 3);
        let e = r.unwrap_err().to_string();
        assert_eq!(
            e,
            "cannot do it: connection error: reset (gave up after 3 attempts)"
        );
        let mut n = 0;
        let r = c.retry(&|| "x".into(), || {
            n += 1;
            if n < 3 {
                Err(HttpError::Status {
                    status: 503,
                    text: "503".into(),
                    retry_after: None,
                })
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.unwrap(), 7);
        let mut n = 0;
        let r: Result<()> = c.retry(&|| "cannot push".into(), || {
            n += 1;
            Err(HttpError::Status { status: 404, text: format_status(404, Some("Not Found"), br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{}}]}"#), retry_after: None })
        });
        assert_eq!(n, 1);
        assert_eq!(
            r.unwrap_err().to_string(),
            "cannot push: 404 NAME_UNKNOWN: repository name not known to registry"
        );
    }

    #[test]
    fn status_text() {
        assert_eq!(
            format_status(500, Some("Internal Server Error"), b""),
            "500 Internal Server Error"
        );
        assert_eq!(
            format_status(400, Some("Bad Request"), b"nope"),
            "400 Bad Request: nope"
        );
        assert_eq!(
            format_status(502, Some("Bad Gateway"), b"<html>\n</html>"),
            "502 Bad Gateway"
        );
        // A hostile registry cannot forge lines or drive the terminal through its message.
        assert_eq!(
            format_status(
                400,
                Some("Bad Request"),
                br#"{"errors":[{"code":"DENIED\u001b[2J","message":"no\nerror: fake line"}]}"#
            ),
            "400 DENIED\\x1b[2J: no\\nerror: fake line"
        );
    }

    #[test]
    fn locations() {
        let req = "http://127.0.0.1:5000/v2/app/blobs/uploads/";
        assert_eq!(
            resolve_location(req, "/v2/app/blobs/uploads/u1?_state=x"),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            resolve_location(req, "https://s3.example/b?sig=1"),
            "https://s3.example/b?sig=1"
        );
        assert_eq!(
            resolve_location(req, "//cdn.example/x"),
            "http://cdn.example/x"
        );
        assert_eq!(
            resolve_location(req, "u2"),
            "http://127.0.0.1:5000/v2/app/blobs/uploads/u2"
        );
        assert_eq!(
            with_query("http://h/u?_state=x", "digest=d"),
            "http://h/u?_state=x&digest=d"
        );
        assert_eq!(with_query("http://h/u", "digest=d"), "http://h/u?digest=d");
        // Found by fuzz/registry_headers: a request URL without a scheme.
        assert_eq!(resolve_location("/daa/", "%/:n=\""), "https:///daa/%/:n=\"");
        assert_eq!(
            authority("https://reg.example:5000/v2/"),
            "reg.example:5000"
        );
        assert_eq!(authority("http://h?x"), "h");
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn credentials_go_only_to_the_registry_origin_and_never_into_clear_text() {
        let https = "https://reg.example";
        // A remote registry's realm on plain http, even on loopback, is refused; another
        // https host is the realm's right; a plain-http registry may have a plain-http realm.
        let e = credential_rule(https, "http://127.0.0.1:5000/token", true).unwrap_err();
        assert!(
            e.contains("plain http") && e.contains("https://reg.example"),
            "{e}"
        );
        assert_eq!(
            credential_rule(https, "https://auth.example/token", true),
            Ok(true)
        );
        let plain = "http://127.0.0.1:5000";
        assert_eq!(
            credential_rule(plain, "http://127.0.0.1:5000/token", true),
            Ok(true)
        );
        assert_eq!(
            credential_rule(plain, "http://127.0.0.1:6000/token", true),
            Ok(true)
        );
        // Same origin: scheme, host (any case) and port, default ports normalised.
        for same in [
            "https://reg.example/v2/x",
            "https://reg.example:443/v2/x",
            "https://REG.example/v2/x?y",
        ] {
            assert_eq!(credential_rule(https, same, false), Ok(true), "{same}");
        }
        assert_eq!(
            credential_rule("http://localhost", "http://localhost:80/v2/", false),
            Ok(true)
        );
        assert_eq!(
            credential_rule("https://[::1]:5000", "https://[::1]:5000/v2/", false),
            Ok(true)
        );
        // Another origin: followed without credentials.
        for other in [
            "https://reg.example:5000/v2/x",
            "https://s3.example/b?sig=1",
            "https://evil@s3.example/",
        ] {
            assert_eq!(credential_rule(https, other, false), Ok(false), "{other}");
        }
        assert_eq!(
            credential_rule(plain, "http://127.0.0.1:5001/v2/", false),
            Ok(false)
        );
        assert_eq!(
            credential_rule(plain, "https://127.0.0.1:5000/v2/", false),
            Ok(false)
        );
        // Plain http from an https registry, or anything but http(s): refused.
        for bad in [
            "http://reg.example/v2/x",
            "HTTP://reg.example:443/",
            "ftp://reg.example/x",
        ] {
            assert!(credential_rule(https, bad, false).is_err(), "{bad}");
        }
        // Through the client: a remote registry is https, its http realm refused by name.
        let c = Client::with_env(false, Box::new(|_| None)).unwrap();
        let e = c
            .destination(
                "reg.example",
                "token realm",
                "http://127.0.0.1:9/token?x=1",
                true,
            )
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "reg.example: refusing token realm http://127.0.0.1:9/token?…: plain http"
            ),
            "{e}"
        );
    }

    #[test]
    fn timeouts_come_from_the_environment_once() {
        let env = |k: &str| match k {
            "RULES_IMAGE_HTTP_HEADER_TIMEOUT" => Some("0.5".to_string()),
            "RULES_IMAGE_HTTP_MIN_RATE" => Some("1000".to_string()),
            _ => None,
        };
        let t = Timeouts::from_env(&env).unwrap();
        assert_eq!(t.header, Duration::from_millis(500));
        assert_eq!(t.connect, Timeouts::default().connect);
        assert_eq!(t.blob_budget(2000), Duration::from_secs(62));
        assert_eq!(
            t.describe(ureq::Timeout::RecvBody, Transfer::Blob(2000)),
            "a body of 2000 bytes not received within 62.0s (60.0s + 2000 bytes at 1000 bytes/s: RULES_IMAGE_HTTP_BODY_TIMEOUT, RULES_IMAGE_HTTP_MIN_RATE)"
        );
        assert_eq!(
            t.describe(ureq::Timeout::Global, Transfer::Small),
            "not done within 300.0s (RULES_IMAGE_HTTP_GLOBAL_TIMEOUT)"
        );
        for (k, v) in [
            ("RULES_IMAGE_HTTP_MIN_RATE", "0"),
            ("RULES_IMAGE_HTTP_GLOBAL_TIMEOUT", "-1"),
            ("RULES_IMAGE_HTTP_BODY_TIMEOUT", "soon"),
        ] {
            let e = Timeouts::from_env(&|n: &str| (n == k).then(|| v.to_string()))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("{k}={v} is not a positive number")),
                "{e}"
            );
        }
    }

    #[test]
    fn loopback_only_is_plain_http() {
        let c = Client::with_env(false, Box::new(|_| None)).unwrap();
        assert_eq!(c.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(c.base_url("localhost"), "http://localhost");
        assert_eq!(c.base_url("reg.example"), "https://reg.example");
        let c = Client::with_env(true, Box::new(|_| None)).unwrap();
        assert_eq!(c.base_url("reg.example"), "http://reg.example");
    }
}
