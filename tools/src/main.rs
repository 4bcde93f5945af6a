//! rules-image-tool: the one binary behind rules_image's actions and `bazel run` targets.

mod cli;
mod image;
mod import;
mod index;
mod io;
mod layer;
mod layout;
mod load;
mod nix;
mod oci;
mod registry;

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
    let label = cli.command.label().map(str::to_string);
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match label {
                Some(l) => eprintln!("error: {l}: {e:#}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
