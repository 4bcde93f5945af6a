//! rules-image-tool: the one binary behind rules_image's actions and `bazel run` targets.

mod build;
mod cli;
mod import;
mod input;
mod io;
mod nix;
mod oci;
mod registry;
mod repo_dir;
mod write;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match io::argfile::expand(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cli = cli::Cli::parse_from(args);
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match cli.label {
                Some(l) => eprintln!("error: {l}: {e:#}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
