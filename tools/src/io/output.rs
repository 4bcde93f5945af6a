//! Atomic outputs: every output is written to a temporary sibling and renamed into place only
//! when complete, so a failed action never leaves a partial file (or directory) behind.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use tempfile::{NamedTempFile, TempDir};

/// Large buffers keep syscalls and per-call overheads (hashing, compression) negligible.
pub const BUF_SIZE: usize = 1 << 20;

/// The directory a path is in (`.` for a bare file name): where its temporary sibling goes.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp")
}

/// A file being written; dropped without `commit`, it is removed.
pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .tempfile_in(parent_dir(dest))
            .with_context(|| {
                format!("cannot create a temporary file next to {}", dest.display())
            })?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Renames the file into place, readable by everyone (the temp file starts as 0600).
    pub fn commit(self) -> Result<()> {
        set_mode(self.tmp.path(), 0o644)?;
        self.tmp
            .persist(&self.dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot move output into place at {}", self.dest.display()))?;
        Ok(())
    }
}

/// Writes a whole small output (JSON) atomically. Several related outputs are all staged
/// first and committed together, see `write_all_atomic`.
pub fn stage(dest: &Path, bytes: &[u8]) -> Result<AtomicFile> {
    let mut f = AtomicFile::create(dest)?;
    f.file()
        .write_all(bytes)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(f)
}

pub fn write_all_atomic(outputs: &[(&Path, &[u8])]) -> Result<()> {
    let staged = outputs
        .iter()
        .map(|(p, b)| stage(p, b))
        .collect::<Result<Vec<_>>>()?;
    for f in staged {
        f.commit()?;
    }
    Ok(())
}

/// A directory being built; dropped without `commit`, it is removed with its contents.
pub struct AtomicDir {
    tmp: TempDir,
    dest: PathBuf,
}

impl AtomicDir {
    pub fn create(dest: &Path) -> Result<AtomicDir> {
        AtomicDir::create_in(dest, parent_dir(dest))
    }

    /// Built in `parent` (on the file system of `dest`) rather than next to `dest`.
    pub fn create_in(dest: &Path, parent: &Path) -> Result<AtomicDir> {
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .tempdir_in(parent)
            .with_context(|| {
                format!(
                    "cannot create a temporary directory next to {}",
                    dest.display()
                )
            })?;
        Ok(AtomicDir {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn commit(self) -> Result<()> {
        set_mode(self.tmp.path(), 0o755)?;
        // A stale output from an earlier run would make rename fail (ENOTEMPTY).
        if self.dest.symlink_metadata().is_ok() {
            let r = if self.dest.is_dir() {
                std::fs::remove_dir_all(&self.dest)
            } else {
                std::fs::remove_file(&self.dest)
            };
            r.with_context(|| format!("cannot remove old output {}", self.dest.display()))?;
        }
        let tmp = self.tmp.keep();
        std::fs::rename(&tmp, &self.dest).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp);
            anyhow::Error::new(e).context(format!(
                "cannot move output into place at {}",
                self.dest.display()
            ))
        })
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}
