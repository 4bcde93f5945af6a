use super::*;
use crate::import::foreign_layer::DEFAULT_MAX_LAYER_SIZE;
use crate::io::compress::Compression;
use crate::io::untrusted::shown_str;
use crate::oci::media_type::{
    CONFIG as MT_CONFIG, INDEX as MT_INDEX, LAYER_GZIP as MT_LAYER_GZIP, LAYER_TAR as MT_LAYER_TAR,
    MANIFEST as MT_MANIFEST,
};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// An uncompressed layer tar of regular files, every entry with this mtime.
fn layer_tar(files: &[(&str, &[u8])], mtime: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[derive(Clone)]
struct Layer {
    blob: Vec<u8>,
    diff_id: Digest,
    media_type: &'static str,
}

fn layer(files: &[(&str, &[u8])], mtime: u64, media_type: &'static str) -> Layer {
    let tar = layer_tar(files, mtime);
    let diff_id = Digest::of(&tar);
    let blob = if media_type.ends_with("gzip") {
        gzip(&tar)
    } else {
        tar
    };
    Layer {
        blob,
        diff_id,
        media_type,
    }
}

/// Two layers: a gzip one and an uncompressed one.
fn two_layers(mtime: u64) -> Vec<Layer> {
    vec![
        layer(&[("app/hello", b"hello\n")], mtime, MT_LAYER_GZIP),
        layer(&[("data/blob", &[42u8; 3000])], mtime, MT_LAYER_TAR),
    ]
}

/// A config with build-host noise (container, container_config, config.Image, timestamps).
fn config(platform: &str, diff_ids: &[Digest]) -> Vec<u8> {
    let p = Platform::parse(platform).unwrap();
    let mut c = json!({
        "architecture": p.architecture,
        "os": p.os,
        "created": "2024-05-06T07:08:09.123456789Z",
        "container": "0123456789ab",
        "container_config": {"Hostname": "0123456789ab", "Cmd": ["/bin/sh", "-c", "make"]},
        "docker_version": "24.0.7",
        "config": {"Cmd": ["/app/hello"], "Image": "sha256:feedface", "Env": ["PATH=/bin"]},
        "history": diff_ids.iter().enumerate().map(|(i, _)| json!({"created": format!("2024-05-0{}T00:00:00Z", i + 1), "created_by": format!("step {i}")})).collect::<Vec<_>>(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    });
    if let Some(v) = p.variant {
        c["variant"] = v.into();
    }
    // Not canonical on purpose: the bytes must be kept as they are.
    serde_json::to_vec_pretty(&c).unwrap()
}

fn desc(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": Digest::of(bytes).to_string(), "size": bytes.len()})
}

/// An OCI image layout directory being written.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    fn blob_path(&self, bytes: &[u8]) -> PathBuf {
        self.dir.join("blobs/sha256").join(Digest::of(bytes).hex())
    }

    fn blob(&self, bytes: &[u8]) {
        std::fs::write(self.blob_path(bytes), bytes).unwrap();
    }

    /// Writes an image's blobs; returns its manifest bytes.
    fn image(
        &self,
        manifest_mt: &str,
        config_mt: &str,
        config: &[u8],
        layers: &[Layer],
    ) -> Vec<u8> {
        self.blob(config);
        for l in layers {
            self.blob(&l.blob);
        }
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": manifest_mt,
            "config": desc(config_mt, config),
            "layers": layers.iter().map(|l| desc(l.media_type, &l.blob)).collect::<Vec<_>>(),
            "annotations": {"org.example.note": "kept"},
        }))
        .unwrap();
        self.blob(&manifest);
        manifest
    }

    /// An OCI image of this platform; returns (manifest bytes, layers).
    fn oci_image(&self, platform: &str, layers: &[Layer]) -> Vec<u8> {
        let ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        self.image(MT_MANIFEST, MT_CONFIG, &config(platform, &ids), layers)
    }

    fn index_json(&self, entries: &[Value]) {
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}),
            )
            .unwrap(),
        )
        .unwrap();
    }
}

fn named(mut d: Value, annotations: Value) -> Value {
    d["annotations"] = annotations;
    d
}

fn with_platform(mut d: Value, platform: Value) -> Value {
    d["platform"] = platform;
    d
}

