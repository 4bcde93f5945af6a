use super::*;
use crate::input::Image;
use crate::input::tests::{sample_files, sample_image, sample_image_with, sample_index};
use crate::io::compress::Compression;
use crate::oci::media_type;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

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
fn tarball_is_an_oci_layout_and_docker_load_input() {
    let (dir, _img) = sample_image();
    let p = |n: &str| dir.path().join(n);
    let img = Input::Image(Image::read(&sample_files(dir.path(), &["l1.tgz", "l2.tar"])).unwrap());
    let tags = vec![
        "example.com/app:v1".to_string(),
        "app:latest".to_string(),
        "app:latest".to_string(),
    ];
    let out = p("image.tar");
    tarball::run(&img, &tags, &out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        bytes,
        tarball::write(&img, &tags, Vec::new()).unwrap(),
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
    assert_eq!(index["mediaType"], media_type::INDEX);
    let ms = index["manifests"].as_array().unwrap();
    assert_eq!(ms.len(), 2, "duplicate tags collapse");
    assert_eq!(ms[0]["digest"], Digest::of(&manifest).to_string());
    assert_eq!(ms[0]["size"], manifest.len());
    assert_eq!(
        ms[0]["platform"],
        serde_json::json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(ms[0]["annotations"][ANNOTATION_REF_NAME], "v1");
    assert_eq!(
        ms[0]["annotations"][ANNOTATION_CONTAINERD_NAME],
        "example.com/app:v1"
    );
    assert_eq!(ms[1]["annotations"][ANNOTATION_REF_NAME], "latest");
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
fn tarball_without_omitted_blobs_is_the_same_tar_less_those_entries() {
    let (dir, img) = sample_image();
    let tags = vec!["example.com/app:v1".to_string()];
    let full = untar(&tarball::write(&img, &tags, Vec::new()).unwrap());
    let l2 = Digest::of(&std::fs::read(dir.path().join("l2.tar")).unwrap());
    let omit = BTreeSet::from([l2]);
    let partial = untar(&tarball::write_omitting(&img, &tags, &omit, Vec::new()).unwrap());
    let l2_name = format!("blobs/sha256/{}", l2.hex());
    assert!(full.iter().any(|e| e.0 == l2_name));
    let want: Vec<_> = full.into_iter().filter(|e| e.0 != l2_name).collect();
    assert_eq!(partial, want, "only the omitted blob's entry is missing");
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
    tarball::run(&img, &["app:v1".into()], &out).unwrap();
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
    layout::run(&img, &[], &out).unwrap();
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
        serde_json::json!({(ANNOTATION_REF_NAME): "latest"})
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

    layout::run(&img, &["a:1".into(), "b".into()], &out).unwrap();
    let index = json(&std::fs::read(out.join("index.json")).unwrap());
    let refs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"][ANNOTATION_REF_NAME].as_str().unwrap())
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
    let img =
        Input::Image(Image::read(&sample_files(dir.path(), &["evil.tgz", "l2.tar"])).unwrap());
    let out = p("out");
    std::fs::create_dir(&out).unwrap();
    let e = format!(
        "{:#}",
        tarball::run(&img, &[], &out.join("x.tar")).unwrap_err()
    );
    assert!(
        e.contains("evil.tgz")
            && e.contains(&want.to_string())
            && e.contains(&Digest::of(&l1).to_string()),
        "{e}"
    );
    let e = format!(
        "{:#}",
        layout::run(&img, &[], &out.join("layout")).unwrap_err()
    );
    assert!(e.contains("evil.tgz"), "{e}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "no partial outputs"
    );
}

#[test]
fn docker_archive_carries_zstd_layers_as_plain_tars_with_their_diff_ids() {
    let (_dir, img) = sample_image_with(Compression::Zstd);
    let img = &img.images()[0];
    assert!(img.has_zstd_layers());
    let tags = vec!["example.com/app:v1".to_string()];
    let entries = untar(&tarball::write_docker_archive(img, &tags, Vec::new()).unwrap());
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
    assert!(!plain.images()[0].has_zstd_layers());
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
    assert_eq!(d["mediaType"], media_type::INDEX);
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
    layout::run(&idx, &["app:v1".into()], &out).unwrap();
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
        top["manifests"][0]["annotations"][ANNOTATION_REF_NAME],
        "app:v1"
    );

    let tar = tarball::write(&idx, &["example.com/app:v1".into()], Vec::new()).unwrap();
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
fn a_layer_only_in_a_registry_cannot_go_in_a_layout() {
    let (dir, _) = sample_image();
    let mut files = sample_files(dir.path(), &["l1.tgz", "l2.tar"]);
    files.blobs[1] = crate::input::BlobSource::Remote(
        crate::oci::reference::Repo::parse("reg.example/base").unwrap(),
    );
    let img = Input::Image(Image::read(&files).unwrap());
    let e = format!(
        "{:#}",
        layout::run(&img, &[], &dir.path().join("out")).unwrap_err()
    );
    assert!(e.contains("only in reg.example/base"), "{e}");
    assert!(!dir.path().join("out").exists());
}
