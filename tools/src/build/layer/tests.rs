use super::encode::encode;
use super::metadata::MetadataRules;
use super::plan::normalize_image_path;
use super::*;
use crate::io::compress::{Codec, Compression};
use crate::oci::digest::Digest;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

fn entry(fields: &[&str]) -> String {
    fields.join("\t")
}

fn write(path: &Path, data: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The plan of `entries` with `--file-metadata` values.
fn plan(entries: &[String], file_metadata: &[String]) -> anyhow::Result<Plan> {
    Plan::build(entries, &MetadataRules::parse(None, file_metadata)?)
}

/// A `--file-metadata` value setting a mode.
fn mode(path: &str, mode: &str) -> String {
    format!("{path}\t{{\"mode\":\"{mode}\"}}")
}

fn tar_of(entries: &[String], file_metadata: &[String]) -> Vec<u8> {
    plan(entries, file_metadata)
        .unwrap()
        .write_tar(Vec::new())
        .unwrap()
}

/// (path, type flag, mode, size, link name, contents) of every entry, read back by the `tar`
/// crate (an independent reader); also asserts the fixed metadata fields.
fn read_back(bytes: &[u8]) -> Vec<(String, u8, u32, u64, String, Vec<u8>)> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        assert!(h.as_ustar().is_some(), "ustar header expected");
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((
            path,
            h.entry_type().as_byte(),
            h.mode().unwrap(),
            h.size().unwrap(),
            link,
            data,
        ));
    }
    out
}

#[test]
fn normalizes_image_paths() {
    assert_eq!(normalize_image_path("/a//b/./c/").unwrap(), "a/b/c");
    assert_eq!(normalize_image_path("/x").unwrap(), "x");
    let e = normalize_image_path("/a/../../etc")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("escapes the image root") && e.contains("/a/../../etc"),
        "{e}"
    );
    assert!(normalize_image_path("relative/x").is_err());
    assert!(
        normalize_image_path("/")
            .unwrap_err()
            .to_string()
            .contains("root")
    );
    assert!(normalize_image_path("/./").is_err());
}

#[test]
fn entries_fields_parents_and_order() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    write(&src.join("hello.txt"), b"hello", 0o644);
    write(&src.join("run.sh"), b"#!/bin/sh\n", 0o700);
    write(&src.join("plain"), b"p", 0o600);
    let s = |n: &str| src.join(n).to_str().unwrap().to_string();
    let entries = vec![
        entry(&["symlink", "/usr/bin/hi", "../../app/run"]),
        entry(&["file", "/app/hello.txt", &s("hello.txt")]),
        entry(&["file", "/app/run", &s("run.sh")]),
        entry(&["exec", "/app/forced", &s("plain")]),
        entry(&["dir", "/var/empty"]),
        entry(&["file", "/app-data/x", &s("plain")]),
    ];
    let got = read_back(&tar_of(&entries, &[]));
    let summary: Vec<(&str, u8, u32, u64, &str)> = got
        .iter()
        .map(|(p, t, m, s, l, _)| (p.as_str(), *t, *m, *s, l.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            // Sorted by path bytes without the directory slash: "app" < "app-data" < "app/…".
            ("app/", b'5', 0o755, 0, ""),
            ("app-data/", b'5', 0o755, 0, ""),
            ("app-data/x", b'0', 0o644, 1, ""),
            ("app/forced", b'0', 0o755, 1, ""),
            ("app/hello.txt", b'0', 0o644, 5, ""),
            ("app/run", b'0', 0o755, 10, ""),
            ("usr/", b'5', 0o755, 0, ""),
            ("usr/bin/", b'5', 0o755, 0, ""),
            ("usr/bin/hi", b'2', 0o777, 0, "../../app/run"),
            ("var/", b'5', 0o755, 0, ""),
            ("var/empty/", b'5', 0o755, 0, ""),
        ]
    );
    assert_eq!(got[4].5, b"hello");
}

#[test]
fn golden_bytes_of_a_tiny_layer() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("f"), b"hi\n", 0o644);
    let entries = vec![
        entry(&["file", "/a/f", d.path().join("f").to_str().unwrap()]),
        entry(&["symlink", "/l", "a/f"]),
    ];
    let bytes = tar_of(&entries, &[]);
    // dir header, file header + 1 data block, symlink header, 2 end blocks.
    assert_eq!(bytes.len(), 6 * 512);
    let blk = |i: usize| &bytes[i * 512..(i + 1) * 512];
    assert_eq!(
        blk(0),
        crate::io::tarfmt::ustar_header("a/", b'5', 0o755, 0, "")
    );
    assert_eq!(
        blk(1),
        crate::io::tarfmt::ustar_header("a/f", b'0', 0o644, 3, "")
    );
    assert_eq!(&blk(2)[..4], b"hi\n\0");
    assert!(blk(2)[3..].iter().all(|&b| b == 0));
    assert_eq!(
        blk(3),
        crate::io::tarfmt::ustar_header("l", b'2', 0o777, 0, "a/f")
    );
    assert!(bytes[4 * 512..].iter().all(|&b| b == 0));
    // Exact field bytes of the directory header.
    let h = blk(0);
    assert_eq!(&h[..3], b"a/\0");
    assert_eq!(&h[100..108], b"0000755\0");
    assert_eq!(&h[124..136], b"00000000000\0");
    assert_eq!(&h[136..148], b"00000000000\0");
    assert_eq!(h[156], b'5');
    assert_eq!(&h[257..265], b"ustar\x0000");
    assert!(
        h[265..329].iter().all(|&b| b == 0),
        "uname/gname must be empty"
    );
    // The whole stream, pinned: any change to the tar format shows up here.
    assert_eq!(
        Digest::of(&bytes).to_string(),
        "sha256:326981c5224ed237afbbb7f933560b84ec81ef584154ffba181be299aed08cf9"
    );
}