/// A three-entry index: linux/amd64, linux/arm64/v8 and a buildkit attestation.
fn multi_platform(l: &Layout) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let amd = l.oci_image("linux/amd64", &two_layers(0));
    let arm = l.oci_image(
        "linux/arm64/v8",
        &[layer(&[("app/hello", b"hello arm\n")], 0, MT_LAYER_GZIP)],
    );
    let att_layer = layer(&[("statement.json", b"{}")], 0, MT_LAYER_TAR);
    let att = l.image(
        MT_MANIFEST,
        MT_CONFIG,
        br#"{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}"#,
        &[],
    );
    l.blob(&att_layer.blob);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [
            with_platform(desc(MT_MANIFEST, &amd), json!({"os": "linux", "architecture": "amd64"})),
            with_platform(desc(MT_MANIFEST, &arm), json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            named(with_platform(desc(MT_MANIFEST, &att), json!({"os": "unknown", "architecture": "unknown"})),
                json!({"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": Digest::of(&amd).to_string()})),
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .unwrap();
    l.blob(&index);
    l.index_json(&[named(
        desc(MT_INDEX, &index),
        json!({"org.opencontainers.image.ref.name": "latest"}),
    )]);
    (index, amd, arm)
}

/// Tars a directory (entries `./...`), optionally gzipped.
fn tar_dir(dir: &Path, out: &Path, gz: bool) {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    let bytes = b.into_inner().unwrap();
    std::fs::write(out, if gz { gzip(&bytes) } else { bytes }).unwrap();
}

fn import(
    src: &Path,
    out: &Path,
    reference: Option<&str>,
    platform: Option<&str>,
    normalize: Option<Normalize>,
) -> Result<Digest> {
    run(&ImportOptions {
        src,
        output_dir: out,
        reference,
        platform,
        normalize,
    })
}

fn norm(epoch: u64) -> Option<Normalize> {
    Some(Normalize {
        source_date_epoch: epoch,
        codec: crate::io::compress::Codec {
            kind: Compression::Gzip,
            level: 6,
            threads: 2,
        },
        max_layer_size: DEFAULT_MAX_LAYER_SIZE,
    })
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn err_of(r: Result<Digest>) -> String {
    format!("{:#}", r.unwrap_err())
}

/// The names in `dir` (to check that a failed import leaves nothing behind).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Checks the single-image files of `dir` against the source layers; returns image.json.
fn check_image(dir: &Path, blobs: &Path, layers: &[Layer], media_types: &[&str]) -> Value {
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let m = read_json(&dir.join("manifest.json"));
    let config = std::fs::read(dir.join("config.json")).unwrap();
    assert_eq!(
        m["config"]["digest"],
        Digest::of(&config).to_string(),
        "config.json is the manifest's config"
    );
    let layers_json = read_json(&dir.join("layers.json"));
    let expected: Vec<Value> = layers
        .iter()
        .zip(media_types)
        .map(|(l, mt)| {
            json!({"digest": Digest::of(&l.blob).to_string(), "diff_id": l.diff_id.to_string(), "media_type": mt, "size": l.blob.len()})
        })
        .collect();
    assert_eq!(layers_json, Value::Array(expected));
    // layers.json is canonical JSON.
    assert_eq!(
        std::fs::read(dir.join("layers.json")).unwrap(),
        json::canonical(&layers_json)
    );
    for l in layers {
        let b = std::fs::read(blobs.join(Digest::of(&l.blob).hex())).unwrap();
        assert_eq!(b, l.blob);
    }
    let image = read_json(&dir.join("image.json"));
    assert_eq!(image["manifest_digest"], Digest::of(&manifest).to_string());
    image
}

#[test]
fn oci_layout_directory_one_image() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let mut layers = two_layers(1_700_000_000);
    // Docker media types are kept as they are.
    layers[0].media_type = DOCKER_LAYER_GZIP;
    layers[1].media_type = DOCKER_LAYER_TAR;
    let manifest = l.oci_image("linux/arm64/v8", &layers);
    l.index_json(&[named(
        desc(MT_MANIFEST, &manifest),
        json!({"org.opencontainers.image.ref.name": "v1"}),
    )]);
    let out = t.path().join("out");
    let top = import(&l.dir, &out, None, None, None).unwrap();
    assert_eq!(top, Digest::of(&manifest));
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
    let image = check_image(
        &out,
        &out.join("blobs/sha256"),
        &layers,
        &[DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR],
    );
    assert_eq!(
        image,
        json!({"manifest_digest": top.to_string(), "platform": "linux/arm64/v8", "format": "oci-layout", "normalized": false, "origin": "import"})
    );
    assert_eq!(
        std::fs::read_to_string(out.join("digest")).unwrap(),
        top.to_string()
    );
    let d: crate::oci::Descriptor =
        json::parse(&std::fs::read(out.join("descriptor.json")).unwrap()).unwrap();
    assert_eq!((d.digest, d.size), (top, manifest.len() as u64));
    assert_eq!(
        json!(d.media_type),
        read_json(&out.join("manifest.json"))["mediaType"]
    );
    assert_eq!(d.platform.unwrap().to_string(), "linux/arm64/v8");
    assert_eq!(
        names(&out),
        [
            "blobs",
            "config.json",
            "descriptor.json",
            "digest",
            "image.json",
            "layers.json",
            "manifest.json"
        ]
    );
    // Exactly the layer blobs.
    assert_eq!(names(&out.join("blobs/sha256")).len(), 2);
    // Nothing else next to the output (no scratch or temp dirs).
    assert_eq!(names(t.path()), ["layout", "out"]);
    // The same ref selects it; an import over an existing output replaces it.
    assert_eq!(import(&l.dir, &out, Some("v1"), None, None).unwrap(), top);
    // --platform on a single image must match it.
    assert_eq!(
        import(&l.dir, &out, None, Some("linux/arm64"), None).unwrap(),
        top
    );
    let e = err_of(import(
        &t.path().join("layout"),
        &t.path().join("out2"),
        None,
        Some("linux/amd64"),
        None,
    ));
    assert!(
        e.contains("is for platform linux/arm64/v8, not linux/amd64"),
        "{e}"
    );
    assert!(!t.path().join("out2").exists());
}

#[test]
fn oci_layout_as_tar_and_tar_gz() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let mut layers = two_layers(0);
    // A layer too large for the first pass: extracted by the second.
    let big = vec![3u8; (source::MAX_JSON + 1000) as usize];
    layers.push(layer(&[("big", &big)], 0, MT_LAYER_TAR));
    let manifest = l.oci_image("linux/amd64", &layers);
    l.index_json(&[desc(MT_MANIFEST, &manifest)]);
    // A large unrelated blob is never extracted (only listed).
    l.blob(&vec![7u8; (source::MAX_JSON + 1) as usize]);
    for gz in [false, true] {
        let tar = t
            .path()
            .join(if gz { "layout.tar.gz" } else { "layout.tar" });
        tar_dir(&l.dir, &tar, gz);
        let outp = t.path().join(format!("outp{gz}"));
        std::fs::create_dir(&outp).unwrap();
        let out = outp.join("out");
        let top = import(&tar, &out, None, None, None).unwrap();
        assert_eq!(top, Digest::of(&manifest));
        check_image(
            &out,
            &out.join("blobs/sha256"),
            &layers,
            &[MT_LAYER_GZIP, MT_LAYER_TAR, MT_LAYER_TAR],
        );
        assert_eq!(names(&outp), ["out"], "the scratch directory is removed");
    }
}

/// A Docker <= 24 `docker save` directory: manifest.json, <hex>.json, <id>/layer.tar.
fn docker_legacy(dir: &Path, images: &[(&[&str], &str, &[Layer])]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut entries = Vec::new();
    for (tags, platform, layers) in images {
        let ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        let cfg = config(platform, &ids);
        let cfg_name = format!("{}.json", Digest::of(&cfg).hex());
        std::fs::write(dir.join(&cfg_name), &cfg).unwrap();
        let mut paths = Vec::new();
        for l in *layers {
            let id = &Digest::of(&[l.blob.as_slice(), cfg_name.as_bytes()].concat()).hex();
            std::fs::create_dir_all(dir.join(id)).unwrap();
            std::fs::write(dir.join(id).join("layer.tar"), &l.blob).unwrap();
            std::fs::write(dir.join(id).join("VERSION"), b"1.0").unwrap();
            paths.push(format!("{id}/layer.tar"));
        }
        entries.push(json!({"Config": cfg_name, "RepoTags": tags, "Layers": paths}));
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&entries).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("repositories"), b"{}").unwrap();
}

