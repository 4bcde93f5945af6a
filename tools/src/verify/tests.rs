//! The tree an image's layers make (whiteouts, opaque directories, replacements, hard links,
//! parents through symlinks), and each assertion kind passing and failing.

use super::*;
use crate::import::foreign_layer::tests::{
    Ent, dir, ent, file, gzip, hardlink, symlink, tar_of, zstd,
};
use crate::input::{ImageFiles, Index};
use crate::oci::{Digest, media_type};
use serde_json::{Value, json};
use std::path::Path;

/// Writes an image of `layers` (layer 0 gzip, 1 zstd, the rest plain tars) with `run` as the
/// config's `config` object, and reads it back.
fn image_in(dir: &Path, name: &str, layers: &[Vec<Ent>], run: Value) -> Image {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut blobs = Vec::new();
    for (i, entries) in layers.iter().enumerate() {
        let tar = tar_of(entries);
        diff_ids.push(Digest::of(&tar).to_string());
        let (blob, media) = match i {
            0 => (gzip(&tar), media_type::LAYER_GZIP),
            1 => (zstd(&tar), media_type::LAYER_ZSTD),
            _ => (tar, media_type::LAYER_TAR),
        };
        let path = dir.join(format!("{name}.layer{i}"));
        std::fs::write(&path, &blob).unwrap();
        descriptors.push(json!({"mediaType": media, "digest": Digest::of(&blob).to_string(), "size": blob.len()}));
        blobs.push(BlobSource::Local(path));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::MANIFEST,
        "config": {"mediaType": media_type::CONFIG, "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let files = ImageFiles {
        manifest: dir.join(format!("{name}.manifest.json")),
        config: dir.join(format!("{name}.config.json")),
        blobs,
        child_file: None,
    };
    std::fs::write(&files.manifest, manifest).unwrap();
    std::fs::write(&files.config, config).unwrap();
    Image::read(&files).unwrap()
}

fn image(layers: &[Vec<Ent>]) -> (tempfile::TempDir, Image) {
    let tmp = tempfile::tempdir().unwrap();
    let img = image_in(tmp.path(), "image", layers, json!({}));
    (tmp, img)
}

/// A runner for specs without `run`, which use no engine.
fn no_engine() -> Runner {
    Runner {
        engine: container::Engine::Docker,
        bin: "/no/such/engine".into(),
    }
}

fn spec(v: Value) -> Spec {
    let s: Spec = crate::oci::json::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
    s.check().unwrap();
    s
}

fn spec_error(v: Value) -> String {
    let s = crate::oci::json::parse::<Spec>(&serde_json::to_vec(&v).unwrap());
    format!("{:#}", s.and_then(|s| s.check()).unwrap_err())
}

/// The failure messages of `files` on the image.
fn failures(img: &Image, files: Value) -> Vec<String> {
    let r = check(img, &spec(json!({"image": "//t:image", "files": files}))).unwrap();
    r.messages
}

fn digest(img: &Image, i: usize) -> String {
    img.parsed.layers[i].digest.to_string()
}

fn tree_of(layers: &[Vec<Ent>]) -> Tree {
    let (_tmp, img) = image(layers);
    flatten(&img).unwrap()
}

fn found<'a>(t: &'a Tree, path: &str) -> &'a Node {
    match t.lookup(&path_key(path).unwrap()).unwrap() {
        Lookup::Found { node, .. } => node,
        other => panic!("{path}: {other:?}"),
    }
}

fn why_missing(t: &Tree, path: &str) -> Missing {
    match t.lookup(&path_key(path).unwrap()).unwrap() {
        Lookup::Missing { why, .. } => why,
        other => panic!("{path}: {other:?}"),
    }
}

// ---------------------------------------------------------------- the tree

#[test]
fn whiteouts_hide_lower_layers_not_their_own() {
    let t = tree_of(&[
        vec![
            dir("etc/"),
            file("etc/a", b"1"),
            dir("etc/d/"),
            file("etc/d/x", b"2"),
            file("etc/keep", b"3"),
        ],
        // `.wh.a` comes after the new `a` in the archive: it still hides only layer 0's.
        vec![
            file("etc/a", b"new"),
            file("etc/.wh.a", b""),
            file("etc/.wh.d", b""),
            file("etc/.wh.none", b""),
        ],
    ]);
    assert_eq!(t.keys(), ["/etc", "/etc/a", "/etc/keep"]);
    assert_eq!(found(&t, "/etc/a").layer, 1);
    assert_eq!(why_missing(&t, "/etc/d/x"), Missing::RemovedBy(1));
    assert_eq!(why_missing(&t, "/etc/d"), Missing::RemovedBy(1));
    assert_eq!(why_missing(&t, "/etc/never"), Missing::Never);
}

