//! File metadata of a layer's entries: mode, owner, user and group names, mtime and pax
//! records (xattrs such as `security.capability`), as a layer-wide default and per path or
//! path pattern.
//!
//! The rules write one JSON object per setting (`FileMetadata`, what `file_metadata()` in
//! Starlark encodes). Precedence, field by field: the built-in defaults (mode 0644/0755, root,
//! mtime 0), then `--default-metadata` (entries the layer was given and their contents, not
//! implicit parent directories; its `mode` applies to regular files only), then patterns in
//! the order given, then exact paths. Every exact path must be in the layer and every pattern
//! must match something, so a typo fails the build instead of being ignored.

use anyhow::{Context, Result, anyhow, bail};
use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Pax record keys the tar writer derives from the entry itself; setting them by hand would
/// contradict the header (or, for `path`, move the entry).
const RESERVED_KEYS: &[&str] = &[
    "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime",
];

/// The xattr that holds file capabilities.
const CAPABILITY_XATTR: &str = "SCHILY.xattr.security.capability";

/// What one `--default-metadata` or `--file-metadata` value sets; absent fields are unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMetadata {
    /// Octal permission bits, e.g. "0755" (setuid/setgid/sticky allowed: at most 07777).
    pub mode: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub uname: Option<String>,
    pub gname: Option<String>,
    /// Seconds since the Unix epoch, or an RFC 3339 UTC time ("2024-05-01T12:00:00Z").
    pub mtime: Option<Mtime>,
    /// Extra pax records, e.g. {"SCHILY.xattr.user.origin": "build"} (values are text).
    #[serde(default)]
    pub pax_records: BTreeMap<String, String>,
    /// File capabilities (permitted and effective), e.g. ["cap_net_bind_service"].
    #[serde(default)]
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Mtime {
    Seconds(u64),
    Time(String),
}

/// The metadata a tar entry is written with (besides its mode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryMeta {
    pub uid: u32,
    pub gid: u32,
    pub uname: String,
    pub gname: String,
    pub mtime: u64,
    /// Pax records by key (xattrs as `SCHILY.xattr.<name>`).
    pub records: BTreeMap<String, Vec<u8>>,
}

/// One validated `FileMetadata`: every field checked and converted once.
#[derive(Debug, Clone, Default)]
struct Setting {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    uname: Option<String>,
    gname: Option<String>,
    mtime: Option<u64>,
    records: BTreeMap<String, Vec<u8>>,
    /// The setting sets file capabilities (only regular files may have them).
    capabilities: bool,
}

struct Rule {
    /// The path or pattern as the user wrote it, for messages.
    given: String,
    setting: Setting,
}

/// The node kinds metadata cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// The metadata settings of one layer.
#[derive(Default)]
pub struct MetadataRules {
    default: Setting,
    /// Globs on the absolute path: `*` and `?` stay within a component, `**` spans several.
    patterns: Vec<(GlobMatcher, Rule)>,
    /// Exact paths by normalized path (no leading `/`), looked up once per entry.
    paths: BTreeMap<String, Rule>,
}

/// Whether a `--file-metadata` key is a pattern rather than a path.
fn is_pattern(key: &str) -> bool {
    key.contains(['*', '?', '[', '{'])
}

impl MetadataRules {
    /// Parses `--default-metadata JSON` and `--file-metadata /path-or-pattern<TAB>JSON`.
    pub fn parse(default: Option<&str>, files: &[String]) -> Result<MetadataRules> {
        let mut rules = MetadataRules::default();
        if let Some(json) = default {
            rules.default = Setting::parse(json).context("--default-metadata")?;
        }
        for spec in files {
            let (key, json) = spec.split_once('\t').ok_or_else(|| {
                anyhow!("--file-metadata {spec:?} must have the form /path<TAB>JSON")
            })?;
            let setting =
                Setting::parse(json).with_context(|| format!("file metadata of {key}"))?;
            let rule = Rule {
                given: key.to_string(),
                setting,
            };
            if is_pattern(key) {
                if !key.starts_with('/') {
                    bail!("file metadata pattern {key:?} must be absolute (start with /)");
                }
                let glob = GlobBuilder::new(key)
                    .literal_separator(true)
                    .build()
                    .with_context(|| format!("file metadata pattern {key:?}"))?;
                rules.patterns.push((glob.compile_matcher(), rule));
            } else {
                let path = super::plan::normalize_image_path(key)
                    .with_context(|| format!("file metadata path {key:?}"))?;
                if rules.paths.insert(path.clone(), rule).is_some() {
                    bail!("file metadata names /{path} twice");
                }
            }
        }
        Ok(rules)
    }