#[test]
fn docker_legacy_save_tarball() {
    let t = tempfile::tempdir().unwrap();
    let plain = |files: &[(&str, &[u8])]| layer(files, 1_700_000_000, MT_LAYER_TAR);
    let app = vec![
        plain(&[("app/hello", b"hello\n")]),
        plain(&[("etc/conf", b"x=1\n")]),
    ];
    let other = vec![plain(&[("other", b"o\n")])];
    let src = t.path().join("save");
    docker_legacy(
        &src,
        &[
            (&["app:1.0", "app:latest"], "linux/amd64", &app),
            (&["reg.example:5000/other:2"], "linux/amd64", &other),
        ],
    );
    let tar = t.path().join("save.tar");
    tar_dir(&src, &tar, false);
    let out = t.path().join("out");

    let e = err_of(import(&tar, &out, None, None, None));
    assert!(
        e.contains(
            "holds 2 images: app:1.0, app:latest; reg.example:5000/other:2; choose one with `ref`"
        ),
        "{e}"
    );
    assert!(!out.exists());
    let e = err_of(import(&tar, &out, Some("nope"), None, None));
    assert!(e.contains("no image tagged \"nope\""), "{e}");

    // `app` means app:latest.
    let top = import(&tar, &out, Some("app"), None, None).unwrap();
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(top, Digest::of(&manifest));
    let m = read_json(&out.join("manifest.json"));
    assert_eq!(
        manifest,
        json::canonical(&m),
        "a canonical manifest is written"
    );
    assert_eq!(m["mediaType"], MT_MANIFEST);
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["config"]["mediaType"], MT_CONFIG);
    let cfg = std::fs::read(out.join("config.json")).unwrap();
    assert_eq!(
        cfg,
        config(
            "linux/amd64",
            &app.iter().map(|l| l.diff_id).collect::<Vec<_>>()
        ),
        "the config is kept byte for byte"
    );
    assert_eq!(m["config"]["size"], cfg.len());
    assert_eq!(
        m["layers"],
        json!(
            app.iter()
                .map(|l| desc(MT_LAYER_TAR, &l.blob))
                .collect::<Vec<_>>()
        )
    );
    let image = check_image(
        &out,
        &out.join("blobs/sha256"),
        &app,
        &[MT_LAYER_TAR, MT_LAYER_TAR],
    );
    assert_eq!(image["format"], "docker-save");
    assert_eq!(image["platform"], "linux/amd64");

    let out2 = t.path().join("out2");
    import(&tar, &out2, Some("reg.example:5000/other:2"), None, None).unwrap();
    check_image(&out2, &out2.join("blobs/sha256"), &other, &[MT_LAYER_TAR]);
    // The directory form is accepted too.
    let out3 = t.path().join("out3");
    assert_eq!(
        import(&src, &out3, Some("app:1.0"), None, None).unwrap(),
        top
    );
}

#[test]
fn docker_legacy_config_must_match_its_name() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("save");
    let app = vec![layer(&[("a", b"a")], 0, MT_LAYER_TAR)];
    docker_legacy(&src, &[(&["app:1"], "linux/amd64", &app)]);
    let m = read_json(&src.join("manifest.json"));
    let cfg = src.join(m[0]["Config"].as_str().unwrap());
    let mut bytes = std::fs::read(&cfg).unwrap();
    bytes.push(b'\n');
    std::fs::write(&cfg, bytes).unwrap();
    let e = err_of(import(&src, &t.path().join("out"), None, None, None));
    assert!(e.contains("content has digest"), "{e}");
    assert!(!t.path().join("out").exists());
}

#[test]
fn docker_25_save_is_read_as_oci_layout() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("save"));
    let layers = vec![
        layer(&[("app/hello", b"hello\n")], 5, DOCKER_LAYER_TAR),
        layer(&[("etc/x", b"x\n")], 5, DOCKER_LAYER_TAR),
    ];
    let ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
    let cfg = config("linux/amd64", &ids);
    let manifest = l.image(DOCKER_MANIFEST, DOCKER_CONFIG, &cfg, &layers);
    let other = l.oci_image("linux/amd64", &[layer(&[("o", b"o")], 0, MT_LAYER_TAR)]);
    l.index_json(&[
        named(
            desc(DOCKER_MANIFEST, &manifest),
            json!({"io.containerd.image.name": "docker.io/library/app:1", "org.opencontainers.image.ref.name": "1"}),
        ),
        named(
            desc(MT_MANIFEST, &other),
            json!({"io.containerd.image.name": "docker.io/library/other:latest", "org.opencontainers.image.ref.name": "latest"}),
        ),
    ]);
    // The legacy manifest.json Docker 25 adds: ignored in favour of index.json.
    std::fs::write(
        l.dir.join("manifest.json"),
        serde_json::to_vec(&json!([{
            "Config": format!("blobs/sha256/{}", Digest::of(&cfg).hex()),
            "RepoTags": ["app:1"],
            "Layers": layers.iter().map(|x| format!("blobs/sha256/{}", Digest::of(&x.blob).hex())).collect::<Vec<_>>(),
        }]))
        .unwrap(),
    )
    .unwrap();
    let tar = t.path().join("save.tar");
    tar_dir(&l.dir, &tar, false);

    let e = err_of(import(&tar, &t.path().join("o"), None, None, None));
    assert!(
        e.contains("holds 2 images: docker.io/library/app:1 / 1; docker.io/library/other:latest / latest; choose one with `ref`"),
        "{e}"
    );
    for r in ["app:1", "docker.io/library/app:1", "1"] {
        let out = t.path().join(format!("out-{r}").replace('/', "_"));
        let top = import(&tar, &out, Some(r), None, None).unwrap();
        assert_eq!(top, Digest::of(&manifest), "ref {r}");
        assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), manifest);
        assert_eq!(std::fs::read(out.join("config.json")).unwrap(), cfg);
        let image = check_image(
            &out,
            &out.join("blobs/sha256"),
            &layers,
            &[DOCKER_LAYER_TAR, DOCKER_LAYER_TAR],
        );
        assert_eq!(image["format"], "oci-layout");
    }
    // `other` means docker.io/library/other:latest.
    let out = t.path().join("out-other");
    assert_eq!(
        import(&tar, &out, Some("other"), None, None).unwrap(),
        Digest::of(&other)
    );
}

