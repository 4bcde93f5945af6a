//! `layout`: an OCI image layout directory, written atomically.

use super::{Local, VerifiedFile, dedup_tags, index_json, local_blobs};
use crate::input::Input;
use crate::io::output::{AtomicDir, BUF_SIZE};
use crate::oci::json;
use crate::oci::layout::{OciLayout, blob_path};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub fn run(input: &Input, tags: &[String], output: &Path) -> Result<()> {
    let tags = dedup_tags(tags);
    let dir = AtomicDir::create(output)?;
    let blob_dir = dir.path().join("blobs").join("sha256");
    std::fs::create_dir_all(&blob_dir)
        .with_context(|| format!("cannot create {}", blob_dir.display()))?;
    for (digest, blob) in local_blobs(input)? {
        let dest = dir.path().join(blob_path(&digest));
        let mut f =
            File::create(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
        match &blob {
            Local::Bytes(b) => f
                .write_all(b)
                .with_context(|| format!("cannot write {}", dest.display()))?,
            Local::Stored(stored, desc) => {
                let mut r = VerifiedFile::open(stored, desc)?;
                let mut w = BufWriter::with_capacity(BUF_SIZE, &mut f);
                std::io::copy(&mut r, &mut w)
                    .and_then(|_| w.flush())
                    .with_context(|| {
                        format!("copying layer blob {stored} to {}", dest.display())
                    })?;
                r.finish_verified()?;
            }
        }
    }
    let files = [
        ("oci-layout", json::canonical(&OciLayout::current())),
        ("index.json", index_json(input, &tags, false)),
    ];
    for (name, bytes) in files {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    }
    dir.commit()
}
