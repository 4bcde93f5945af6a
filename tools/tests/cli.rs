//! The command-line contract, exercised through the built binary.

use std::path::Path;
use std::process::{Command, Output};

fn tool(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rules-image-tool"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn errors_carry_the_label_and_leave_no_outputs() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a"), "a").unwrap();
    std::fs::write(d.path().join("b"), "b").unwrap();
    std::fs::write(
        d.path().join("params"),
        "--output\nout/l.tgz\nfile\t/app/bin\ta\nfile\t/app/bin\tb\n",
    )
    .unwrap();
    std::fs::create_dir(d.path().join("out")).unwrap();
    let o = tool(
        &[
            "layer",
            "--metadata",
            "out/m.json",
            "--label",
            "//app:layer",
            "@params",
        ],
        d.path(),
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.starts_with("error: //app:layer: duplicate path /app/bin"),
        "{e}"
    );
    assert!(e.contains(" a ") || e.contains("by a"), "{e}");
    assert_eq!(std::fs::read_dir(d.path().join("out")).unwrap().count(), 0);
}

#[test]
fn layer_manifest_tarball_layout_pipeline() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("hello"), "hello\n").unwrap();
    let ok = |args: &[&str]| {
        let o = tool(args, p);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    ok(&[
        "layer",
        "--output",
        "l.tar.zst",
        "--metadata",
        "l.json",
        "--compression",
        "zstd",
        "--compression-level",
        "19",
        "--file-metadata",
        "/etc/hello\t{\"mode\":\"0600\"}",
        "file\t/etc/hello\thello",
        "dir\t/tmp",
    ]);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("l.json")).unwrap()).unwrap();
    assert_eq!(
        meta["media_type"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    std::fs::write(
        p.join("frag.json"),
        r#"{"os":"linux","architecture":"amd64","entrypoint":["/bin/true"]}"#,
    )
    .unwrap();
    ok(&[
        "manifest",
        "--config-fragment",
        "frag.json",
        "--layer",
        "l.json",
        "--output-manifest",
        "m.json",
        "--output-config",
        "c.json",
        "--output-digest",
        "d",
        "--output-descriptor",
        "desc.json",
        "--label",
        "//:img",
    ]);
    let digest = std::fs::read_to_string(p.join("d")).unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71);
    ok(&[
        "tarball",
        "--manifest",
        "m.json",
        "--config",
        "c.json",
        "--blob",
        "l.tar.zst",
        "--tag",
        "app:1",
        "--output",
        "i.tar",
    ]);
    ok(&[
        "layout",
        "--manifest",
        "m.json",
        "--config",
        "c.json",
        "--blob",
        "l.tar.zst",
        "--output",
        "lay",
    ]);
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(p.join("lay/blobs/sha256").join(hex).is_file());
    assert!(p.join("lay/index.json").is_file());

    // `import` reads back what tarball and layout wrote.
    // The tarball (an OCI layout with a docker manifest.json) and the layout directory.
    for (src, r) in [("i.tar", Some("app:1")), ("lay", None)] {
        let out = format!("out-{src}");
        let mut args = vec!["import", "--src", src, "--output-dir", &out];
        if let Some(r) = r {
            args.extend(["--ref", r]);
        }
        assert_eq!(ok(&args), format!("{digest}\n"));
        let o = p.join(&out);
        assert_eq!(
            std::fs::read(o.join("manifest.json")).unwrap(),
            std::fs::read(p.join("m.json")).unwrap()
        );
        assert_eq!(
            std::fs::read(o.join("config.json")).unwrap(),
            std::fs::read(p.join("c.json")).unwrap()
        );
        let layers = json(&o.join("layers.json"));
        let meta = json(&p.join("l.json"));
        assert_eq!(layers, serde_json::json!([meta]));
        let hex = &meta["digest"].as_str().unwrap()[7..];
        assert_eq!(
            std::fs::read(o.join("blobs/sha256").join(hex)).unwrap(),
            std::fs::read(p.join("l.tar.zst")).unwrap()
        );
        assert_eq!(
            json(&o.join("image.json")),
            serde_json::json!({"format": "oci-layout", "manifest_digest": digest, "normalized": false, "origin": "import", "platform": "linux/amd64"})
        );
    }

    // --normalize with zstd: the layer is rewritten, the digest changes and is printed.
    let out = ok(&[
        "import",
        "--src",
        "i.tar",
        "--output-dir",
        "norm",
        "--normalize",
        "--source-date-epoch",
        "1700000000",
        "--compression",
        "zstd",
        "--compression-level",
        "19",
    ]);
    let m = std::fs::read(p.join("norm/manifest.json")).unwrap();
    let m_json: serde_json::Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(
        m_json["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        json(&p.join("norm/config.json"))["created"],
        "2023-11-14T22:13:20Z"
    );
    assert_ne!(out.trim(), digest);
    assert!(out.starts_with("sha256:") && out.trim().len() == 71);

    // Errors carry the label; nothing is written.
    std::fs::write(p.join("junk"), "not an image").unwrap();
    let o = tool(
        &[
            "import",
            "--label",
            "//vendor:image",
            "--src",
            "junk",
            "--output-dir",
            "bad",
        ],
        p,
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).starts_with("error: //vendor:image: "),
        "{}",
        stderr(&o)
    );
    assert!(!p.join("bad").exists());
    let o = tool(
        &[
            "import",
            "--src",
            "lay",
            "--output-dir",
            "bad",
            "--normalize",
            "--compression",
            "gzip",
            "--compression-level",
            "12",
        ],
        p,
    );
    assert!(
        !o.status.success() && stderr(&o).contains("12"),
        "{}",
        stderr(&o)
    );
    assert!(!p.join("bad").exists());

    // A level out of range for the algorithm is rejected.
    let o = tool(
        &[
            "layer",
            "--output",
            "x",
            "--metadata",
            "y",
            "--compression",
            "gzip",
            "--compression-level",
            "12",
            "file\t/a\thello",
        ],
        p,
    );
    assert!(!o.status.success() && stderr(&o).contains("12"));
    assert!(!p.join("x").exists() && !p.join("y").exists());
}

