use super::*;
use std::collections::BTreeMap;

const MIB: u64 = 1 << 20;

/// A store path whose hash part is derived from its name, as Nix's would be from its inputs.
fn sp(name: &str) -> String {
    let h = hex::encode(Sha256::digest(name.as_bytes()));
    format!("/nix/store/{}-{name}", &h[..32])
}

/// A graph from `(name, narSize, [referenced names])`.
fn graph(nodes: &[(&str, u64, &[&str])]) -> Graph {
    let map: BTreeMap<String, (u64, Vec<String>)> = nodes
        .iter()
        .map(|(n, s, r)| (sp(n), (*s, r.iter().map(|r| sp(r)).collect())))
        .collect();
    Graph::from_nodes(map).unwrap()
}

fn run_plan(g: &Graph, roots: &[&str], max: usize, alg: Algorithm) -> LayerPlan {
    let roots: Vec<String> = roots.iter().map(|r| sp(r)).collect();
    plan(g, &roots, &[], max, alg).unwrap()
}

/// Layers as sets of names (without the store prefix), in plan order.
fn names(g: &Graph, p: &LayerPlan) -> Vec<Vec<String>> {
    p.layers
        .iter()
        .map(|l| {
            let mut v: Vec<String> = l
                .paths
                .iter()
                .map(|&i| g.paths[i][44..].to_string())
                .collect();
            v.sort();
            v
        })
        .collect()
}

/// Every closure path exactly once, no empty layer, sizes and totals consistent.
fn check_partition(g: &Graph, p: &LayerPlan, max: usize) {
    assert!(p.layers.len() <= max, "{} layers > {max}", p.layers.len());
    let mut seen = BTreeSet::new();
    for l in &p.layers {
        assert!(!l.paths.is_empty(), "empty layer {}", l.name);
        assert!(
            l.paths.windows(2).all(|w| w[0] < w[1]),
            "unsorted {}",
            l.name
        );
        assert_eq!(l.size, l.paths.iter().map(|&i| g.nar_size[i]).sum::<u64>());
        for &i in &l.paths {
            assert!(seen.insert(i), "{} in two layers", g.paths[i]);
        }
    }
    assert_eq!(seen.len(), p.paths);
    assert_eq!(p.bytes, seen.iter().map(|&i| g.nar_size[i]).sum::<u64>());
}

/// Bytes of the layers of `b` whose path set is also a layer of `a`, over all bytes of `b`.
fn shared_share(ga: &Graph, a: &LayerPlan, gb: &Graph, b: &LayerPlan) -> f64 {
    let sets = |g: &Graph, p: &LayerPlan| -> Vec<(BTreeSet<String>, u64)> {
        p.layers
            .iter()
            .map(|l| {
                (
                    l.paths.iter().map(|&i| g.paths[i].clone()).collect(),
                    l.size,
                )
            })
            .collect()
    };
    let sa = sets(ga, a);
    let sb = sets(gb, b);
    let shared: u64 = sb
        .iter()
        .filter(|(s, _)| sa.iter().any(|(t, _)| t == s))
        .map(|(_, n)| n)
        .sum();
    shared as f64 / sb.iter().map(|(_, n)| n).sum::<u64>() as f64
}

#[test]
fn diamond() {
    let g = graph(&[
        ("app", 10, &["a", "b"]),
        ("a", 1000, &["c"]),
        ("b", 2000, &["c"]),
        ("c", 5000, &["c"]),
    ]);
    let p = run_plan(&g, &["app"], 100, Algorithm::Popularity);
    check_partition(&g, &p, 100);
    // Popularity: c is depended on by 3 paths (4), a and b by one (2), app by none (1).
    // a and b tie and are ordered by store path, that is by hash.
    let (first, second) = if sp("a") < sp("b") {
        ("a", "b")
    } else {
        ("b", "a")
    };
    assert_eq!(names(&g, &p), [["c"], [first], [second], ["app"]]);
    let p = run_plan(&g, &["app"], 2, Algorithm::Popularity);
    assert_eq!(names(&g, &p), vec![vec!["c"], vec!["a", "app", "b"]]);

    let p = run_plan(&g, &["app"], 100, Algorithm::RulesImage);
    check_partition(&g, &p, 100);
    let n = names(&g, &p);
    // The base path first (its own tier), the root alone last, a and b (tier 1) between.
    assert_eq!(n.first().unwrap(), &["c"]);
    assert_eq!(n.last().unwrap(), &["app"]);
    assert_eq!(n[1..n.len() - 1].concat(), ["a", "b"]);
    assert_eq!(p.layers.last().unwrap().name, format!("layer-{}", n.len()));
    // One layer: everything together.
    let p = run_plan(&g, &["app"], 1, Algorithm::RulesImage);
    assert_eq!(names(&g, &p), [["a", "app", "b", "c"]]);
}

