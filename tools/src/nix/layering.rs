//! Splitting a Nix closure into image layers.
//!
//! Registries and runtimes share layers by digest, so a layer is only reused when its exact
//! set of store paths recurs. Both algorithms first give each explicit `--group` its layer
//! (the group's paths and their closures, minus paths an earlier group took), then split the
//! rest of the closure into the remaining layer budget.
//!
//! `popularity` is the baseline of Nix's dockerTools and nix2container: the popularity of a
//! path is the number of closure paths that depend on it, transitively, plus one. Paths are
//! sorted by popularity (descending, then by name); the first N-1 get a layer each and all
//! the others share the last one. The last layer therefore mixes the application (the least
//! popular) with whatever dependencies did not fit, and changes with every release.
//!
//! `rules_image` (the default) aims at layers that stay byte-identical across releases:
//!
//! - The roots go in the last layer, alone. They are the only paths sure to change when the
//!   application does; every path that changes with them is an ancestor of a changed source
//!   and therefore also near the top. Everything else is a dependency.
//! - Where a dependency goes depends only on the dependency itself, never on the app: its
//!   *tier* (the bit length of its height, the longest reference chain below it; a store
//!   path's references are fixed by its hash, so its height is too), its name, and its
//!   narSize. Popularity is not used here because it counts referrers, which are app-side.
//!   Dependencies are ordered by (tier, name), so base paths (glibc, its libraries) come
//!   first: they change least, and an early layer that changes would invalidate the
//!   snapshots of every later layer in container stores.
//! - Chunks are cut content-defined, like rsync or restic chunk files: a path ends its chunk
//!   when a hash of its name, as a fraction of 2^64, is below narSize / target. A chunk then
//!   holds about `target` bytes, and adding or removing one path changes only the chunk it
//!   falls into, where cutting at fixed sizes or counts would shift every later boundary.
//!   Tiers never share a chunk, so a new high-level library does not disturb base layers.
//! - Size-aware: a dependency of at least `target` bytes (or at least 64 MiB) gets a layer of
//!   its own; small paths are merged instead of each costing a layer.
//! - `target` is the smallest power of two, at least 1 MiB, for which the chunks fit the
//!   budget. Powers of two keep it from moving with small changes in the closure's size. If
//!   no target fits (more tiers or large paths than layers), the two adjacent chunks with the
//!   fewest bytes are merged until the plan fits.
//!
//! Everything is deterministic: paths are compared by name and the hash is sha256, so the
//! same path-info always gives the same plan.

use super::pathinfo::Graph;
use anyhow::{Result, anyhow, bail};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;

/// The smallest chunk target: below this, per-layer costs (requests, tar and config
/// entries) outweigh finer sharing.
const MIN_TARGET: u64 = 1 << 20;
/// A dependency this large always gets its own layer, whatever the target.
const LARGE_PATH: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    #[value(name = "rules_image")]
    RulesImage,
    #[value(name = "popularity")]
    Popularity,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RulesImage => "rules_image",
            Algorithm::Popularity => "popularity",
        }
    }
}

/// An explicit layer: `NAME=PATH[,PATH...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub paths: Vec<String>,
}

impl Group {
    pub fn parse(spec: &str) -> Result<Group> {
        let (name, paths) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--group {spec:?} must have the form NAME=PATH[,PATH...]"))?;
        let paths: Vec<String> = paths
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if name.is_empty() || paths.is_empty() {
            bail!("--group {spec:?} needs a name and at least one store path");
        }
        Ok(Group {
            name: name.to_string(),
            paths,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    /// Indices into the graph, ascending (so sorted by path).
    pub paths: Vec<usize>,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub algorithm: Algorithm,
    pub layers: Vec<Layer>,
    pub paths: usize,
    pub bytes: u64,
}

/// The plan file `nix-layers` writes, read by the `nix.image` repository rule.
#[derive(serde::Serialize)]
struct PlanFile<'a> {
    algorithm: &'a str,
    layers: Vec<PlanLayer<'a>>,
    /// Store paths in the closure.
    paths: usize,
    /// Their total narSize.
    bytes: u64,
}

#[derive(serde::Serialize)]
struct PlanLayer<'a> {
    name: &'a str,
    paths: Vec<&'a str>,
    size: u64,
}

impl LayerPlan {
    pub fn to_json(&self, g: &Graph) -> Vec<u8> {
        let file = PlanFile {
            algorithm: self.algorithm.name(),
            layers: self
                .layers
                .iter()
                .map(|l| PlanLayer {
                    name: &l.name,
                    paths: l.paths.iter().map(|&i| g.paths[i].as_str()).collect(),
                    size: l.size,
                })
                .collect(),
            paths: self.paths,
            bytes: self.bytes,
        };
        let mut out = crate::oci::json::canonical(&file);
        out.push(b'\n');
        out
    }
}

/// The closure of the roots (and of the groups) with what both algorithms need.
struct Closure<'g> {
    g: &'g Graph,
    /// Closure members, ascending.
    members: Vec<usize>,
    /// Longest reference chain below each member (0 for a path without references).
    height: Vec<u32>,
    /// Members in an order where every path comes after all its referrers.
    parents_first: Vec<usize>,
}