#[test]
fn oci_ref_selection_and_ambiguity() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let a = l.oci_image("linux/amd64", &[layer(&[("a", b"a")], 0, MT_LAYER_TAR)]);
    let b = l.oci_image("linux/amd64", &[layer(&[("b", b"b")], 0, MT_LAYER_TAR)]);
    let r = |n: &str| json!({"org.opencontainers.image.ref.name": n});
    l.index_json(&[
        named(desc(MT_MANIFEST, &a), r("a")),
        named(desc(MT_MANIFEST, &a), r("a2")),
        named(desc(MT_MANIFEST, &b), r("b")),
        named(desc(MT_MANIFEST, &b), r("shared")),
        named(desc(MT_MANIFEST, &a), r("shared")),
    ]);
    let out = t.path().join("out");
    let e = err_of(import(&l.dir, &out, None, None, None));
    assert!(
        e.contains("holds 2 images: a, a2, shared; b, shared; choose one with `ref`"),
        "{e}"
    );
    let e = err_of(import(&l.dir, &out, Some("shared"), None, None));
    assert!(
        e.contains("2 different images in") && e.contains("are named \"shared\""),
        "{e}"
    );
    let e = err_of(import(&l.dir, &out, Some("c"), None, None));
    assert!(
        e.contains("has no image named \"c\"; it has: a, a2, shared; b, shared"),
        "{e}"
    );
    assert!(!out.exists());
    assert_eq!(
        import(&l.dir, &out, Some("a2"), None, None).unwrap(),
        Digest::of(&a)
    );
    assert_eq!(
        import(&l.dir, &out, Some("b"), None, None).unwrap(),
        Digest::of(&b)
    );
    // One image listed under several names needs no ref.
    l.index_json(&[
        named(desc(MT_MANIFEST, &a), r("a")),
        named(desc(MT_MANIFEST, &a), r("a2")),
    ]);
    assert_eq!(
        import(&l.dir, &out, None, None, None).unwrap(),
        Digest::of(&a)
    );
}

#[test]
fn index_with_attestation_imports_every_platform() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let (index, amd, arm) = multi_platform(&l);
    let out = t.path().join("out");
    let top = import(&l.dir, &out, None, None, None).unwrap();
    let written = std::fs::read(out.join("index.json")).unwrap();
    assert_eq!(top, Digest::of(&written));
    assert_ne!(written, index, "the attestation is dropped");
    let orig = read_json(&l.blob_path(&index));
    let expected = json!({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [orig["manifests"][0], orig["manifests"][1]],
        "annotations": orig["annotations"],
    });
    assert_eq!(written, json::canonical(&expected));
    let platforms = read_json(&out.join("platforms.json"));
    assert_eq!(
        platforms,
        json!([
            {"dir": "linux_amd64", "os": "linux", "architecture": "amd64", "digest": Digest::of(&amd).to_string()},
            {"dir": "linux_arm64_v8", "os": "linux", "architecture": "arm64", "variant": "v8", "digest": Digest::of(&arm).to_string()},
        ])
    );
    assert_eq!(
        names(&out),
        [
            "blobs",
            "digest",
            "index.json",
            "linux_amd64",
            "linux_arm64_v8",
            "platforms.json"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("digest")).unwrap(),
        Digest::of(&std::fs::read(out.join("index.json")).unwrap()).to_string()
    );
    assert_eq!(
        std::fs::read(out.join("linux_amd64/manifest.json")).unwrap(),
        amd
    );
    assert_eq!(
        std::fs::read(out.join("linux_arm64_v8/manifest.json")).unwrap(),
        arm
    );
    let blobs = out.join("blobs/sha256");
    let image = check_image(
        &out.join("linux_amd64"),
        &blobs,
        &two_layers(0),
        &[MT_LAYER_GZIP, MT_LAYER_TAR],
    );
    assert_eq!(image["platform"], "linux/amd64");
    let image = check_image(
        &out.join("linux_arm64_v8"),
        &blobs,
        &[layer(&[("app/hello", b"hello arm\n")], 0, MT_LAYER_GZIP)],
        &[MT_LAYER_GZIP],
    );
    assert_eq!(image["platform"], "linux/arm64/v8");
    // Only the two platforms' layers: the attestation's are not copied.
    assert_eq!(names(&blobs).len(), 3);
    assert_eq!(
        names(&out.join("linux_amd64")),
        [
            "config.json",
            "descriptor.json",
            "digest",
            "image.json",
            "layers.json",
            "manifest.json"
        ]
    );

    // Without an attestation, the index is kept byte for byte.
    let t2 = tempfile::tempdir().unwrap();
    let l2 = Layout::new(&t2.path().join("layout"));
    let a = l2.oci_image("linux/amd64", &two_layers(0));
    let b = l2.oci_image("linux/arm64", &two_layers(9));
    let idx = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [
            with_platform(desc(MT_MANIFEST, &a), json!({"os": "linux", "architecture": "amd64"})),
            with_platform(desc(MT_MANIFEST, &b), json!({"os": "linux", "architecture": "arm64"})),
        ],
    }))
    .unwrap();
    l2.blob(&idx);
    l2.index_json(&[desc(MT_INDEX, &idx)]);
    let out2 = t2.path().join("out");
    assert_eq!(
        import(&l2.dir, &out2, None, None, None).unwrap(),
        Digest::of(&idx)
    );
    assert_eq!(std::fs::read(out2.join("index.json")).unwrap(), idx);
}

#[test]
fn platform_picks_one_image_of_an_index() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let (_, amd, arm) = multi_platform(&l);
    let out = t.path().join("out");
    let top = import(&l.dir, &out, None, Some("linux/arm64"), None).unwrap();
    assert_eq!(top, Digest::of(&arm));
    assert!(!out.join("platforms.json").exists());
    assert!(!out.join("index.json").exists());
    assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), arm);
    check_image(
        &out,
        &out.join("blobs/sha256"),
        &[layer(&[("app/hello", b"hello arm\n")], 0, MT_LAYER_GZIP)],
        &[MT_LAYER_GZIP],
    );
    assert_eq!(
        import(&l.dir, &out, None, Some("linux/amd64"), None).unwrap(),
        Digest::of(&amd)
    );
    let e = err_of(import(&l.dir, &out, None, Some("linux/s390x"), None));
    assert!(
        e.contains("has no image for platform linux/s390x; available: linux/amd64, linux/arm64/v8"),
        "{e}"
    );
}