#[test]
fn opaque_directories_drop_lower_children_only() {
    let t = tree_of(&[
        vec![
            dir("d/"),
            file("d/x", b""),
            dir("d/sub/"),
            file("d/sub/y", b""),
            file("dx", b""),
        ],
        vec![
            dir("d/").mode(0o700),
            file("d/.wh..wh..opq", b""),
            file("d/z", b""),
        ],
        // A whiteout over a path a later layer adds again: that layer's entry counts.
        vec![file("d/x", b"again")],
    ]);
    assert_eq!(t.keys(), ["/d", "/d/x", "/d/z", "/dx"]);
    assert_eq!(found(&t, "/d").mode, 0o700);
    assert_eq!(why_missing(&t, "/d/sub/y"), Missing::RemovedBy(1));
    assert_eq!(found(&t, "/d/x").layer, 2);
}

#[test]
fn entries_replace_and_directories_merge() {
    let t = tree_of(&[
        vec![
            dir("a/"),
            file("a/f", b""),
            dir("b/"),
            file("b/f", b""),
            file("c", b""),
        ],
        vec![
            file("a", b"now a file"),
            dir("b/").mode(0o711).owner(5, 6),
            dir("c/"),
            file("c/g", b""),
            // Parents no entry lists: directories 0755 0:0 of this layer.
            file("new/deep/f", b""),
        ],
    ]);
    assert_eq!(
        t.keys(),
        [
            "/a",
            "/b",
            "/b/f",
            "/c",
            "/c/g",
            "/new",
            "/new/deep",
            "/new/deep/f"
        ]
    );
    assert_eq!(why_missing(&t, "/a/f"), Missing::NotDir);
    let b = found(&t, "/b");
    assert_eq!((b.mode, b.uid, b.gid, b.layer), (0o711, 5, 6, 1));
    assert_eq!(found(&t, "/b/f").layer, 0);
    let implicit = found(&t, "/new/deep");
    assert_eq!(
        (
            implicit.kind.clone(),
            implicit.mode,
            implicit.uid,
            implicit.layer
        ),
        (NodeKind::Dir, 0o755, 0, 1)
    );
}

#[test]
fn hard_links_are_their_target() {
    let (_tmp, img) = image(&[
        vec![file("bin/tool", b"lower bytes").mode(0o755)],
        vec![
            file("opt/data", b"upper bytes"),
            hardlink("opt/same", "opt/data").mode(0o600).owner(7, 8),
            hardlink("bin/alias", "bin/tool").mode(0o755),
        ],
    ]);
    let t = flatten(&img).unwrap();
    let same = found(&t, "/opt/same");
    assert_eq!(same.hardlink.as_deref(), Some(&b"opt/data"[..]));
    assert_eq!(
        (same.mode, same.uid, same.gid, same.layer),
        (0o600, 7, 8, 1)
    );
    // One inode: the link's header applies to the target too, and they share the bytes.
    let data = found(&t, "/opt/data");
    assert_eq!(
        (data.mode, data.uid, data.hardlink.clone()),
        (0o600, 7, None)
    );
    assert_eq!(same.kind, data.kind);
    // A link to a lower layer's file has that layer's bytes.
    assert!(matches!(
        found(&t, "/bin/alias").kind,
        NodeKind::File { layer: 0, .. }
    ));
    let f = failures(
        &img,
        json!({
            "/opt/same": {"type": "hardlink", "link_target": "/opt/data", "contains": ["upper"], "size": 11},
            "/bin/alias": {"type": "file", "contains": ["lower bytes"]},
            "/opt/data": {"type": "hardlink"},
        }),
    );
    assert_eq!(
        f,
        [format!(
            "/opt/data: is a file, want a hardlink (written by layers[1] {})",
            digest(&img, 1)
        )]
    );
}

