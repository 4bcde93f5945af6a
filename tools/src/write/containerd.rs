//! `load` into containerd, through its CLI `ctr`: the namespace's content store is asked which
//! of the image's layers it has (`ctr content ls -q digest==...`), and the image tarball without
//! those layers is streamed into `ctr images import`. containerd's importer stores the blobs
//! it reads, resolves the index from its content store (where the omitted layers are) and
//! unpacks the image for the snapshotter (ctr's default, or CONTAINERD_SNAPSHOTTER). containerd
//! 2's ctr imports through the transfer service, which names the image only after that, so a
//! failed import leaves no half-loaded tag; our own failure kills ctr before the stream ends.

use super::load::{Daemon, Stderr, Streamed, shown_command, spawn, stream_into, tail_of};
use super::tarball;
use crate::input::{Image, Input};
use crate::io::untrusted::quoted;
use crate::oci::Digest;
use crate::oci::reference::{Reference, docker_qualified};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

/// ctr's default socket, used unless CONTAINERD_ADDRESS (read by ctr itself) names another.
const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";

/// A `ctr` client for one namespace.
pub struct Ctr {
    bin: String,
    namespace: String,
}

impl Ctr {
    /// `namespace`, else $CONTAINERD_NAMESPACE, else `default`: ctr's own order.
    pub fn new(bin: String, namespace: Option<&str>) -> Ctr {
        let namespace = namespace
            .map(str::to_string)
            .or_else(|| std::env::var("CONTAINERD_NAMESPACE").ok())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        Ctr { bin, namespace }
    }

    /// `ctr --namespace NS`, failing within 10 s when containerd does not answer. The address
    /// (CONTAINERD_ADDRESS) and snapshotter (CONTAINERD_SNAPSHOTTER) reach ctr in its
    /// environment.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--namespace", &self.namespace, "--connect-timeout", "10s"]);
        cmd
    }

    fn address() -> String {
        std::env::var("CONTAINERD_ADDRESS")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_ADDRESS.into())
    }

    fn reach_hint() -> String {
        format!(
            "containerd must be running and its socket {} reachable by this user (set CONTAINERD_ADDRESS for another)",
            Ctr::address()
        )
    }

    /// Which of `digests` the namespace's content store has. Filters on the digest ask only
    /// for ours (a store may hold many thousands of blobs); each argument is one alternative.
    fn present(&self, digests: &BTreeSet<Digest>) -> Result<BTreeSet<Digest>> {
        if digests.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut cmd = self.command();
        // A listing is quick: a containerd that does not answer in a minute is stuck.
        cmd.args(["--timeout", "60s", "content", "ls", "-q"])
            .args(digests.iter().map(|d| format!("digest=={d}")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let shown = shown_command(&cmd);
        let mut child = spawn(&mut cmd, Daemon::Containerd)?;
        let err_tail = tail_of(child.stderr.take().expect("stderr is piped"));
        // One digest a line is expected; what is read is bounded (4 KiB a line asked about),
        // and a line that is not one of our digests is not counted.
        let mut found = BTreeSet::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout.take((digests.len() as u64 + 1) * 4096));
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Ok(d) = Digest::parse(line.trim())
                && digests.contains(&d)
            {
                found.insert(d);
            }
            line.clear();
        }
        // Whatever is left is drained so ctr can exit.
        let _ = std::io::copy(&mut lines.into_inner().into_inner(), &mut std::io::sink());
        let status = child
            .wait()
            .with_context(|| format!("waiting for `{shown}`"))?;
        let stderr = err_tail.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "asking the content store which layers it has: `{shown}` failed ({status}):\n{}\n{}",
                quoted(&stderr),
                Ctr::reach_hint()
            );
        }
        Ok(found)
    }

    /// Streams the image tarball, less the blobs in `omit`, into `ctr images import`. The
    /// image's own platform is named: ctr otherwise imports (and unpacks) only the host's.
    fn import(&self, image: &Image, refs: &[String], omit: &BTreeSet<Digest>) -> Result<Import> {
        let mut cmd = self.command();
        cmd.args(["images", "import"]);
        if image.platform.is_image() {
            cmd.arg("--platform").arg(image.platform.to_string());
        }
        // ctr prints its progress on stdout; the summary replaces it.
        cmd.arg("-").stdout(Stdio::null());
        let shown = shown_command(&cmd);
        let input = Input::Image(image.clone());
        let streamed = stream_into(&mut cmd, Daemon::Containerd, Stderr::Capture, |w| {
            tarball::write_omitting(&input, refs, omit, w).map(drop)
        })?;
        Ok(Import { shown, streamed })
    }
}

