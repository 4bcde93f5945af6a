//! image_test's `run`: commands run in containers of the image by a container engine's CLI
//! (Docker, or Podman), each one's exit code and output checked against its assertions.
//!
//! The image is loaded under a tag of its own, by image_load's path (`write::load`: the
//! docker-save tarball streamed into `<engine> load`); each command runs in `<engine> run --rm
//! --network none --pull never`, with a deadline; the tag is removed afterwards, whatever
//! happened. What a command did is judged by `evaluate`, which is pure; `Runner::check`
//! drives the engine.

use super::Report;
use super::spec::RunAssertions;
use crate::input::Image;
use crate::io::untrusted::shown_str;
use crate::oci::config::run_config;
use crate::write::load::{self, Daemon};
use anyhow::{Context, Result};
use std::io::{ErrorKind, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The engine whose CLI runs the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Docker,
    Podman,
}

impl Engine {
    fn daemon(self) -> Daemon {
        match self {
            Engine::Docker => Daemon::Docker,
            Engine::Podman => Daemon::Podman,
        }
    }
}

/// The most of a command's stdout, and of its stderr, that is kept and checked.
pub const MAX_OUTPUT: usize = 16 << 20;

/// How much of a failed command's stdout and stderr the test log shows: the end.
const SHOWN_OUTPUT: usize = 4 << 10;

/// What a command did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The engine client's exit code: the command's, or the engine's own (125); `None`:
    /// killed by a signal.
    pub exit_code: Option<i32>,
    /// It was still running at its deadline (and its container was removed).
    pub timed_out: bool,
    pub stdout: Output,
    pub stderr: Output,
}

/// One output stream of a command: its first `MAX_OUTPUT` bytes, and how many there were.
#[derive(Debug, Default)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub total: u64,
}

impl Output {
    fn cut(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

/// What is wrong with `outcome` by `a`: (assertions failed, message) per failure. A command
/// that timed out fails all of its assertions at once.
pub fn evaluate(a: &RunAssertions, outcome: &Outcome) -> Vec<(usize, String)> {
    if outcome.timed_out {
        return vec![(
            a.assertion_count(),
            format!(
                "still running after its timeout of {} s (its container was removed)",
                a.timeout
            ),
        )];
    }
    let mut problems = Vec::new();
    let want = a.exit_code;
    match outcome.exit_code {
        Some(code) if code == want => {}
        // Docker and Podman exit with 125 when they could not run the container at all.
        Some(125) => problems.push(format!(
            "exit code is 125 (the engine could not run the container), want {want}"
        )),
        Some(code) => problems.push(format!("exit code is {code}, want {want}")),
        None => problems.push(format!(
            "the engine's client was killed by a signal, want exit code {want}"
        )),
    }
    for (stream, output, contains, matches) in [
        (
            "stdout",
            &outcome.stdout,
            &a.stdout_contains,
            &a.stdout_matches,
        ),
        (
            "stderr",
            &outcome.stderr,
            &a.stderr_contains,
            &a.stderr_matches,
        ),
    ] {
        let cut = if output.cut() {
            format!(" (in its first {} MiB)", MAX_OUTPUT >> 20)
        } else {
            String::new()
        };
        for s in contains {
            if !super::contains(&output.bytes, s) {
                problems.push(format!(
                    "{stream} does not contain \"{}\"{cut}",
                    shown_str(s)
                ));
            }
        }
        for p in matches {
            if !p.0.is_match(&output.bytes) {
                problems.push(format!(
                    "{stream} does not match /{}/{cut}",
                    shown_str(p.0.as_str())
                ));
            }
        }
    }
    problems.into_iter().map(|p| (1, p)).collect()
}

/// The process the container starts: `a`'s entrypoint (else the image's) and `a`'s command
/// (else, unless the entrypoint is replaced, the image's cmd).
pub fn argv(a: &RunAssertions, entrypoint: &[String], cmd: &[String]) -> Vec<String> {
    match &a.entrypoint {
        Some(e) => e.iter().chain(&a.command).cloned().collect(),
        None if a.command.is_empty() => entrypoint.iter().chain(cmd).cloned().collect(),
        None => entrypoint.iter().chain(&a.command).cloned().collect(),
    }
}

/// A command as messages show it: `["/app/hello", "world"]`.
pub fn shown_argv(argv: &[String]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|w| format!("\"{}\"", shown_str(w)))
        .collect();
    format!("[{}]", words.join(", "))
}

/// The arguments of `<engine> run` for `a` in a container named `container` of `image`.
pub fn run_args(engine: Engine, a: &RunAssertions, image: &str, container: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        "--name",
        container,
    ]
    .map(String::from)
    .into();
    if let Some(u) = &a.user {
        args.extend(["--user".into(), u.clone()]);
    }
    if let Some(w) = &a.working_dir {
        args.extend(["--workdir".into(), w.clone()]);
    }
    for (k, v) in &a.env {
        args.extend(["--env".into(), format!("{k}={v}")]);
    }
    // Docker's --entrypoint is one word (its arguments go after the image); Podman takes the
    // whole entrypoint as a JSON array, and would read a first word starting with `[` as one.
    let mut rest: Vec<String> = Vec::new();
    match (&a.entrypoint, engine) {
        (None, _) => {}
        (Some(e), _) if e.is_empty() => args.extend(["--entrypoint".into(), String::new()]),
        (Some(e), Engine::Docker) => {
            args.extend(["--entrypoint".into(), e[0].clone()]);
            rest.extend(e[1..].iter().cloned());
        }
        (Some(e), Engine::Podman) => args.extend([
            "--entrypoint".into(),
            serde_json::to_string(e).expect("strings serialize"),
        ]),
    }
    args.push(image.into());
    args.extend(rest);
    args.extend(a.command.iter().cloned());
    args
}

