use super::*;
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn digest(n: u8) -> Digest {
    Digest::of(&[n])
}

fn layer(n: u8) -> LayerMetadata {
    LayerMetadata {
        diff_id: digest(n),
        digest: digest(n + 100),
        media_type: media_type::LAYER_GZIP.into(),
        size: 10,
        annotations: Default::default(),
    }
}

#[test]
fn context_files_get_fixed_modes_and_times() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let (a, b) = (src.join("a"), src.join("b"));
    std::fs::write(&a, "a").unwrap();
    std::fs::write(&b, "b").unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ctx = tmp.path().join("ctx");
    let files = [
        ("a.txt".to_string(), a.clone()),
        ("bin/run".to_string(), b.clone()),
    ];
    stage_context(&ctx, &files, 1_700_000_000).unwrap();
    for (rel, mode) in [
        ("a.txt", 0o644),
        ("bin/run", 0o755),
        ("bin", 0o755),
        ("", 0o755),
    ] {
        let m = std::fs::metadata(ctx.join(rel)).unwrap();
        assert_eq!(m.mode() & 0o7777, mode, "{rel}");
        assert_eq!(m.mtime(), 1_700_000_000, "{rel}");
    }
    assert_eq!(std::fs::read_to_string(ctx.join("bin/run")).unwrap(), "b");
}

#[test]
fn context_paths_stay_inside_and_appear_once() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("f");
    std::fs::write(&f, "x").unwrap();
    for bad in ["../x", "/abs", "a//b", "a/./b", ""] {
        let e = stage_context(&tmp.path().join("c1"), &[(bad.into(), f.clone())], 0).unwrap_err();
        assert!(
            e.to_string().contains("is not a relative path"),
            "{bad}: {e}"
        );
    }
    let twice = [("x".to_string(), f.clone()), ("x".to_string(), f.clone())];
    let e = stage_context(&tmp.path().join("c2"), &twice, 0).unwrap_err();
    assert!(e.to_string().contains("given twice"), "{e}");
    let e = stage_context(
        &tmp.path().join("c3"),
        &[("d".into(), tmp.path().to_path_buf())],
        0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("is not a regular file"), "{e}");
}

#[test]
fn history_keeps_the_base_and_marks_squashed_steps_empty() {
    let base_history = json!([{"created": "1970-01-01T00:00:00Z", "created_by": "base layer"}]);
    let built = obj(json!({
        "architecture": "amd64", "os": "linux",
        "created": "2030-01-01T00:00:00Z",
        "container": "abc", "container_config": {},
        "config": {"Image": "sha256:x", "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [digest(1).to_string(), digest(2).to_string(), digest(3).to_string()]},
        "history": [
            {"created": "2099-01-01T00:00:00Z", "created_by": "builder's view of the base"},
            {"created": "2030-01-01T00:00:00Z", "created_by": "COPY a"},
            {"created": "2030-01-01T00:00:00Z", "created_by": "ENV X=1", "empty_layer": true},
            {"created": "2030-01-01T00:00:00Z", "created_by": "COPY b"},
            {"created": "2030-01-01T00:00:00Z", "created_by": "CMD sh", "empty_layer": true},
        ],
    }));
    let base_cfg = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest(1).to_string()]},
        "history": base_history,
    });
    let base = base_image(&base_cfg);
    let cfg = result_config(&built, Some(&base), 1, &layer(9), 1_700_000_000).unwrap();
    let cfg: Value = serde_json::from_slice(&cfg).unwrap();
    let t = "2023-11-14T22:13:20Z";
    assert_eq!(cfg["created"], t);
    assert!(cfg.get("container").is_none() && cfg.get("container_config").is_none());
    assert!(cfg["config"].get("Image").is_none());
    assert_eq!(cfg["config"]["Cmd"], json!(["sh"]));
    assert_eq!(
        cfg["rootfs"]["diff_ids"],
        json!([digest(1).to_string(), digest(9).to_string()])
    );
    assert_eq!(
        cfg["history"],
        json!([
            {"created": "1970-01-01T00:00:00Z", "created_by": "base layer"},
            {"created": t, "created_by": "COPY a", "empty_layer": true},
            {"created": t, "created_by": "ENV X=1", "empty_layer": true},
            {"created": t, "created_by": "COPY b"},
            {"created": t, "created_by": "CMD sh", "empty_layer": true},
        ])
    );
    // One history entry per layer, as the spec asks.
    let layers = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("empty_layer").is_none())
        .count();
    assert_eq!(layers, cfg["rootfs"]["diff_ids"].as_array().unwrap().len());
}

#[test]
fn a_build_that_added_no_layer_gets_one_history_entry_for_its_empty_layer() {
    let built = obj(json!({
        "os": "linux", "architecture": "amd64",
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": "ENV X=1", "empty_layer": true}],
    }));
    let cfg = result_config(&built, None, 0, &layer(9), 0).unwrap();
    let cfg: Value = serde_json::from_slice(&cfg).unwrap();
    let h = cfg["history"].as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert!(h[1].get("empty_layer").is_none(), "{h:?}");
}

#[test]
fn a_build_on_another_base_names_it() {
    let a = base_image(
        &json!({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": [digest(1).to_string()]}}),
    );
    let b = base_image(
        &json!({"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": [digest(2).to_string()]}}),
    );
    let bases = BTreeMap::from([("a", a), ("b", b)]);
    let built = [digest(2), digest(3)];
    assert!(check_base(&built, &[digest(2)], "b", &bases).is_ok());
    let e = check_base(&built, &[digest(1)], "a", &bases)
        .unwrap_err()
        .to_string();
    assert!(e.contains("builds on the base \"b\", not on \"a\""), "{e}");
    let e = check_base(&[digest(7)], &[digest(1)], "a", &bases)
        .unwrap_err()
        .to_string();
    assert!(e.contains("builds on none of the bases"), "{e}");
}

/// An image with this config, as `Image::read` would give it (no layers needed here).
fn base_image(config: &Value) -> Image {
    let config = json::canonical(config);
    let manifest = ImageManifest::new(
        Descriptor::of(media_type::CONFIG, &config),
        Vec::new(),
        Default::default(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let (m, c) = (tmp.path().join("m"), tmp.path().join("c"));
    std::fs::write(&m, manifest.to_bytes()).unwrap();
    std::fs::write(&c, &config).unwrap();
    let files = ImageFiles::new(&m, &c, &[], &Resolver::new(false).unwrap()).unwrap();
    Image::read(&files).unwrap()
}
