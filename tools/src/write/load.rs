//! `load`: streams the image tarball straight into `docker load` / `podman load` (no temp file).

use super::tarball;
use crate::input::{Image, Input};
use crate::io::output::BUF_SIZE;
use crate::oci::Platform;
use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufWriter, ErrorKind};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Daemon {
    Docker,
    Podman,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Docker => "docker",
            Daemon::Podman => "podman",
        }
    }

    /// The client binary, overridable for tests and unusual installs.
    pub fn binary(self) -> String {
        let var = match self {
            Daemon::Docker => "RULES_IMAGE_DOCKER",
            Daemon::Podman => "RULES_IMAGE_PODMAN",
        };
        std::env::var(var)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.name().into())
    }
}

/// Loads the image, or the image of an index for `platform` (os/arch[/variant]; default: the
/// host's): an engine runs images of one platform, and docker's classic store keeps one image
/// per tag.
pub fn run(daemon: Daemon, input: Input, platform: Option<&str>, tags: &[String]) -> Result<()> {
    run_with(&daemon.binary(), daemon, choose(input, platform)?, tags)
}

fn choose(input: Input, platform: Option<&str>) -> Result<Image> {
    let want = match platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    input.into_platform(&want)
}

/// Runs `<bin> load` with the image tar on its stdin.
fn run_with(bin: &str, daemon: Daemon, image: Image, tags: &[String]) -> Result<()> {
    let mut child = Command::new(bin)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                anyhow!(
                    "cannot run `{bin} load`: {bin} was not found on PATH; install {} (and make sure its daemon is running) or set RULES_IMAGE_{}",
                    daemon.name(),
                    daemon.name().to_uppercase()
                )
            } else {
                anyhow!("cannot run `{bin} load`: {e}")
            }
        })?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let out = BufWriter::with_capacity(BUF_SIZE, stdin);
    // Docker's classic image store cannot apply zstd layers: give it plain tars instead.
    let written = if daemon == Daemon::Docker && image.has_zstd_layers() {
        tarball::write_docker_archive(&image, tags, out)
    } else {
        tarball::write(&Input::Image(image), tags, out)
    };
    let written = written.and_then(|w| {
        w.into_inner()
            .map(drop)
            .map_err(|e| anyhow::Error::new(e.into_error()))
    });
    // Closing stdin (done: the writer was consumed or dropped) ends the stream. On our own
    // error (e.g. a blob digest mismatch) stop the loader so it cannot import a partial image.
    if let Err(e) = &written {
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
        });
        if !broken_pipe {
            let _ = child.kill();
            let _ = child.wait();
            return written.with_context(|| format!("streaming the image into `{bin} load`"));
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{bin} load`"))?;
    if !status.success() {
        let hint = match daemon {
            Daemon::Docker => "the Docker daemon must be running and reachable by this user",
            Daemon::Podman => "podman must be able to reach its storage",
        };
        bail!("`{bin} load` failed ({status}); {hint}");
    }
    // A write error with a successful loader (unlikely) is still an error: say what broke.
    written.with_context(|| format!("streaming the image into `{bin} load`"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::tests::{sample_image, sample_index};

    fn script(dir: &std::path::Path, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake-docker");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_string()
    }

    fn image(input: Input) -> Image {
        match input {
            Input::Image(i) => i,
            Input::Index(_) => panic!("an index"),
        }
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
