//! HTTP to registries: TLS against the system roots, anonymous-first authentication driven by
//! `WWW-Authenticate` challenges, token caching, redirects and retries with backoff.

use super::auth::{self, Credential, Secret, Secrets, query_escape};
use crate::io::untrusted::shown_str;
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
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .user_agent(concat!("rules_image/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Ok(Client {
            agent: config.new_agent(),
            insecure_http,
            retry: RetryPolicy::from_env(),
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
        match self.agent.get(&format!("https://{registry}/v2/")).call() {
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
                    eprintln!("retrying in {:.1}s ({e}): {}", d.as_secs_f64(), what());
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
        mut body: Body,
    ) -> HttpResult<Response<ureq::Body>> {
        let same_host = authority(url).eq_ignore_ascii_case(&scope.registry);
        let key = scope.key();
        let mut auth = if same_host {
            self.cached_auth(&key)
        } else {
            None
        };
        let mut answered = false;
        loop {
            let resp = self.send(method, url, headers, auth.as_ref(), &mut body)?;
            if resp.status() != 401 || !same_host {
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

    /// GET following redirects (blob downloads often redirect to storage hosts, which get no
    /// registry credentials).
    pub fn get(
        &self,
        scope: &Scope,
        url: &str,
        headers: &[(&str, &str)],
    ) -> HttpResult<Response<ureq::Body>> {
        let mut url = url.to_string();
        for _ in 0..10 {
            let resp = self.request(scope, "GET", &url, headers, Body::Empty)?;
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let loc = header(&resp, "location").ok_or_else(|| {
                HttpError::Fatal(anyhow!("{} redirect without a Location", resp.status()))
            })?;
            url = resolve_location(&url, &loc);
        }
        Err(HttpError::Fatal(anyhow!("too many redirects")))
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&Secret>,
        body: &mut Body,
    ) -> HttpResult<Response<ureq::Body>> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = auth {
            b = b.header("authorization", a.expose());
        }
        let invalid =
            |e: http::Error| HttpError::Fatal(anyhow!("invalid request {method} {url}: {e}"));
        if !matches!(method, "PUT" | "POST" | "PATCH") {
            return Ok(self.agent.run(b.body(()).map_err(invalid)?)?);
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
        Ok(self.agent.run(req)?)
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
        let realm_host = authority(realm).to_string();
        if !(realm.starts_with("https://")
            || (realm.starts_with("http://") && (self.insecure_http || is_loopback(&realm_host))))
        {
            return Err(HttpError::Fatal(anyhow!(
                "{} points to token realm {realm:?}, which is not https (use --insecure-http to allow it)",
                scope.registry
            )));
        }
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
        let mut resp = self.send(method, &url, headers, auth.as_ref(), &mut { body })?;
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
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(HttpError::from)
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
    fn loopback_only_is_plain_http() {
        let c = Client::with_env(false, Box::new(|_| None)).unwrap();
        assert_eq!(c.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(c.base_url("localhost"), "http://localhost");
        assert_eq!(c.base_url("reg.example"), "https://reg.example");
        let c = Client::with_env(true, Box::new(|_| None)).unwrap();
        assert_eq!(c.base_url("reg.example"), "http://reg.example");
    }
}
