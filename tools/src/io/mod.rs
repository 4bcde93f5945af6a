//! Byte plumbing shared by every command: the deterministic tar writer, compression,
//! background output, atomic files and directories, and Bazel param files.

pub mod argfile;
pub mod compress;
pub mod output;
pub mod pipe;
pub mod tarfmt;
