//! Squashing follows the spec's layer semantics: what the result holds is what applying the
//! source layers one by one would leave, as seen over any lower image.

use super::*;
use crate::import::foreign_layer::tests::{
    Dir, Ent, Read_, dir, file, gzip, hardlink, plain, read_back, symlink, tar_of,
};

fn squash(layers: &[&[Ent]]) -> Result<Vec<Read_>> {
    let d = Dir::new();
    let blobs: Vec<PathBuf> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| d.blob(&format!("l{i}"), &gzip(&tar_of(l))))
        .collect();
    let out = d.out("out.tar");
    squash_layers(&blobs, &plain(), &out)?;
    Ok(read_back(&std::fs::read(out).unwrap()))
}

fn listing(r: &[Read_]) -> Vec<String> {
    r.iter()
        .map(|e| match e.flag {
            b'1' | b'2' => format!("{} -> {}", e.path, e.link),
            b'0' => format!("{} = {}", e.path, String::from_utf8_lossy(&e.data)),
            _ => e.path.clone(),
        })
        .collect()
}

#[test]
fn later_layers_replace_and_sort() {
    let r = squash(&[
        &[dir("b"), file("b/x", b"one"), file("a", b"first")],
        &[file("b/x", b"two"), file("c", b"new")],
    ])
    .unwrap();
    assert_eq!(listing(&r), ["a = first", "b/", "b/x = two", "c = new"]);
}

#[test]
fn whiteouts_remove_what_the_set_added_and_stay_for_the_lower_image() {
    let r = squash(&[
        &[
            dir("d"),
            file("d/gone", b"x"),
            dir("d/sub"),
            file("d/sub/f", b"y"),
        ],
        &[file("d/.wh.gone", b""), file("d/.wh.sub", b"")],
    ])
    .unwrap();
    assert_eq!(listing(&r), ["d/", "d/.wh.gone = ", "d/.wh.sub = "]);
    // Removed and made again: both the whiteout (for the lower image) and the new file.
    let r = squash(&[&[file(".wh.etc", b"")], &[dir("etc"), file("etc/f", b"z")]]).unwrap();
    assert_eq!(listing(&r), [".wh.etc = ", "etc/", "etc/f = z"]);
}

#[test]
fn opaque_directories_drop_what_earlier_layers_put_below() {
    let r = squash(&[
        &[dir("o"), file("o/old", b"1"), file("keep", b"k")],
        &[dir("o"), file("o/.wh..wh..opq", b""), file("o/new", b"2")],
    ])
    .unwrap();
    assert_eq!(
        listing(&r),
        ["keep = k", "o/", "o/.wh..wh..opq = ", "o/new = 2"]
    );
}

#[test]
fn a_file_over_a_directory_removes_its_contents() {
    let r = squash(&[
        &[dir("p"), file("p/inner", b"1")],
        &[file("p", b"now a file")],
    ])
    .unwrap();
    assert_eq!(listing(&r), ["p = now a file"]);
}

#[test]
fn hard_links_keep_their_inode_or_become_copies() {
    let r = squash(&[
        &[
            file("t", b"shared"),
            hardlink("l1", "t"),
            file("u", b"kept"),
        ],
        &[
            file("t", b"replaced"),
            hardlink("l2", "u"),
            hardlink("lower", "base/file"),
        ],
    ])
    .unwrap();
    // l1 shared the old t: it keeps that content, as a file. l2 and u still share one
    // inode; the smallest path of the group carries the content, as in every normalized layer.
    assert_eq!(
        listing(&r),
        [
            "l1 = shared",
            "l2 = kept",
            "lower -> base/file",
            "t = replaced",
            "u -> l2"
        ]
    );
}

#[test]
fn a_link_into_the_lower_image_under_a_replaced_path_is_refused() {
    let e = squash(&[
        &[hardlink("l", "etc/f")],
        &[dir("etc"), file("etc/f", b"new")],
    ])
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("hard link \"l\" shares the lower image's \"etc/f\""),
        "{e:#}"
    );
}

#[test]
fn the_result_is_checked_as_one_layer() {
    // Each layer is fine alone; together a path goes through a symlink.
    let e = squash(&[&[symlink("s", "/etc")], &[file("s/x", b"1")]]).unwrap_err();
    assert!(format!("{e:#}").contains("symbolic link"), "{e:#}");
}

#[test]
fn source_diff_ids_are_those_of_the_blobs() {
    let d = Dir::new();
    let a = tar_of(&[file("a", b"1")]);
    let blob = d.blob("a", &gzip(&a));
    let (ids, meta) = squash_layers(&[blob], &plain(), &d.out("o.tar")).unwrap();
    assert_eq!(ids, [Digest::of(&a)]);
    assert_eq!(
        meta.digest,
        Digest::of(&std::fs::read(d.out("o.tar")).unwrap())
    );
}
