//! Image references: `host[:port]/path[:tag][@sha256:hex]`, normalised the way docker does
//! (no host means Docker Hub, whose single-component names live under `library/`).

use super::digest::Digest;
use anyhow::{Result, anyhow, bail};
use std::fmt;

/// Docker Hub's API host; `docker.io` and `index.docker.io` are aliases users write.
pub const DOCKER_HUB: &str = "registry-1.docker.io";

/// A repository on a registry (`127.0.0.1:5000/app`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repo {
    pub registry: String,
    pub repository: String,
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// A parsed reference; tag and digest are both optional (a repository alone is valid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub repo: Repo,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Repo {
    /// Normalises a registry host and repository path given separately (`--registry`,
    /// `--repository`).
    pub fn new(registry: &str, repository: &str) -> Result<Repo> {
        let registry = normalize_registry(registry);
        validate_registry(&registry)?;
        let mut repository = repository.to_string();
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        validate_repository(&repository)?;
        Ok(Repo {
            registry,
            repository,
        })
    }

    /// Parses `REGISTRY/REPOSITORY`, rejecting a tag or digest.
    pub fn parse(s: &str) -> Result<Repo> {
        let r = Reference::parse(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            bail!("{s:?} must be a repository (REGISTRY/REPOSITORY) without a tag or digest");
        }
        Ok(r.repo)
    }
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| anyhow!("invalid image reference {s:?}: {why}");
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d).map_err(|e| bad(&e))?)),
            None => (s, None),
        };
        // A tag is a `:` in the last path component (an earlier `:` is the registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(&format!("tag {t:?} is not a valid tag")));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first, rest),
            _ => ("docker.io", name),
        };
        if path.is_empty() {
            return Err(bad("no repository"));
        }
        let repo = Repo::new(registry, path).map_err(|e| bad(&format!("{e:#}")))?;
        Ok(Reference { repo, tag, digest })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn normalize_registry(r: &str) -> String {
    let r = r.to_ascii_lowercase();
    match r.as_str() {
        "docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
        _ => r,
    }
}

fn validate_registry(r: &str) -> Result<()> {
    let ok = !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    if !ok {
        bail!("registry {r:?} is not a valid host[:port]");
    }
    Ok(())
}

/// Path components are lowercase alphanumerics separated by `.`, `_`, `__` or dashes.
fn validate_repository(p: &str) -> Result<()> {
    for comp in p.split('/') {
        let b = comp.as_bytes();
        let ok = !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric();
        if !ok {
            bail!(
                "repository {p:?} is not valid (lowercase letters, digits and . _ - between them, separated by /)"
            );
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

/// The tag part of a reference (`reg:5000/app:v1` -> `v1`), `latest` when it has none.
pub fn tag_part(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rsplit_once(':').map_or("latest", |(_, t)| t)
}

/// `name[:tag]` in the fully qualified form containerd uses (`alpine` ->
/// `docker.io/library/alpine:latest`); digests are left as they are.
pub fn docker_qualified(name: &str) -> String {
    if name.contains('@') {
        return name.to_string();
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let tagged = if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    match tagged.split_once('/') {
        Some((first, _)) if looks_like_host(first) => tagged,
        Some(_) => format!("docker.io/{tagged}"),
        None => format!("docker.io/library/{tagged}"),
    }
}

/// Like docker: the first path component is a registry when it looks like a host.
fn looks_like_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// Registries reachable without TLS by default: loopback only.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(s).unwrap();
        (
            r.repo.registry,
            r.repo.repository,
            r.tag,
            r.digest.map(|d| d.to_string()),
        )
    }

    #[test]
    fn parses_and_normalises() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            p("127.0.0.1:5000/app:v1"),
            (
                "127.0.0.1:5000".into(),
                "app".into(),
                Some("v1".into()),
                None
            )
        );
        assert_eq!(
            p(&format!("localhost/a/b@{d}")),
            ("localhost".into(), "a/b".into(), None, Some(d.clone()))
        );
        assert_eq!(
            p(&format!("ghcr.io/o/r:t@{d}")),
            ("ghcr.io".into(), "o/r".into(), Some("t".into()), Some(d))
        );
        assert_eq!(
            p("ubuntu"),
            (DOCKER_HUB.into(), "library/ubuntu".into(), None, None)
        );
        assert_eq!(p("docker.io/ubuntu:22.04").1, "library/ubuntu".to_string());
        assert_eq!(p("user/app").0, DOCKER_HUB);
        assert_eq!(p("user/app").1, "user/app");
        assert_eq!(p("[::1]:5000/x").0, "[::1]:5000");
        assert_eq!(
            Repo::parse("localhost:5000/a/b").unwrap().to_string(),
            "localhost:5000/a/b"
        );
    }

    #[test]
    fn rejects_bad_references() {
        for s in [
            "",
            "reg.io/",
            "reg.io/App",
            "reg.io/a:b c",
            "reg.io/a@sha256:12",
            "reg.io/a//b",
            "reg.io/-a",
        ] {
            assert!(Reference::parse(s).is_err(), "{s:?}");
        }
        assert!(Repo::parse("reg.io/a:tag").is_err());
    }

    #[test]
    fn tags_and_loopback() {
        assert!(valid_tag("v1.0_rc-1"));
        assert!(valid_tag("_x"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(valid_tag(&"a".repeat(128)));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.2.1"));
        assert!(is_loopback("localhost:80"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("localhost.example.com"));
    }

    #[test]
    fn tag_parts_and_docker_names() {
        assert_eq!(tag_part("reg:5000/app:v1"), "v1");
        assert_eq!(tag_part("reg:5000/app"), "latest");
        assert_eq!(tag_part("app@sha256:abc"), "latest");
        assert_eq!(
            docker_qualified("alpine"),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(docker_qualified("alpine:3"), "docker.io/library/alpine:3");
        assert_eq!(docker_qualified("me/app:v1"), "docker.io/me/app:v1");
        assert_eq!(docker_qualified("reg:5000/app"), "reg:5000/app:latest");
        assert_eq!(docker_qualified("localhost/app:1"), "localhost/app:1");
    }
}