impl<'g> Closure<'g> {
    fn new(g: &'g Graph, starts: &[usize]) -> Result<Closure<'g>> {
        let n = g.len();
        // Iterative DFS: 0 unvisited, 1 on the stack, 2 done. Post-order puts children first.
        let mut state = vec![0u8; n];
        let mut height = vec![0u32; n];
        let mut post = Vec::new();
        for &s in starts {
            if state[s] != 0 {
                continue;
            }
            let mut stack = vec![(s, 0usize)];
            state[s] = 1;
            while let Some(&mut (u, ref mut next)) = stack.last_mut() {
                if let Some(&v) = g.refs[u].get(*next) {
                    *next += 1;
                    match state[v] {
                        0 => {
                            state[v] = 1;
                            stack.push((v, 0));
                        }
                        1 => bail!(
                            "reference cycle between {} and {}; store paths cannot form cycles",
                            g.paths[u],
                            g.paths[v]
                        ),
                        _ => {}
                    }
                } else {
                    stack.pop();
                    state[u] = 2;
                    height[u] = g.refs[u].iter().map(|&v| height[v] + 1).max().unwrap_or(0);
                    post.push(u);
                }
            }
        }
        let members = (0..n).filter(|&i| state[i] == 2).collect();
        post.reverse();
        Ok(Closure {
            g,
            members,
            height,
            parents_first: post,
        })
    }

    /// Popularity of every path: how many closure paths depend on it (transitively), plus one.
    fn popularity(&self) -> Vec<usize> {
        let n = self.g.len();
        let words = n.div_ceil(64);
        let mut anc = vec![vec![0u64; words]; n];
        for &u in &self.parents_first {
            let mine = std::mem::take(&mut anc[u]);
            for &v in &self.g.refs[u] {
                let theirs = &mut anc[v];
                for (t, m) in theirs.iter_mut().zip(&mine) {
                    *t |= m;
                }
                theirs[u / 64] |= 1 << (u % 64);
            }
            anc[u] = mine;
        }
        anc.iter()
            .map(|a| a.iter().map(|w| w.count_ones() as usize).sum::<usize>() + 1)
            .collect()
    }

    fn closure_of(&self, starts: &[usize]) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = starts.to_vec();
        while let Some(u) = stack.pop() {
            if seen.insert(u) {
                stack.extend(&self.g.refs[u]);
            }
        }
        seen.into_iter().collect()
    }
}

fn lookup(g: &Graph, p: &str, what: &str) -> Result<usize> {
    g.lookup(p)
        .ok_or_else(|| anyhow!("{what} {p} is not in the path-info (use nix path-info -r on it)"))
}

