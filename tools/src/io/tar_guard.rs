//! Limits on tar header extensions, enforced before the `tar` crate reads them.
//!
//! The `tar` crate (0.4) reads a GNU long name or long link (`L`, `K`) and a pax extended
//! header (`x`) wholly into memory before it hands over the entry they describe, however large
//! the header says they are: a 33 KB zstd archive can declare a 1 GiB long name. `Guard` sits
//! between the decompressor and `tar::Archive`, follows the archive's 512-byte structure the
//! way the crate does (headers parsed with `tar::Header`, data skipped, pax `size` records and
//! GNU sparse extension blocks honoured) and fails the read as soon as it sees the header of an
//! extension entry larger than `MAX_EXTENSION`, before any of its data is passed on.
//!
//! Every tar reader of untrusted input (the outer archive of an import, each imported layer)
//! reads through a `Guard`; the per-field limits (`MAX_PATH`, `MAX_XATTR_*`) are checked by
//! those readers on what the crate parsed.

use std::fmt;
use std::io::{self, Read};

/// Largest GNU long name / long link / pax header (`L`, `K`, `x`, `g`) accepted, in bytes.
pub const MAX_EXTENSION: u64 = 1 << 20;
/// Largest path or link target accepted (Linux PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Largest extended attribute name (Linux XATTR_NAME_MAX) and value (XATTR_SIZE_MAX).
pub const MAX_XATTR_NAME: usize = 255;
pub const MAX_XATTR_VALUE: usize = 64 << 10;

const BLOCK: usize = 512;

/// An archive that breaks a limit; carried inside the `io::Error` the read fails with, so
/// callers can tell it from a format error.
#[derive(Debug)]
pub struct LimitError(pub String);

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitError {}