#[test]
fn long_paths_and_link_targets_use_pax_records() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("f"), b"x", 0o644);
    let long_dir = "d".repeat(120);
    let long_file = format!("/{long_dir}/file.txt");
    let long_target = format!("/{}", "t".repeat(150));
    let entries = vec![
        entry(&["file", &long_file, d.path().join("f").to_str().unwrap()]),
        entry(&["symlink", "/s", &long_target]),
    ];
    let bytes = tar_of(&entries, &[]);
    // First entry: the parent directory, whose name (121 bytes with '/') needs a pax header.
    assert_eq!(bytes[156], b'x');
    let rec = format!("path={long_dir}/\n");
    let pax = &bytes[512..1024];
    assert!(pax.windows(rec.len()).any(|w| w == rec.as_bytes()));
    let got = read_back(&bytes);
    assert_eq!(got[0].0, format!("{long_dir}/"));
    assert_eq!(got[1].0, format!("{long_dir}/file.txt"));
    assert_eq!(got[2].0, "s");
    assert_eq!(got[2].4, long_target);
    // Short entries get no pax header: the symlink's own ustar block names "s".
    let n_x = bytes
        .chunks(512)
        .filter(|b| b[156] == b'x' && b[257..262] == *b"ustar")
        .count();
    assert_eq!(n_x, 3);
}

/// Same logical inputs in two places with different mtimes, permissions (the execute bit
/// too) and owners give byte-identical layers.
#[test]
fn output_does_not_depend_on_paths_mtimes_modes_or_owners() {
    let mk = |mode_plain: u32, mode_exec: u32, mtime: u64, owner: u32| {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join(format!("nested-{mtime}"));
        write(&root.join("plain"), b"plain data", mode_plain);
        write(&root.join("tree/bin/tool"), b"\x7fELF", mode_exec);
        write(&root.join("tree/share/doc"), b"docs", mode_plain);
        std::os::unix::fs::symlink("bin/tool", root.join("tree/alias")).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        for p in ["plain", "tree/bin/tool", "tree/share/doc"] {
            let f = std::fs::File::options()
                .write(true)
                .open(root.join(p))
                .unwrap();
            f.set_modified(t).unwrap();
            // Changing owners needs root; where it works it must not matter.
            let _ = std::os::unix::fs::chown(root.join(p), Some(owner), Some(owner));
        }
        let entries = vec![
            entry(&["file", "/etc/plain", root.join("plain").to_str().unwrap()]),
            entry(&["file", "/opt/tree", root.join("tree").to_str().unwrap()]),
        ];
        let plan = plan(&entries, &[]).unwrap();
        let (blob, meta) = encode(
            Codec::new(Compression::Gzip, Some(6), Some(2)).unwrap(),
            Vec::new(),
            |w| plan.write_tar(w).map(drop),
        )
        .unwrap();
        (blob, meta, d)
    };
    let (a, ma, _da) = mk(0o644, 0o755, 1_000_000, 0);
    let (b, mb, _db) = mk(0o755, 0o600, 2_000_000_000, 12345);
    assert_eq!(ma, mb);
    assert_eq!(a, b);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&a[..])
        .read_to_end(&mut tar)
        .unwrap();
    let names: Vec<(String, u32)> = read_back(&tar).into_iter().map(|e| (e.0, e.2)).collect();
    assert_eq!(
        names,
        [
            ("etc/", 0o755),
            ("etc/plain", 0o644),
            ("opt/", 0o755),
            ("opt/tree/", 0o755),
            ("opt/tree/alias", 0o777),
            ("opt/tree/bin/", 0o755),
            ("opt/tree/bin/tool", 0o755),
            ("opt/tree/share/", 0o755),
            ("opt/tree/share/doc", 0o644),
        ]
        .map(|(n, m)| (n.to_string(), m))
    );
}

#[test]
fn tree_symlinks_are_kept_but_bazel_staging_links_are_followed() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("bazel-out/k8-fastbuild/bin/real.txt");
    write(&real, b"real", 0o644);
    let tree = d.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::os::unix::fs::symlink(&real, tree.join("staged")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", tree.join("py")).unwrap();
    std::os::unix::fs::symlink("missing", tree.join("dangling")).unwrap();
    let bytes = tar_of(&[entry(&["file", "/t", tree.to_str().unwrap()])], &[]);
    let got = read_back(&bytes);
    let by: Vec<(&str, u8, &str, &[u8])> = got
        .iter()
        .map(|e| (e.0.as_str(), e.1, e.4.as_str(), e.5.as_slice()))
        .collect();
    assert_eq!(
        by,
        vec![
            ("t/", b'5', "", &b""[..]),
            ("t/dangling", b'2', "missing", &b""[..]),
            ("t/py", b'2', "/usr/bin/python3", &b""[..]),
            ("t/staged", b'0', "", &b"real"[..]),
        ]
    );
}

