//! Registry credentials (podman/skopeo auth files, docker config and credential helpers) and
//! `WWW-Authenticate` challenges. Secrets are wrapped in `Secret`, which never prints itself,
//! so no log line, error or output can carry one.

use crate::oci::reference::DOCKER_HUB;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A password or token. Debug and Display print `***`; only `expose` gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secrets {
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token realm.
    IdentityToken(Secret),
}

impl Secrets {
    /// `Authorization: Basic …` for registries (and token realms) that take passwords.
    pub fn basic_header(&self) -> Option<Secret> {
        match self {
            Secrets::Basic { username, password } => Some(Secret(format!(
                "Basic {}",
                B64.encode(format!("{username}:{}", password.expose()))
            ))),
            Secrets::IdentityToken(_) => None,
        }
    }
}

/// Credentials and where they were found (named in errors when a registry rejects them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub secrets: Secrets,
    pub source: String,
}

/// Looks up credentials for `registry` (host[:port]) in the usual places, in order:
/// `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`, then docker's
/// `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). The first file that has an
/// entry for the registry wins. `env` reads environment variables (injectable for tests).
pub fn lookup(registry: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Credential>> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE").filter(|s| !s.is_empty()) {
        files.push(f.into());
    }
    if let Some(d) = env("XDG_RUNTIME_DIR").filter(|s| !s.is_empty()) {
        files.push(Path::new(&d).join("containers/auth.json"));
    }
    if let Some(d) = env("DOCKER_CONFIG").filter(|s| !s.is_empty()) {
        files.push(Path::new(&d).join("config.json"));
    } else if let Some(h) = env("HOME").filter(|s| !s.is_empty()) {
        files.push(Path::new(&h).join(".docker/config.json"));
    }
    let key = normalize_key(registry);
    for file in files {
        let text = match std::fs::read(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read auth file {}", file.display()));
            }
        };
        let cfg: Value = serde_json::from_slice(&text)
            .with_context(|| format!("malformed auth file {}", file.display()))?;
        if let Some(c) = from_config(&cfg, &key, &file, env)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// `https://index.docker.io/v1/`, `docker.io`, `HOST:PORT/path` ... -> comparable host key.
