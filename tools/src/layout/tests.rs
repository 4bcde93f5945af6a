use super::*;
use crate::io::compress::Compression;
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

/// A two-platform index: sample_image (linux/amd64, layers l1.tgz + l2.tar) and a linux/arm64
/// image sharing l1.tgz. Child files: amd64.child.json, arm64.child.json; index: index.json.
pub(crate) fn sample_index() -> (tempfile::TempDir, IndexInput) {
    let (dir, _) = sample_image();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("frag-arm.json"),
        r#"{"os":"linux","architecture":"arm64","variant":"v8"}"#,
    )
    .unwrap();
    crate::image::run(&crate::image::ManifestOptions {
        config_fragment: p("frag-arm.json"),
        base_manifest: None,
        base_config: None,
        layers: vec![p("l1.json")],
        output_manifest: p("m-arm.json"),
        output_config: p("c-arm.json"),
        output_digest: p("digest-arm"),
        output_descriptor: p("desc-arm.json"),
    })
    .unwrap();
    crate::index::run(&crate::index::IndexOptions {
        child_descriptors: vec![p("desc.json"), p("desc-arm.json")],
        annotations: vec![],
        output_index: p("index.json"),
        output_digest: p("index.digest"),
    })
    .unwrap();
    let child = |name: &str, m: &str, c: &str, blobs: &[&str]| {
        let blobs: Vec<String> = blobs.iter().map(|b| p(b).display().to_string()).collect();
        let v = serde_json::json!({"manifest": p(m), "config": p(c), "blobs": blobs});
        std::fs::write(p(name), v.to_string()).unwrap();
        crate::index::ChildFile::read(&p(name), &Resolver::new(false).unwrap()).unwrap()
    };
    let children = [
        child(
            "amd64.child.json",
            "m.json",
            "c.json",
            &["l1.tgz", "l2.tar"],
        ),
        child("arm64.child.json", "m-arm.json", "c-arm.json", &["l1.tgz"]),
    ];
    let idx = IndexInput::read(&p("index.json"), &children).unwrap();
    (dir, idx)
}

/// Every blob in `blobs/sha256` of a layout, checked against its name.
fn verified_blobs(files: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .filter_map(|(n, b)| {
            let hex = n.strip_prefix("blobs/sha256/")?;
            (!hex.is_empty()).then(|| {
                assert_eq!(Digest::of(b).hex(), hex, "{n}");
                (format!("sha256:{hex}"), b.clone())
            })
        })
        .collect()
}

/// index.json -> index blob -> both manifests -> configs and layers, all present.
fn check_index_layout(files: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    let blobs = verified_blobs(files);
    let top = json(&files["index.json"]);
    assert_eq!(top["manifests"].as_array().unwrap().len(), 1);
    let d = &top["manifests"][0];
    assert_eq!(d["mediaType"], spec::MT_INDEX);
    let index_bytes = std::fs::read(dir.join("index.json")).unwrap();
    assert_eq!(blobs[d["digest"].as_str().unwrap()], index_bytes);
    assert_eq!(d["size"], index_bytes.len());
    let index = json(&index_bytes);
    let mut want = 1; // the index
    let mut layers = std::collections::BTreeSet::new();
    for (m, name) in index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["m.json", "m-arm.json"])
    {
        let mb = &blobs[m["digest"].as_str().unwrap()];
        assert_eq!(mb, &std::fs::read(dir.join(name)).unwrap());
        let manifest = json(mb);
        assert!(blobs.contains_key(manifest["config"]["digest"].as_str().unwrap()));
        for l in manifest["layers"].as_array().unwrap() {
            assert!(blobs.contains_key(l["digest"].as_str().unwrap()));
            layers.insert(l["digest"].as_str().unwrap().to_string());
        }
        want += 2;
    }
    // l1 is shared: stored once.
    assert_eq!(layers.len(), 2);
    assert_eq!(blobs.len(), want + layers.len());
}

#[test]
fn index_layout_and_tarball_hold_every_platform() {
    let (dir, idx) = sample_index();
    let out = dir.path().join("layout");
    run_layout(&idx, &["app:v1".into()], &out).unwrap();
    let mut files = BTreeMap::new();
    for sub in ["", "blobs/sha256/"] {
        for e in std::fs::read_dir(out.join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                let name = format!("{sub}{}", e.file_name().to_str().unwrap());
                files.insert(name, std::fs::read(e.path()).unwrap());
            }
        }
    }
    check_index_layout(&files, dir.path());
    let top = json(&files["index.json"]);
    assert_eq!(
        top["manifests"][0]["annotations"][spec::ANNOTATION_REF_NAME],
        "app:v1"
    );

    let tar = write_tarball(&idx, &["example.com/app:v1".into()], Vec::new()).unwrap();
    let files: BTreeMap<String, Vec<u8>> = untar(&tar)
        .into_iter()
        .filter(|e| e.1 == b'0')
        .map(|e| (e.0, e.3))
        .collect();
    check_index_layout(&files, dir.path());
    // docker's manifest.json: one entry per child, the tags on linux/amd64 only.
    let dm = json(&files["manifest.json"]);
    assert_eq!(dm.as_array().unwrap().len(), 2);
    assert_eq!(dm[0]["RepoTags"], serde_json::json!(["example.com/app:v1"]));
    assert_eq!(dm[1]["RepoTags"], serde_json::json!([]));
    assert_eq!(dm[1]["Layers"].as_array().unwrap().len(), 1);
    for e in dm.as_array().unwrap() {
        assert!(files.contains_key(e["Config"].as_str().unwrap()));
    }
}

#[test]
fn index_children_must_match_the_index() {
    let (dir, _) = sample_index();
    let p = |n: &str| dir.path().join(n);
    let r = Resolver::new(false).unwrap();
    let amd = crate::index::ChildFile::read(&p("amd64.child.json"), &r).unwrap();
    let arm = crate::index::ChildFile::read(&p("arm64.child.json"), &r).unwrap();
    let e = format!(
        "{:#}",
        IndexInput::read(&p("index.json"), &[arm.clone(), amd.clone()])
            .err()
            .unwrap()
    );
    assert!(
        e.contains("m-arm.json (child 1)") && e.contains("but index"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        IndexInput::read(&p("index.json"), &[amd]).err().unwrap()
    );
    assert!(e.contains("lists 2 manifests but 1 --child files"), "{e}");
}
