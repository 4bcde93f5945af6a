use super::*;

#[test]
fn drv_names_split_as_nix_does() {
    let h = "0123456789abcdfghijklmnpqrsvwxyz";
    for (name, want) in [
        ("hello-2.12.1", ("hello", Some("2.12.1"))),
        ("glibc-2.39-52", ("glibc", Some("2.39-52"))),
        (
            "python3.12-requests-2.31.0",
            ("python3.12-requests", Some("2.31.0")),
        ),
        ("busybox", ("busybox", None)),
        ("source", ("source", None)),
        ("openssl-3.0.13-bin", ("openssl", Some("3.0.13-bin"))),
    ] {
        assert_eq!(parse_drv_name(&format!("{h}-{name}")), want, "{name}");
    }
}

#[test]
fn store_paths_are_found_by_their_name() {
    let h = "0123456789abcdfghijklmnpqrsvwxyz";
    let key = format!("nix/store/{h}-hello-2.12.1/bin/hello");
    assert_eq!(
        store_path_name(key.as_bytes()),
        Some(format!("{h}-hello-2.12.1"))
    );
    assert_eq!(store_path_name(b"nix/store/.links/abc"), None);
    assert_eq!(store_path_name(b"usr/bin/hello"), None);
}

#[test]
fn verification_code_is_spdxs() {
    // SPDX 2.3 clause 7.9: SHA-1 over the sorted, concatenated SHA-1s of the files.
    let a = "da39a3ee5e6b4b0d3255bfef95601890afd80709"; // the empty file
    let b = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"; // "a"
    let mut h = Sha1::new();
    h.update(format!("{b}{a}").as_bytes());
    // b sorts before a? no: "86.." < "da..".
    assert_eq!(verification_code(&[b, a]), hex::encode(h.finalize()));
}

#[test]
fn spdx_ids_keep_only_allowed_characters() {
    assert_eq!(spdx_id_part("abc-python3.12_x+y"), "abc-python3.12-x-y");
}