/// Plans the layers of the closure of `roots` (and of the groups).
pub fn plan(
    g: &Graph,
    roots: &[String],
    groups: &[Group],
    max_layers: usize,
    algorithm: Algorithm,
) -> Result<LayerPlan> {
    if max_layers == 0 {
        bail!("--max-layers must be at least 1");
    }
    if roots.is_empty() {
        bail!("at least one --root is needed");
    }
    let root_ids = roots
        .iter()
        .map(|r| lookup(g, r, "root"))
        .collect::<Result<Vec<_>>>()?;
    let group_ids = groups
        .iter()
        .map(|grp| {
            grp.paths
                .iter()
                .map(|p| lookup(g, p, &format!("path of group {}", grp.name)))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let mut starts = root_ids.clone();
    starts.extend(group_ids.iter().flatten());
    let c = Closure::new(g, &starts)?;

    let mut claimed = vec![false; g.len()];
    let mut layers = Vec::new();
    for (grp, ids) in groups.iter().zip(&group_ids) {
        if layers.iter().any(|l: &Layer| l.name == grp.name) {
            bail!("group {} is given twice", grp.name);
        }
        let paths: Vec<usize> = c
            .closure_of(ids)
            .into_iter()
            .filter(|&i| !claimed[i])
            .collect();
        for &i in &paths {
            claimed[i] = true;
        }
        if !paths.is_empty() {
            layers.push(layer(g, grp.name.clone(), paths));
        }
    }
    if layers.len() > max_layers {
        bail!(
            "the groups make {} layers, more than --max-layers {max_layers}",
            layers.len()
        );
    }
    let rest: Vec<usize> = c.members.iter().copied().filter(|&i| !claimed[i]).collect();
    let budget = max_layers - layers.len();
    if !rest.is_empty() {
        if budget == 0 {
            bail!(
                "the groups use all {max_layers} layers, leaving none for the {} other paths of the closure",
                rest.len()
            );
        }
        let parts = match algorithm {
            Algorithm::Popularity => by_popularity(&c, &rest, budget),
            Algorithm::RulesImage => rules_image(&c, &rest, &root_ids, budget),
        };
        debug_assert!(parts.len() <= budget);
        for mut paths in parts {
            paths.sort_unstable();
            let name = format!("layer-{}", layers.len() + 1);
            if groups.iter().any(|grp| grp.name == name) {
                bail!("group name {name} collides with an automatic layer's name");
            }
            layers.push(layer(g, name, paths));
        }
    }
    Ok(LayerPlan {
        algorithm,
        paths: c.members.len(),
        bytes: c.members.iter().map(|&i| g.nar_size[i]).sum(),
        layers,
    })
}

fn layer(g: &Graph, name: String, paths: Vec<usize>) -> Layer {
    let size = paths.iter().map(|&i| g.nar_size[i]).sum();
    Layer { name, paths, size }
}

/// The baseline: one layer for each of the budget-1 most popular paths, one for the rest.
fn by_popularity(c: &Closure, rest: &[usize], budget: usize) -> Vec<Vec<usize>> {
    let pop = c.popularity();
    let mut order = rest.to_vec();
    // Indices follow path names, so the tie-break is by name.
    order.sort_by_key(|&i| (std::cmp::Reverse(pop[i]), i));
    if order.len() <= budget {
        return order.into_iter().map(|i| vec![i]).collect();
    }
    let tail = order.split_off(budget - 1);
    let mut parts: Vec<Vec<usize>> = order.into_iter().map(|i| vec![i]).collect();
    parts.push(tail);
    parts
}

/// See the module documentation.
fn rules_image(c: &Closure, rest: &[usize], roots: &[usize], budget: usize) -> Vec<Vec<usize>> {
    let app: Vec<usize> = rest.iter().copied().filter(|i| roots.contains(i)).collect();
    let mut deps: Vec<usize> = rest
        .iter()
        .copied()
        .filter(|i| !roots.contains(i))
        .collect();
    if deps.is_empty() {
        return vec![app];
    }
    if budget == 1 {
        return vec![rest.to_vec()];
    }
    let dep_budget = budget - usize::from(!app.is_empty());
    let tier = |i: usize| u32::BITS - c.height[i].leading_zeros();
    deps.sort_by_key(|&i| (tier(i), i));
    let size = &c.g.nar_size;
    let total: u64 = deps.iter().map(|&i| size[i]).sum();
    let cut: Vec<u64> = deps.iter().map(|&i| name_hash(&c.g.paths[i])).collect();
    let split = |target: u64| {
        let alone = target.min(LARGE_PATH);
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        let mut cur_tier = None;
        for (k, &i) in deps.iter().enumerate() {
            if cur_tier != Some(tier(i)) && !cur.is_empty() {
                chunks.push(std::mem::take(&mut cur));
            }
            cur_tier = Some(tier(i));
            if size[i] >= alone {
                if !cur.is_empty() {
                    chunks.push(std::mem::take(&mut cur));
                }
                chunks.push(vec![i]);
                continue;
            }
            cur.push(i);
            // Cut with probability narSize / target: hash / 2^64 < size / target.
            if u128::from(cut[k]) * u128::from(target) < u128::from(size[i]) << 64 {
                chunks.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            chunks.push(cur);
        }
        chunks
    };
    let mut target = MIN_TARGET;
    let mut chunks = loop {
        let chunks = split(target);
        if chunks.len() <= dep_budget || target / 2 > total.max(MIN_TARGET) {
            break chunks;
        }
        target *= 2;
    };
    while chunks.len() > dep_budget {
        let bytes = |ch: &Vec<usize>| ch.iter().map(|&i| size[i]).sum::<u64>();
        let k = (0..chunks.len() - 1)
            .min_by_key(|&k| (bytes(&chunks[k]) + bytes(&chunks[k + 1]), k))
            .expect("more chunks than a budget of at least one");
        let next = chunks.remove(k + 1);
        chunks[k].extend(next);
    }
    if !app.is_empty() {
        chunks.push(app);
    }
    chunks
}

/// A uniform 64-bit value from a path's name (its hash part, if it is a store path).
fn name_hash(path: &str) -> u64 {
    let name = path.rsplit('/').next().unwrap_or(path);
    let d = Sha256::digest(name.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("sha256 is 32 bytes"))
}

#[cfg(test)]
mod tests;
