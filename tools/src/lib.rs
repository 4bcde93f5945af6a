//! The library behind rules-image-tool, the one binary of rules_image's actions and `bazel run`
//! targets. Its modules stay private: the binary calls `main`, and the fuzz targets (`fuzz/`)
//! call the parsers exposed by `fuzzing`.
//!
//! Where each concept lives (one home each):
//!
//! | module | concept |
//! | --- | --- |
//! | `cli/` | the command line: one file per command, which parses and calls one operation |
//! | `oci/` | digests, media types, descriptors, manifests, indexes (typed, canonical JSON), platforms and THE platform matcher, references, layout/docker-save formats |
//! | `input/` | an image or index on disk, read and checked once (layout, tarball, load, push) |
//! | `build/` | what build actions write: layers (plan + the one encode pipeline), manifests, indexes |
//! | `write/` | layouts, tarballs, loading into an engine |
//! | `repo_dir` | the directory pull and import write for repository rules |
//! | `stamp` | Bazel workspace status values and the `{KEY}` templates filled from them (push tags, stamped configs) |
//! | `registry/` | the OCI distribution client: auth, push, pull |
//! | `remote_cache/` | layer blobs read from a Bazel remote cache's CAS (ByteStream), for push, load and image-test after `--remote_download_minimal` builds |
//! | `import/` | images from OCI layouts and docker-save archives, checked entry by entry |
//! | `dockerfile/` | `dockerfile-build`: a Dockerfile built by a private Buildah on given base images, its new layers squashed into one |
//! | `nix/` | the layering of Nix closures |
//! | `verify/` | `image-test`: an image's layers applied into one tree (whiteouts, hard links), assertions on its files and config; `run` commands in containers of it (`container`, through `write/`'s load) |
//! | `provenance` | `provenance`: in-toto statements with SLSA v1 provenance from the Bazel graph |
//! | `sbom/` | `sbom`: SPDX 2.3 documents of what an image holds, files grouped by layer origin and Nix store path |
//! | `io/` | tar writing, limits on untrusted tar header extensions (`tar_guard`), compression, background output, atomic files, param files, untrusted text |
//! | `fuzzing` | the entry points of the fuzz targets |

mod build;
mod cli;
mod dockerfile;
pub mod fuzzing;
mod import;
mod input;
mod io;
mod nix;
mod oci;
mod provenance;
mod registry;
mod remote_cache;
mod repo_dir;
mod sbom;
mod stamp;
mod verify;
mod write;

use clap::Parser;
use std::process::ExitCode;

/// The command line: parses the arguments (with Bazel param files expanded), runs one
/// command, prints the error of a failed one.
pub fn main() -> ExitCode {
    let args = match io::argfile::expand(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {}", io::untrusted::terminal_safe(&format!("{e:#}")));
            return ExitCode::FAILURE;
        }
    };
    let cli = cli::Cli::parse_from(args);
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = io::untrusted::terminal_safe(&format!("{e:#}"));
            match cli.label {
                Some(l) => eprintln!("error: {l}: {msg}"),
                None => eprintln!("error: {msg}"),
            }
            ExitCode::FAILURE
        }
    }
}