#[test]
fn nix_layers_plans_from_path_info() {
    let d = tempfile::tempdir().unwrap();
    let app = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app";
    let lib = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib";
    let tool_path = "/nix/store/cccccccccccccccccccccccccccccccc-tool";
    std::fs::write(
        d.path().join("info.json"),
        format!(
            r#"{{"{app}":{{"narSize":10,"references":["{lib}"]}},
                "{lib}":{{"narSize":20,"references":["{lib}"]}},
                "{tool_path}":{{"narSize":5,"references":["{lib}"]}}}}"#
        ),
    )
    .unwrap();
    let o = tool(
        &[
            "nix-layers",
            "--path-info",
            "info.json",
            "--root",
            app,
            &tool_path[11..],
            "--max-layers",
            "3",
            "--output",
            "plan.json",
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["algorithm"], "rules_image");
    assert_eq!(plan["paths"], 3);
    assert_eq!(plan["bytes"], 35);
    assert_eq!(plan["layers"][0]["paths"], serde_json::json!([lib]));
    assert_eq!(
        plan["layers"][1]["paths"],
        serde_json::json!([app, tool_path])
    );

    // Standard output, the baseline, groups.
    let o = tool(
        &[
            "nix-layers",
            "--path-info",
            "info.json",
            "--root",
            app,
            "--algorithm",
            "popularity",
            "--group",
            &format!("base={lib}"),
        ],
        d.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["algorithm"], "popularity");
    assert_eq!(plan["layers"][0]["name"], "base");
    assert_eq!(plan["layers"][1]["name"], "layer-2");

    let o = tool(
        &[
            "nix-layers",
            "--label",
            "//img:nix",
            "--path-info",
            "info.json",
            "--root",
            "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-missing",
        ],
        d.path(),
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.starts_with("error: //img:nix: ")
            && e.contains("zzzz-missing")
            && e.contains("info.json"),
        "{e}"
    );
}
