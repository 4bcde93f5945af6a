//! Follows a tar stream as it is written and tells a `Layout` where each entry's header blocks,
//! content and the end of the archive are, with each entry's metadata read as Go's
//! `archive/tar` reads it (the readers of both seekable formats are Go programs, and their TOC
//! entries must agree with the tar headers field by field).
//!
//! Headers are parsed with the `tar` crate; only the streaming (a `Write` that never holds
//! more than one entry's header blocks) is ours.

use super::Layout;
use crate::io::tar_guard::MAX_EXTENSION;
use crate::io::tarfmt::BLOCK;
use std::collections::BTreeMap;
use std::io;

/// The kinds of entry both formats can describe (their TOC `type` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reg,
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
}

impl Kind {
    /// The entry's `type` in both formats' TOCs.
    pub fn toc_type(self) -> &'static str {
        match self {
            Kind::Reg => "reg",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::HardLink => "hardlink",
            Kind::Char => "char",
            Kind::Block => "block",
            Kind::Fifo => "fifo",
        }
    }
}

/// One tar entry, its extension headers applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    pub kind: Kind,
    /// The name as the header (or its pax `path` / GNU long name) gives it, unnormalized.
    pub name: String,
    pub link: String,
    /// The header's mode field as it is (permission bits, possibly more).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    /// Seconds and nanoseconds since the epoch (pax `mtime` may carry a fraction).
    pub mtime: (i64, u32),
    pub atime: Option<(i64, u32)>,
    pub ctime: Option<(i64, u32)>,
    pub dev_major: u64,
    pub dev_minor: u64,
    /// `SCHILY.xattr.<name>` pax records, by name.
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub size: u64,
}

/// Why a tar stream cannot be cut: carried in the `io::Error` so the layer's error says it.
fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

enum State {
    /// Between entries: collecting header blocks (extension headers and their data first).
    Headers,
    /// This many bytes of the current entry's content are still to come.
    Content(u64),
    /// After the end-of-archive block: every byte is trailer.
    Trailer,
}

/// The extension headers seen since the last entry.
#[derive(Default)]
struct Pending {
    pax: Vec<(String, Vec<u8>)>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

/// An extension header whose data is being collected: its type flag, size and bytes so far.
struct Extension {
    flag: u8,
    size: u64,
    data: Vec<u8>,
}

pub struct Cutter {
    state: State,
    /// Bytes since the last content: padding, extension headers, the header being filled.
    raw: Vec<u8>,
    /// Where in `raw` the current 512-byte block starts.
    block_start: usize,
    /// Padding bytes after the last content still to come (they go to `raw`, unparsed).
    padding: usize,
    /// Of `raw`, how much is padding (the rest are headers, or the end of the archive).
    padding_len: usize,
    extension: Option<Extension>,
    pending: Pending,
}

impl Cutter {
    pub fn new() -> Cutter {
        Cutter {
            state: State::Headers,
            raw: Vec::with_capacity(4 * BLOCK),
            block_start: 0,
            padding: 0,
            padding_len: 0,
            extension: None,
            pending: Pending::default(),
        }
    }