#[test]
fn staging_links_that_climb_out_of_bazel_out_are_kept_as_symlinks() {
    // `/…/bazel-out/../secret` has a `bazel-out` component but names a file outside it: the
    // host file's bytes must not end up in the layer.
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("secret"), b"host secret", 0o600);
    write(&d.path().join("bazel-out/k8/bin/x"), b"x", 0o644);
    let tree = d.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let climbing = format!("{}/bazel-out/../secret", d.path().display());
    let shallow = format!("{}/bazel-out/x", d.path().display());
    for (name, target) in [("a", &climbing), ("c", &shallow)] {
        std::os::unix::fs::symlink(target, tree.join(name)).unwrap();
    }
    let got = read_back(&tar_of(
        &[entry(&["file", "/t", tree.to_str().unwrap()])],
        &[],
    ));
    let by: Vec<(&str, u8, &str, usize)> = got
        .iter()
        .map(|e| (e.0.as_str(), e.1, e.4.as_str(), e.5.len()))
        .collect();
    assert_eq!(
        by,
        vec![
            ("t/", b'5', "", 0),
            ("t/a", b'2', climbing.as_str(), 0),
            ("t/c", b'2', shallow.as_str(), 0),
        ]
    );
}

#[test]
fn top_level_source_symlinks_are_followed() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("target"), b"#!content", 0o644);
    std::os::unix::fs::symlink(d.path().join("target"), d.path().join("link")).unwrap();
    let got = read_back(&tar_of(
        &[entry(&[
            "file",
            "/x",
            d.path().join("link").to_str().unwrap(),
        ])],
        &[],
    ));
    assert_eq!(
        (got[0].1, got[0].2, got[0].5.as_slice()),
        (b'0', 0o755, &b"#!content"[..])
    );
}

#[test]
fn mode_overrides() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("f"), b"x", 0o644);
    let f = d.path().join("f").to_str().unwrap().to_string();
    let entries = vec![entry(&["file", "/a/b", &f])];
    let got = read_back(&tar_of(
        &entries,
        &[mode("/a//b", "4750"), mode("/a", "0700")],
    ));
    assert_eq!((got[0].2, got[1].2), (0o700, 0o4750));

    let err = |specs: &[String]| format!("{:#}", plan(&entries, specs).unwrap_err());
    let e = err(&[mode("/a/b", "0778")]);
    assert!(e.contains("/a/b") && e.contains("0778"), "{e}");
    let e = err(&[mode("/a/b", "17777")]);
    assert!(e.contains("17777"), "{e}");
    let e = err(&[mode("/a/b", "")]);
    assert!(e.contains("/a/b"), "{e}");
    let e = err(&[mode("/nope", "0644")]);
    assert!(e.contains("/nope") && e.contains("not in the layer"), "{e}");
    assert!(err(&["no-tab".into()]).contains("/path<TAB>JSON"));
    let e = err(&[mode("/a/b", "0600"), mode("/a//b", "0644")]);
    assert!(e.contains("/a/b twice"), "{e}");
}

#[test]
fn conflicts_are_errors() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("f1"), b"1", 0o644);
    write(&d.path().join("f2"), b"2", 0o644);
    let f1 = d.path().join("f1").to_str().unwrap().to_string();
    let f2 = d.path().join("f2").to_str().unwrap().to_string();
    let err = |entries: Vec<String>| format!("{:#}", plan(&entries, &[]).unwrap_err());

    let e = err(vec![
        entry(&["file", "/app/bin", &f1]),
        entry(&["file", "/app//./bin", &f2]),
    ]);
    assert!(
        e.contains("duplicate path /app/bin") && e.contains(&f1) && e.contains(&f2),
        "{e}"
    );
    let e = err(vec![
        entry(&["file", "/app", &f1]),
        entry(&["file", "/app/x", &f2]),
    ]);
    assert!(e.contains("/app") && e.contains("parent of /app/x"), "{e}");
    let e = err(vec![
        entry(&["symlink", "/lib", "usr/lib"]),
        entry(&["dir", "/lib/x"]),
    ]);
    assert!(e.contains("/lib") && e.contains("not a directory"), "{e}");
    let e = err(vec![entry(&["file", "/x", "/definitely/missing/src"])]);
    assert!(
        e.contains("/definitely/missing/src") && e.contains("/x"),
        "{e}"
    );
    let e = err(vec![entry(&["file", "/../x", &f1])]);
    assert!(e.contains("escapes the image root"), "{e}");
    let e = err(vec![entry(&["file", "/", &f1])]);
    assert!(e.contains("root"), "{e}");
    let e = err(vec![entry(&["bogus", "/x", &f1])]);
    assert!(e.contains("malformed entry"), "{e}");
    let e = err(vec![entry(&["file", "/x"])]);
    assert!(e.contains("malformed entry"), "{e}");
    assert!(err(vec![]).contains("no entries"));
    // Directories given twice are one directory, not a conflict.
    assert!(plan(&[entry(&["dir", "/d"]), entry(&["dir", "/d/"])], &[]).is_ok());
}

