use super::*;
use crate::compress::Compression;
use crate::layer::{self, LayerOptions};
use serde_json::Value;
use std::io::Read;

/// Builds a two-layer image with the real `layer` and `manifest` code in a temp dir, and reads
/// it back as an ImageInput. Paths: m.json, c.json, l1.tgz, l2.tar.
pub(crate) fn sample_image() -> (tempfile::TempDir, ImageInput) {
    sample_image_with(Compression::Gzip)
}

/// Like sample_image, with the first layer compressed by `first`.
pub(crate) fn sample_image_with(first: Compression) -> (tempfile::TempDir, ImageInput) {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("hello"), b"hello\n").unwrap();
    std::fs::write(p("data"), vec![42u8; 70_000]).unwrap();
    let mk = |out: &str, meta: &str, kind, entries: Vec<String>| {
        layer::run(&LayerOptions {
            output: &p(out),
            metadata: &p(meta),
            compression: kind,
            level: None,
            modes: &[],
            owners: &[],
            entries: &entries,
        })
        .unwrap();
    };
    mk(
        "l1.tgz",
        "l1.json",
        first,
        vec![format!("file\t/app/hello\t{}", p("hello").display())],
    );
    mk(
        "l2.tar",
        "l2.json",
        Compression::None,
        vec![format!("file\t/data/blob\t{}", p("data").display())],
    );
    std::fs::write(
        p("frag.json"),
        r#"{"os":"linux","architecture":"amd64","cmd":["/app/hello"]}"#,
    )
    .unwrap();
    crate::image::run(&crate::image::ManifestOptions {
        config_fragment: p("frag.json"),
        base_manifest: None,
        base_config: None,
        layers: vec![p("l1.json"), p("l2.json")],
        output_manifest: p("m.json"),
        output_config: p("c.json"),
        output_digest: p("digest"),
        output_descriptor: p("desc.json"),
    })
    .unwrap();
    let img = ImageInput::read(&p("m.json"), &p("c.json"), &[p("l1.tgz"), p("l2.tar")]).unwrap();
    (dir, img)
}

fn untar(bytes: &[u8]) -> Vec<(String, u8, u32, Vec<u8>)> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!(h.mtime().unwrap(), 0);
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            (name, h.entry_type().as_byte(), h.mode().unwrap(), data)
        })
        .collect()
}

