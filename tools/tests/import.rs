//! `import` through the built binary: the tool's own tarball and layout outputs read back.

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
fn import_reads_back_what_tarball_and_layout_write() {
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
        "l.tgz",
        "--metadata",
        "l.json",
        "file\t/etc/hello\thello",
    ]);
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
    ]);
    let digest = std::fs::read_to_string(p.join("d")).unwrap();
    ok(&[
        "tarball",
        "--manifest",
        "m.json",
        "--config",
        "c.json",
        "--blob",
        "l.tgz",
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
        "l.tgz",
        "--output",
        "lay",
    ]);

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
            std::fs::read(p.join("l.tgz")).unwrap()
        );
        assert_eq!(
            json(&o.join("image.json")),
            serde_json::json!({"format": "oci-layout", "manifest_digest": digest, "normalized": false, "platform": "linux/amd64"})
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
}