#[test]
fn failed_run_leaves_no_output() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("f"), b"1", 0o644);
    let out_dir = d.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let f = d.path().join("f").to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec![entry(&["file", "/a", &f]), entry(&["file", "/a", &f])],
            vec![],
        ),
        (vec![entry(&["file", "/../a", &f])], vec![]),
        (vec![entry(&["file", "/a", "/missing/src"])], vec![]),
        (vec![entry(&["file", "/a", &f])], vec![mode("/a", "9")]),
        (vec![], vec![]),
    ];
    for (entries, modes) in cases {
        let r = run(&LayerOptions {
            output: &out_dir.join("layer.tgz"),
            metadata: &out_dir.join("layer.json"),
            codec: Codec::new(Compression::Gzip, None, Some(2)).unwrap(),
            default_metadata: None,
            file_metadata: &modes,
            link_duplicates: true,
            entries: &entries,
        });
        assert!(r.is_err());
        assert_eq!(
            std::fs::read_dir(&out_dir).unwrap().count(),
            0,
            "leftovers for {entries:?}"
        );
    }
}

fn fixed_layer(dir: &Path) -> Vec<String> {
    write(&dir.join("hello.txt"), b"hello, world\n", 0o644);
    write(&dir.join("tool"), &[7u8; 3000], 0o755);
    vec![
        entry(&[
            "file",
            "/app/hello.txt",
            dir.join("hello.txt").to_str().unwrap(),
        ]),
        entry(&["exec", "/app/bin/tool", dir.join("tool").to_str().unwrap()]),
        entry(&["symlink", "/usr/local/bin/tool", "/app/bin/tool"]),
        entry(&["dir", "/tmp"]),
    ]
}

