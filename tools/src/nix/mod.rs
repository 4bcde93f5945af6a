//! `nix-layers`: plans how a Nix closure is split into image layers. The plan (JSON) is what
//! the Starlark rules turn into one `layer` action per planned layer.

pub mod layering;
pub mod pathinfo;

use crate::io::output;
use anyhow::{Context, Result};
use layering::{Algorithm, Group};
use pathinfo::Graph;
use std::io::Write;
use std::path::Path;

pub struct NixLayersOptions<'a> {
    pub path_info: &'a Path,
    pub roots: &'a [String],
    pub max_layers: usize,
    pub groups: &'a [String],
    pub algorithm: Algorithm,
    /// Standard output if not given.
    pub output: Option<&'a Path>,
}

pub fn run(opts: &NixLayersOptions) -> Result<()> {
    let groups = opts
        .groups
        .iter()
        .map(|s| Group::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let g = Graph::read(opts.path_info)?;
    let plan = layering::plan(&g, opts.roots, &groups, opts.max_layers, opts.algorithm)
        .with_context(|| format!("planning layers from {}", opts.path_info.display()))?;
    let json = plan.to_json(&g);
    match opts.output {
        Some(p) => output::write_all_atomic(&[(p, &json)]),
        None => std::io::stdout()
            .lock()
            .write_all(&json)
            .context("cannot write the plan to standard output"),
    }
}