#[test]
fn missing_child_manifest_names_the_platform() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let (_, amd, arm) = multi_platform(&l);
    // Docker's containerd store saves only the host's platform.
    std::fs::remove_file(l.blob_path(&arm)).unwrap();
    let out = t.path().join("out");
    let e = err_of(import(&l.dir, &out, None, None, None));
    assert!(
        e.contains(&format!(
            "the manifest {} of platform linux/arm64/v8",
            Digest::of(&arm)
        )) && e.contains("import one platform with `platform` (present: linux/amd64)"),
        "{e}"
    );
    assert!(!out.exists());
    assert_eq!(
        import(&l.dir, &out, None, Some("linux/amd64"), None).unwrap(),
        Digest::of(&amd)
    );
}

#[test]
fn corrupted_blob_is_refused_and_nothing_is_written() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let layers = two_layers(0);
    let manifest = l.oci_image("linux/amd64", &layers);
    l.index_json(&[desc(MT_MANIFEST, &manifest)]);
    let p = l.blob_path(&layers[1].blob);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[600] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    let outp = t.path().join("outp");
    std::fs::create_dir(&outp).unwrap();
    let out = outp.join("out");
    let e = err_of(import(&l.dir, &out, None, None, None));
    let d = Digest::of(&layers[1].blob);
    assert!(
        e.contains(&format!("layer 1 ({d}) of image {}", Digest::of(&manifest)))
            && e.contains(&format!(
                "layer blob {d} in {}: content has digest {} ({} bytes), expected {d} ({} bytes)",
                l.dir.display(),
                Digest::of(&bytes),
                bytes.len(),
                bytes.len()
            )),
        "{e}"
    );
    assert_eq!(names(&outp), Vec::<String>::new(), "nothing left behind");
    // The same from a tar (the layer is then extracted first).
    let tar = t.path().join("layout.tar");
    tar_dir(&l.dir, &tar, true);
    let e = err_of(import(&tar, &out, None, None, None));
    assert!(e.contains("content has digest"), "{e}");
    assert_eq!(names(&outp), Vec::<String>::new(), "nothing left behind");

    // A corrupted config (or manifest) is caught when it is read.
    let t2 = tempfile::tempdir().unwrap();
    let l2 = Layout::new(&t2.path().join("layout"));
    let m2 = l2.oci_image("linux/amd64", &layers);
    l2.index_json(&[desc(MT_MANIFEST, &m2)]);
    let cfg = read_json(&l2.blob_path(&m2))["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let cp = l2.dir.join("blobs/sha256").join(&cfg[7..]);
    std::fs::write(&cp, b"{}").unwrap();
    let e = err_of(import(&l2.dir, &t2.path().join("out"), None, None, None));
    assert!(
        e.contains(&format!("config {cfg} in")) && e.contains("content has digest"),
        "{e}"
    );
}

#[test]
fn diff_id_must_match_the_config() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let layers = two_layers(0);
    let wrong = [layers[0].diff_id, Digest::of(b"not the layer")];
    let manifest = l.image(
        MT_MANIFEST,
        MT_CONFIG,
        &config("linux/amd64", &wrong),
        &layers,
    );
    l.index_json(&[desc(MT_MANIFEST, &manifest)]);
    let out = t.path().join("out");
    let e = err_of(import(&l.dir, &out, None, None, None));
    assert!(
        e.contains(&format!(
            "has diff_id {}, but the config's rootfs.diff_ids[1] is {}",
            layers[1].diff_id, wrong[1]
        )),
        "{e}"
    );
    assert!(!out.exists());
    // The count is checked before any layer is read.
    let manifest = l.image(
        MT_MANIFEST,
        MT_CONFIG,
        &config("linux/amd64", &wrong[..1]),
        &layers,
    );
    l.index_json(&[desc(MT_MANIFEST, &manifest)]);
    let e = err_of(import(&l.dir, &out, None, None, None));
    assert!(e.contains("lists 1 diff_ids for 2 layers"), "{e}");
}

#[test]
fn neither_format() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("empty");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("index.json"), b"{}").unwrap(); // without oci-layout
    let e = err_of(import(&d, &t.path().join("out"), None, None, None));
    assert_eq!(
        e,
        format!(
            "{} is neither an OCI image layout (index.json, oci-layout) nor a docker save tarball (manifest.json)",
            d.display()
        )
    );
    let tar = t.path().join("x.tar");
    tar_dir(&d, &tar, true);
    let e = err_of(import(&tar, &t.path().join("out"), None, None, None));
    assert!(e.contains("is neither an OCI image layout"), "{e}");
    // A wrong layout version.
    std::fs::write(d.join("oci-layout"), br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    let e = err_of(import(&d, &t.path().join("out"), None, None, None));
    assert!(e.contains("imageLayoutVersion \"2.0.0\""), "{e}");
    assert_eq!(names(t.path()), ["empty", "x.tar"]);
}