/// Runs `layer` end to end and checks the metadata against the written blob.
#[test]
fn metadata_matches_blob_for_every_compression() {
    let d = tempfile::tempdir().unwrap();
    let entries = fixed_layer(d.path());
    let plain_tar = tar_of(&entries, &[]);
    let diff_id = Digest::of(&plain_tar);
    // diff_id is a function of content only. Compressed digests are a function of
    // (content, backend, backend version, level): flate2 1.1 on zlib-rs 0.6 at level 6 and
    // libzstd 1.5.7 at level 3. Bumping those crates may change these two digests; then
    // check that the diff_id is unchanged and update them.
    let golden = [
        (
            Compression::Gzip,
            "sha256:d9f6be553f290a7a40a957e7c07143fed8daaf3236b6b631f0f1ffb3e6423602",
        ),
        (
            Compression::Zstd,
            "sha256:6c5b8dc4fe69f708a87c25f164ada0d43a3f4c418a2ef877d1335ddd44162ee1",
        ),
        (
            Compression::None,
            "sha256:eea7f900458819ef41c7a80e6ebbcefb6fb53c24b6bd2bdfadd9d38b6886e223",
        ),
        (
            Compression::Estargz,
            "sha256:e72f104d1de251e0456ea881b5188db6bd50a31611d56d9987e5f5fb2d660538",
        ),
        (
            Compression::ZstdChunked,
            "sha256:4054d65414ac1e1ff97fadf6766bd1d652a3d0a24d2d20b9011eca24a3aa3aa3",
        ),
    ];
    for (kind, want_digest) in golden {
        let out = d.path().join(format!("{kind:?}.blob"));
        let meta_path = d.path().join(format!("{kind:?}.json"));
        let meta = run(&LayerOptions {
            output: &out,
            metadata: &meta_path,
            codec: Codec::new(kind, None, Some(2)).unwrap(),
            default_metadata: None,
            file_metadata: &[],
            link_duplicates: true,
            entries: &entries,
        })
        .unwrap();
        let blob = std::fs::read(&out).unwrap();
        let decompressed = match kind {
            Compression::Gzip => {
                assert_eq!(&blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
                let mut v = Vec::new();
                flate2::read::GzDecoder::new(&blob[..])
                    .read_to_end(&mut v)
                    .unwrap();
                v
            }
            Compression::Zstd | Compression::ZstdChunked => {
                assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
                zstd::decode_all(&blob[..]).unwrap()
            }
            Compression::Estargz => {
                // The tar, with the TOC entry before its end (io::seekable's tests read it).
                let mut v = Vec::new();
                flate2::read::MultiGzDecoder::new(&blob[..])
                    .read_to_end(&mut v)
                    .unwrap();
                assert_eq!(Digest::of(&v), meta.diff_id);
                assert!(v.starts_with(&plain_tar[..plain_tar.len() - 1024]));
                assert_eq!(meta.annotations.len(), 2);
                let json = std::fs::read_to_string(&meta_path).unwrap();
                assert_eq!(json, String::from_utf8(meta.to_bytes()).unwrap());
                assert_eq!(meta.digest.to_string(), want_digest, "{kind:?}");
                continue;
            }
            Compression::None => blob.clone(),
        };
        assert_eq!(decompressed, plain_tar);
        assert_eq!(meta.diff_id, diff_id);
        assert_eq!(meta.digest, Digest::of(&blob));
        assert_eq!(meta.size, blob.len() as u64);
        assert_eq!(meta.media_type, kind.media_type());
        assert_eq!(meta.digest.to_string(), want_digest, "{kind:?}");
        let json = std::fs::read_to_string(&meta_path).unwrap();
        if kind == Compression::ZstdChunked {
            // The TOC's annotations come first (sorted keys); the rest as for every layer.
            assert!(json.starts_with("{\"annotations\":{\"io.github.containers.zstd-chunked."));
            assert_eq!(json, String::from_utf8(meta.to_bytes()).unwrap());
            continue;
        }
        assert_eq!(
            json,
            format!(
                "{{\"diff_id\":\"{diff_id}\",\"digest\":\"{}\",\"media_type\":\"{}\",\"size\":{}}}\n",
                meta.digest,
                kind.media_type(),
                blob.len()
            )
        );
    }
    assert_eq!(
        diff_id.to_string(),
        "sha256:eea7f900458819ef41c7a80e6ebbcefb6fb53c24b6bd2bdfadd9d38b6886e223"
    );
}

#[test]
fn levels_change_bytes_not_diff_ids() {
    let d = tempfile::tempdir().unwrap();
    let plan = plan(&fixed_layer(d.path()), &[]).unwrap();
    let (a, ma) = encode(
        Codec::new(Compression::Gzip, Some(1), Some(2)).unwrap(),
        Vec::new(),
        |w| plan.write_tar(w).map(drop),
    )
    .unwrap();
    let (b, mb) = encode(
        Codec::new(Compression::Gzip, Some(9), Some(2)).unwrap(),
        Vec::new(),
        |w| plan.write_tar(w).map(drop),
    )
    .unwrap();
    assert_eq!(ma.diff_id, mb.diff_id);
    assert_ne!(a, b);
}

#[test]
fn a_single_file_target_goes_to_dest_and_several_become_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two, ext) = (
        dir.path().join("one"),
        dir.path().join("two"),
        dir.path().join("ext"),
    );
    write(&one, b"1", 0o644);
    write(&two, b"#!2", 0o644);
    write(&ext, b"3", 0o755);
    let src = |p: &Path| p.to_str().unwrap().to_string();
    let entries = vec![
        entry(&["group", "/etc/single", "pkg/", "pkg/one.txt", &src(&one)]),
        entry(&["group", "/srv", "pkg/", "pkg/data/one.txt", &src(&one)]),
        entry(&["group", "/srv", "pkg/", "pkg/data/sub/two.sh", &src(&two)]),
        entry(&[
            "group",
            "/srv",
            "pkg/",
            "../other_repo/three.txt",
            &src(&ext),
        ]),
    ];
    let got: Vec<(String, u32)> = read_back(&tar_of(&entries, &[]))
        .into_iter()
        .map(|(p, _, mode, ..)| (p, mode))
        .collect();
    let want: Vec<(String, u32)> = [
        ("etc/", 0o755),
        ("etc/single", 0o644),
        ("srv/", 0o755),
        ("srv/data/", 0o755),
        ("srv/data/one.txt", 0o644),
        ("srv/data/sub/", 0o755),
        ("srv/data/sub/two.sh", 0o755),
        ("srv/other_repo/", 0o755),
        ("srv/other_repo/three.txt", 0o644),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), *m))
    .collect();
    assert_eq!(got, want);
    let err = plan(&[entry(&["group", "/x", "p/"])], &[]).err().unwrap();
    assert!(format!("{err:#}").contains("malformed entry"));
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fake store path: a read-only directory like the Nix store's (0555 dirs, 0444/0555
/// files), with a relative and an absolute symlink inside.
fn fake_store_dir(store: &Path, name: &str) -> std::path::PathBuf {
    let p = store.join(name);
    write(&p.join("bin/tool"), b"\x7fELF", 0o555);
    write(&p.join("share/doc"), b"docs", 0o444);
    std::os::unix::fs::symlink("tool", p.join("bin/alias")).unwrap();
    std::os::unix::fs::symlink("/nix/store/other-dep/lib", p.join("lib")).unwrap();
    for d in ["bin", "share", ""] {
        set_mode(&p.join(d), 0o555);
    }
    p
}

/// Makes a fake store writable again so the temp dir can be removed.
fn unfreeze(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            set_mode(&p, 0o755);
            unfreeze(&p);
        }
    }
}

fn summary(bytes: &[u8]) -> Vec<(String, u8, u32, String)> {
    read_back(bytes)
        .into_iter()
        .map(|(p, t, m, _, l, _)| (p, t, m, l))
        .collect()
}

fn row(p: &str, t: u8, m: u32, l: &str) -> (String, u8, u32, String) {
    (p.to_string(), t, m, l.to_string())
}