fn normalize_key(k: &str) -> String {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

/// The server name a credential helper knows a registry by.
fn helper_server(key: &str) -> String {
    if key == "docker.io" {
        "https://index.docker.io/v1/".to_string()
    } else {
        key.to_string()
    }
}

fn from_config(
    cfg: &Value,
    key: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credential>> {
    let find = |section: &str| -> Option<&Value> {
        cfg.get(section)?
            .as_object()?
            .iter()
            .find(|(k, _)| normalize_key(k) == key)
            .map(|(_, v)| v)
    };
    if let Some(helper) = find("credHelpers").and_then(Value::as_str) {
        return run_helper(helper, key, env);
    }
    if let Some(entry) = find("auths") {
        let source = format!("auth file {}", file.display());
        let bad = || anyhow!("malformed entry for {key} in {source}");
        let s = |f: &str| {
            entry
                .get(f)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(tok) = s("identitytoken") {
            return Ok(Some(Credential {
                secrets: Secrets::IdentityToken(Secret::new(tok)),
                source,
            }));
        }
        if let Some(a) = s("auth") {
            let decoded = B64.decode(a.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(basic(u, p, source)));
        }
        if let (Some(u), Some(p)) = (s("username"), s("password")) {
            return Ok(Some(basic(u, p, source)));
        }
        // An empty entry (`"auths": {"reg": {}}`) is how docker records a credsStore login.
    }
    if let Some(store) = cfg.get("credsStore").and_then(Value::as_str)
        && !store.is_empty()
    {
        return run_helper(store, key, env);
    }
    Ok(None)
}

fn basic(u: &str, p: &str, source: String) -> Credential {
    Credential {
        secrets: Secrets::Basic {
            username: u.to_string(),
            password: Secret::new(p),
        },
        source,
    }
}

/// Runs `docker-credential-<helper> get` with the server name on stdin.
fn run_helper(
    helper: &str,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Credential>> {
    let name = format!("docker-credential-{helper}");
    let path = env("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("credential helper {name} (configured for {key}) is not on PATH"))?;
    let mut child = Command::new(&path)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run credential helper {}", path.display()))?;
    // Errors writing stdin surface as the helper's exit status below.
    let _ = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(helper_server(key).as_bytes());
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot run credential helper {}", path.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("not found")
            || String::from_utf8_lossy(&out.stderr).contains("not found")
        {
            return Ok(None);
        }
        // Helper output is not echoed: it could hold a secret.
        bail!("credential helper {name} failed for {key} ({})", out.status);
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| anyhow!("credential helper {name} printed malformed JSON for {key}"))?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    let source = format!("credential helper {name}");
    Ok(Some(if user == "<token>" {
        Credential {
            secrets: Secrets::IdentityToken(Secret::new(secret)),
            source,
        }
    } else {
        basic(user, secret, source)
    }))
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased: `basic` or `bearer`.
    pub scheme: String,
    /// Parameter names lowercased.
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="…",service="…",scope="repository:a:pull,push"` (quoted values may
/// hold commas; several challenges may share one header).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let s = header.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize, pred: &dyn Fn(u8) -> bool| {
        while *i < s.len() && pred(s[*i]) {
            *i += 1;
        }
    };
    let token = |b: u8| !b" \t,=\"".contains(&b);
    while i < s.len() {
        skip(&mut i, &|b| b == b' ' || b == b'\t' || b == b',');
        let start = i;
        skip(&mut i, &token);
        if start == i {
            i += 1;
            continue;
        }
        let word = header[start..i].to_string();
        let save = i;
        skip(&mut i, &|b| b == b' ' || b == b'\t');
        if i < s.len() && s[i] == b'=' && !out.is_empty() {
            // `name=value` belongs to the current challenge.
            i += 1;
            skip(&mut i, &|b| b == b' ' || b == b'\t');
            let mut value = String::new();
            if i < s.len() && s[i] == b'"' {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    value.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
            } else {
                let vs = i;
                skip(&mut i, &|b| b != b',' && b != b' ' && b != b'\t');
                value.push_str(&header[vs..i]);
            }
            let last = out.last_mut().expect("checked non-empty");
            last.params.insert(word.to_ascii_lowercase(), value);
        } else {
            i = save;
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

/// Percent-encodes a query component.
pub fn query_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The registry's name as credential files and helpers know it.
pub fn credential_key(registry: &str) -> String {
    if registry == DOCKER_HUB {
        "docker.io".to_string()
    } else {
        normalize_key(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn envf(vars: HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
        move |k| vars.get(k).cloned()
    }

    #[test]
    fn secrets_never_print() {
        let c = basic("me", "hunter2", "x".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        let h = c.secrets.basic_header().unwrap();
        assert_eq!(h.expose(), format!("Basic {}", B64.encode("me:hunter2")));
        assert!(!format!("{h:?}").contains("Basic"));
    }

    #[test]
    fn challenges() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.example.com/token");
        assert_eq!(c[0].params["service"], "registry.example.com");
        assert_eq!(c[0].params["scope"], "repository:a/b:pull,push");
        let c = parse_challenges(r#"Basic realm="Registry Realm", Bearer realm=x,service=y"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        assert_eq!(c[1].params["realm"], "x");
        assert_eq!(c[1].params["service"], "y");
        let c = parse_challenges(r#"basic REALM="a \"q\" b""#);
        assert_eq!(c[0].params["realm"], r#"a "q" b"#);
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn key_normalisation() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("registry-1.docker.io"), "docker.io");
        assert_eq!(
            normalize_key("http://Reg.example:5000/v2/"),
            "reg.example:5000"
        );
        assert_eq!(normalize_key("quay.io/org/repo"), "quay.io");
        assert_eq!(credential_key(DOCKER_HUB), "docker.io");
    }

    #[test]
    fn lookup_order_and_formats() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let auth_file = p.join("podman.json");
        std::fs::write(
            &auth_file,
            format!(
                r#"{{"auths":{{"a.example":{{"auth":"{}"}}}}}}"#,
                B64.encode("pu:pp")
            ),
        )
        .unwrap();
        std::fs::create_dir_all(p.join("home/.docker")).unwrap();
        std::fs::write(
            p.join("home/.docker/config.json"),
            r#"{"auths":{"https://a.example/v1/":{"username":"du","password":"dp"},
                "b.example:5000":{"username":"bu","password":"bp"},
                "https://index.docker.io/v1/":{"identitytoken":"idt"}}}"#,
        )
        .unwrap();
        let mut vars = HashMap::from([("HOME", p.join("home").display().to_string())]);
        let e = envf(vars.clone());
        let c = lookup("a.example", &e).unwrap().unwrap();
        assert_eq!(c.secrets, basic("du", "dp", String::new()).secrets);
        assert!(c.source.contains("config.json"));
        assert_eq!(
            lookup("b.example:5000", &e).unwrap().unwrap().secrets,
            basic("bu", "bp", String::new()).secrets
        );
        assert!(lookup("b.example", &e).unwrap().is_none());
        assert_eq!(
            lookup(DOCKER_HUB, &e).unwrap().unwrap().secrets,
            Secrets::IdentityToken(Secret::new("idt"))
        );
        // REGISTRY_AUTH_FILE comes first.
        vars.insert("REGISTRY_AUTH_FILE", auth_file.display().to_string());
        let e = envf(vars.clone());
        assert_eq!(
            lookup("a.example", &e).unwrap().unwrap().secrets,
            basic("pu", "pp", String::new()).secrets
        );
        // Falls through to docker's file for registries the first file lacks.
        assert!(lookup("b.example:5000", &e).unwrap().is_some());
        std::fs::write(&auth_file, "{not json").unwrap();
        let err = lookup("a.example", &envf(vars)).unwrap_err();
        assert!(format!("{err:#}").contains("podman.json"), "{err:#}");
    }

    #[cfg(unix)]
    #[test]
    fn credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let bin = p.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let script = bin.join("docker-credential-fake");
        std::fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\ncase \"$server\" in\n\
             h.example) echo '{\"ServerURL\":\"h.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}' ;;\n\
             https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"tok\"}' ;;\n\
             *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            p.join("config.json"),
            r#"{"credHelpers":{"h.example":"fake"},"credsStore":"fake","auths":{"o.example":{}}}"#,
        )
        .unwrap();
        let vars = HashMap::from([
            ("DOCKER_CONFIG", p.display().to_string()),
            ("PATH", format!("/nonexistent:{}", bin.display())),
        ]);
        let e = envf(vars);
        let c = lookup("h.example", &e).unwrap().unwrap();
        assert_eq!(c.secrets, basic("hu", "hs", String::new()).secrets);
        assert_eq!(c.source, "credential helper docker-credential-fake");
        assert_eq!(
            lookup(DOCKER_HUB, &e).unwrap().unwrap().secrets,
            Secrets::IdentityToken(Secret::new("tok"))
        );
        // credsStore answers "not found": anonymous.
        assert!(lookup("o.example", &e).unwrap().is_none());
        let no_path = envf(HashMap::from([("DOCKER_CONFIG", p.display().to_string())]));
        let err = lookup("h.example", &no_path).unwrap_err().to_string();
        assert!(err.contains("docker-credential-fake"), "{err}");
    }
}