#[test]
fn a_hard_link_to_nothing_is_an_error() {
    let (_tmp, img) = image(&[vec![file("a", b"")], vec![hardlink("b", "gone")]]);
    let e = format!("{:#}", flatten(&img).unwrap_err());
    assert!(e.contains(&format!("layers[1] {}", digest(&img, 1))), "{e}");
    assert!(
        e.contains("/b: hard link to /gone, which no layer up to this one has"),
        "{e}"
    );
}

#[test]
fn parents_resolve_through_symlinks() {
    let t = tree_of(&[
        vec![
            dir("usr/"),
            dir("usr/lib/"),
            file("usr/lib/a", b""),
            symlink("lib", "usr/lib"),
            symlink("abs", "/usr"),
        ],
        // An entry under a symlinked directory lands where the link points.
        vec![file("lib/b", b"")],
        vec![file("abs/lib/.wh.a", b"")],
    ]);
    assert_eq!(t.keys(), ["/abs", "/lib", "/usr", "/usr/lib", "/usr/lib/b"]);
    let Lookup::Found { key, .. } = t.lookup(b"lib/b").unwrap() else {
        panic!("lib/b")
    };
    assert_eq!(key, b"usr/lib/b");
    assert_eq!(why_missing(&t, "/lib/a"), Missing::RemovedBy(2));
    // The last component is not followed: /lib is the symlink itself.
    assert!(matches!(found(&t, "/lib").kind, NodeKind::Symlink(_)));
}

#[test]
fn symlink_loops_end() {
    let t = tree_of(&[vec![symlink("a", "b"), symlink("b", "a")]]);
    let e = format!("{:#}", t.lookup(b"a/x").unwrap_err());
    assert!(e.contains("more than 40 symbolic links"), "{e}");
}

// ---------------------------------------------------------------- file assertions

fn sample() -> (tempfile::TempDir, Image) {
    image(&[
        vec![
            dir("app/"),
            file("app/server", b"#!/bin/sh\nexec server --port 8080\n")
                .mode(0o755)
                .owner(1000, 1001)
                .uname("app")
                .gname("staff"),
            file("etc/secret", b"x"),
            ent("run/pipe", b'6'),
        ],
        vec![
            symlink("usr/bin/server", "/app/server"),
            file("etc/.wh.secret", b""),
            file("etc/motd", &[0xff, 0x00, b'h', b'i']).mode(0o4750),
        ],
    ])
}