#[test]
fn store_paths_are_copied_verbatim_at_their_own_path() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("nix/store");
    let dir = fake_store_dir(&store, "aaaa-pkg");
    write(&store.join("bbbb-file"), b"data", 0o444);
    std::os::unix::fs::symlink("aaaa-pkg/bin", store.join("cccc-link")).unwrap();
    let s = |n: &str| store.join(n).to_str().unwrap().to_string();
    let entries = vec![
        entry(&["store", &s("aaaa-pkg")]),
        entry(&["store", &s("bbbb-file")]),
        entry(&["store", &s("cccc-link")]),
    ];
    let got = summary(&tar_of(&entries, &[]));
    set_mode(&dir, 0o755);
    unfreeze(&dir);
    let base = store.to_str().unwrap().trim_start_matches('/').to_string();
    let mut want = Vec::new();
    // Every ancestor of the store directory is an implicit 0755 parent, emitted once.
    let mut prefix = String::new();
    for part in base.split('/') {
        prefix = if prefix.is_empty() {
            part.to_string()
        } else {
            format!("{prefix}/{part}")
        };
        want.push(row(&format!("{prefix}/"), b'5', 0o755, ""));
    }
    let p = |rest: &str| format!("{base}/{rest}");
    want.extend([
        row(&p("aaaa-pkg/"), b'5', 0o755, ""),
        row(&p("aaaa-pkg/bin/"), b'5', 0o755, ""),
        row(&p("aaaa-pkg/bin/alias"), b'2', 0o777, "tool"),
        row(&p("aaaa-pkg/bin/tool"), b'0', 0o755, ""),
        row(&p("aaaa-pkg/lib"), b'2', 0o777, "/nix/store/other-dep/lib"),
        row(&p("aaaa-pkg/share/"), b'5', 0o755, ""),
        row(&p("aaaa-pkg/share/doc"), b'0', 0o644, ""),
        row(&p("bbbb-file"), b'0', 0o644, ""),
        row(&p("cccc-link"), b'2', 0o777, "aaaa-pkg/bin"),
    ]);
    assert_eq!(got, want);
}

#[test]
fn store_symlinks_into_bazel_out_are_not_followed() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("bazel-out/real");
    write(&real, b"real", 0o644);
    let pkg = d.path().join("store/aaaa-pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::os::unix::fs::symlink(&real, pkg.join("l")).unwrap();
    let got = summary(&tar_of(&[entry(&["store", pkg.to_str().unwrap()])], &[]));
    let last = got.last().unwrap();
    assert_eq!((last.1, last.3.as_str()), (b'2', real.to_str().unwrap()));
    let e = format!(
        "{:#}",
        plan(&[entry(&["store", "/nix/store/definitely-missing"])], &[]).unwrap_err()
    );
    assert!(e.contains("/nix/store/definitely-missing"), "{e}");
}

#[test]
fn roots_put_store_contents_at_the_image_root_and_merge_identical_paths() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let env1 = store.join("aaaa-env");
    let env2 = store.join("bbbb-env");
    for env in [&env1, &env2] {
        write(&env.join("etc/shared.conf"), b"same", 0o444);
        std::os::unix::fs::symlink("/nix/store/x-bash/bin/bash", env.join("sh")).unwrap();
    }
    std::fs::create_dir_all(env1.join("bin")).unwrap();
    std::os::unix::fs::symlink("/nix/store/x-hello/bin/hello", env1.join("bin/hello")).unwrap();
    write(&env2.join("bin/tool"), b"#!", 0o555);
    let entries = vec![
        entry(&["root", env1.to_str().unwrap()]),
        entry(&["root", env2.to_str().unwrap()]),
    ];
    assert_eq!(
        summary(&tar_of(&entries, &[])),
        vec![
            row("bin/", b'5', 0o755, ""),
            row("bin/hello", b'2', 0o777, "/nix/store/x-hello/bin/hello"),
            row("bin/tool", b'0', 0o755, ""),
            row("etc/", b'5', 0o755, ""),
            row("etc/shared.conf", b'0', 0o644, ""),
            row("sh", b'2', 0o777, "/nix/store/x-bash/bin/bash"),
        ]
    );

    // Same path, different content: an error naming both store paths.
    let env3 = store.join("cccc-env");
    write(&env3.join("etc/shared.conf"), b"other", 0o444);
    let env4 = store.join("dddd-env");
    std::os::unix::fs::symlink("/nix/store/y-bash/bin/bash", {
        std::fs::create_dir_all(&env4).unwrap();
        env4.join("sh")
    })
    .unwrap();
    let err = |a: &Path, b: &Path| {
        let entries = vec![
            entry(&["root", a.to_str().unwrap()]),
            entry(&["root", b.to_str().unwrap()]),
        ];
        format!("{:#}", plan(&entries, &[]).unwrap_err())
    };
    let e = err(&env1, &env3);
    assert!(
        e.contains("/etc/shared.conf") && e.contains("aaaa-env") && e.contains("cccc-env"),
        "{e}"
    );
    let e = err(&env1, &env4);
    assert!(
        e.contains("/sh") && e.contains("aaaa-env") && e.contains("dddd-env"),
        "{e}"
    );
    // A file root has no contents.
    let e = err(&env1, &env1.join("etc/shared.conf"));
    assert!(e.contains("not a directory"), "{e}");
}

