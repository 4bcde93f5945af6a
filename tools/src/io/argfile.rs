//! Expansion of `@PATH` arguments (Bazel "multiline" param files).
//!
//! Bazel writes one argument per line without quoting. Expansion happens before clap sees the
//! arguments, so every subcommand accepts param files for any option or positional.

use anyhow::{Context, Result};
use std::ffi::OsString;

/// Replaces every argument `@PATH` (except argv[0]) by the lines of PATH.
/// Param files are not expanded recursively, like Bazel's own tools.
pub fn expand(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let path = match arg.to_str() {
            Some(s) if i > 0 && s.len() > 1 && s.starts_with('@') => &s[1..],
            _ => {
                out.push(arg);
                continue;
            }
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read param file {path}"))?;
        out.extend(split_lines(&text).map(OsString::from));
    }
    Ok(out)
}

/// Lines of a param file: the final newline terminates the last argument rather than
/// starting an empty one; inner empty lines are empty arguments.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let empty = text.is_empty();
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(move |_| !empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_param_files_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("args");
        std::fs::write(&p, "--output\nout.tar\nfile\t/a\tsrc/a\n").unwrap();
        let args = vec![
            OsString::from("tool"),
            OsString::from("layer"),
            OsString::from(format!("@{}", p.display())),
            OsString::from("--label"),
        ];
        let got = expand(args).unwrap();
        assert_eq!(
            got,
            vec![
                "tool",
                "layer",
                "--output",
                "out.tar",
                "file\t/a\tsrc/a",
                "--label"
            ]
        );
    }

    #[test]
    fn empty_file_gives_no_args_and_missing_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty");
        std::fs::write(&p, "").unwrap();
        let got = expand(vec![
            OsString::from("t"),
            OsString::from(format!("@{}", p.display())),
        ])
        .unwrap();
        assert_eq!(got, vec!["t"]);
        let err = expand(vec![OsString::from("t"), OsString::from("@/nonexistent/x")]).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/x"));
    }
}
