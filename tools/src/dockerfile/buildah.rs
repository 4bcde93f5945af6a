//! Buildah as this action's private builder: its own storage (vfs) and configuration in a
//! scratch directory, so nothing of the machine's image store, registries.conf or
//! policy.json takes part, and nothing is left behind.
//!
//! Steps run with chroot isolation, which needs no OCI runtime and works inside a Bazel
//! sandbox; with chroot, `RUN` shares the action's network namespace, so "no network" is a
//! new, empty network namespace for the whole build (`unshare --net`).

use crate::io::untrusted::quoted;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Buildah {
    exe: PathBuf,
    root: PathBuf,
    env: Vec<(&'static str, PathBuf)>,
    policy: PathBuf,
}

/// What buildah prints when a `FROM` image is not in its store and may not be pulled.
const MISSING_IMAGE: [&str; 3] = [
    "image not known",
    "pull policy is \"never\"",
    "no such image",
];

impl Buildah {
    /// A builder whose storage and configuration live under `dir` (created).
    pub fn new(exe: &Path, dir: &Path) -> Result<Buildah> {
        let root = dir.join("storage");
        let run = dir.join("run");
        let tmp = dir.join("tmp");
        for d in [&root, &run, &tmp] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let storage_conf = dir.join("storage.conf");
        let registries_conf = dir.join("registries.conf");
        let policy = dir.join("policy.json");
        let containers_conf = dir.join("containers.conf");
        let files = [
            // The defaults, not the machine's settings.
            (&containers_conf, "[containers]\n[engine]\n".to_string()),
            (
                &storage_conf,
                format!(
                    "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                    root.display(),
                    run.display()
                ),
            ),
            // Bases come only from this store: no name resolves through a registry.
            (
                &registries_conf,
                "unqualified-search-registries = []\nshort-name-mode = \"permissive\"\n".into(),
            ),
            (
                &policy,
                r#"{"default":[{"type":"insecureAcceptAnything"}]}"#.into(),
            ),
        ];
        for (path, text) in files {
            std::fs::write(path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(Buildah {
            exe: exe.to_path_buf(),
            root,
            env: vec![
                ("CONTAINERS_STORAGE_CONF", storage_conf),
                ("CONTAINERS_REGISTRIES_CONF", registries_conf),
                ("CONTAINERS_CONF", containers_conf),
                ("TMPDIR", tmp),
                ("HOME", dir.to_path_buf()),
            ],
            policy,
        })
    }

    fn command(&self, isolate_network: bool) -> Command {
        let mut c = if isolate_network {
            let mut c = Command::new("unshare");
            c.arg("--net").arg(&self.exe);
            c
        } else {
            Command::new(&self.exe)
        };
        c.arg("--root")
            .arg(&self.root)
            .arg("--storage-driver")
            .arg("vfs");
        c.env_remove("BUILDAH_LAYERS").env_remove("BUILDAH_FORMAT");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, what: &str, mut c: Command) -> Result<Output> {
        let shown = std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let out = c.output().with_context(|| match c.get_program() {
            p if p == "unshare" => "cannot run `unshare` (util-linux) for a build without network".into(),
            _ => format!(
                "cannot run buildah ({}): dockerfile_image needs Buildah on the machine that runs the action",
                self.exe.display()
            ),
        })?;
        if !out.status.success() {
            let output = [last(&out.stdout, 4000), last(&out.stderr, 8000)].concat();
            let text = quoted(&output);
            let hint = if MISSING_IMAGE.iter().any(|m| text.contains(m)) {
                "\nA FROM image is not one of the bases: every image the Dockerfile names in FROM \
                 (or COPY --from) must be a key of `base`, written the same way."
            } else if text.contains("unshare") && text.contains("Operation not permitted") {
                "\nA build without network needs a new network namespace (root, or a user \
                 namespace that allows it)."
            } else {
                ""
            };
            bail!("{what} failed ({}): {shown}\n{text}{hint}", out.status);
        }
        Ok(out)
    }

    /// Puts the image of the OCI layout `layout` into the store under `name`.
    pub fn add_base(&self, layout: &Path, name: &str) -> Result<()> {
        let mut pull = self.command(false);
        pull.arg("pull")
            .arg("--quiet")
            .arg("--signature-policy")
            .arg(&self.policy)
            .arg(oci_ref(layout));
        let out = self.run(&format!("loading base {name:?}"), pull)?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut tag = self.command(false);
        tag.arg("tag").arg(&id).arg(name);
        self.run(&format!("naming base {name:?}"), tag)?;
        Ok(())
    }

    /// Builds `dockerfile` in `context` as `tag` with `flags` (after `build`).
    pub fn build(
        &self,
        dockerfile: &Path,
        context: &Path,
        tag: &str,
        flags: &[OsString],
        network: bool,
    ) -> Result<()> {
        let mut c = self.command(!network);
        c.arg("build")
            .args([
                "--isolation",
                "chroot",
                "--pull=never",
                "--layers=false",
                "--identity-label=false",
                "--format",
                "oci",
            ])
            .arg("--signature-policy")
            .arg(&self.policy)
            .args(ulimits())
            .args(flags)
            .arg("-f")
            .arg(dockerfile)
            .arg("-t")
            .arg(tag)
            .arg(context);
        self.run("the Dockerfile build", c).map(drop)
    }

    /// Writes `tag` as an OCI layout (layers uncompressed) to `dir`.
    pub fn export(&self, tag: &str, dir: &Path) -> Result<()> {
        let mut c = self.command(false);
        c.arg("push")
            .arg("--quiet")
            .arg("--disable-compression")
            .arg("--signature-policy")
            .arg(&self.policy)
            .arg(tag)
            .arg(oci_ref(dir));
        self.run("exporting the built image", c).map(drop)
    }
}

fn oci_ref(dir: &Path) -> OsString {
    let mut r = OsString::from("oci:");
    r.push(dir);
    r
}

/// Buildah raises the open-file and process limits of steps to its defaults, which a process
/// may not do above its hard limits: ask for the limits this process has.
fn ulimits() -> Vec<String> {
    let show = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            "-1".to_string()
        } else {
            v.to_string()
        }
    };
    let mut out = Vec::new();
    for (name, resource) in [
        ("nofile", libc::RLIMIT_NOFILE),
        ("nproc", libc::RLIMIT_NPROC),
    ] {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct it is given.
        if unsafe { libc::getrlimit(resource, &mut l) } == 0 {
            out.push(format!(
                "--ulimit={name}={}:{}",
                show(l.rlim_cur),
                show(l.rlim_max)
            ));
        }
    }
    out
}

/// The last `n` bytes of a program's output, where its error is.
fn last(bytes: &[u8], n: usize) -> &[u8] {
    &bytes[bytes.len().saturating_sub(n)..]
}