/// Every metadata field reaches the tar, read back by the `tar` crate; the layer-wide
/// default skips implicit parents and sets only files' modes; patterns and then paths win.
#[test]
fn file_metadata_fields_defaults_patterns_and_paths() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("bin"), b"#!/bin/sh\n", 0o755);
    write(&d.path().join("tree/a.conf"), b"a", 0o644);
    write(&d.path().join("tree/sub/b.conf"), b"b", 0o644);
    write(&d.path().join("tree/sub/c.txt"), b"c", 0o644);
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let entries = vec![
        entry(&["file", "/opt/app/bin", &p("bin")]),
        entry(&["file", "/opt/app/etc", &p("tree")]),
    ];
    let default = r#"{"uid":1000,"gid":1000,"uname":"app","gname":"app","mode":"0640","mtime":"2024-05-01T12:00:00Z"}"#;
    let files = [
        "/opt/app/etc/**/*.conf\t{\"mode\":\"0600\",\"pax_records\":{\"SCHILY.xattr.user.kind\":\"conf\"}}".to_string(),
        "/opt/app/bin\t{\"mode\":\"0750\",\"uid\":0,\"uname\":\"a-rather-long-user-name-of-40-chars-x\",\"capabilities\":[\"cap_net_bind_service\",\"CAP_SYS_TIME\"]}".into(),
    ];
    let rules = MetadataRules::parse(Some(default), &files).unwrap();
    let bytes = Plan::build(&entries, &rules)
        .unwrap()
        .write_tar(Vec::new())
        .unwrap();
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut got = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let (mut pax, mut uname) = (Vec::new(), None);
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                let key = x.key().unwrap();
                if key.starts_with("SCHILY.xattr.") {
                    pax.push((key.to_string(), x.value_bytes().to_vec()));
                } else if key == "uname" {
                    uname = Some(x.value().unwrap().to_string());
                }
            }
        }
        let h = e.header();
        let uname = uname.unwrap_or_else(|| h.username().unwrap().unwrap_or("").to_string());
        got.push((
            String::from_utf8(e.path_bytes().into_owned()).unwrap(),
            format!("{:o}", h.mode().unwrap()),
            (h.uid().unwrap(), h.gid().unwrap()),
            uname,
            h.mtime().unwrap(),
            pax,
        ));
    }
    let may_1 = 1_714_564_800;
    let row = |p: &str| {
        got.iter()
            .find(|g| g.0 == p)
            .unwrap_or_else(|| panic!("{p}: {got:?}"))
    };
    // Implicit parents: untouched.
    assert_eq!(row("opt/").1, "755");
    assert_eq!((row("opt/app/").2, row("opt/app/").4), ((0, 0), 0));
    // A directory the layer was given: the default's owner and time, not its mode.
    let etc = row("opt/app/etc/");
    assert_eq!(
        (etc.1.as_str(), etc.2, etc.3.as_str(), etc.4),
        ("755", (1000, 1000), "app", may_1)
    );
    // Files: the default mode, then the pattern.
    assert_eq!(row("opt/app/etc/sub/c.txt").1, "640");
    for conf in ["opt/app/etc/a.conf", "opt/app/etc/sub/b.conf"] {
        let r = row(conf);
        assert_eq!(r.1, "600", "{conf}");
        assert_eq!(
            r.5,
            vec![("SCHILY.xattr.user.kind".to_string(), b"conf".to_vec())]
        );
    }
    // The exact path, field by field over the default; a long name goes to a pax record.
    let bin = row("opt/app/bin");
    assert_eq!(
        (bin.1.as_str(), bin.2, bin.3.as_str()),
        ("750", (0, 1000), "a-rather-long-user-name-of-40-chars-x")
    );
    let cap = &bin.5[0];
    assert_eq!(cap.0, "SCHILY.xattr.security.capability");
    // vfs_cap_data v2, effective; net_bind_service is bit 10, sys_time bit 25.
    let mut want = 0x0200_0001u32.to_le_bytes().to_vec();
    want.extend_from_slice(&((1u32 << 10) | (1 << 25)).to_le_bytes());
    want.extend_from_slice(&[0; 12]);
    assert_eq!(cap.1, want);
}

#[test]
fn bad_file_metadata_is_refused_with_the_path() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("f"), b"x", 0o644);
    let f = d.path().join("f").to_str().unwrap().to_string();
    let entries = vec![entry(&["file", "/etc/app/f", &f])];
    let err = |specs: &[&str]| {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        format!("{:#}", plan(&entries, &specs).unwrap_err())
    };
    let cases = [
        ("/etc/app/f\t{\"owner\":1}", "owner"),
        ("/etc/app/f\t{\"uid\":-1}", "uid"),
        (
            "/etc/app/f\t{\"pax_records\":{\"path\":\"/x\"}}",
            "\"path\"",
        ),
        ("/etc/app/f\t{\"pax_records\":{\"a=b\":\"x\"}}", "a=b"),
        ("/etc/app/f\t{\"capabilities\":[\"cap_fly\"]}", "cap_fly"),
        (
            "/etc/app\t{\"capabilities\":[\"cap_chown\"]}",
            "only regular files",
        ),
        ("/etc/app/f\t{\"mtime\":\"yesterday\"}", "yesterday"),
        ("/etc/**/*.so\t{\"mode\":\"0755\"}", "matches no path"),
        ("/etc/[\t{\"mode\":\"0755\"}", "/etc/["),
        ("etc/*\t{\"mode\":\"0755\"}", "absolute"),
        ("/etc/app/f\t{\"uname\":\"a\\nb\"}", "newline"),
    ];
    for (spec, want) in cases {
        let e = err(&[spec]);
        assert!(e.contains(want), "{spec}: {e}");
    }
    let e = err(&[
        "/etc/app/f\t{\"capabilities\":[\"cap_chown\"],\"pax_records\":{\"SCHILY.xattr.security.capability\":\"x\"}}",
    ]);
    assert!(e.contains("both"), "{e}");
}

