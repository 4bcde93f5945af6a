//! `load`: streams the image into a local engine with no temporary file: the tarball into
//! `docker load` / `podman load`, or, for containerd, the tarball without the layers its
//! content store already has into `ctr images import` (`containerd`).

use super::{containerd, tarball};
use crate::input::{Image, Input};
use crate::io::output::{self, BUF_SIZE};
use crate::oci::{Platform, json};
use anyhow::{Context, Result, anyhow, bail};
use std::ffi::OsStr;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Daemon {
    Docker,
    Podman,
    Containerd,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Docker => "docker",
            Daemon::Podman => "podman",
            Daemon::Containerd => "containerd",
        }
    }

    /// The variable that names the client binary, for tests and unusual installs.
    fn binary_var(self) -> &'static str {
        match self {
            Daemon::Docker => "RULES_IMAGE_DOCKER",
            Daemon::Podman => "RULES_IMAGE_PODMAN",
            Daemon::Containerd => "RULES_IMAGE_CTR",
        }
    }

    /// The client binary: `docker`, `podman` or `ctr` from PATH unless its variable is set.
    pub(crate) fn binary(self) -> String {
        let default = match self {
            Daemon::Containerd => "ctr",
            d => d.name(),
        };
        std::env::var(self.binary_var())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| default.into())
    }
}

/// What `load` is asked to do besides the image.
pub struct LoadOptions<'a> {
    pub daemon: Daemon,
    /// For an index: the image to load (os/arch[/variant]); default: the host's.
    pub platform: Option<&'a str>,
    pub tags: &'a [String],
    /// containerd only: the namespace (default: $CONTAINERD_NAMESPACE, else `default`).
    pub namespace: Option<&'a str>,
    /// containerd only: where to write what was sent, as JSON.
    pub summary_json: Option<&'a Path>,
}

/// Loads the image, or the image of an index for the platform: an engine runs images of one
/// platform, and docker's classic store keeps one image per tag.
pub fn run(o: &LoadOptions, input: Input) -> Result<()> {
    let image = choose(input, o.platform)?;
    let bin = o.daemon.binary();
    if o.daemon != Daemon::Containerd {
        if o.namespace.is_some() || o.summary_json.is_some() {
            bail!("--namespace and --summary-json are for --daemon containerd");
        }
        return run_with(&bin, o.daemon, image, o.tags);
    }
    let ctr = containerd::Ctr::new(bin, o.namespace);
    let summary = containerd::load(&ctr, &image, o.tags)?;
    eprintln!("{summary}");
    if let Some(p) = o.summary_json {
        output::write_all_atomic(&[(p, &json::canonical(&summary))])?;
    }
    Ok(())
}

fn choose(input: Input, platform: Option<&str>) -> Result<Image> {
    let want = match platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    input.into_platform(&want)
}

/// Runs `<bin> load` with the image tar on its stdin (docker or podman; also image_test's
/// `run`, verify/container.rs).
pub(crate) fn run_with(bin: &str, daemon: Daemon, image: Image, tags: &[String]) -> Result<()> {
    let mut cmd = Command::new(bin);
    cmd.arg("load").stdout(Stdio::inherit());
    // Docker's classic image store cannot apply zstd layers: give it plain tars instead.
    let plain = daemon == Daemon::Docker && image.has_zstd_layers();
    let streamed = stream_into(&mut cmd, daemon, Stderr::Inherit, |w| {
        if plain {
            tarball::write_docker_archive(&image, tags, w).map(drop)
        } else {
            tarball::write(&Input::Image(image), tags, w).map(drop)
        }
    })?;
    if !streamed.status.success() {
        let hint = match daemon {
            Daemon::Docker => "the Docker daemon must be running and reachable by this user",
            _ => "podman must be able to reach its storage",
        };
        bail!("`{bin} load` failed ({}); {hint}", streamed.status);
    }
    Ok(())
}

/// A command as messages show it: its program and first arguments.
pub(crate) fn shown_command(cmd: &Command) -> String {
    const SHOWN_ARGS: usize = 10;
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    let args: Vec<&OsStr> = cmd.get_args().collect();
    words.extend(
        args.iter()
            .take(SHOWN_ARGS)
            .map(|a| a.to_string_lossy().into_owned()),
    );
    if args.len() > SHOWN_ARGS {
        words.push(format!("... ({} more arguments)", args.len() - SHOWN_ARGS));
    }
    words.join(" ")
}

/// Starts the engine's client; a missing one is named with the way to get or point to it.
pub(crate) fn spawn(cmd: &mut Command, daemon: Daemon) -> Result<Child> {
    cmd.spawn().map_err(|e| {
        let shown = shown_command(cmd);
        if e.kind() == ErrorKind::NotFound {
            let bin = cmd.get_program().to_string_lossy();
            let on_path = if bin.contains('/') { "" } else { " on PATH" };
            anyhow!(
                "cannot run `{shown}`: {bin} was not found{on_path}; install {} (and make sure its daemon is running) or set {}",
                daemon.name(),
                daemon.binary_var()
            )
        } else {
            anyhow!("cannot run `{shown}`: {e}")
        }
    })
}

/// Where a client's stderr goes: to ours, or kept (its end) for our error message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stderr {
    Inherit,
    Capture,
}

/// How much of a client's stderr is kept: its last bytes, where its error is.
const STDERR_TAIL: usize = 16 << 10;