impl LimitError {
    /// The limit error inside `e`, if it is one.
    pub fn of(e: &io::Error) -> Option<&LimitError> {
        e.get_ref().and_then(|i| i.downcast_ref::<LimitError>())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next block is a header.
    Header,
    /// The next block is a GNU sparse extension block; then `u64` bytes of data and padding.
    SparseExt(u64),
    /// This many bytes of entry data (and padding) before the next header.
    Data(u64),
    /// After the end-of-archive block, or a header the tar crate will reject: bytes pass
    /// through unchecked (the crate reads no further entries).
    Done,
}

/// A reader that enforces `MAX_EXTENSION` on the tar stream it passes through.
pub struct Guard<R> {
    inner: R,
    state: State,
    /// The block being inspected and how much of it is filled / handed on.
    block: [u8; BLOCK],
    filled: usize,
    out: usize,
    /// Offset in the stream of the next byte read from `inner`.
    pos: u64,
    /// The data of a pax `x` header being passed on (at most MAX_EXTENSION bytes), and how
    /// much of it is still to come.
    pax: Option<(Vec<u8>, u64)>,
    /// The records of the last complete pax `x` header, which apply to the next entry.
    pending_pax: Option<Vec<u8>>,
}

impl<R: Read> Guard<R> {
    pub fn new(inner: R) -> Guard<R> {
        Guard {
            inner,
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            out: 0,
            pos: 0,
            pax: None,
            pending_pax: None,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads the next block into `self.block`; false at the end of the stream (with
    /// `self.filled` bytes of a partial block, which are passed on as they are).
    fn fill_block(&mut self) -> io::Result<bool> {
        self.filled = 0;
        self.out = 0;
        while self.filled < BLOCK {
            let n = match self.inner.read(&mut self.block[self.filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(false);
            }
            self.filled += n;
            self.pos += n as u64;
        }
        Ok(true)
    }

    /// Decides what follows the header in `self.block`, or fails on an oversized extension.
    fn inspect_header(&mut self) -> io::Result<()> {
        let offset = self.pos - BLOCK as u64;
        if self.block.iter().all(|&b| b == 0) {
            self.state = State::Done;
            return Ok(());
        }
        let h = tar::Header::from_byte_slice(&self.block);
        let sum: u32 = self.block[..148]
            .iter()
            .chain(&self.block[156..])
            .map(|&b| u32::from(b))
            .sum::<u32>()
            + 8 * 32;
        let Ok(size) = h.entry_size() else {
            self.state = State::Done;
            return Ok(());
        };
        if h.cksum().ok() != Some(sum) {
            self.state = State::Done;
            return Ok(());
        }
        let flag = self.block[156];
        let recognized = h.as_ustar().is_some() || h.as_gnu().is_some();
        let what = match flag {
            b'L' => Some("GNU long name"),
            b'K' => Some("GNU long link name"),
            b'x' => Some("pax extended header"),
            b'g' => Some("pax global header"),
            _ => None,
        };
        if let Some(what) = what
            && size > MAX_EXTENSION
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                LimitError(format!(
                    "tar entry at byte {offset}: {what} ('{}') of {size} bytes, more than the {MAX_EXTENSION} bytes a header extension may have",
                    char::from(flag)
                )),
            ));
        }
        // As the tar crate: extension headers it consumes itself (L, K, x with a ustar or GNU
        // magic) keep the pending pax records; any other header takes them, and its data size
        // is overridden by their `size` record unless it is an extension header itself.
        let consumed = recognized && matches!(flag, b'L' | b'K' | b'x');
        let mut size = size;
        if !consumed {
            let pending = self.pending_pax.take();
            if what.is_none()
                && let Some(s) = pending.as_deref().and_then(pax_size)
            {
                size = s;
            }
        }
        if consumed && flag == b'x' {
            self.pax = Some((Vec::with_capacity(size as usize), size));
        }
        let padded = size
            .checked_add(BLOCK as u64 - 1)
            .map(|s| s & !(BLOCK as u64 - 1));
        let Some(padded) = padded else {
            self.state = State::Done;
            return Ok(());
        };
        self.state = if flag == b'S' && h.as_gnu().is_some_and(|g| g.is_extended()) {
            State::SparseExt(padded)
        } else {
            State::Data(padded)
        };
        Ok(())
    }
}

/// The `size` record of pax extensions, as the tar crate reads it (the first one, if valid).
fn pax_size(records: &[u8]) -> Option<u64> {
    for r in tar::PaxExtensions::new(records) {
        let r = r.ok()?;
        if r.key() != Ok("size") {
            continue;
        }
        return r.value().ok()?.parse().ok();
    }
    None
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.out < self.filled {
                let n = (self.filled - self.out).min(buf.len());
                buf[..n].copy_from_slice(&self.block[self.out..self.out + n]);
                self.out += n;
                return Ok(n);
            }
            match self.state {
                State::Done => return self.inner.read(buf),
                State::Data(0) => {
                    if let Some((data, _)) = self.pax.take() {
                        self.pending_pax = Some(data);
                    }
                    self.state = State::Header;
                }
                State::Data(left) => {
                    let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let n = self.inner.read(&mut buf[..want])?;
                    self.pos += n as u64;
                    self.state = State::Data(left - n as u64);
                    if let Some((data, rest)) = &mut self.pax {
                        let k = usize::try_from(*rest).unwrap_or(usize::MAX).min(n);
                        data.extend_from_slice(&buf[..k]);
                        *rest -= k as u64;
                    }
                    return Ok(n);
                }
                State::Header => {
                    if !self.fill_block()? {
                        self.state = State::Done;
                        continue;
                    }
                    self.inspect_header()?;
                }
                State::SparseExt(data) => {
                    if !self.fill_block()? {
                        self.state = State::Done;
                        continue;
                    }
                    if self.block[504] == 0 {
                        self.state = State::Data(data);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, flag: u8, size: u64) -> [u8; BLOCK] {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::new(flag));
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        *h.as_bytes()
    }

    fn padded(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
        v
    }

    fn pax_record(k: &str, v: &str) -> Vec<u8> {
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        while format!("{n}{body}").len() != n {
            n += 1;
        }
        format!("{n}{body}").into_bytes()
    }

    /// A reader of `head` followed by `n` bytes of `b'a'` (never held in memory).
    fn huge(head: Vec<u8>, n: u64) -> impl Read {
        io::Cursor::new(head).chain(io::repeat(b'a').take(n))
    }

    #[test]
    fn oversized_long_name_fails_before_its_data_is_read() {
        let size = 1u64 << 30;
        let mut g = Guard::new(huge(header("././@LongLink", b'L', size).to_vec(), size));
        let mut ar = tar::Archive::new(&mut g);
        let e = ar.entries().unwrap().next().unwrap().err().unwrap();
        let limit = LimitError::of(&e).expect("a limit error");
        assert_eq!(
            limit.to_string(),
            "tar entry at byte 0: GNU long name ('L') of 1073741824 bytes, more than the 1048576 bytes a header extension may have"
        );
        // Only the header was read.
        assert_eq!(g.pos, BLOCK as u64);
    }

    #[test]
    fn oversized_pax_headers_fail() {
        for flag in [b'x', b'g', b'K'] {
            let size = MAX_EXTENSION + 1;
            let mut tar = header("f", b'0', 1).to_vec();
            tar.extend(padded(b"x"));
            tar.extend(header("pax", flag, size));
            let mut g = Guard::new(huge(tar, size));
            let mut n = 0;
            let e = loop {
                match g.read(&mut [0u8; 100]) {
                    Ok(0) => panic!("no error"),
                    Ok(k) => n += k,
                    Err(e) => break e,
                }
            };
            assert!(LimitError::of(&e).is_some(), "{e}");
            assert!(e.to_string().starts_with("tar entry at byte 1024: "), "{e}");
            // The first entry (header and data block) was passed on, nothing of the second.
            assert_eq!(n, 1024);
        }
    }

    /// What the tar crate sees through the guard is what it sees without it.
    #[test]
    fn ordinary_archives_pass_unchanged() {
        let mut b = tar::Builder::new(Vec::new());
        let long = "d/".repeat(200) + "file";
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, "l", "x/".repeat(100) + "t").unwrap();
        // A pax header whose size record overrides the size (0) of the next entry.
        let mut raw = b.into_inner().unwrap();
        raw.truncate(raw.len() - 1024); // the end-of-archive blocks
        let records = [
            pax_record("size", "1000"),
            pax_record("SCHILY.xattr.user.a", "v"),
        ]
        .concat();
        raw.extend(header("././@PaxHeader", b'x', records.len() as u64));
        raw.extend(padded(&records));
        raw.extend(header("pax", b'0', 0));
        raw.extend(padded(&[b'z'; 1000]));
        // A header whose bytes would look like an oversized long name if the guard took the
        // data above for a header.
        raw.splice(
            raw.len() - 1024..raw.len() - 512,
            header("././@LongLink", b'L', 1 << 30),
        );
        raw.extend([0u8; 1024]);
        let list = |r: &mut dyn Read| -> Vec<(Vec<u8>, u64)> {
            tar::Archive::new(r)
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.path_bytes().into_owned(), e.size())
                })
                .collect()
        };
        let want = list(&mut &raw[..]);
        assert_eq!(want.len(), 3);
        assert_eq!(want[2], (b"pax".to_vec(), 1000));
        let mut g = Guard::new(&raw[..]);
        assert_eq!(list(&mut g), want);
        let mut rest = Vec::new();
        g.read_to_end(&mut rest).unwrap();
    }
}
