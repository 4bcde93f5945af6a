use super::*;
use crate::oci::media_type;
use serde_json::json;

fn d(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn layer(c: char, mt: &str, size: u64) -> LayerMetadata {
    LayerMetadata {
        diff_id: d(c),
        digest: d(c),
        media_type: mt.into(),
        size,
        annotations: Default::default(),
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A config fragment, as `manifest` reads it from its file.
fn fragment(v: Value) -> ConfigFragment {
    json::parse(&json::canonical(&v)).unwrap()
}

fn bad_fragment(v: Value) -> String {
    json::parse::<ConfigFragment>(&json::canonical(&v))
        .unwrap_err()
        .to_string()
}

fn parse(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

fn base() -> BaseImage {
    let config = obj(json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2020-01-01T00:00:00Z",
        "docker_version": "24.0.0",
        "config": {
            "Env": ["PATH=/usr/bin", "LANG=C", "HOME=/root"],
            "Entrypoint": ["/base-entry"],
            "Cmd": ["base-cmd"],
            "WorkingDir": "/base",
            "Labels": {"a": "base", "keep": "yes"},
            "ExposedPorts": {"22/tcp": {}},
            "Volumes": {"/base": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [d('1').to_string()]},
        "history": [{"created_by": "base layer"}],
    }));
    let docker_layer = json!({
        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "digest": d('2').to_string(),
        "size": 100,
    });
    BaseImage {
        config,
        layers: vec![serde_json::from_value(docker_layer).unwrap()],
    }
}

#[test]
fn env_merge_replaces_in_place_and_appends() {
    let mut env = vec![json!("PATH=/usr/bin"), json!("LANG=C")];
    merge_env(
        &mut env,
        &[
            "LANG=en_US.UTF-8".into(),
            "NEW=1".into(),
            "PATH=/opt:/usr/bin".into(),
            "NEW=2".into(),
        ],
    );
    assert_eq!(
        env,
        vec![
            json!("PATH=/opt:/usr/bin"),
            json!("LANG=en_US.UTF-8"),
            json!("NEW=2")
        ]
    );
}

#[test]
fn image_without_base_is_canonical() {
    let frag = fragment(json!({
        "os": "linux", "architecture": "arm64", "variant": "v8",
        "entrypoint": ["/app"], "cmd": null, "env": ["A=1"],
        "working_dir": "", "user": "1000", "labels": {"z": "1", "b": "2"},
        "annotations": {"org.opencontainers.image.source": "x"},
        "exposed_ports": ["8080/tcp", "53"], "volumes": ["/data"], "stop_signal": "",
        "created": null, "layer_history": ["layer one"],
    }));
    let a = assemble(
        &frag,
        None,
        &[
            layer('a', media_type::LAYER_GZIP, 10),
            layer('b', media_type::LAYER_ZSTD, 20),
        ],
    )
    .unwrap();
    let config = String::from_utf8(a.config.clone()).unwrap();
    let expected_config = r#"{"architecture":"arm64","config":{"Entrypoint":["/app"],"Env":["A=1"],"ExposedPorts":{"53/tcp":{},"8080/tcp":{}},"Labels":{"b":"2","z":"1"},"User":"1000","Volumes":{"/data":{}}},"created":"1970-01-01T00:00:00Z","history":[{"created":"1970-01-01T00:00:00Z","created_by":"layer one"},{"created":"1970-01-01T00:00:00Z","created_by":"rules_image layer"}],"os":"linux","rootfs":{"diff_ids":["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"],"type":"layers"},"variant":"v8"}"#;
    assert_eq!(config, expected_config);
    let manifest = String::from_utf8(a.manifest.clone()).unwrap();
    let expected_manifest = format!(
        r#"{{"annotations":{{"org.opencontainers.image.source":"x"}},"config":{{"digest":"{}","mediaType":"application/vnd.oci.image.config.v1+json","size":{}}},"layers":[{{"digest":"{}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":10}},{{"digest":"{}","mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","size":20}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#,
        Digest::of(&a.config),
        a.config.len(),
        d('a'),
        d('b')
    );
    assert_eq!(manifest, expected_manifest);
    assert_eq!(a.digest, Digest::of(&a.manifest));
    assert_eq!(
        String::from_utf8(a.descriptor).unwrap(),
        format!(
            r#"{{"digest":"{}","mediaType":"application/vnd.oci.image.manifest.v1+json","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}},"size":{}}}"#,
            a.digest,
            a.manifest.len()
        )
    );
}

#[test]
fn base_inheritance_and_docker_merge_rules() {
    let b = base();
    let frag = fragment(json!({
        "os": "linux", "architecture": "amd64",
        "env": ["LANG=C.UTF-8", "APP=1"],
        "entrypoint": ["/app"],
        "labels": {"a": "mine"},
        "exposed_ports": ["8080/tcp"], "volumes": ["/data"],
        "created": "2024-05-01T12:00:00Z",
    }));
    let a = assemble(&frag, Some(&b), &[layer('c', media_type::LAYER_GZIP, 5)]).unwrap();
    let c = parse(&a.config);
    let rc = &c["config"];
    assert_eq!(
        rc["Env"],
        json!(["PATH=/usr/bin", "LANG=C.UTF-8", "HOME=/root", "APP=1"])
    );
    assert_eq!(rc["Entrypoint"], json!(["/app"]));
    assert!(
        rc.get("Cmd").is_none(),
        "a new entrypoint resets the inherited cmd"
    );
    assert_eq!(rc["WorkingDir"], json!("/base"));
    assert_eq!(rc["Labels"], json!({"a": "mine", "keep": "yes"}));
    assert_eq!(rc["ExposedPorts"], json!({"22/tcp": {}, "8080/tcp": {}}));
    assert_eq!(rc["Volumes"], json!({"/base": {}, "/data": {}}));
    assert_eq!(c["created"], json!("2024-05-01T12:00:00Z"));
    assert_eq!(
        c["docker_version"],
        json!("24.0.0"),
        "unknown base fields are kept"
    );
    assert_eq!(
        c["rootfs"]["diff_ids"],
        json!([d('1').to_string(), d('c').to_string()])
    );
    assert_eq!(
        c["history"],
        json!([{"created_by": "base layer"}, {"created": "2024-05-01T12:00:00Z", "created_by": "rules_image layer"}])
    );
    let m = parse(&a.manifest);
    // A Docker-format base layer is listed with the equivalent OCI media type, same bytes.
    assert_eq!(m["layers"][0]["mediaType"], json!(media_type::LAYER_GZIP));
    assert_eq!(m["layers"][0]["digest"], json!(d('2').to_string()));
    assert_eq!(m["layers"][0]["size"], json!(100));
    assert_eq!(m["layers"][1]["digest"], json!(d('c').to_string()));
    assert!(m.get("annotations").is_none());

    // cmd alone replaces cmd and keeps the entrypoint; entrypoint + cmd set both.
    let a = assemble(
        &fragment(json!({"os": "linux", "architecture": "amd64", "cmd": ["x"]})),
        Some(&b),
        &[],
    )
    .unwrap();
    let rc = parse(&a.config)["config"].clone();
    assert_eq!(
        (rc["Entrypoint"].clone(), rc["Cmd"].clone()),
        (json!(["/base-entry"]), json!(["x"]))
    );
    let a = assemble(
        &fragment(
            json!({"os": "linux", "architecture": "amd64", "entrypoint": ["e"], "cmd": ["c"]}),
        ),
        Some(&b),
        &[],
    )
    .unwrap();
    let rc = parse(&a.config)["config"].clone();
    assert_eq!(
        (rc["Entrypoint"].clone(), rc["Cmd"].clone()),
        (json!(["e"]), json!(["c"]))
    );
    // Nothing given: everything inherited, os/arch taken from the base.
    let a = assemble(&fragment(json!({})), Some(&b), &[]).unwrap();
    let rc = parse(&a.config)["config"].clone();
    assert_eq!(rc["Cmd"], json!(["base-cmd"]));
    assert_eq!(parse(&a.config)["os"], json!("linux"));
}

#[test]
fn platform_mismatch_and_bad_fragments_are_errors() {
    let b = base();
    let e = assemble(
        &fragment(json!({"os": "linux", "architecture": "arm64"})),
        Some(&b),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("\"amd64\"") && e.contains("\"arm64\""), "{e}");
    let e = assemble(&fragment(json!({"architecture": "amd64"})), None, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("os"), "{e}");
    let e = bad_fragment(json!({"os": "linux", "architecture": "amd64", "env": "A=1"}));
    assert!(e.contains("env"), "{e}");
    let e = bad_fragment(json!({"os": "linux", "architecture": "amd64", "labels": {"a": 1}}));
    assert!(e.contains("labels"), "{e}");
    // A misspelt field is an error, not silently ignored.
    let e = bad_fragment(json!({"os": "linux", "architecture": "amd64", "entrypiont": ["x"]}));
    assert!(e.contains("entrypiont"), "{e}");
}

#[test]
fn run_writes_all_outputs_and_validates_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("frag.json"),
        r#"{"os":"linux","architecture":"amd64","cmd":["/hi"]}"#,
    )
    .unwrap();
    std::fs::write(
        p("l.json"),
        format!(
            r#"{{"diff_id":"{}","digest":"{}","media_type":"{}","size":7}}"#,
            d('e'),
            d('f'),
            media_type::LAYER_GZIP
        ),
    )
    .unwrap();
    std::fs::write(
        p("bad.json"),
        r#"{"diff_id":"sha256:zz","digest":"x","media_type":"m","size":1}"#,
    )
    .unwrap();
    std::fs::write(p("bm.json"), r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#).unwrap();
    std::fs::write(p("bc.json"), r#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}}"#).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let opts = |layers: Vec<PathBuf>, base: bool| ManifestOptions {
        config_fragment: p("frag.json"),
        base_manifest: base.then(|| p("bm.json")),
        base_config: base.then(|| p("bc.json")),
        layers,
        outputs: ImageOutputs {
            manifest: out.join("m.json"),
            config: out.join("c.json"),
            digest: out.join("digest"),
            descriptor: out.join("desc.json"),
        },
        status_files: Vec::new(),
    };
    let e = format!(
        "{:#}",
        run(&opts(vec![p("bad.json")], false)).err().unwrap()
    );
    assert!(e.contains("bad.json") && e.contains("diff_id"), "{e}");
    let e = format!("{:#}", run(&opts(vec![], true)).err().unwrap());
    assert!(
        e.contains("bm.json") && e.contains("bc.json"),
        "layer count mismatch names both: {e}"
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "no outputs after errors"
    );

    let a = run(&opts(vec![p("l.json")], false)).unwrap();
    assert_eq!(std::fs::read(out.join("m.json")).unwrap(), a.manifest);
    assert_eq!(std::fs::read(out.join("c.json")).unwrap(), a.config);
    assert_eq!(
        std::fs::read_to_string(out.join("digest")).unwrap(),
        a.digest.to_string()
    );
    let desc = parse(&std::fs::read(out.join("desc.json")).unwrap());
    assert_eq!(
        desc["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    let m = parse(&a.manifest);
    assert_eq!(
        m["layers"][0],
        json!({"mediaType": media_type::LAYER_GZIP, "digest": d('f').to_string(), "size": 7})
    );
    assert_eq!(
        parse(&a.config)["rootfs"]["diff_ids"],
        json!([d('e').to_string()])
    );
}

/// Stamped: `{KEY}` in created, labels and annotations from the status; digits are seconds.
/// Unstamped: a templated created is the epoch and labels keep their text.
#[test]
fn stamping_fills_created_labels_and_annotations() {
    let frag = || ConfigFragment {
        os: Some("linux".into()),
        architecture: Some("amd64".into()),
        created: Some("{BUILD_TIMESTAMP}".into()),
        labels: Some(BTreeMap::from([(
            "rev".to_string(),
            "git-{STABLE_GIT_COMMIT}".to_string(),
        )])),
        annotations: Some(BTreeMap::from([(
            "org.opencontainers.image.revision".to_string(),
            "{STABLE_GIT_COMMIT}".to_string(),
        )])),
        ..Default::default()
    };
    let status = Status::from_pairs(&[
        ("BUILD_TIMESTAMP", "1700000000"),
        ("STABLE_GIT_COMMIT", "abc123"),
    ]);
    let mut stamped = frag();
    stamped.stamp(Some(&status)).unwrap();
    let a = assemble(&stamped, None, &[]).unwrap();
    let cfg: Value = serde_json::from_slice(&a.config).unwrap();
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    assert_eq!(cfg["config"]["Labels"]["rev"], "git-abc123");
    let m: Value = serde_json::from_slice(&a.manifest).unwrap();
    assert_eq!(
        m["annotations"]["org.opencontainers.image.revision"],
        "abc123"
    );

    let mut plain = frag();
    plain.stamp(None).unwrap();
    let a = assemble(&plain, None, &[]).unwrap();
    let cfg: Value = serde_json::from_slice(&a.config).unwrap();
    assert_eq!(cfg["created"], EPOCH);
    assert_eq!(cfg["config"]["Labels"]["rev"], "git-{STABLE_GIT_COMMIT}");

    let mut rfc = ConfigFragment {
        created: Some("{WHEN}".into()),
        ..frag()
    };
    rfc.stamp(Some(&Status::from_pairs(&[
        ("WHEN", "2024-05-01T12:00:00Z"),
        ("STABLE_GIT_COMMIT", "x"),
    ])))
    .unwrap();
    assert_eq!(rfc.created.as_deref(), Some("2024-05-01T12:00:00Z"));

    let e = frag()
        .stamp(Some(&Status::from_pairs(&[("BUILD_TIMESTAMP", "1")])))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("label rev") && e.contains("STABLE_GIT_COMMIT"),
        "{e}"
    );
}
