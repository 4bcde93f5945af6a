use super::*;
use crate::build::layer::{self, LayerOptions};
use crate::io::compress::Compression;

/// Builds a two-layer image with the real `layer` and `manifest` code in a temp dir, and reads
/// it back. Paths: m.json, c.json, l1.tgz, l2.tar.
/// The one image of an input that is a single image.
pub(crate) fn image(input: Input) -> Image {
    match input {
        Input::Image(i) => i,
        Input::Index(_) => panic!("an index"),
    }
}

pub(crate) fn sample_image() -> (tempfile::TempDir, Input) {
    sample_image_with(Compression::Gzip)
}

/// The files of sample_image, with other layer blobs.
pub(crate) fn sample_files(dir: &Path, blobs: &[&str]) -> ImageFiles {
    ImageFiles {
        manifest: dir.join("m.json"),
        config: dir.join("c.json"),
        blobs: blobs
            .iter()
            .map(|b| BlobSource::Local(dir.join(b)))
            .collect(),
        child_file: None,
    }
}

/// Like sample_image, with the first layer compressed by `first`.
pub(crate) fn sample_image_with(first: Compression) -> (tempfile::TempDir, Input) {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("hello"), b"hello\n").unwrap();
    std::fs::write(p("data"), vec![42u8; 70_000]).unwrap();
    let mk = |out: &str, meta: &str, kind, entries: Vec<String>| {
        layer::run(&LayerOptions {
            output: &p(out),
            metadata: &p(meta),
            codec: crate::io::compress::Codec::new(kind, None, Some(2)).unwrap(),
            default_metadata: None,
            file_metadata: &[],
            link_duplicates: true,
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
    crate::build::manifest::run(&crate::build::manifest::ManifestOptions {
        config_fragment: p("frag.json"),
        base_manifest: None,
        base_config: None,
        layers: vec![p("l1.json"), p("l2.json")],
        outputs: crate::build::manifest::ImageOutputs {
            manifest: p("m.json"),
            config: p("c.json"),
            digest: p("digest"),
            descriptor: p("desc.json"),
        },
        status_files: Vec::new(),
    })
    .unwrap();
    let img = Image::read(&sample_files(dir.path(), &["l1.tgz", "l2.tar"])).unwrap();
    (dir, Input::Image(img))
}

/// A two-platform index: sample_image (linux/amd64, layers l1.tgz + l2.tar) and a linux/arm64
/// image sharing l1.tgz. Child files: amd64.child.json, arm64.child.json; index: index.json.
pub(crate) fn sample_index() -> (tempfile::TempDir, Input) {
    let (dir, _) = sample_image();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("frag-arm.json"),
        r#"{"os":"linux","architecture":"arm64","variant":"v8"}"#,
    )
    .unwrap();
    crate::build::manifest::run(&crate::build::manifest::ManifestOptions {
        config_fragment: p("frag-arm.json"),
        base_manifest: None,
        base_config: None,
        layers: vec![p("l1.json")],
        outputs: crate::build::manifest::ImageOutputs {
            manifest: p("m-arm.json"),
            config: p("c-arm.json"),
            digest: p("digest-arm"),
            descriptor: p("desc-arm.json"),
        },
        status_files: Vec::new(),
    })
    .unwrap();
    crate::build::index::run(&crate::build::index::IndexOptions {
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
        ImageFiles::from_child_file(&p(name), &Resolver::new(false).unwrap()).unwrap()
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
    let idx = Index::read(&p("index.json"), &children).unwrap();
    (dir, Input::Index(idx))
}

#[test]
fn wrong_files_are_caught_before_anything_is_written() {
    let (dir, _) = sample_image();
    let p = |n: &str| dir.path().join(n);
    // Wrong size, wrong count, swapped config: caught before writing.
    let e = format!(
        "{:#}",
        Image::read(&sample_files(dir.path(), &["l2.tar", "l1.tgz"]))
            .err()
            .unwrap()
    );
    assert!(e.contains("l2.tar"), "{e}");
    let e = format!(
        "{:#}",
        Image::read(&sample_files(dir.path(), &["l1.tgz"]))
            .err()
            .unwrap()
    );
    assert!(e.contains("2 layers") && e.contains("1 --blob"), "{e}");
    let e = format!(
        "{:#}",
        Image::read(&ImageFiles {
            config: p("frag.json"),
            ..sample_files(dir.path(), &["l1.tgz", "l2.tar"])
        })
        .err()
        .unwrap()
    );
    assert!(e.contains("frag.json") && e.contains("m.json"), "{e}");
}

#[test]
fn blobs_are_deduplicated_and_a_local_copy_wins() {
    let (dir, _) = sample_index();
    let mut files = sample_files(dir.path(), &["l1.tgz", "l2.tar"]);
    files.blobs[0] = BlobSource::Remote(crate::oci::reference::Repo::parse("reg.io/base").unwrap());
    let remote_first = Image::read(&files).unwrap();
    let local = Image::read(&sample_files(dir.path(), &["l1.tgz", "l2.tar"])).unwrap();
    let arm = Image::read(
        &ImageFiles::from_child_file(
            &dir.path().join("arm64.child.json"),
            &Resolver::new(false).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let blobs = Input::Index(Index {
        bytes: Vec::new(),
        platforms: Vec::new(),
        children: vec![remote_first, arm, local],
    })
    .blobs();
    // Two configs, two layers; l1 (remote in the first image) is taken from a file.
    assert_eq!(blobs.len(), 5 - 1, "{blobs:?}");
    assert!(
        blobs
            .iter()
            .all(|b| !matches!(b.content, Content::Remote(_))),
        "{blobs:?}"
    );
}

#[test]
fn index_children_must_match_the_index() {
    let (dir, _) = sample_index();
    let p = |n: &str| dir.path().join(n);
    let r = Resolver::new(false).unwrap();
    let amd = ImageFiles::from_child_file(&p("amd64.child.json"), &r).unwrap();
    let arm = ImageFiles::from_child_file(&p("arm64.child.json"), &r).unwrap();
    let e = format!(
        "{:#}",
        Index::read(&p("index.json"), &[arm.clone(), amd.clone()])
            .err()
            .unwrap()
    );
    assert!(
        e.contains("m-arm.json (child 1)") && e.contains("but index"),
        "{e}"
    );
    let e = format!("{:#}", Index::read(&p("index.json"), &[amd]).err().unwrap());
    assert!(e.contains("lists 2 manifests but 1 --child files"), "{e}");
}
