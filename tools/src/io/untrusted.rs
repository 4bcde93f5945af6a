//! Text from outside the tool (a registry's error message, a path or name inside an archive)
//! made safe to show: control characters are escaped, so a hostile value cannot forge an
//! `error:` line, move the cursor or retitle the terminal, and a long value is cut to a short
//! prefix, so a gigabyte path costs a line, not a gigabyte of stderr.

use std::fmt::Write as _;

/// How many characters of an untrusted value a message shows.
pub const SHOWN_CHARS: usize = 160;

/// `bytes` as one printable line: UTF-8 kept, control characters (C0, DEL, C1) and invalid
/// bytes escaped (`\n`, `\x1b`, `\u{9b}`), cut after `SHOWN_CHARS` characters with the total
/// length appended.
pub fn shown(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if chars == SHOWN_CHARS {
                return cut(out, bytes.len());
            }
            push_escaped(&mut out, c, false);
            chars += 1;
        }
        for b in chunk.invalid() {
            if chars == SHOWN_CHARS {
                return cut(out, bytes.len());
            }
            let _ = write!(out, "\\x{b:02x}");
            chars += 1;
        }
    }
    out
}

/// `shown` of a string.
pub fn shown_str(s: &str) -> String {
    shown(s.as_bytes())
}

/// A whole message (which may quote untrusted text through a path the caller did not cover)
/// made safe for a terminal: every control character except newline and tab is escaped.
/// The last line of defence before stderr; values are escaped where they enter with `shown`.
pub fn terminal_safe(s: &str) -> String {
    if !s.chars().any(|c| is_unsafe(c, true)) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        push_escaped(&mut out, c, true);
    }
    out
}

fn cut(mut out: String, total: usize) -> String {
    let _ = write!(out, "... ({total} bytes)");
    out
}

fn is_unsafe(c: char, keep_lines: bool) -> bool {
    if keep_lines && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control()
}

fn push_escaped(out: &mut String, c: char, keep_lines: bool) {
    if !is_unsafe(c, keep_lines) {
        out.push(c);
        return;
    }
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Another program's output (a client's stderr, a builder's log) quoted in an error: each line
/// indented and made terminal-safe, so none can pass for ours.
pub fn quoted(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<String> = text
        .trim_end()
        .lines()
        .map(|l| format!("  | {}", terminal_safe(l)))
        .collect();
    if lines.is_empty() {
        "  (nothing on stderr)".into()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(shown(b"plain text / ok"), "plain text / ok");
        assert_eq!(
            shown(b"bad\n\x1b]0;owned\x07error: fake"),
            "bad\\n\\x1b]0;owned\\x07error: fake"
        );
        assert_eq!(shown("tab\tcsi\u{9b}31m".as_bytes()), "tab\\tcsi\\u{9b}31m");
        assert_eq!(shown(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(shown("naïve ✓".as_bytes()), "naïve ✓");
    }

    #[test]
    fn long_values_are_cut_to_a_prefix_with_their_length() {
        let long = vec![b'a'; 1 << 20];
        let s = shown(&long);
        assert_eq!(s, format!("{}... (1048576 bytes)", "a".repeat(SHOWN_CHARS)));
        let exact = vec![b'b'; SHOWN_CHARS];
        assert_eq!(shown(&exact), "b".repeat(SHOWN_CHARS));
    }

    #[test]
    fn terminal_safe_keeps_lines_and_escapes_the_rest() {
        assert_eq!(terminal_safe("a\n\tb"), "a\n\tb");
        assert_eq!(terminal_safe("x\x1b[2Jy\r"), "x\\x1b[2Jy\\r");
    }
}
