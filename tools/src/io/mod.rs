//! Byte plumbing shared by every command: the deterministic tar writer, compression
//! (parallel gzip in `pgzip`, the seekable eStargz and zstd:chunked in `seekable`),
//! background output, atomic files and directories, Bazel param files, limits on the tar
//! header extensions of untrusted archives (`tar_guard`), and untrusted text
//! made safe to print.

pub mod argfile;
pub mod compress;
pub mod output;
pub mod pgzip;
pub mod pipe;
pub mod seekable;
pub mod tar_guard;
pub mod tarfmt;
pub mod untrusted;