/// Collects the last `STDERR_TAIL` bytes of `r` in a thread, so the client never blocks on a
/// full pipe however much it prints.
pub(super) fn tail_of(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * STDERR_TAIL {
                kept.drain(..kept.len() - STDERR_TAIL);
            }
        }
        if kept.len() > STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
        kept
    })
}

/// What a loader did with the stream.
pub(super) struct Streamed {
    pub status: ExitStatus,
    /// The end of its stderr (empty unless captured).
    pub stderr: Vec<u8>,
    /// Bytes of the stream it read.
    pub bytes: u64,
}

/// Runs `cmd` with `write`'s bytes on its stdin and waits for it. On our own error (e.g. a
/// blob whose digest does not match) the loader is killed while its stdin is still open, so
/// it never sees the stream end and cannot import a partial image. A broken pipe means the
/// loader stopped reading: its exit status says why.
pub(super) fn stream_into(
    cmd: &mut Command,
    daemon: Daemon,
    stderr: Stderr,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<Streamed> {
    cmd.stdin(Stdio::piped()).stderr(match stderr {
        Stderr::Inherit => Stdio::inherit(),
        Stderr::Capture => Stdio::piped(),
    });
    let shown = shown_command(cmd);
    let mut child = spawn(cmd, daemon)?;
    let err_tail = child.stderr.take().map(tail_of);
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut out = Counting {
        inner: BufWriter::with_capacity(BUF_SIZE, stdin),
        bytes: 0,
    };
    let written = write(&mut out).and_then(|()| Ok(out.flush()?));
    let context = || format!("streaming the image into `{shown}`");
    if let Err(e) = &written {
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
        });
        if !broken_pipe {
            let _ = child.kill();
            let _ = child.wait();
            return Err(written.with_context(context).unwrap_err());
        }
    }
    let bytes = out.bytes;
    // Closing stdin ends the stream.
    drop(out);
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{shown}`"))?;
    let stderr = err_tail
        .map(|t| t.join().unwrap_or_default())
        .unwrap_or_default();
    // A write error with a successful loader (unlikely) is still an error: say what broke.
    if status.success() {
        written.with_context(context)?;
    }
    Ok(Streamed {
        status,
        stderr,
        bytes,
    })
}

/// Counts the bytes written through it: what the loader was sent.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::tests::{image, sample_image, sample_index};

    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake-docker");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn streams_the_tarball_into_the_loader() {
        let (dir, input) = sample_image();
        let got = dir.path().join("received.tar");
        let bin = script(
            dir.path(),
            &format!("test \"$1\" = load || exit 3\ncat > '{}'", got.display()),
        );
        let tags = vec!["example.com/app:v1".to_string()];
        let want = tarball::write(&input, &tags, Vec::new()).unwrap();
        run_with(&bin, Daemon::Docker, image(input), &tags).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), want);
    }

    #[test]
    fn loader_failure_and_absence_are_clear_errors() {
        let (dir, input) = sample_image();
        let bin = script(
            dir.path(),
            "cat > /dev/null; echo 'Cannot connect to the Docker daemon' >&2; exit 1",
        );
        let e = format!(
            "{:#}",
            run_with(&bin, Daemon::Docker, image(input.clone()), &[]).unwrap_err()
        );
        assert!(
            e.contains("load` failed") && e.contains("daemon must be running"),
            "{e}"
        );
        // A loader that exits without reading: a broken pipe, reported as the loader's failure.
        let bin = script(dir.path(), "exit 2");
        let e = format!(
            "{:#}",
            run_with(&bin, Daemon::Podman, image(input.clone()), &[]).unwrap_err()
        );
        assert!(e.contains("failed"), "{e}");
        let e = format!(
            "{:#}",
            run_with("/no/such/docker", Daemon::Docker, image(input), &[]).unwrap_err()
        );
        assert!(
            e.contains("/no/such/docker") && e.contains("not found"),
            "{e}"
        );
    }

    #[test]
    fn an_index_loads_the_image_for_the_platform() {
        let (dir, idx) = sample_index();
        let got = dir.path().join("received.tar");
        let bin = script(
            dir.path(),
            &format!("test \"$1\" = load || exit 3\ncat > '{}'", got.display()),
        );
        let tags = vec!["app:v1".to_string()];
        for (platform, child) in [
            ("linux/arm64", 1),
            ("linux/arm64/v8", 1),
            ("linux/amd64", 0),
            ("linux/amd64/v1", 0),
        ] {
            let chosen = choose(idx.clone(), Some(platform)).unwrap();
            let want = tarball::write(&Input::Image(chosen.clone()), &tags, Vec::new()).unwrap();
            run_with(&bin, Daemon::Podman, chosen, &tags).unwrap();
            assert_eq!(std::fs::read(&got).unwrap(), want, "{platform}");
            let manifest = std::fs::read(dir.path().join(["m.json", "m-arm.json"][child])).unwrap();
            let hex = crate::oci::Digest::of(&manifest).hex();
            let entries = tar::Archive::new(&want[..])
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect::<Vec<_>>();
            assert!(
                entries.contains(&format!("blobs/sha256/{hex}")),
                "{platform}"
            );
        }
        // The host default is one of linux/amd64 and linux/arm64 on the machines we test on.
        if matches!(std::env::consts::ARCH, "x86_64" | "aarch64") {
            choose(idx.clone(), None).unwrap();
        }
        let e = format!("{:#}", choose(idx, Some("linux/s390x")).unwrap_err());
        assert_eq!(
            e,
            "no image for platform linux/s390x in the index; available: linux/amd64, linux/arm64/v8"
        );
    }
}