/// A tag (and container name prefix) no other test run uses: the image's label, this
/// process and the time, in the characters a Docker tag may have.
pub fn unique_name(label: &str) -> String {
    let mut name: String = label
        .trim_start_matches(['@', '/'])
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '.' => c,
            ':' | '/' => '.',
            _ => '_',
        })
        .take(64)
        .collect();
    if name.is_empty() || name.starts_with(['.', '-']) {
        name.insert(0, '_');
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{name}-{}-{nanos:x}", std::process::id())
}

/// The repository of the tags `run` creates (and removes).
pub const TAG_REPOSITORY: &str = "rules-image-test";

/// An engine's CLI, which runs the commands.
pub struct Runner {
    pub engine: Engine,
    /// The client binary: `docker` or `podman` (or RULES_IMAGE_DOCKER / RULES_IMAGE_PODMAN).
    pub bin: String,
}

impl Runner {
    pub fn new(engine: Engine) -> Runner {
        Runner {
            engine,
            bin: engine.daemon().binary(),
        }
    }

    /// Loads `image` under a tag of its own, runs each of `runs` in a container of it, adds
    /// their failures to `report` (named `run[i] ARGV`, with the end of a failed command's
    /// output as notes), and removes the tag. An error means the engine could not be used.
    pub fn check(
        &self,
        image: &Image,
        label: &str,
        runs: &[RunAssertions],
        report: &mut Report,
    ) -> Result<()> {
        let cfg = crate::oci::json::parse_object(&image.config)?;
        let have = run_config(&cfg)?;
        let name = unique_name(label);
        let tag = format!("{TAG_REPOSITORY}:{name}");
        load::run_with(
            &self.bin,
            self.engine.daemon(),
            image.clone(),
            std::slice::from_ref(&tag),
        )
        .context("loading the image to run its commands")?;
        let _untag = Untag {
            bin: &self.bin,
            tag: &tag,
        };
        for (i, a) in runs.iter().enumerate() {
            let shown = shown_argv(&argv(a, &have.entrypoint, &have.cmd));
            let outcome = self
                .run_one(a, &tag, &format!("{name}-{i}"))
                .with_context(|| format!("run[{i}] {shown}"))?;
            let problems = evaluate(a, &outcome);
            if problems.is_empty() {
                continue;
            }
            for (n, p) in problems {
                report.fail(n, format!("run[{i}] {shown}: {p}"));
            }
            for (stream, output) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
                report
                    .notes
                    .push(format!("run[{i}] {stream}{}", shown_output(output)));
            }
        }
        Ok(())
    }

    /// Runs one command and waits for it until its deadline; then removes its container.
    fn run_one(&self, a: &RunAssertions, image: &str, container: &str) -> Result<Outcome> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(run_args(self.engine, a, image, container))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let shown = load::shown_command(&cmd);
        let mut child = load::spawn(&mut cmd, self.engine.daemon())?;
        let stdout = Capture::start(child.stdout.take().expect("stdout is piped"));
        let stderr = Capture::start(child.stderr.take().expect("stderr is piped"));
        let deadline = Instant::now() + Duration::from_secs(a.timeout);
        let mut timed_out = false;
        let mut pause = Duration::from_millis(5);
        let status = loop {
            if let Some(s) = child
                .try_wait()
                .with_context(|| format!("waiting for `{shown}`"))?
            {
                break s;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                // The container goes first (killing the client alone leaves it running),
                // and once more after the client, in case the engine created it meanwhile.
                self.remove_container(container);
                let _ = child.kill();
                let s = child
                    .wait()
                    .with_context(|| format!("waiting for `{shown}`"))?;
                self.remove_container(container);
                break s;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        };
        let drained = Instant::now() + DRAIN;
        Ok(Outcome {
            exit_code: status.code(),
            timed_out,
            stdout: stdout.finish(drained),
            stderr: stderr.finish(drained),
        })
    }

    fn remove_container(&self, container: &str) {
        let _ = Command::new(&self.bin)
            .args(["rm", "--force", container])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes the tag `run` loaded the image under when dropped: on success, failure or error.
struct Untag<'a> {
    bin: &'a str,
    tag: &'a str,
}