#[test]
fn plan_json_is_canonical() {
    let g = graph(&[("app", 10, &["lib"]), ("lib", 20, &[])]);
    let p = run_plan(&g, &["app"], 100, Algorithm::RulesImage);
    let json = String::from_utf8(p.to_json(&g)).unwrap();
    let want = format!(
        "{{\"algorithm\":\"rules_image\",\"bytes\":30,\"layers\":[\
         {{\"name\":\"layer-1\",\"paths\":[\"{}\"],\"size\":20}},\
         {{\"name\":\"layer-2\",\"paths\":[\"{}\"],\"size\":10}}],\"paths\":2}}\n",
        sp("lib"),
        sp("app")
    );
    assert_eq!(json, want);
}

/// A pseudo-random closure: `n` paths in levels, each referring to a few lower ones.
fn generated(n: usize, seed: &str) -> (Graph, String) {
    let name = |i: usize| format!("p{i}-{seed}");
    let mut nodes: Vec<(String, u64, Vec<String>)> = Vec::new();
    for i in 0..n {
        let h = Sha256::digest(format!("{seed}{i}").as_bytes());
        // Sizes from 1 KiB to ~64 MiB, mostly small, like a real closure.
        let size = 1024u64 << (h[0] % 17);
        let refs = if i == 0 {
            vec![]
        } else {
            (0..=h[1] % 4)
                .map(|k| name(usize::from(h[2 + usize::from(k)]) * 7919 % i))
                .collect()
        };
        nodes.push((name(i), size, refs));
    }
    // The root refers to the 40 highest paths so that everything is reachable-ish.
    let root = format!("app-{seed}");
    nodes.push((root.clone(), 4096, (n - 40..n).map(name).collect()));
    let owned: Vec<(&str, u64, Vec<&str>)> = nodes
        .iter()
        .map(|(a, s, r)| (a.as_str(), *s, r.iter().map(String::as_str).collect()))
        .collect();
    let refs: Vec<(&str, u64, &[&str])> = owned.iter().map(|(a, s, r)| (*a, *s, &r[..])).collect();
    (graph(&refs), root)
}

#[test]
fn generated_closure_fits_the_budget_and_covers_every_path_once() {
    let (g, root) = generated(250, "x");
    for alg in [Algorithm::RulesImage, Algorithm::Popularity] {
        for max in [1, 2, 3, 10, 100, 400] {
            let p = run_plan(&g, &[&root], max, alg);
            check_partition(&g, &p, max);
            // Deterministic: a second run gives the same bytes.
            let again = run_plan(&g, &[&root], max, alg);
            assert_eq!(p.to_json(&g), again.to_json(&g));
        }
        let p = run_plan(&g, &[&root], 10, alg);
        assert_eq!(
            p.layers.len(),
            10,
            "{alg:?} should use the whole budget here"
        );
    }
}

#[test]
fn size_aware_large_paths_alone_small_paths_merged() {
    // 60 tiny libraries and one big shared one under one app.
    let mut nodes: Vec<(String, u64, Vec<String>)> = (0..60)
        .map(|i| (format!("tiny{i}"), 4096, vec!["big".to_string()]))
        .collect();
    nodes.push(("big".into(), 300 * MIB, vec![]));
    nodes.push((
        "app".into(),
        100,
        (0..60).map(|i| format!("tiny{i}")).collect(),
    ));
    let owned: Vec<(&str, u64, Vec<&str>)> = nodes
        .iter()
        .map(|(a, s, r)| (a.as_str(), *s, r.iter().map(String::as_str).collect()))
        .collect();
    let refs: Vec<(&str, u64, &[&str])> = owned.iter().map(|(a, s, r)| (*a, *s, &r[..])).collect();
    let g = graph(&refs);
    let p = run_plan(&g, &["app"], 100, Algorithm::RulesImage);
    check_partition(&g, &p, 100);
    let n = names(&g, &p);
    assert_eq!(n[0], ["big"]);
    assert_eq!(n.last().unwrap(), &["app"]);
    // 240 KiB of tiny paths stay together instead of taking 60 layers.
    assert_eq!(n.len(), 3, "{n:?}");
    // Popularity spends a layer on each.
    let p = run_plan(&g, &["app"], 100, Algorithm::Popularity);
    assert_eq!(p.layers.len(), 62);
}