struct Import {
    shown: String,
    streamed: Streamed,
}

/// What a containerd load moved; printed as one line, and written by `--summary-json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub references: Vec<String>,
    pub namespace: String,
    /// The image's distinct layers.
    pub layers: usize,
    pub layers_sent: usize,
    pub layers_present: usize,
    /// The whole stream ctr was sent: the tar of the index, manifest, config and layers sent.
    pub bytes_sent: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} into containerd namespace {}: {} of {} layers sent ({:.2} MiB), {} already present",
            self.references.join(", "),
            self.namespace,
            self.layers_sent,
            self.layers,
            self.bytes_sent as f64 / (1024.0 * 1024.0),
            self.layers_present
        )
    }
}

/// containerd names images in full (`docker.io/library/app:latest`), the form nerdctl, the CRI
/// and `ctr run` resolve: each tag is qualified the way Docker reads a short name.
pub fn references(tags: &[String]) -> Result<Vec<String>> {
    if tags.is_empty() {
        bail!(
            "loading into containerd needs a tag (`tag`, or `--tag` after `--`): containerd keeps no unnamed image"
        );
    }
    let mut refs = Vec::new();
    for t in tags {
        let parsed = Reference::parse(t)?;
        if parsed.digest.is_some() {
            bail!("tag {t:?} names a digest: a loaded image is named by repository and tag");
        }
        let name = docker_qualified(t);
        if !refs.contains(&name) {
            refs.push(name);
        }
    }
    Ok(refs)
}

/// Loads the image under `tags`, sending only the layers the namespace lacks.
pub fn load(ctr: &Ctr, image: &Image, tags: &[String]) -> Result<Summary> {
    let refs = references(tags)?;
    load_as(ctr, image, &refs).with_context(|| {
        format!(
            "loading {} into containerd namespace {}",
            refs.join(", "),
            ctr.namespace
        )
    })
}

fn load_as(ctr: &Ctr, image: &Image, refs: &[String]) -> Result<Summary> {
    let layers: BTreeSet<Digest> = image.parsed.layers.iter().map(|l| l.digest).collect();
    let present = ctr.present(&layers)?;
    let mut omitted = present;
    let mut import = ctr.import(image, refs, &omitted)?;
    // A layer the store listed can be garbage-collected before the importer needs it (it was
    // referenced by nothing); then every layer is sent once more.
    if !import.streamed.status.success()
        && let Some(lost) = lost_layer(&import.streamed.stderr, &omitted)
    {
        eprintln!(
            "containerd no longer has layer {lost} (garbage-collected since it was listed?); importing again with every layer"
        );
        omitted.clear();
        import = ctr.import(image, refs, &omitted)?;
    }
    let Import { shown, streamed } = import;
    if !streamed.status.success() {
        bail!(
            "`{shown}` failed ({}):\n{}\n{}",
            streamed.status,
            quoted(&streamed.stderr),
            Ctr::reach_hint()
        );
    }
    Ok(Summary {
        references: refs.to_vec(),
        namespace: ctr.namespace.clone(),
        layers: layers.len(),
        layers_sent: layers.len() - omitted.len(),
        layers_present: omitted.len(),
        bytes_sent: streamed.bytes,
    })
}