fn json(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

#[test]
fn tag_parts() {
    assert_eq!(tag_part("app"), "latest");
    assert_eq!(tag_part("app:v1"), "v1");
    assert_eq!(tag_part("localhost:5000/team/app"), "latest");
    assert_eq!(tag_part("localhost:5000/team/app:1.2"), "1.2");
    assert_eq!(tag_part("app:v1@sha256:abc"), "v1");
}

#[test]
fn tarball_is_an_oci_layout_and_docker_load_input() {
    let (dir, _img) = sample_image();
    let p = |n: &str| dir.path().join(n);
    let img = ImageInput::read(&p("m.json"), &p("c.json"), &[p("l1.tgz"), p("l2.tar")]).unwrap();
    let tags = vec![
        "example.com/app:v1".to_string(),
        "app:latest".to_string(),
        "app:latest".to_string(),
    ];
    let out = p("image.tar");
    run_tarball(&img, &tags, &out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        bytes,
        write_tarball(&img, &tags, Vec::new()).unwrap(),
        "deterministic"
    );
    let entries = untar(&bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let manifest = std::fs::read(p("m.json")).unwrap();
    let config = std::fs::read(p("c.json")).unwrap();
    let l1 = std::fs::read(p("l1.tgz")).unwrap();
    let l2 = std::fs::read(p("l2.tar")).unwrap();
    let mut blob_names: Vec<String> = [&manifest, &config, &l1, &l2]
        .iter()
        .map(|b| format!("blobs/sha256/{}", Digest::of(b).hex()))
        .collect();
    blob_names.sort();
    let mut want = vec!["blobs/".to_string(), "blobs/sha256/".to_string()];
    want.extend(blob_names);
    want.extend(["index.json", "manifest.json", "oci-layout"].map(String::from));
    assert_eq!(names, want);
    for (name, ty, mode, data) in &entries {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(
                Digest::of(data).hex(),
                *hex,
                "blob content matches its name"
            );
            assert_eq!((*ty, *mode), (b'0', 0o644));
        }
    }
    let file = |n: &str| &entries.iter().find(|e| e.0 == n).unwrap().3;
    assert_eq!(file("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index = json(file("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], spec::MT_INDEX);
    let ms = index["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2, "duplicate tags collapse");
    assert_eq!(ms[0]["digest"], Digest::of(&manifest).to_string());
    assert_eq!(ms[0]["size"], manifest.len());
    assert_eq!(
        ms[0]["platform"],
        serde_json::json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(ms[0]["annotations"][spec::ANNOTATION_REF_NAME], "v1");
    assert_eq!(
        ms[0]["annotations"][spec::ANNOTATION_CONTAINERD_NAME],
        "example.com/app:v1"
    );
    assert_eq!(ms[1]["annotations"][spec::ANNOTATION_REF_NAME], "latest");
    let docker = json(file("manifest.json"));
    assert_eq!(
        docker,
        serde_json::json!([{
            "Config": format!("blobs/sha256/{}", Digest::of(&config).hex()),
            "RepoTags": ["example.com/app:v1", "app:latest"],
            "Layers": [
                format!("blobs/sha256/{}", Digest::of(&l1).hex()),
                format!("blobs/sha256/{}", Digest::of(&l2).hex()),
            ],
        }])
    );
}

#[test]
fn python_tarfile_reads_the_tarball() {
    let Ok(py) = std::process::Command::new("python3")
        .arg("--version")
        .output()
    else {
        return;
    };
    if !py.status.success() {
        return;
    }
    let (dir, img) = sample_image();
    let out = dir.path().join("image.tar");
    run_tarball(&img, &["app:v1".into()], &out).unwrap();
    let script = "import sys,tarfile,hashlib\n\
        t=tarfile.open(sys.argv[1])\n\
        for m in t.getmembers():\n\
        \x20   assert m.mtime==0 and m.uid==0 and m.uname=='', m.name\n\
        \x20   if m.isfile() and m.name.startswith('blobs/sha256/'):\n\
        \x20       assert hashlib.sha256(t.extractfile(m).read()).hexdigest()==m.name.split('/')[-1]\n\
        print(len(t.getmembers()))\n";
    let r = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "9");
}

#[test]
fn layout_directory() {
    let (dir, img) = sample_image();
    let out = dir.path().join("layout");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("stale"), b"old run").unwrap();
    run_layout(&img, &[], &out).unwrap();
    assert!(!out.join("stale").exists());
    assert_eq!(
        std::fs::read(out.join("oci-layout")).unwrap(),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = json(&std::fs::read(out.join("index.json")).unwrap());
    let ms = index["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(
        ms[0]["annotations"],
        serde_json::json!({(spec::ANNOTATION_REF_NAME): "latest"})
    );
    let mut n = 0;
    for e in std::fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(Digest::of(&data).hex(), e.file_name().to_str().unwrap());
        n += 1;
    }
    assert_eq!(n, 4);
    let manifest_hex = ms[0]["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    assert!(out.join("blobs/sha256").join(manifest_hex).exists());

    run_layout(&img, &["a:1".into(), "b".into()], &out).unwrap();
    let index = json(&std::fs::read(out.join("index.json")).unwrap());
    let refs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"][spec::ANNOTATION_REF_NAME]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(refs, ["a:1", "b"]);
}

#[test]
fn blob_mismatches_are_errors_and_leave_nothing() {
    let (dir, _img) = sample_image();
    let p = |n: &str| dir.path().join(n);
    // Same size, other bytes: caught while copying, naming the file and both digests.
    let mut l1 = std::fs::read(p("l1.tgz")).unwrap();
    let want = Digest::of(&l1);
    let last = l1.len() - 1;
    l1[last] ^= 0xff;
    std::fs::write(p("evil.tgz"), &l1).unwrap();
    let img = ImageInput::read(&p("m.json"), &p("c.json"), &[p("evil.tgz"), p("l2.tar")]).unwrap();
    let out = p("out");
    std::fs::create_dir(&out).unwrap();
    let e = format!(
        "{:#}",
        run_tarball(&img, &[], &out.join("x.tar")).unwrap_err()
    );
    assert!(
        e.contains("evil.tgz")
            && e.contains(&want.to_string())
            && e.contains(&Digest::of(&l1).to_string()),
        "{e}"
    );
    let e = format!(
        "{:#}",
        run_layout(&img, &[], &out.join("layout")).unwrap_err()
    );
    assert!(e.contains("evil.tgz"), "{e}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "no partial outputs"
    );

    // Wrong size, wrong count, swapped config: caught before writing.
    let e = format!(
        "{:#}",
        ImageInput::read(&p("m.json"), &p("c.json"), &[p("l2.tar"), p("l1.tgz")])
            .err()
            .unwrap()
    );
    assert!(e.contains("l2.tar"), "{e}");
    let e = format!(
        "{:#}",
        ImageInput::read(&p("m.json"), &p("c.json"), &[p("l1.tgz")])
            .err()
            .unwrap()
    );
    assert!(e.contains("2 layers") && e.contains("1 --blob"), "{e}");
    let e = format!(
        "{:#}",
        ImageInput::read(&p("m.json"), &p("frag.json"), &[p("l1.tgz"), p("l2.tar")])
            .err()
            .unwrap()
    );
    assert!(e.contains("frag.json") && e.contains("m.json"), "{e}");
}

#[test]
fn docker_archive_carries_zstd_layers_as_plain_tars_with_their_diff_ids() {
    let (_dir, img) = sample_image_with(Compression::Zstd);
    assert!(has_zstd_layers(&img));
    let tags = vec!["example.com/app:v1".to_string()];
    let entries = untar(&write_docker_archive(&img, &tags, Vec::new()).unwrap());
    let file = |name: &str| entries.iter().find(|e| e.0 == name).map(|e| e.3.clone());
    let manifest = json(&file("manifest.json").unwrap());
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(tags));
    let config = json(&file(manifest[0]["Config"].as_str().unwrap()).unwrap());
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert!(layers[0].as_str().unwrap().ends_with(".tar"), "{layers:?}");
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        let bytes = file(layer.as_str().unwrap()).unwrap();
        // Both layers are plain tars now: their sha256 is the diff_id docker checks.
        assert_eq!(Digest::of(&bytes).to_string(), diff_id.as_str().unwrap());
    }
    assert!(file("index.json").is_none() && file("oci-layout").is_none());
    let (_dir, plain) = sample_image();
    assert!(!has_zstd_layers(&plain));
}