impl Drop for Untag<'_> {
    fn drop(&mut self) {
        let done = Command::new(self.bin)
            .args(["rmi", self.tag])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match done {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: `{} rmi {}` failed ({}):\n{}",
                self.bin,
                self.tag,
                o.status,
                crate::io::untrusted::quoted(&o.stderr)
            ),
            Err(e) => eprintln!("warning: cannot run `{} rmi {}`: {e}", self.bin, self.tag),
        }
    }
}

/// How long the output is read for once the engine's client has exited: a process it left
/// behind may hold the pipes open.
const DRAIN: Duration = Duration::from_secs(5);

/// A stream read to its end in a thread, so the command never blocks on a full pipe however
/// much it prints; the first `MAX_OUTPUT` bytes are kept.
struct Capture {
    output: Arc<Mutex<Output>>,
    done: mpsc::Receiver<()>,
}

impl Capture {
    fn start(mut r: impl Read + Send + 'static) -> Capture {
        let output = Arc::new(Mutex::new(Output::default()));
        let (tx, done) = mpsc::channel();
        let out = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                        let room = MAX_OUTPUT - out.bytes.len();
                        out.bytes.extend_from_slice(&buf[..n.min(room)]);
                        out.total += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        Capture { output, done }
    }

    /// What was read by the end of the stream, or by `deadline`.
    fn finish(self, deadline: Instant) -> Output {
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        std::mem::take(&mut *self.output.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The end of an output as the note after a failure shows it: ": (nothing)", or its size
/// and its last lines, each indented so that none can pass for the test's own.
pub fn shown_output(output: &Output) -> String {
    if output.total == 0 {
        return ": (nothing)".into();
    }
    let kept = &output.bytes;
    let start = kept.len().saturating_sub(SHOWN_OUTPUT);
    let what = if output.cut() {
        format!(
            " ({} bytes; the end of the first {} MiB)",
            output.total,
            MAX_OUTPUT >> 20
        )
    } else if start > 0 {
        format!(" ({} bytes; the end)", output.total)
    } else {
        format!(" ({} bytes)", output.total)
    };
    let text = String::from_utf8_lossy(&kept[start..]);
    let lines: Vec<String> = text
        .trim_end()
        .lines()
        .map(|l| format!("  | {}", crate::io::untrusted::terminal_safe(l)))
        .collect();
    format!("{what}:\n{}", lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::tests::{image, sample_image};
    use serde_json::{Value, json};

    fn assertion(v: Value) -> RunAssertions {
        let spec: super::super::spec::Spec = crate::oci::json::parse(
            &serde_json::to_vec(&json!({"image": "//t:i", "run": [v]})).unwrap(),
        )
        .unwrap();
        spec.check().unwrap();
        spec.run.into_iter().next().unwrap()
    }

    fn output(s: &str) -> Output {
        Output {
            bytes: s.as_bytes().to_vec(),
            total: s.len() as u64,
        }
    }

    fn outcome(code: i32, stdout: &str, stderr: &str) -> Outcome {
        Outcome {
            exit_code: Some(code),
            timed_out: false,
            stdout: output(stdout),
            stderr: output(stderr),
        }
    }

    fn problems(a: &RunAssertions, o: &Outcome) -> Vec<String> {
        evaluate(a, o).into_iter().map(|(_, m)| m).collect()
    }

    #[test]
    fn evaluates_exit_code_and_output() {
        let a = assertion(json!({
            "stdout_contains": ["Hello, container!"],
            "stdout_matches": ["(?m)^message: .+$"],
            "stderr_contains": ["warn"],
        }));
        assert_eq!(a.assertion_count(), 4);
        let good = outcome(0, "Hello, container!\nmessage: hi\n", "a warning\n");
        assert!(evaluate(&a, &good).is_empty());
        assert_eq!(
            problems(&a, &outcome(3, "Goodbye\n", "")),
            [
                "exit code is 3, want 0",
                "stdout does not contain \"Hello, container!\"",
                "stdout does not match /(?m)^message: .+$/",
                "stderr does not contain \"warn\"",
            ]
        );
        let a = assertion(json!({"exit_code": 1, "stderr_matches": ["No such file"]}));
        assert!(evaluate(&a, &outcome(1, "", "open: No such file or directory")).is_empty());
        assert_eq!(
            problems(&a, &outcome(0, "No such file", "")),
            [
                "exit code is 0, want 1",
                "stderr does not match /No such file/"
            ]
        );
    }

    #[test]
    fn engine_errors_signals_timeouts_and_cut_output() {
        let a = assertion(json!({"stdout_contains": ["x", "y"], "timeout": 5}));
        assert_eq!(
            problems(&a, &outcome(125, "x y", "Unable to find image")),
            ["exit code is 125 (the engine could not run the container), want 0"]
        );
        let killed = Outcome {
            exit_code: None,
            ..outcome(0, "x y", "")
        };
        assert_eq!(
            problems(&a, &killed),
            ["the engine's client was killed by a signal, want exit code 0"]
        );
        // A timeout fails every assertion of the command, in one message.
        let late = Outcome {
            timed_out: true,
            ..outcome(0, "x y", "")
        };
        assert_eq!(
            evaluate(&a, &late),
            [(
                3,
                "still running after its timeout of 5 s (its container was removed)".to_string()
            )]
        );
        let mut cut = outcome(0, "x", "");
        cut.stdout.total = MAX_OUTPUT as u64 + 10;
        assert_eq!(
            problems(&a, &cut),
            ["stdout does not contain \"y\" (in its first 16 MiB)"]
        );
    }

    #[test]
    fn the_command_shown_is_what_the_container_runs() {
        let (ep, cmd) = (
            vec!["/app/hello".to_string()],
            vec!["container".to_string()],
        );
        let shown = |v: Value| shown_argv(&argv(&assertion(v), &ep, &cmd));
        assert_eq!(shown(json!({})), r#"["/app/hello", "container"]"#);
        assert_eq!(
            shown(json!({"command": ["Bazel"]})),
            r#"["/app/hello", "Bazel"]"#
        );
        // A replaced entrypoint drops the image's cmd too, as `docker run --entrypoint` does.
        assert_eq!(
            shown(json!({"entrypoint": ["/usr/bin/hello"]})),
            r#"["/usr/bin/hello"]"#
        );
        assert_eq!(
            shown(json!({"entrypoint": [], "command": ["/bin/sh", "-c", "echo \u{1b}"]})),
            r#"["/bin/sh", "-c", "echo \x1b"]"#
        );
    }

    #[test]
    fn run_arguments() {
        let a = assertion(json!({
            "entrypoint": ["/bin/sh", "-c"],
            "command": ["echo $A"],
            "env": {"B": "2", "A": "x=y"},
            "user": "65534:65534",
            "working_dir": "/tmp",
        }));
        let head = "run --rm --network none --pull never --name c --user 65534:65534 --workdir /tmp --env A=x=y --env B=2";
        assert_eq!(
            run_args(Engine::Docker, &a, "img:t", "c").join(" "),
            format!("{head} --entrypoint /bin/sh img:t -c echo $A")
        );
        assert_eq!(
            run_args(Engine::Podman, &a, "img:t", "c").join(" "),
            format!(r#"{head} --entrypoint ["/bin/sh","-c"] img:t echo $A"#)
        );
        let plain = assertion(json!({"command": ["a", "b"]}));
        assert_eq!(
            run_args(Engine::Docker, &plain, "img:t", "c"),
            [
                "run",
                "--rm",
                "--network",
                "none",
                "--pull",
                "never",
                "--name",
                "c",
                "img:t",
                "a",
                "b"
            ]
        );
        let reset = assertion(json!({"entrypoint": [], "command": ["/x"]}));
        assert_eq!(
            run_args(Engine::Docker, &reset, "img:t", "c")[8..],
            ["--entrypoint", "", "img:t", "/x"]
        );
    }

    #[test]
    fn names_are_valid_tags_and_unique() {
        let tag = regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap();
        for label in [
            "//app:image",
            "@@repo+//p/q:r s",
            "",
            ":-x",
            &"x".repeat(300),
        ] {
            let n = unique_name(label);
            assert!(tag.is_match(&n), "{label:?}: {n}");
        }
        assert!(unique_name("//app:image").starts_with("app.image-"));
        assert_ne!(unique_name("//a:b"), unique_name("//a:b"));
    }

    #[test]
    fn malformed_run_assertions_are_errors() {
        for (v, want) in [
            (
                json!({"exit_code": 256}),
                "run[0]: exit_code 256 is not an exit code (0 to 255)",
            ),
            (
                json!({"timeout": 0}),
                "run[0]: timeout must be at least 1 second",
            ),
            (
                json!({"entrypoint": []}),
                "run[0]: entrypoint = [] runs `command` alone, but there is no command",
            ),
            (
                json!({"env": {"A=B": "1"}}),
                "run[0]: env: \"A=B\" is not a variable name",
            ),
        ] {
            let spec: super::super::spec::Spec = crate::oci::json::parse(
                &serde_json::to_vec(&json!({"image": "//t:i", "run": [v]})).unwrap(),
            )
            .unwrap();
            assert_eq!(format!("{:#}", spec.check().unwrap_err()), want);
        }
        let e = crate::oci::json::parse::<super::super::spec::Spec>(
            &serde_json::to_vec(&json!({"image": "//t:i", "run": [{"stdout": "x"}]})).unwrap(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("unknown field `stdout`"), "{e:#}");
    }

    /// A fake engine CLI: `load` reads the tarball, `run` answers as `run_body` says, every
    /// call is logged (one line: its arguments) in `calls`.
    fn fake_engine(dir: &std::path::Path, run_body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("fake-engine");
        let log = dir.join("calls");
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\ncase $1 in\n  load) cat > /dev/null ;;\n  run) {run_body} ;;\nesac\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn loads_runs_reports_and_removes_the_tag() {
        let (dir, input) = sample_image();
        let bin = fake_engine(
            dir.path(),
            "shift $(($# - 1)); test \"$1\" = ok && { echo 'all fine'; exit 0; }; echo 'it broke' >&2; exit 2",
        );
        let runner = Runner {
            engine: Engine::Docker,
            bin,
        };
        let runs = vec![
            assertion(json!({"command": ["ok"], "stdout_contains": ["all fine"]})),
            assertion(json!({"command": ["bad"], "stdout_contains": ["all fine"]})),
        ];
        let mut report = Report::default();
        runner
            .check(&image(input), "//app:image", &runs, &mut report)
            .unwrap();
        assert_eq!(report.failed, 2);
        assert_eq!(
            report.messages,
            [
                r#"run[1] ["bad"]: exit code is 2, want 0"#,
                r#"run[1] ["bad"]: stdout does not contain "all fine""#,
            ]
        );
        assert_eq!(
            report.notes,
            [
                "run[1] stdout: (nothing)",
                "run[1] stderr (9 bytes):\n  | it broke"
            ]
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        let calls: Vec<&str> = calls.lines().collect();
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert_eq!(calls[0], "load");
        let tag = calls[3].strip_prefix("rmi ").expect("the tag removed last");
        assert!(tag.starts_with("rules-image-test:app.image-"), "{tag}");
        assert!(calls[1].ends_with(&format!(" {tag} ok")), "{}", calls[1]);
        assert!(calls[2].contains(" --network none "), "{}", calls[2]);
    }

    #[test]
    fn a_command_past_its_timeout_is_removed() {
        let (dir, input) = sample_image();
        let bin = fake_engine(dir.path(), "sleep 30");
        let runner = Runner {
            engine: Engine::Podman,
            bin,
        };
        let runs = vec![assertion(json!({"timeout": 1, "stdout_contains": ["x"]}))];
        let mut report = Report::default();
        let started = Instant::now();
        runner
            .check(&image(input), "//t:i", &runs, &mut report)
            .unwrap();
        // The fake engine's `sleep` keeps the pipes open: they are read for DRAIN more.
        assert!(started.elapsed() < Duration::from_secs(15));
        assert_eq!(report.failed, 2);
        assert_eq!(
            report.messages,
            [
                r#"run[0] ["/app/hello"]: still running after its timeout of 1 s (its container was removed)"#
            ]
        );
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        let name = calls
            .lines()
            .find_map(|l| l.strip_prefix("run --rm --network none --pull never --name "))
            .and_then(|l| l.split(' ').next())
            .unwrap()
            .to_string();
        assert!(calls.contains(&format!("rm --force {name}\n")), "{calls}");
        assert!(
            calls
                .lines()
                .last()
                .unwrap()
                .starts_with("rmi rules-image-test:"),
            "{calls}"
        );
    }

    #[test]
    fn an_engine_that_cannot_load_is_an_error_and_leaves_no_tag_behind() {
        let (dir, input) = sample_image();
        let runner = Runner {
            engine: Engine::Docker,
            bin: "/no/such/docker".into(),
        };
        let runs = vec![assertion(json!({}))];
        let e = runner
            .check(&image(input), "//t:i", &runs, &mut Report::default())
            .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.starts_with(
                "loading the image to run its commands: cannot run `/no/such/docker load`"
            ),
            "{e}"
        );
        drop(dir);
    }
}