/// A tar with one raw entry (name bytes as given, no sanitizing).
fn raw_tar(name: &str, kind: tar::EntryType, link: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_ustar_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    let data: &[u8] = if kind == tar::EntryType::Regular {
        b"x"
    } else {
        b""
    };
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn outer_archive_entries_are_checked() {
    let t = tempfile::tempdir().unwrap();
    let cases = [
        (
            "../x",
            tar::EntryType::Regular,
            "",
            "path with a \"..\" component",
        ),
        ("a/../../x", tar::EntryType::Regular, "", "\"..\""),
        ("/etc/x", tar::EntryType::Regular, "", "absolute path"),
        (
            "index.json",
            tar::EntryType::Symlink,
            "/etc/passwd",
            "symbolic link",
        ),
        (
            "index.json",
            tar::EntryType::Link,
            "oci-layout",
            "hard link",
        ),
        ("dev", tar::EntryType::Char, "", "device"),
    ];
    for (i, (name, kind, link, why)) in cases.iter().enumerate() {
        let tar = t.path().join(format!("{i}.tar"));
        std::fs::write(&tar, raw_tar(name, *kind, link)).unwrap();
        let e = err_of(import(&tar, &t.path().join("out"), None, None, None));
        assert!(
            e.starts_with(&format!("archive {}: entry {name:?}: ", tar.display()))
                && e.contains(why),
            "{name}: {e}"
        );
        assert!(!t.path().join("out").exists());
    }
    // A file listed twice (which copy would be meant?); a directory listed twice is fine.
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("./", &b""[..]),
        ("blobs/", b""),
        ("./blobs/", b""),
        ("oci-layout", b"1"),
        ("./oci-layout", b"2"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(if name.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let tar = t.path().join("dup.tar");
    std::fs::write(&tar, b.into_inner().unwrap()).unwrap();
    let e = err_of(import(&tar, &t.path().join("out"), None, None, None));
    assert!(
        e.ends_with("entry \"oci-layout\": the archive has this path twice"),
        "{e}"
    );
    // Nothing was extracted anywhere.
    assert_eq!(names(t.path()).len(), cases.len() + 1);
    assert!(!Path::new(t.path()).join("x").exists());
}

#[test]
fn normalize_makes_mtimes_irrelevant() {
    let t = tempfile::tempdir().unwrap();
    let mk = |name: &str, mtime: u64| {
        let l = Layout::new(&t.path().join(name));
        let manifest = l.oci_image("linux/amd64", &two_layers(mtime));
        l.index_json(&[desc(MT_MANIFEST, &manifest)]);
        l.dir
    };
    let (a, b) = (mk("a", 1_000_000), mk("b", 2_000_000));
    let plain_a = import(&a, &t.path().join("pa"), None, None, None).unwrap();
    let plain_b = import(&b, &t.path().join("pb"), None, None, None).unwrap();
    assert_ne!(plain_a, plain_b);
    let na = import(&a, &t.path().join("na"), None, None, norm(500)).unwrap();
    let nb = import(&b, &t.path().join("nb"), None, None, norm(500)).unwrap();
    assert_eq!(na, nb);
    assert_ne!(na, plain_a);

    let out = t.path().join("na");
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(Digest::of(&manifest), na);
    let m = read_json(&out.join("manifest.json"));
    assert_eq!(manifest, json::canonical(&m));
    assert_eq!(m["mediaType"], MT_MANIFEST);
    assert_eq!(m["annotations"], json!({"org.example.note": "kept"}));
    let cfg_bytes = std::fs::read(out.join("config.json")).unwrap();
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg_bytes, json::canonical(&cfg));
    assert_eq!(m["config"], desc(MT_CONFIG, &cfg_bytes));
    assert_eq!(cfg["created"], "1970-01-01T00:08:20Z");
    assert_eq!(cfg["history"][0]["created"], "1970-01-01T00:08:20Z");
    assert_eq!(cfg["history"][1]["created"], "1970-01-01T00:08:20Z");
    assert_eq!(cfg["history"][1]["created_by"], "step 1");
    assert!(cfg.get("container").is_none());
    assert!(cfg.get("container_config").is_none());
    assert!(cfg["config"].get("Image").is_none());
    assert_eq!(cfg["config"]["Cmd"], json!(["/app/hello"]));
    let layers = read_json(&out.join("layers.json"));
    let layers = layers.as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(l["media_type"], MT_LAYER_GZIP);
        assert_eq!(cfg["rootfs"]["diff_ids"][i], l["diff_id"]);
        assert_eq!(m["layers"][i]["digest"], l["digest"]);
        let blob = std::fs::read(
            out.join("blobs/sha256")
                .join(&l["digest"].as_str().unwrap()[7..]),
        )
        .unwrap();
        assert_eq!(Digest::of(&blob).to_string(), l["digest"]);
        assert_eq!(blob.len() as u64, l["size"].as_u64().unwrap());
    }
    assert_eq!(
        read_json(&out.join("image.json")),
        json!({"manifest_digest": na.to_string(), "platform": "linux/amd64", "format": "oci-layout", "normalized": true, "origin": "import"})
    );
    // Only the normalized blobs are in the output.
    assert_eq!(names(&out.join("blobs/sha256")).len(), 2);
}

#[test]
fn normalize_an_index_and_a_docker_save() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    multi_platform(&l);
    let out = t.path().join("out");
    let top = import(&l.dir, &out, None, None, norm(0)).unwrap();
    let index = std::fs::read(out.join("index.json")).unwrap();
    assert_eq!(top, Digest::of(&index));
    let idx = read_json(&out.join("index.json"));
    assert_eq!(index, json::canonical(&idx));
    let platforms = read_json(&out.join("platforms.json"));
    for (i, dir) in ["linux_amd64", "linux_arm64_v8"].iter().enumerate() {
        let manifest = std::fs::read(out.join(dir).join("manifest.json")).unwrap();
        let d = Digest::of(&manifest).to_string();
        assert_eq!(platforms[i]["digest"], d);
        assert_eq!(idx["manifests"][i]["digest"], d);
        assert_eq!(idx["manifests"][i]["size"], manifest.len());
        assert_eq!(idx["manifests"][i]["mediaType"], MT_MANIFEST);
        assert_eq!(
            read_json(&out.join(dir).join("image.json"))["normalized"],
            true
        );
    }
    assert_eq!(idx["manifests"][1]["platform"]["variant"], "v8");
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2);

    let src = t.path().join("save");
    let app = vec![layer(
        &[("app/hello", b"hello\n")],
        1_700_000_000,
        MT_LAYER_TAR,
    )];
    docker_legacy(&src, &[(&["app:1"], "linux/amd64", &app)]);
    let out = t.path().join("out-docker");
    let o = Normalize {
        source_date_epoch: 1_700_000_000,
        codec: crate::io::compress::Codec {
            kind: Compression::Zstd,
            level: 3,
            threads: 2,
        },
        max_layer_size: DEFAULT_MAX_LAYER_SIZE,
    };
    import(&src, &out, None, None, Some(o)).unwrap();
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    let layers = read_json(&out.join("layers.json"));
    assert_eq!(layers[0]["media_type"], crate::oci::media_type::LAYER_ZSTD);
    assert_eq!(read_json(&out.join("image.json"))["format"], "docker-save");
}

