//! The assertions of an `image_test`, as the rule writes them (`--spec`, JSON): the contract
//! with `rules/private/rules/image_test.bzl`, whose `file_assertion` and `config_assertion`
//! make the objects below. Unknown fields are errors, so a misspelt assertion cannot pass
//! by being ignored. `run_assertion` makes the objects of `run`, checked by `container`.

use crate::oci::Platform;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The image's label as users write it, for messages.
    pub image: String,
    /// Absolute path in the image -> what must hold of it.
    #[serde(default)]
    pub files: BTreeMap<String, FileAssertions>,
    #[serde(default)]
    pub config: ConfigAssertions,
    /// Commands to run in containers of the image; none: no engine is used.
    #[serde(default)]
    pub run: Vec<RunAssertions>,
}

/// What must hold of one path. No field but `absent`: the path must exist.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAssertions {
    /// The path must not exist (no other field may be given).
    #[serde(default)]
    pub absent: bool,
    #[serde(rename = "type")]
    pub kind: Option<FileType>,
    pub mode: Option<Mode>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub uname: Option<String>,
    pub gname: Option<String>,
    /// Bytes of a regular file.
    pub size: Option<u64>,
    /// A symlink's target as stored, or a hard link's target path.
    pub link_target: Option<String>,
    /// Substrings the file's content must each contain.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Regular expressions (`regex` syntax) that must each match somewhere in the content.
    #[serde(default)]
    pub matches: Vec<Pattern>,
}

/// The type of a path. A hard link is also a `file` (it is one, on disk); `hardlink` asserts
/// that the layer wrote the path as a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Dir,
    Symlink,
    Hardlink,
    Fifo,
}

impl FileType {
    pub fn name(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Dir => "dir",
            FileType::Symlink => "symlink",
            FileType::Hardlink => "hardlink",
            FileType::Fifo => "fifo",
        }
    }
}

/// Permission bits (with setuid, setgid, sticky), written as an octal string: "0755".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let s = String::deserialize(d)?;
        match u32::from_str_radix(&s, 8) {
            Ok(m) if m <= 0o7777 && !s.is_empty() && !s.starts_with('+') => Ok(Mode(m)),
            _ => Err(serde::de::Error::custom(format!(
                "mode {s:?} is not an octal string of at most 0o7777, like \"0755\""
            ))),
        }
    }
}

/// A compiled regular expression over bytes (so binaries can be matched too).
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::bytes::Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        let s = String::deserialize(d)?;
        regex::bytes::Regex::new(&s)
            .map(Pattern)
            .map_err(|e| serde::de::Error::custom(format!("regular expression {s:?}: {e}")))
    }
}

/// What must hold of the config. Lists are compared whole; `env`, `labels` and
/// `exposed_ports` are subsets that must be present.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigAssertions {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// "" asserts that no user is set.
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `port[/protocol]`; a port without a protocol is tcp, as in Docker.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `os/arch[/variant]`, matched as `Platform::same` does (default variants filled in).
    #[serde(default, deserialize_with = "platform")]
    pub platform: Option<Platform>,
}

/// A command run in a container of the image (`docker run --rm --network none`), and what
/// must hold of what it did.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunAssertions {
    /// The arguments after the image: they replace the image's cmd; empty: the image's cmd.
    #[serde(default)]
    pub command: Vec<String>,
    /// Replaces the image's entrypoint (and drops its cmd, as `docker run --entrypoint`
    /// does); `[]` runs `command` alone.
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub stdout_contains: Vec<String>,
    #[serde(default)]
    pub stdout_matches: Vec<Pattern>,
    #[serde(default)]
    pub stderr_contains: Vec<String>,
    #[serde(default)]
    pub stderr_matches: Vec<Pattern>,
    /// `--user`: a name or uid, optionally `:group`.
    pub user: Option<String>,
    /// `--env`: set in the container, over the image's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `--workdir`.
    pub working_dir: Option<String>,
    /// Seconds the command may run; then its container is removed and its assertions fail.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

/// The default of `timeout` (as run_assertion's).
pub const DEFAULT_RUN_TIMEOUT: u64 = 60;

fn default_timeout() -> u64 {
    DEFAULT_RUN_TIMEOUT
}

fn platform<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Platform>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => Platform::parse(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl Spec {
    pub fn read(path: &Path) -> Result<Spec> {
        let spec: Spec = crate::oci::json::read(path, "image_test spec")?;
        spec.check()
            .with_context(|| format!("malformed image_test spec {}", path.display()))?;
        Ok(spec)
    }

    /// The checks serde cannot express.
    pub fn check(&self) -> Result<()> {
        for (path, a) in &self.files {
            path_key(path).with_context(|| format!("files[{path:?}]"))?;
            if a.absent && a.assertion_count() > 1 {
                bail!("files[{path:?}]: `absent` cannot be combined with other assertions");
            }
        }
        for (i, r) in self.run.iter().enumerate() {
            r.check().with_context(|| format!("run[{i}]"))?;
        }
        Ok(())
    }

    /// How many assertions the spec makes of one image.
    pub fn assertion_count(&self) -> usize {
        self.files
            .values()
            .map(FileAssertions::assertion_count)
            .sum::<usize>()
            + self.config.assertion_count()
    }

    /// How many assertions `run` makes (of the one image it runs).
    pub fn run_assertion_count(&self) -> usize {
        self.run.iter().map(RunAssertions::assertion_count).sum()
    }
}

impl FileAssertions {
    /// Existence (or absence) is one assertion, and so is every other field given.
    pub fn assertion_count(&self) -> usize {
        let set = [
            self.kind.is_some(),
            self.mode.is_some(),
            self.uid.is_some(),
            self.gid.is_some(),
            self.uname.is_some(),
            self.gname.is_some(),
            self.size.is_some(),
            self.link_target.is_some(),
        ];
        1 + set.iter().filter(|&&s| s).count() + self.contains.len() + self.matches.len()
    }

    /// Whether checking this needs the file's bytes.
    pub fn needs_content(&self) -> bool {
        !self.contains.is_empty() || !self.matches.is_empty()
    }
}

impl ConfigAssertions {
    pub fn assertion_count(&self) -> usize {
        let set = [
            self.entrypoint.is_some(),
            self.cmd.is_some(),
            self.user.is_some(),
            self.working_dir.is_some(),
            self.platform.is_some(),
        ];
        set.iter().filter(|&&s| s).count()
            + self.env.len()
            + self.exposed_ports.len()
            + self.labels.len()
    }
}

impl RunAssertions {
    /// The exit code is one assertion, and so is every substring and pattern.
    pub fn assertion_count(&self) -> usize {
        1 + self.stdout_contains.len()
            + self.stdout_matches.len()
            + self.stderr_contains.len()
            + self.stderr_matches.len()
    }

    fn check(&self) -> Result<()> {
        if !(0..=255).contains(&self.exit_code) {
            bail!(
                "exit_code {} is not an exit code (0 to 255)",
                self.exit_code
            );
        }
        if self.timeout == 0 {
            bail!("timeout must be at least 1 second");
        }
        if self.entrypoint.as_ref().is_some_and(Vec::is_empty) && self.command.is_empty() {
            bail!("entrypoint = [] runs `command` alone, but there is no command");
        }
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') {
                bail!("env: {k:?} is not a variable name");
            }
        }
        Ok(())
    }
}

/// An absolute path of the spec as a key of the image's tree.
pub fn path_key(path: &str) -> Result<Vec<u8>> {
    Ok(crate::build::layer::normalize_image_path(path)?.into_bytes())
}