    /// Feeds the next bytes of the tar stream.
    pub fn write(&mut self, mut buf: &[u8], layout: &mut dyn Layout) -> io::Result<()> {
        while !buf.is_empty() {
            match self.state {
                State::Content(left) => {
                    let n = (left.min(buf.len() as u64)) as usize;
                    layout.content(&buf[..n])?;
                    buf = &buf[n..];
                    self.state = State::Content(left - n as u64);
                    if left == n as u64 {
                        layout.content_end()?;
                        self.state = State::Headers;
                    }
                }
                State::Trailer => {
                    self.raw.extend_from_slice(buf);
                    buf = &[];
                }
                State::Headers if self.padding > 0 => {
                    let n = self.padding.min(buf.len());
                    self.raw.extend_from_slice(&buf[..n]);
                    self.padding -= n;
                    self.padding_len += n;
                    self.block_start = self.raw.len();
                    buf = &buf[n..];
                }
                State::Headers => {
                    let want = BLOCK - (self.raw.len() - self.block_start);
                    let n = want.min(buf.len());
                    self.raw.extend_from_slice(&buf[..n]);
                    buf = &buf[n..];
                    if n == want {
                        self.block(layout)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The stream is complete: hands the trailer on (after checking the archive ended).
    pub fn finish(&mut self, layout: &mut dyn Layout) -> io::Result<()> {
        if !matches!(self.state, State::Trailer) {
            return Err(bad(
                "the layer's tar stream ends without an end-of-archive block".into(),
            ));
        }
        let (padding, end) = self.raw.split_at(self.padding_len);
        layout.trailer(padding, end)?;
        self.raw.clear();
        Ok(())
    }

    /// A complete block at `raw[block_start..]`.
    fn block(&mut self, layout: &mut dyn Layout) -> io::Result<()> {
        let start = self.block_start;
        self.block_start = self.raw.len();
        if let Some(ext) = &mut self.extension {
            let left = (ext.size - ext.data.len() as u64).min(BLOCK as u64) as usize;
            ext.data.extend_from_slice(&self.raw[start..start + left]);
            if ext.data.len() as u64 == ext.size {
                let ext = self.extension.take().expect("an extension");
                self.apply_extension(ext)?;
            }
            return Ok(());
        }
        let block: [u8; BLOCK] = self.raw[start..].try_into().expect("one block");
        if block.iter().all(|&b| b == 0) {
            if self.raw.len() > self.padding_len + BLOCK {
                return Err(bad(
                    "the layer's tar stream has extension headers without an entry".into(),
                ));
            }
            self.state = State::Trailer;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header
            .entry_size()
            .map_err(|e| bad(format!("a tar header's size is unreadable: {e}")))?;
        let flag = block[156];
        match flag {
            b'x' | b'L' | b'K' => {
                if size > MAX_EXTENSION {
                    return Err(bad(format!(
                        "a tar extension header of {size} bytes is larger than {MAX_EXTENSION}"
                    )));
                }
                let ext = Extension {
                    flag,
                    size,
                    data: Vec::with_capacity(size as usize),
                };
                if size == 0 {
                    self.apply_extension(ext)?;
                } else {
                    self.extension = Some(ext);
                }
                Ok(())
            }
            _ => self.entry(header, size, layout),
        }
    }

    fn apply_extension(&mut self, ext: Extension) -> io::Result<()> {
        match ext.flag {
            b'x' => {
                for record in tar::PaxExtensions::new(&ext.data) {
                    let record =
                        record.map_err(|e| bad(format!("a pax header is malformed: {e}")))?;
                    let key = record
                        .key()
                        .map_err(|_| bad("a pax record's key is not UTF-8".into()))?;
                    self.pending
                        .pax
                        .push((key.to_string(), record.value_bytes().to_vec()));
                }
            }
            b'L' => self.pending.long_name = Some(until_nul(&ext.data).to_vec()),
            _ => self.pending.long_link = Some(until_nul(&ext.data).to_vec()),
        }
        Ok(())
    }

    /// An entry's own header: its metadata, then its content (if any) follows.
    fn entry(&mut self, h: &tar::Header, size: u64, layout: &mut dyn Layout) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let text = |b: &[u8], what: &str| {
            String::from_utf8(b.to_vec())
                .map_err(|_| bad(format!("a tar entry's {what} is not UTF-8")))
        };
        let mut name = match &pending.long_name {
            Some(n) => text(n, "name")?,
            None => text(&h.path_bytes(), "name")?,
        };
        let mut link = match &pending.long_link {
            Some(l) => text(l, "link target")?,
            None => text(&h.link_name_bytes().unwrap_or_default(), "link target")?,
        };
        let flag = h.as_old().linkflag[0];
        let kind = match flag {
            b'0' | b'\0' => Kind::Reg,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => {
                return Err(bad(format!(
                    "tar entry {name:?} has type {:?}, which lazily pulled layers cannot describe",
                    other as char
                )));
            }
        };
        let field = |r: io::Result<u64>, what: &str| {
            r.map_err(|e| bad(format!("tar entry {name:?}: its {what} is unreadable: {e}")))
        };
        let mut e = TarEntry {
            kind,
            mode: field(h.mode().map(u64::from), "mode")? as u32,
            uid: field(h.uid(), "uid")?,
            gid: field(h.gid(), "gid")?,
            uname: text(h.username_bytes().unwrap_or_default(), "user name")?,
            gname: text(h.groupname_bytes().unwrap_or_default(), "group name")?,
            mtime: (field(h.mtime(), "mtime")? as i64, 0),
            atime: None,
            ctime: None,
            dev_major: 0,
            dev_minor: 0,
            xattrs: BTreeMap::new(),
            size,
            name: String::new(),
            link: String::new(),
        };
        if let Some(gnu) = h.as_gnu() {
            let time = |field: &[u8; 12]| {
                (field[0] != 0)
                    .then(|| octal(field))
                    .flatten()
                    .map(|s| (s as i64, 0))
            };
            e.atime = time(&gnu.atime);
            e.ctime = time(&gnu.ctime);
        }
        if let Some(ustar) = h.as_ustar() {
            e.dev_major = octal(&ustar.dev_major).unwrap_or(0);
            e.dev_minor = octal(&ustar.dev_minor).unwrap_or(0);
        } else if let Some(gnu) = h.as_gnu() {
            e.dev_major = octal(&gnu.dev_major).unwrap_or(0);
            e.dev_minor = octal(&gnu.dev_minor).unwrap_or(0);
        }
        for (key, value) in pending.pax {
            let t = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
            let num = |v: &[u8]| {
                t(v).parse::<u64>()
                    .map_err(|_| bad(format!("tar entry {name:?}: pax {key} is not a number")))
            };
            match key.as_str() {
                "path" => name = text(&value, "name")?,
                "linkpath" => link = text(&value, "link target")?,
                "size" => e.size = num(&value)?,
                "uid" => e.uid = num(&value)?,
                "gid" => e.gid = num(&value)?,
                "uname" => e.uname = t(&value),
                "gname" => e.gname = t(&value),
                "mtime" => e.mtime = pax_time(&t(&value), &name)?,
                "atime" => e.atime = Some(pax_time(&t(&value), &name)?),
                "ctime" => e.ctime = Some(pax_time(&t(&value), &name)?),
                _ => {
                    if let Some(x) = key.strip_prefix("SCHILY.xattr.") {
                        e.xattrs.insert(x.to_string(), value);
                    }
                }
            }
        }
        // Go's reader: the old "regular file" flag with a name ending in '/' is a directory.
        if flag == b'\0' && name.ends_with('/') {
            e.kind = Kind::Dir;
        }
        e.name = name;
        e.link = link;
        let content = e.size;
        if e.kind != Kind::Reg && content > 0 {
            return Err(bad(format!(
                "tar entry {:?} is not a regular file but has {content} bytes of data",
                e.name
            )));
        }
        e.size = if e.kind == Kind::Reg { content } else { 0 };
        let raw = std::mem::take(&mut self.raw);
        layout.header(&raw, &e)?;
        self.raw = raw;
        self.raw.clear();
        self.block_start = 0;
        self.padding_len = 0;
        self.padding = (content.next_multiple_of(BLOCK as u64) - content) as usize;
        self.state = if content > 0 {
            State::Content(content)
        } else {
            State::Headers
        };
        Ok(())
    }
}

fn until_nul(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

/// An octal field as Go's tar reader parses it (spaces and NULs around the digits).
fn octal(field: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c| c == ' ' || c == '\0');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// A pax time, "SECONDS[.FRACTION]".
fn pax_time(v: &str, name: &str) -> io::Result<(i64, u32)> {
    let err = || bad(format!("tar entry {name:?}: pax time {v:?} is malformed"));
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| err())?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    Ok((secs, digits.parse().map_err(|_| err())?))
}