/// Identical files with identical metadata are stored once; the others are hard links to
/// the first in tar order, which an extractor has seen by then.
#[test]
fn identical_files_become_hard_links() {
    let d = tempfile::tempdir().unwrap();
    let big = vec![7u8; 100_000];
    write(&d.path().join("x/one"), &big, 0o644);
    write(&d.path().join("x/two"), &big, 0o644);
    write(&d.path().join("x/exec"), &big, 0o755);
    write(&d.path().join("x/other"), &vec![8u8; 100_000], 0o644);
    write(&d.path().join("x/empty1"), b"", 0o644);
    write(&d.path().join("x/empty2"), b"", 0o644);
    let x = d.path().join("x").to_str().unwrap().to_string();
    let entries = vec![entry(&["file", "/a", &x]), entry(&["file", "/b", &x])];
    let owned = [
        mode("/b/one", "0600"),
        mode("/a/exec", "0755"),
        mode("/b/exec", "0755"),
    ];
    let mut p = plan(&entries, &owned).unwrap();
    let plain = p.write_tar(Vec::new()).unwrap();
    assert_eq!(p.link_duplicates().unwrap(), 4);
    let linked = p.write_tar(Vec::new()).unwrap();
    assert!(
        linked.len() + 4 * 90_000 < plain.len(),
        "{} vs {}",
        linked.len(),
        plain.len()
    );
    let links: Vec<(String, String)> = read_back(&linked)
        .into_iter()
        .filter(|e| e.1 == b'1')
        .map(|e| (e.0, e.4))
        .collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    // /b/one has another mode, so it stays a file; the executable links only to its kind.
    assert_eq!(
        links,
        [
            pair("a/two", "a/one"),
            pair("b/exec", "a/exec"),
            pair("b/other", "a/other"),
            pair("b/two", "a/one")
        ]
    );
}

/// Bazel makes every output 0555 and a remote worker sees every input as executable, so the
/// execute bit of a Bazel file never reaches the layer: the mode is 0755 for an executable
/// target's files (`exec`) and for programs (ELF or `#!`), 0644 otherwise. Nix store paths
/// keep their own bits.
#[test]
fn file_modes_come_from_content_not_the_execute_bit() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(&p.join("data"), b"plain data", 0o755);
    write(&p.join("script"), b"#!/bin/sh\necho hi\n", 0o644);
    write(&p.join("elf"), b"\x7fELF\x02\x01\x01", 0o600);
    write(&p.join("tiny"), b"#", 0o755);
    write(&p.join("empty"), b"", 0o755);
    write(&p.join("tree/bin/tool"), b"\x7fELF", 0o644);
    write(&p.join("tree/share/doc"), b"doc", 0o755);
    write(&p.join("store/bin/run"), b"data", 0o555);
    write(&p.join("store/lib/x.sh"), b"#!/bin/sh\n", 0o444);
    let s = |n: &str| p.join(n).to_str().unwrap().to_string();
    let store = s("store");
    let entries = vec![
        entry(&["file", "/f/data", &s("data")]),
        entry(&["file", "/f/script", &s("script")]),
        entry(&["file", "/f/elf", &s("elf")]),
        entry(&["file", "/f/tiny", &s("tiny")]),
        entry(&["group", "/f/empty", "", "empty", &s("empty")]),
        entry(&["exec", "/f/forced", &s("data")]),
        entry(&["file", "/tree", &s("tree")]),
        entry(&["store", &store]),
    ];
    let got: BTreeMap<String, u32> = read_back(&tar_of(&entries, &[]))
        .into_iter()
        .filter(|e| e.1 == b'0')
        .map(|(path, _, mode, ..)| (path, mode))
        .collect();
    let store_key = store.trim_start_matches('/');
    let want: BTreeMap<String, u32> = [
        ("f/data".to_string(), 0o644),
        ("f/script".into(), 0o755),
        ("f/elf".into(), 0o755),
        ("f/tiny".into(), 0o644),
        ("f/empty".into(), 0o644),
        ("f/forced".into(), 0o755),
        ("tree/bin/tool".into(), 0o755),
        ("tree/share/doc".into(), 0o644),
        (format!("{store_key}/bin/run"), 0o755),
        (format!("{store_key}/lib/x.sh"), 0o644),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
}