/// The omitted layer an import failed for want of (containerd: `content digest D: not found`).
fn lost_layer(stderr: &[u8], omitted: &BTreeSet<Digest>) -> Option<Digest> {
    let text = String::from_utf8_lossy(stderr);
    if !text.contains("not found") {
        return None;
    }
    omitted
        .iter()
        .find(|d| text.contains(&d.to_string()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::tests::sample_image;
    use std::path::Path;

    /// A fake `ctr`: `content ls` prints the digests asked about that are listed in `store`;
    /// `images import` saves its stdin as `received.tar`, then runs `after_import`. Every
    /// command line is appended to `calls`.
    fn fake_ctr(dir: &Path, store: &[Digest], after_import: &str) -> Ctr {
        use std::os::unix::fs::PermissionsExt;
        let d = dir.display();
        let store: Vec<String> = store.iter().map(|x| x.to_string()).collect();
        std::fs::write(dir.join("store"), store.join("\n") + "\n").unwrap();
        let p = dir.join("fake-ctr");
        std::fs::write(
            &p,
            format!(
                r#"#!/bin/sh
echo "$*" >> '{d}/calls'
case " $* " in
  *" content ls -q "*)
    for a; do
      case $a in digest==*) grep -qx "${{a#digest==}}" '{d}/store' && echo "${{a#digest==}}";; esac
    done
    exit 0 ;;
  *" images import "*)
    cat > '{d}/received.tar'
    {after_import} ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"#
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        Ctr::new(p.to_str().unwrap().into(), Some("ns1"))
    }

    fn image(input: Input) -> Image {
        match input {
            Input::Image(i) => i,
            Input::Index(_) => panic!("an index"),
        }
    }

    fn digest_of(dir: &Path, name: &str) -> Digest {
        Digest::of(&std::fs::read(dir.join(name)).unwrap())
    }

    fn calls(dir: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
        text.lines().map(String::from).collect()
    }

    #[test]
    fn layers_the_store_has_are_left_out_of_the_stream() {
        let (dir, input) = sample_image();
        let (l1, l2) = (
            digest_of(dir.path(), "l1.tgz"),
            digest_of(dir.path(), "l2.tar"),
        );
        let ctr = fake_ctr(dir.path(), &[l1], "");
        let tags = vec!["app:v1".to_string()];
        let summary = load(&ctr, &image(input.clone()), &tags).unwrap();

        let refs = vec!["docker.io/library/app:v1".to_string()];
        let received = std::fs::read(dir.path().join("received.tar")).unwrap();
        let want = tarball::write_omitting(&input, &refs, &BTreeSet::from([l1]), Vec::new());
        assert_eq!(
            received,
            want.unwrap(),
            "the tarball less the present layer"
        );
        let names: Vec<String> = tar::Archive::new(&received[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(!names.contains(&format!("blobs/sha256/{}", l1.hex())));
        assert!(names.contains(&format!("blobs/sha256/{}", l2.hex())));

        assert_eq!(summary.references, refs);
        assert_eq!(
            (summary.layers, summary.layers_sent, summary.layers_present),
            (2, 1, 1)
        );
        assert_eq!(summary.bytes_sent, received.len() as u64);
        assert_eq!(
            summary.to_string(),
            format!(
                "loaded docker.io/library/app:v1 into containerd namespace ns1: 1 of 2 layers sent ({:.2} MiB), 1 already present",
                received.len() as f64 / 1048576.0
            )
        );
        let calls = calls(dir.path());
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(calls[0].starts_with(
            "--namespace ns1 --connect-timeout 10s --timeout 60s content ls -q digest==sha256:"
        ));
        assert!(
            calls[0].contains(&format!("digest=={l1}"))
                && calls[0].contains(&format!("digest=={l2}"))
        );
        assert_eq!(
            calls[1],
            "--namespace ns1 --connect-timeout 10s images import --platform linux/amd64 -"
        );
    }

    #[test]
    fn an_image_the_store_lacks_is_sent_whole() {
        let (dir, input) = sample_image();
        let ctr = fake_ctr(dir.path(), &[], "");
        let summary = load(
            &ctr,
            &image(input.clone()),
            &["reg.example:5000/a/b:1".into()],
        )
        .unwrap();
        let received = std::fs::read(dir.path().join("received.tar")).unwrap();
        let refs = ["reg.example:5000/a/b:1".to_string()];
        assert_eq!(received, tarball::write(&input, &refs, Vec::new()).unwrap());
        assert_eq!((summary.layers_sent, summary.layers_present), (2, 0));
    }

    #[test]
    fn references_are_qualified_for_containerd() {
        let tags = [
            "app",
            "me/app:v1",
            "localhost:5000/x:y",
            "ghcr.io/o/r:t",
            "app",
        ];
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            references(&tags).unwrap(),
            [
                "docker.io/library/app:latest",
                "docker.io/me/app:v1",
                "localhost:5000/x:y",
                "ghcr.io/o/r:t"
            ]
        );
        let e = format!("{:#}", references(&[]).unwrap_err());
        assert!(e.contains("needs a tag"), "{e}");
        let d = format!("app@sha256:{}", "a".repeat(64));
        assert!(format!("{:#}", references(&[d]).unwrap_err()).contains("names a digest"));
        assert!(references(&["Bad/Name".into()]).is_err());
    }

    #[test]
    fn missing_or_failing_ctr_is_a_clear_error() {
        let (dir, input) = sample_image();
        let img = image(input);
        let tags = vec!["app:v1".to_string()];
        let missing = Ctr::new("/no/such/ctr".into(), Some("ns1"));
        let e = format!("{:#}", load(&missing, &img, &tags).unwrap_err());
        assert!(
            e.contains("/no/such/ctr was not found;") && e.contains("RULES_IMAGE_CTR"),
            "{e}"
        );

        // The listing fails (no daemon): its command and stderr are shown, nothing imported.
        let ctr = fake_ctr(dir.path(), &[], "");
        let failing_ls = dir.path().join("failing-ls");
        std::fs::write(
            &failing_ls,
            "#!/bin/sh\necho 'ctr: cannot access socket /run/containerd/containerd.sock' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &failing_ls,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let e = format!(
            "{:#}",
            load(
                &Ctr::new(failing_ls.to_str().unwrap().into(), Some("ns1")),
                &img,
                &tags
            )
            .unwrap_err()
        );
        assert!(
            e.starts_with("loading docker.io/library/app:v1 into containerd namespace ns1: ")
                && e.contains("content ls -q digest==")
                && e.contains("\n  | ctr: cannot access socket /run/containerd/containerd.sock\n")
                && e.contains("containerd must be running"),
            "{e}"
        );

        // The import fails: ctr's stderr (escaped, indented) is in the error.
        let ctr_failing = fake_ctr(
            dir.path(),
            &[],
            "echo 'ctr: failed to extract layer: \x1b[31mno space left' >&2; exit 1",
        );
        let e = format!("{:#}", load(&ctr_failing, &img, &tags).unwrap_err());
        assert!(
            e.contains("images import --platform linux/amd64 -` failed (exit status: 1)")
                && e.contains("\n  | ctr: failed to extract layer: \\x1b[31mno space left\n"),
            "{e}"
        );
        drop(ctr);
    }

    #[test]
    fn a_broken_blob_kills_the_import_before_the_stream_ends() {
        let (dir, input) = sample_image();
        let img = image(input);
        // Same size, other bytes: found only while streaming, after ctr read part of the tar.
        let l2 = dir.path().join("l2.tar");
        let mut bytes = std::fs::read(&l2).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&l2, bytes).unwrap();
        // The fake names the image as soon as its stdin ends: it must be killed first.
        let ctr = fake_ctr(
            dir.path(),
            &[],
            &format!("echo tagged > '{}/tagged'", dir.path().display()),
        );
        let e = format!("{:#}", load(&ctr, &img, &["app:v1".into()]).unwrap_err());
        assert!(
            e.contains("l2.tar has digest") && e.contains("images import"),
            "{e}"
        );
        assert!(!dir.path().join("tagged").exists(), "no half-loaded tag");
    }

    #[test]
    fn a_layer_collected_after_the_listing_is_sent_on_a_second_import() {
        let (dir, input) = sample_image();
        let l1 = digest_of(dir.path(), "l1.tgz");
        // The store lists l1, but the import finds it gone unless the tar carries it.
        let ctr = fake_ctr(
            dir.path(),
            &[l1],
            &format!(
                "tar tf '{d}/received.tar' | grep -q {hex} || {{ echo 'ctr: content digest {l1}: not found' >&2; exit 1; }}",
                d = dir.path().display(),
                hex = l1.hex()
            ),
        );
        let summary = load(&ctr, &image(input), &["app:v1".into()]).unwrap();
        assert_eq!((summary.layers_sent, summary.layers_present), (2, 0));
        let imports = calls(dir.path())
            .iter()
            .filter(|c| c.contains("images import"))
            .count();
        assert_eq!(imports, 2);
    }
}