#[test]
fn every_file_assertion_passes() {
    let (_tmp, img) = sample();
    let f = failures(
        &img,
        json!({
            "/app/server": {"type": "file", "mode": "0755", "uid": 1000, "gid": 1001, "uname": "app", "gname": "staff",
                            "size": 34, "contains": ["--port 8080", ""], "matches": ["(?m)port \\d{4}$", "(?m)^exec"]},
            "/app": {"type": "dir", "mode": "755"},
            "/usr/bin/server": {"type": "symlink", "link_target": "/app/server"},
            "/usr/bin": {"type": "dir", "uid": 0},
            "/run/pipe": {"type": "fifo"},
            "/etc/motd": {"mode": "4750", "matches": ["(?-u)\\xff\\x00hi"]},
            "/etc/secret": {"absent": true},
            "/nowhere/at/all": {"absent": true},
            "/app/server/": {},
        }),
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn every_file_assertion_fails_with_path_and_layer() {
    let (_tmp, img) = sample();
    let (l0, l1) = (digest(&img, 0), digest(&img, 1));
    let f = failures(
        &img,
        json!({
            "/app/server": {"type": "dir", "mode": "0700", "uid": 0, "gid": 0, "uname": "root", "gname": "root",
                            "size": 1, "contains": ["--port 9090"], "matches": ["^listen"], "link_target": "/x"},
            "/usr/bin/server": {"link_target": "/app/other", "size": 3, "contains": ["x"]},
            "/etc/secret": {"mode": "0644"},
            "/etc/motd": {"absent": true},
            "/app/missing": {},
            "/app/server/sub": {},
        }),
    );
    let at = |l: &str| format!("(written by layers[{}] {l})", if l == l0 { 0 } else { 1 });
    let want = [
        "/app/missing: does not exist (no layer has it)".to_string(),
        format!("/app/server: is a file, want a dir {}", at(&l0)),
        format!("/app/server: mode is 0755, want 0700 {}", at(&l0)),
        format!("/app/server: uid is 1000, want 0 {}", at(&l0)),
        format!("/app/server: gid is 1001, want 0 {}", at(&l0)),
        format!("/app/server: uname is \"app\", want \"root\" {}", at(&l0)),
        format!("/app/server: gname is \"staff\", want \"root\" {}", at(&l0)),
        format!("/app/server: size is 34 bytes, want 1 {}", at(&l0)),
        format!(
            "/app/server: link_target: is a file, not a link {}",
            at(&l0)
        ),
        format!("/app/server: does not contain \"--port 9090\" {}", at(&l0)),
        format!("/app/server: does not match /^listen/ {}", at(&l0)),
        "/app/server/sub: does not exist (/app/server: not a directory)".to_string(),
        format!("/etc/motd: exists (a file), want absent {}", at(&l1)),
        format!("/etc/secret: does not exist (removed by layers[1] {l1})"),
        format!(
            "/usr/bin/server: size: is a symlink, not a file {}",
            at(&l1)
        ),
        format!(
            "/usr/bin/server: link_target is \"/app/server\", want \"/app/other\" {}",
            at(&l1)
        ),
        format!(
            "/usr/bin/server: content: is a symlink, not a file {}",
            at(&l1)
        ),
    ];
    // In path order, and each path's in the order of the assertion kinds.
    assert_eq!(f, want);
    // A missing path fails every assertion it carries.
    let r = check(
        &img,
        &spec(json!({"image": "//t:image", "files": {"/no": {"mode": "0644", "uid": 0}}})),
    )
    .unwrap();
    assert_eq!(r.failed, 3);
}

#[test]
fn a_path_reached_through_a_symlink_names_where_it_is() {
    let (_tmp, img) = image(&[vec![
        dir("usr/"),
        dir("usr/lib/"),
        file("usr/lib/x", b""),
        symlink("lib", "usr/lib"),
    ]]);
    let f = failures(&img, json!({"/lib/x": {"mode": "0600"}}));
    assert_eq!(
        f,
        [format!(
            "/lib/x: mode is 0644, want 0600 (at /usr/lib/x, written by layers[0] {})",
            digest(&img, 0)
        )]
    );
}

#[test]
fn a_remote_layer_is_named_when_files_need_it() {
    let (_tmp, mut img) = sample();
    img.blobs[0] = BlobSource::Remote(crate::oci::reference::Repo {
        registry: "registry.example".into(),
        repository: "base".into(),
    });
    let e = format!(
        "{:#}",
        check(
            &img,
            &spec(json!({"image": "//t:image", "files": {"/app": {}}}))
        )
        .unwrap_err()
    );
    assert!(
        e.contains(&format!(
            "layers[0] {} (in registry.example/base)",
            digest(&img, 0)
        )),
        "{e}"
    );
    assert!(e.contains("not local"), "{e}");
    // Config assertions need no layer.
    let r = check(
        &img,
        &spec(json!({"image": "//t:image", "config": {"platform": "linux/amd64"}})),
    )
    .unwrap();
    assert_eq!(r.failed, 0);
}

#[test]
fn a_layer_that_is_not_what_the_config_says_is_an_error() {
    let (_tmp, img) = sample();
    let (_tmp2, other) = image(&[vec![file("a", b"")], vec![file("b", b"")]]);
    // Layer 1 swapped for another blob of the same size would pass the size check.
    let mut bad = img.clone();
    bad.blobs[1] = other.blobs[1].clone();
    let e = format!("{:#}", flatten(&bad).unwrap_err());
    assert!(
        e.contains(&format!("layers[1] {}", digest(&img, 1))) && e.contains("rootfs.diff_ids[1]"),
        "{e}"
    );
}

// ---------------------------------------------------------------- config assertions

fn configured() -> (tempfile::TempDir, Image) {
    let tmp = tempfile::tempdir().unwrap();
    let img = image_in(
        tmp.path(),
        "image",
        &[],
        json!({
            "Entrypoint": ["/app/server"],
            "Cmd": null,
            "Env": ["PATH=/usr/bin", "PORT=80", "PORT=8080", "EMPTY="],
            "User": "1000:1000",
            "WorkingDir": "/srv",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "Labels": {"a": "1", "b": "2"},
        }),
    );
    (tmp, img)
}

fn config_failures(img: &Image, config: Value) -> Vec<String> {
    check(img, &spec(json!({"image": "//t:image", "config": config})))
        .unwrap()
        .messages
}

#[test]
fn every_config_assertion_passes() {
    let (_tmp, img) = configured();
    let f = config_failures(
        &img,
        json!({
            "entrypoint": ["/app/server"], "cmd": [], "env": {"PORT": "8080", "EMPTY": ""}, "user": "1000:1000",
            "working_dir": "/srv", "exposed_ports": ["8080", "53/udp"], "labels": {"b": "2"}, "platform": "linux/amd64/v1",
        }),
    );
    assert!(f.is_empty(), "{f:#?}");
    // Unset fields read as empty.
    let (_tmp, bare) = image(&[]);
    let f = config_failures(
        &bare,
        json!({"entrypoint": [], "cmd": [], "user": "", "working_dir": ""}),
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn every_config_assertion_fails() {
    let (_tmp, img) = configured();
    let f = config_failures(
        &img,
        json!({
            "entrypoint": ["/app/other"], "cmd": ["x"], "env": {"PORT": "80", "HOME": "/root"}, "user": "root",
            "working_dir": "/", "exposed_ports": ["53"], "labels": {"a": "2", "c": "3"}, "platform": "linux/arm64",
        }),
    );
    assert_eq!(
        f,
        [
            r#"config: entrypoint is ["/app/server"], want ["/app/other"]"#,
            r#"config: cmd is [], want ["x"]"#,
            r#"config: user is "1000:1000", want "root""#,
            r#"config: working_dir is "/srv", want "/""#,
            r#"config: env "HOME" is not set, want "/root""#,
            r#"config: env "PORT" is "8080", want "80""#,
            r#"config: labels "a" is "1", want "2""#,
            r#"config: labels "c" is not set, want "3""#,
            r#"config: exposed_ports: "53/tcp" is not exposed (exposed: ["53/udp", "8080/tcp"])"#,
            "config: platform is linux/amd64, want linux/arm64",
        ]
    );
}

// ---------------------------------------------------------------- the spec and the command

#[test]
fn malformed_specs_are_refused() {
    let base = |files: Value| json!({"image": "//t:image", "files": files});
    for (v, want) in [
        (
            base(json!({"/a": {"mdoe": "0755"}})),
            "unknown field `mdoe`",
        ),
        (
            base(json!({"/a": {"mode": "0855"}})),
            "mode \"0855\" is not an octal string",
        ),
        (
            base(json!({"/a": {"mode": "17777"}})),
            "is not an octal string",
        ),
        (
            base(json!({"/a": {"type": "socket"}})),
            "unknown variant `socket`",
        ),
        (
            base(json!({"/a": {"matches": ["("]}})),
            "regular expression \"(\"",
        ),
        (
            base(json!({"/a": {"absent": true, "mode": "0644"}})),
            "`absent` cannot be combined",
        ),
        (base(json!({"a": {}})), "must be absolute"),
        (base(json!({"/a/../b": {}})), "escapes the image root"),
        (base(json!({"/": {}})), "is the image root"),
        (
            json!({"image": "//t:image", "config": {"workdir": "/"}}),
            "unknown field `workdir`",
        ),
        (
            json!({"image": "//t:image", "config": {"platform": "linux"}}),
            "not os/arch",
        ),
        (json!({"files": {}}), "missing field `image`"),
    ] {
        let e = spec_error(v.clone());
        assert!(e.contains(want), "{v}: {e}");
    }
}

#[test]
fn an_index_is_tested_image_by_image() {
    let tmp = tempfile::tempdir().unwrap();
    let amd = image_in(tmp.path(), "amd", &[vec![file("app", b"x86")]], json!({}));
    let mut arm = image_in(tmp.path(), "arm", &[vec![file("app", b"arm")]], json!({}));
    arm.platform = Platform::parse("linux/arm64").unwrap();
    let index = |children: Vec<Image>| {
        Input::Index(Index {
            bytes: Vec::new(),
            platforms: children.iter().map(|c| c.platform.clone()).collect(),
            children,
        })
    };
    let s = spec(json!({"image": "//t:index", "files": {"/app": {"contains": ["x86"]}}}));
    let e = format!(
        "{:#}",
        run(
            index(vec![amd.clone(), arm.clone()]),
            &s,
            None,
            &no_engine()
        )
        .unwrap_err()
    );
    assert_eq!(
        e,
        "1 of 4 assertions failed on //t:index (linux/amd64), //t:index (linux/arm64)"
    );
    run(
        index(vec![amd.clone(), arm.clone()]),
        &s,
        Some(&Platform::parse("linux/amd64").unwrap()),
        &no_engine(),
    )
    .unwrap();
    let e = format!(
        "{:#}",
        run(
            index(vec![amd.clone()]),
            &s,
            Some(&Platform::parse("linux/s390x").unwrap()),
            &no_engine(),
        )
        .unwrap_err()
    );
    assert!(e.contains("no image for platform linux/s390x"), "{e}");
    let e = format!(
        "{:#}",
        run(
            Input::Image(amd),
            &s,
            Some(&Platform::parse("linux/amd64").unwrap()),
            &no_engine(),
        )
        .unwrap_err()
    );
    assert!(e.contains("//t:index is a single image"), "{e}");
}

#[test]
fn the_command_reads_its_spec_and_image() {
    let (tmp, img) = sample();
    let write_spec = |v: Value| {
        let p = tmp.path().join("spec.json");
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let files = crate::input::InputFiles::Image(img.files.clone());
    let pass =
        write_spec(json!({"image": "//t:image", "files": {"/app/server": {"mode": "0755"}}}));
    let input = Input::read(&files).unwrap();
    run(input, &Spec::read(&pass).unwrap(), None, &no_engine()).unwrap();
    let fail = write_spec(
        json!({"image": "//t:image", "files": {"/app/server": {"mode": "0700"}}, "config": {"user": "x"}}),
    );
    let e = format!(
        "{:#}",
        run(
            Input::read(&files).unwrap(),
            &Spec::read(&fail).unwrap(),
            None,
            &no_engine(),
        )
        .unwrap_err()
    );
    assert_eq!(e, "2 of 3 assertions failed on //t:image");
    let bad =
        write_spec(json!({"image": "//t:image", "files": {"/x": {"absent": true, "uid": 0}}}));
    let e = format!("{:#}", Spec::read(&bad).unwrap_err());
    assert!(
        e.contains("malformed image_test spec") && e.contains("files[\"/x\"]"),
        "{e}"
    );
}

/// `run` runs one image of an index: the one for `platform`, else this machine's.
#[test]
fn an_index_runs_the_image_for_the_platform() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let amd = image_in(tmp.path(), "amd", &[vec![file("app", b"x86")]], json!({}));
    let mut arm = image_in(tmp.path(), "arm", &[vec![file("app", b"arm")]], json!({}));
    arm.platform = Platform::parse("linux/arm64").unwrap();
    let index = |children: Vec<&Image>| {
        Input::Index(Index {
            bytes: Vec::new(),
            platforms: children.iter().map(|c| c.platform.clone()).collect(),
            children: children.into_iter().cloned().collect(),
        })
    };
    // The engine keeps what it was loaded with; its commands succeed.
    let loaded = tmp.path().join("loaded.tar");
    let bin = tmp.path().join("engine");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\ncase $1 in load) cat > '{}' ;; esac\n",
            loaded.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let runner = Runner {
        engine: container::Engine::Docker,
        bin: bin.to_str().unwrap().into(),
    };
    let has_config = |img: &Image| {
        let tar = std::fs::read(&loaded).unwrap();
        let entries: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        entries.contains(&format!("blobs/sha256/{}", img.parsed.config.digest.hex()))
    };
    let s = spec(json!({"image": "//t:index", "run": [{"exit_code": 0}]}));
    let arm64 = Platform::parse("linux/arm64").unwrap();
    run(index(vec![&amd, &arm]), &s, Some(&arm64), &runner).unwrap();
    assert!(has_config(&arm) && !has_config(&amd));
    if std::env::consts::ARCH == "x86_64" {
        run(index(vec![&amd, &arm]), &s, None, &runner).unwrap();
        assert!(has_config(&amd) && !has_config(&arm));
        let e = format!(
            "{:#}",
            run(index(vec![&arm]), &s, None, &runner).unwrap_err()
        );
        assert_eq!(
            e,
            "`run` runs the index's image for this machine (or for `platform`): no image for \
             platform linux/amd64 in the index; available: linux/arm64"
        );
    }
}