    /// Applies the settings to every entry: `(key, kind, implicit, mode, meta)` for each,
    /// where `implicit` marks parent directories the layer added on its own.
    pub fn apply<'a, I>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator<Item = (&'a str, Kind, bool, &'a mut u32, &'a mut EntryMeta)>,
    {
        let mut used = vec![false; self.patterns.len()];
        let mut found = std::collections::BTreeSet::new();
        for (key, kind, implicit, mode, meta) in entries {
            if !implicit {
                self.default.apply_to(key, kind, mode, meta, true)?;
            }
            if !self.patterns.is_empty() {
                let abs = format!("/{key}");
                for (i, (glob, rule)) in self.patterns.iter().enumerate() {
                    if glob.is_match(&abs) {
                        used[i] = true;
                        rule.setting
                            .apply_to(key, kind, mode, meta, false)
                            .with_context(|| format!("file metadata pattern {}", rule.given))?;
                    }
                }
            }
            if let Some(rule) = self.paths.get(key) {
                found.insert(key);
                rule.setting.apply_to(key, kind, mode, meta, false)?;
            }
        }
        if let Some(i) = used.iter().position(|u| !u) {
            bail!(
                "file metadata pattern {} matches no path in the layer",
                self.patterns[i].1.given
            );
        }
        if let Some((_, rule)) = self.paths.iter().find(|(p, _)| !found.contains(p.as_str())) {
            bail!(
                "file metadata names {}, which is not in the layer",
                rule.given
            );
        }
        Ok(())
    }
}

impl Setting {
    fn parse(json: &str) -> Result<Setting> {
        let de = &mut serde_json::Deserializer::from_str(json);
        let m: FileMetadata = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow!("malformed file metadata {json}: {e}"))?;
        let mode = m
            .mode
            .as_deref()
            .map(|v| {
                u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777 && !v.is_empty())
                    .ok_or_else(|| anyhow!("mode {v:?} is not an octal mode <= 07777"))
            })
            .transpose()?;
        for (what, name) in [("uname", &m.uname), ("gname", &m.gname)] {
            if let Some(n) = name
                && n.contains(['\0', '\n'])
            {
                bail!("{what} {n:?} contains a NUL or newline");
            }
        }
        let mtime = m.mtime.as_ref().map(Mtime::seconds).transpose()?;
        let mut records = BTreeMap::new();
        for (key, value) in &m.pax_records {
            if key.is_empty() || key.contains(['=', '\0', '\n']) {
                bail!("pax record key {key:?} must be non-empty without '=', NUL or newline");
            }
            if RESERVED_KEYS.contains(&key.as_str()) {
                bail!(
                    "pax record {key:?} is written from the entry itself; set it with the \
                     mode/uid/gid/uname/gname/mtime fields instead"
                );
            }
            records.insert(key.clone(), value.as_bytes().to_vec());
        }
        if !m.capabilities.is_empty() {
            if records.contains_key(CAPABILITY_XATTR) {
                bail!("both `capabilities` and the pax record {CAPABILITY_XATTR} are set");
            }
            records.insert(CAPABILITY_XATTR.into(), capability_xattr(&m.capabilities)?);
        }
        Ok(Setting {
            mode,
            uid: m.uid,
            gid: m.gid,
            uname: m.uname,
            gname: m.gname,
            mtime,
            capabilities: !m.capabilities.is_empty(),
            records,
        })
    }

    /// Sets what this setting sets. A layer-wide default's mode is for regular files only.
    fn apply_to(
        &self,
        key: &str,
        kind: Kind,
        mode: &mut u32,
        meta: &mut EntryMeta,
        default: bool,
    ) -> Result<()> {
        if self.capabilities && kind != Kind::File {
            bail!("/{key} is a {kind:?}, but only regular files can have capabilities");
        }
        if let Some(m) = self.mode
            && (!default || kind == Kind::File)
        {
            *mode = m;
        }
        if let Some(u) = self.uid {
            meta.uid = u;
        }
        if let Some(g) = self.gid {
            meta.gid = g;
        }
        if let Some(n) = &self.uname {
            meta.uname.clone_from(n);
        }
        if let Some(n) = &self.gname {
            meta.gname.clone_from(n);
        }
        if let Some(t) = self.mtime {
            meta.mtime = t;
        }
        for (k, v) in &self.records {
            meta.records.insert(k.clone(), v.clone());
        }
        Ok(())
    }
}

impl Mtime {
    fn seconds(&self) -> Result<u64> {
        match self {
            Mtime::Seconds(s) => Ok(*s),
            Mtime::Time(t) => {
                let at = humantime::parse_rfc3339(t)
                    .map_err(|e| anyhow!("mtime {t:?} is not an RFC 3339 UTC time: {e}"))?;
                let secs = at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|_| anyhow!("mtime {t:?} is before 1970"))?;
                Ok(secs.as_secs())
            }
        }
    }
}

/// Linux capability names by number (linux/capability.h), without the `cap_` prefix.
const CAPABILITIES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The `security.capability` value (`struct vfs_cap_data`, revision 2) granting `names` as
/// permitted and effective capabilities, what `setcap cap_x=ep` writes.
pub fn capability_xattr(names: &[String]) -> Result<Vec<u8>> {
    const REVISION_2: u32 = 0x0200_0000;
    const EFFECTIVE: u32 = 0x1;
    let mut permitted = 0u64;
    for name in names {
        let lower = name.to_ascii_lowercase();
        let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
        let bit = CAPABILITIES
            .iter()
            .position(|c| *c == bare)
            .ok_or_else(|| {
                anyhow!("unknown capability {name:?} (expected e.g. \"cap_net_bind_service\")")
            })?;
        permitted |= 1 << bit;
    }
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&(REVISION_2 | EFFECTIVE).to_le_bytes());
    // data[0] (capabilities 0-31) then data[1] (32-63): permitted, then inheritable (none).
    out.extend_from_slice(&(permitted as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&((permitted >> 32) as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    Ok(out)
}