#[test]
fn relative_paths_are_normalized_or_refused() {
    assert_eq!(source::normalize_rel("./a//b/").unwrap(), "a/b");
    assert!(source::normalize_rel("/a").is_err());
    assert!(source::normalize_rel("a/../b").is_err());
    assert!(source::normalize_rel("./").is_err());
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// A zstd tar: a GNU long name entry of `size` bytes of `a`, then a regular file.
fn long_name_tar_zst(path: &Path, size: u64) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let mut z = zstd::stream::write::Encoder::new(std::fs::File::create(path).unwrap(), 3).unwrap();
    z.write_all(h.as_bytes()).unwrap();
    std::io::copy(
        &mut std::io::Read::take(std::io::repeat(b'a'), size),
        &mut z,
    )
    .unwrap();
    z.write_all(&vec![0u8; (512 - size as usize % 512) % 512])
        .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut f = tar::Header::new_gnu();
    f.set_size(1);
    f.set_mode(0o644);
    f.set_path("x").unwrap();
    f.set_cksum();
    b.append(&f, &b"x"[..]).unwrap();
    z.write_all(&b.into_inner().unwrap()).unwrap();
    z.finish().unwrap();
}

#[test]
fn huge_long_name_in_the_archive_is_refused_before_it_is_read() {
    let t = tempfile::tempdir().unwrap();
    let tar = t.path().join("ln.tar.zst");
    long_name_tar_zst(&tar, 64 << 20);
    let out = t.path().join("out");
    let e = err_of(import(&tar, &out, None, None, None));
    assert_eq!(
        e,
        format!(
            "archive {}: tar entry at byte 0: GNU long name ('L') of 67108864 bytes, more than the 1048576 bytes a header extension may have",
            tar.display()
        )
    );
    // Under the extension limit but longer than a path may be: a short message.
    long_name_tar_zst(&tar, 8192);
    let e = err_of(import(&tar, &out, None, None, None));
    assert_eq!(
        e,
        format!(
            "archive {}: entry \"{}... (8192 bytes)\": path of 8192 bytes, longer than the 4096 bytes a path may have",
            tar.display(),
            "a".repeat(160)
        )
    );
    assert_eq!(names(t.path()), ["ln.tar.zst"], "nothing left behind");
}

#[test]
fn first_pass_extracts_only_the_json_documents() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let layers = two_layers(0);
    let manifest = l.oci_image("linux/amd64", &layers);
    l.index_json(&[desc(MT_MANIFEST, &manifest)]);
    let cfg = read_json(&l.blob_path(&manifest))["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // Junk the image does not reference: zeros under blobs/junk/, and under blob names.
    std::fs::create_dir_all(l.dir.join("blobs/junk")).unwrap();
    for i in 0..16 {
        std::fs::write(l.dir.join(format!("blobs/junk/{i}")), vec![0u8; 1 << 20]).unwrap();
        let name = Digest::of(&[i as u8]).hex();
        std::fs::write(l.dir.join("blobs/sha256").join(name), vec![0u8; 1 << 20]).unwrap();
    }
    let tar = t.path().join("layout.tar.gz");
    tar_dir(&l.dir, &tar, true);
    let scratch = t.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let mut src = Source::open(&tar, &scratch).unwrap();
    let mut want = vec![
        format!("blobs/sha256/{}", Digest::of(&manifest).hex()),
        format!("blobs/sha256/{}", &cfg[7..]),
        "index.json".to_string(),
        "oci-layout".to_string(),
    ];
    want.sort();
    assert_eq!(files_under(&scratch), want);
    // The second pass extracts exactly the layers asked for, at the sizes declared.
    let rel = format!("blobs/sha256/{}", Digest::of(&layers[0].blob).hex());
    let e = src
        .ensure(&[(rel.clone(), Some(layers[0].blob.len() as u64 + 1))].into())
        .unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        format!(
            "{rel} in {} has {} bytes, but its descriptor says {}",
            tar.display(),
            layers[0].blob.len(),
            layers[0].blob.len() + 1
        )
    );
    src.ensure(&[(rel.clone(), Some(layers[0].blob.len() as u64))].into())
        .unwrap();
    want.push(rel);
    want.sort();
    assert_eq!(files_under(&scratch), want);
    // And the import works.
    let out = t.path().join("out");
    import(&tar, &out, None, None, None).unwrap();
    check_image(
        &out,
        &out.join("blobs/sha256"),
        &layers,
        &[MT_LAYER_GZIP, MT_LAYER_TAR],
    );
}

#[test]
fn scratch_is_a_fixed_sibling_of_the_output_cleaned_on_start() {
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let layers = two_layers(0);
    let manifest = l.oci_image("linux/amd64", &layers);
    l.index_json(&[desc(MT_MANIFEST, &manifest)]);
    let tar = t.path().join("layout.tar");
    tar_dir(&l.dir, &tar, false);
    // What a killed run left behind.
    let stale = t.path().join(".out.import/src/blobs/junk");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("big"), vec![0u8; 1 << 20]).unwrap();
    let out = t.path().join("out");
    import(&tar, &out, None, None, None).unwrap();
    assert_eq!(names(t.path()), ["layout", "layout.tar", "out"]);
    // A failed run leaves nothing either.
    std::fs::create_dir_all(&stale).unwrap();
    let e = err_of(import(&tar, &out, Some("nope"), None, None));
    assert!(e.contains("no image named"), "{e}");
    assert_eq!(names(t.path()), ["layout", "layout.tar", "out"]);
}