#[test]
fn groups_come_first_with_their_closures() {
    let g = graph(&[
        ("app", 10, &["py", "tool"]),
        ("py", 100, &["libc", "zlib"]),
        ("tool", 50, &["libc"]),
        ("zlib", 20, &["libc"]),
        ("libc", 500, &[]),
        ("extra", 7, &[]),
    ]);
    let grp = |spec: &str| Group::parse(spec).unwrap();
    let mk =
        |groups: &[Group], max: usize| plan(&g, &[sp("app")], groups, max, Algorithm::RulesImage);
    let groups = [
        grp(&format!("base={}", sp("libc"))),
        // py's closure minus libc, already in `base`.
        grp(&format!("python={},{}", sp("py"), &sp("zlib")[11..])),
        // Everything here is claimed already: no empty layer.
        grp(&format!("dup={}", sp("zlib"))),
        // Not in the root's closure: added, like nix2container's buildLayer deps.
        grp(&format!("more={}", sp("extra"))),
    ];
    let p = mk(&groups, 5).unwrap();
    check_partition(&g, &p, 5);
    let n = names(&g, &p);
    assert_eq!(
        p.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["base", "python", "more", "layer-4", "layer-5"]
    );
    assert_eq!(n[..3], [vec!["libc"], vec!["py", "zlib"], vec!["extra"]]);
    assert_eq!(n[3..], [vec!["tool"], vec!["app"]]);
    assert_eq!(p.paths, 6);

    let err = |groups: &[Group], max: usize| format!("{:#}", mk(groups, max).unwrap_err());
    let e = err(&groups, 2);
    assert!(
        e.contains("3 layers") && e.contains("--max-layers 2"),
        "{e}"
    );
    let e = err(&groups[..3], 2);
    assert!(e.contains("leaving none"), "{e}");
    let e = err(&[grp("g=/nix/store/zzz-nope")], 5);
    assert!(
        e.contains("/nix/store/zzz-nope") && e.contains("group g"),
        "{e}"
    );
    let e = err(&[groups[0].clone(), groups[0].clone()], 5);
    assert!(e.contains("base") && e.contains("twice"), "{e}");
    let e = err(&[grp(&format!("layer-2={}", sp("libc")))], 5);
    assert!(e.contains("layer-2") && e.contains("collides"), "{e}");
    for bad in ["noequals", "=x", "name=", "name=,"] {
        assert!(Group::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let g = graph(&[("app", 1, &["lib"]), ("lib", 1, &[])]);
    let err = |roots: &[String], max: usize| {
        format!(
            "{:#}",
            plan(&g, roots, &[], max, Algorithm::RulesImage).unwrap_err()
        )
    };
    assert!(err(&[sp("app")], 0).contains("at least 1"));
    let e = err(&["/nix/store/zzz-missing".into()], 10);
    assert!(e.contains("root /nix/store/zzz-missing"), "{e}");
    assert!(err(&[], 10).contains("--root"));
    // Cycles cannot come from Nix; a hand-made file with one is rejected.
    let mut nodes = BTreeMap::new();
    nodes.insert(
        "/nix/store/a-a".to_string(),
        (1, vec!["/nix/store/b-b".into()]),
    );
    nodes.insert(
        "/nix/store/b-b".to_string(),
        (1, vec!["/nix/store/a-a".into()]),
    );
    let cyc = Graph::from_nodes(nodes).unwrap();
    let e = format!(
        "{:#}",
        plan(
            &cyc,
            &["/nix/store/a-a".into()],
            &[],
            5,
            Algorithm::Popularity
        )
        .unwrap_err()
    );
    assert!(e.contains("cycle") && e.contains("/nix/store/a-a"), "{e}");
}

/// A "base" set of libraries shared by two releases of an app, as in nixpkgs: a few base
/// paths everything uses, and libraries of several levels above them.
fn release(app: &str, extra: &[&str]) -> Graph {
    let mut nodes: Vec<(String, u64, Vec<String>)> = vec![
        ("glibc".into(), 30 * MIB, vec!["libgcc".into()]),
        ("libgcc".into(), MIB, vec![]),
        ("bash".into(), 2 * MIB, vec!["glibc".into()]),
        ("openssl".into(), 6 * MIB, vec!["glibc".into()]),
        (
            "python".into(),
            80 * MIB,
            vec!["glibc".into(), "openssl".into(), "bash".into()],
        ),
    ];
    let mut libs = Vec::new();
    for i in 0..40 {
        let deps = if i % 3 == 0 {
            vec!["python".to_string()]
        } else {
            vec!["python".to_string(), format!("pylib{}", i / 3 * 3)]
        };
        nodes.push((format!("pylib{i}"), (50 + 37 * i) << 10, deps));
        libs.push(format!("pylib{i}"));
    }
    libs.extend(extra.iter().map(|s| s.to_string()));
    for e in extra {
        nodes.push((e.to_string(), 300 << 10, vec!["python".into()]));
    }
    nodes.push((app.into(), 2 * MIB, libs));
    let owned: Vec<(&str, u64, Vec<&str>)> = nodes
        .iter()
        .map(|(a, s, r)| (a.as_str(), *s, r.iter().map(String::as_str).collect()))
        .collect();
    let refs: Vec<(&str, u64, &[&str])> = owned.iter().map(|(a, s, r)| (*a, *s, &r[..])).collect();
    graph(&refs)
}

#[test]
fn releases_that_differ_only_in_the_app_share_every_dependency_layer() {
    let g1 = release("app-1.0", &[]);
    let g2 = release("app-1.1", &[]);
    for max in [4, 8, 20, 100] {
        let p1 = run_plan(&g1, &["app-1.0"], max, Algorithm::RulesImage);
        let p2 = run_plan(&g2, &["app-1.1"], max, Algorithm::RulesImage);
        check_partition(&g2, &p2, max);
        let (n1, n2) = (names(&g1, &p1), names(&g2, &p2));
        // Identical dependency layers, in the same order; only the app layer differs.
        assert_eq!(n1[..n1.len() - 1], n2[..n2.len() - 1], "max {max}");
        assert_eq!(n2.last().unwrap(), &["app-1.1"]);
        let ours = shared_share(&g1, &p1, &g2, &p2);
        let q1 = run_plan(&g1, &["app-1.0"], max, Algorithm::Popularity);
        let q2 = run_plan(&g2, &["app-1.1"], max, Algorithm::Popularity);
        let theirs = shared_share(&g1, &q1, &g2, &q2);
        eprintln!("max_layers {max}: shared bytes rules_image {ours:.3}, popularity {theirs:.3}");
        assert!(ours > 0.98, "{ours}");
        assert!(ours >= theirs);
        if max < 45 {
            // The popularity baseline puts the app in its catch-all last layer.
            assert!(theirs < ours, "max {max}: {theirs} vs {ours}");
        }
    }
}

#[test]
fn a_new_dependency_changes_few_layers() {
    let g1 = release("app-1.0", &[]);
    let g2 = release("app-2.0", &["newlib"]);
    let max = 12;
    let p1 = run_plan(&g1, &["app-1.0"], max, Algorithm::RulesImage);
    let p2 = run_plan(&g2, &["app-2.0"], max, Algorithm::RulesImage);
    let q1 = run_plan(&g1, &["app-1.0"], max, Algorithm::Popularity);
    let q2 = run_plan(&g2, &["app-2.0"], max, Algorithm::Popularity);
    let ours = shared_share(&g1, &p1, &g2, &p2);
    let theirs = shared_share(&g1, &q1, &g2, &q2);
    eprintln!("new dependency: shared bytes rules_image {ours:.3}, popularity {theirs:.3}");
    // Only the chunk newlib lands in and the app layer may change.
    let (n1, n2) = (names(&g1, &p1), names(&g2, &p2));
    let changed = n2.iter().filter(|l| !n1.contains(l)).count();
    assert!(changed <= 2, "{changed} layers changed: {n1:?} -> {n2:?}");
    assert!(ours > theirs, "{ours} vs {theirs}");
}