#[cfg(unix)]
#[test]
fn directory_blobs_are_copied_and_links_stay_inside() {
    use std::os::unix::fs::{MetadataExt, symlink};
    let t = tempfile::tempdir().unwrap();
    let l = Layout::new(&t.path().join("layout"));
    let layers = two_layers(0);
    let manifest = l.oci_image("linux/amd64", &layers);
    l.index_json(&[desc(MT_MANIFEST, &manifest)]);
    let blob = l.blob_path(&layers[1].blob);
    let hex = Digest::of(&layers[1].blob).hex();
    for normalize in [None, norm(0)] {
        let out = t.path().join("out");
        import(&l.dir, &out, None, None, normalize).unwrap();
        if normalize.is_none() {
            let copy = out.join("blobs/sha256").join(&hex);
            assert_ne!(
                std::fs::metadata(&copy).unwrap().ino(),
                std::fs::metadata(&blob).unwrap().ino()
            );
        }
    }
    // Rewriting the source later does not change the verified blob.
    let out = t.path().join("out");
    import(&l.dir, &out, None, None, None).unwrap();
    std::fs::write(&blob, b"changed").unwrap();
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(&hex)).unwrap(),
        layers[1].blob
    );
    std::fs::write(&blob, &layers[1].blob).unwrap();

    // A blob that is a symbolic link to a file outside the layout is refused.
    let outside = t.path().join("outside");
    std::fs::rename(&blob, &outside).unwrap();
    let rel = format!("blobs/sha256/{hex}");
    for (target, why) in [
        (outside.display().to_string(), "absolute target"),
        ("../../../outside".to_string(), "target above the root"),
    ] {
        let _ = std::fs::remove_file(&blob);
        symlink(&target, &blob).unwrap();
        for normalize in [None, norm(0)] {
            let e = err_of(import(&l.dir, &t.path().join("o2"), None, None, normalize));
            assert!(
                e.ends_with(&format!(
                    "{rel} in {} is a symbolic link to \"{target}\": only links to a regular file inside {} are followed ({why})",
                    l.dir.display(),
                    l.dir.display()
                )),
                "{e}"
            );
        }
    }
    // A link in a parent directory is not followed either.
    std::fs::remove_file(&blob).unwrap();
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::copy(&outside, elsewhere.join(&hex)).unwrap();
    std::fs::rename(l.dir.join("blobs/sha256"), t.path().join("sha")).unwrap();
    symlink(t.path().join("sha"), l.dir.join("blobs/sha256")).unwrap();
    let e = err_of(import(&l.dir, &t.path().join("o2"), None, None, None));
    assert!(
        e.contains("goes through the symbolic link blobs/sha256"),
        "{e}"
    );
    std::fs::remove_file(l.dir.join("blobs/sha256")).unwrap();
    std::fs::rename(t.path().join("sha"), l.dir.join("blobs/sha256")).unwrap();
    // A link to a regular file inside the layout is followed, and the blob copied.
    std::fs::create_dir(l.dir.join("store")).unwrap();
    std::fs::rename(&outside, l.dir.join("store/layer")).unwrap();
    symlink("../../store/layer", &blob).unwrap();
    let out3 = t.path().join("out3");
    import(&l.dir, &out3, None, None, None).unwrap();
    check_image(
        &out3,
        &out3.join("blobs/sha256"),
        &layers,
        &[MT_LAYER_GZIP, MT_LAYER_TAR],
    );
    assert!(
        !std::fs::symlink_metadata(out3.join("blobs/sha256").join(&hex))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// A Docker <= 24 save of one image whose layers are `layers` (`A, B, A`): the third
/// layer's directory holds `layer.tar -> ../<first>/layer.tar`, as Docker writes it.
#[cfg(unix)]
fn docker_legacy_linked(dir: &Path, layers: &[Layer]) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
    let cfg = config("linux/amd64", &ids);
    let cfg_name = format!("{}.json", Digest::of(&cfg).hex());
    std::fs::write(dir.join(&cfg_name), &cfg).unwrap();
    let mut paths = Vec::new();
    let mut first: HashMap<Digest, String> = HashMap::new();
    for (i, l) in layers.iter().enumerate() {
        let id = Digest::of(format!("v1 id {i}").as_bytes()).hex();
        let d = dir.join(&id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("VERSION"), b"1.0").unwrap();
        std::fs::write(d.join("json"), format!("{{\"id\":\"{id}\"}}")).unwrap();
        match first.get(&l.diff_id) {
            Some(f) => std::os::unix::fs::symlink(format!("../{f}"), d.join("layer.tar")).unwrap(),
            None => {
                std::fs::write(d.join("layer.tar"), &l.blob).unwrap();
                first.insert(l.diff_id, format!("{id}/layer.tar"));
            }
        }
        paths.push(format!("{id}/layer.tar"));
    }
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&json!([{"Config": cfg_name, "RepoTags": ["app:1"], "Layers": paths}]))
            .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("repositories"), b"{}").unwrap();
    paths
}

#[cfg(unix)]
#[test]
fn docker_legacy_save_with_a_linked_repeated_layer() {
    use std::os::unix::fs::symlink;
    let t = tempfile::tempdir().unwrap();
    let a = layer(&[("a", b"a\n")], 0, MT_LAYER_TAR);
    let b = layer(&[("b", b"b\n")], 0, MT_LAYER_TAR);
    let layers = vec![a.clone(), b, a];
    let src = t.path().join("save");
    let paths = docker_legacy_linked(&src, &layers);
    let tar = t.path().join("save.tar");
    tar_dir(&src, &tar, false);
    let out = t.path().join("out");
    let top = import(&tar, &out, None, None, None).unwrap();
    check_image(&out, &out.join("blobs/sha256"), &layers, &[MT_LAYER_TAR; 3]);
    assert_eq!(
        import(&src, &t.path().join("out2"), None, None, None).unwrap(),
        top
    );
    import(&tar, &t.path().join("out3"), None, None, norm(0)).unwrap();

    // Links that leave the archive, chains and loops are refused, in a tar and a directory.
    let link = src.join(&paths[2]);
    let cases = [
        (
            "../../etc/passwd".to_string(),
            "only links to a regular file inside",
        ),
        ("/etc/passwd".to_string(), "(absolute target)"),
        ("layer.tar".to_string(), "chains of links are not followed"),
        (
            format!("../{}", paths[1].replace("layer.tar", "json")),
            "OK",
        ),
    ];
    for (target, why) in cases {
        std::fs::remove_file(&link).unwrap();
        symlink(&target, &link).unwrap();
        tar_dir(&src, &tar, false);
        for s in [&tar, &src] {
            let r = import(s, &t.path().join("o4"), None, None, None);
            if why == "OK" {
                // A link to another regular file is followed (its content is then wrong).
                let e = err_of(r);
                assert!(!e.contains("symbolic link") && e.contains("layer 2"), "{e}");
                continue;
            }
            let e = err_of(r);
            assert!(
                e.contains(why) && e.contains(&shown_str(&target)),
                "{target}: {e}"
            );
        }
    }
    // A chain through a second link.
    std::fs::remove_file(&link).unwrap();
    symlink(format!("../{}", paths[1]), &link).unwrap();
    std::fs::remove_file(src.join(&paths[1])).unwrap();
    symlink(format!("../{}", paths[0]), src.join(&paths[1])).unwrap();
    tar_dir(&src, &tar, false);
    for s in [&tar, &src] {
        let e = err_of(import(s, &t.path().join("o4"), None, None, None));
        assert!(e.contains("chains of links are not followed"), "{e}");
    }
    assert!(!t.path().join("o4").exists());
}
