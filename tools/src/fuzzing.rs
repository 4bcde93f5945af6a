//! Entry points of the fuzz targets (`fuzz/fuzz_targets/`): each takes arbitrary bytes, runs
//! one parser of untrusted input the way the commands do, and must return (an `Err` is fine)
//! without panicking, hanging or allocating without bound. Not an API: the library keeps its
//! modules private, and this is the one door the fuzzers get.

use crate::oci::reference::{Reference, Repo};
use crate::registry::{auth, client};

/// Image references and repository names, as given on the command line or in an index.
pub fn reference(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(s) {
        // What parses must print back to something that parses to the same reference.
        let again = Reference::parse(&r.to_string()).expect("a printed reference parses");
        assert_eq!(again.to_string(), r.to_string());
    }
    let _ = Repo::parse(s);
}

/// `WWW-Authenticate` challenges and `Location` headers, as a registry sends them, and the
/// credential rule applied to where they point.
pub fn registry_headers(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = auth::parse_challenges(s);
    let (request, location) = s
        .split_once('\n')
        .unwrap_or(("https://reg.example/v2/x", s));
    let resolved = client::resolve_location(request, location);
    let _ = client::authority(&resolved);
    // Whatever the URL, an https registry never lets it go out in clear text.
    if let Ok(creds) = client::credential_rule("https://reg.example", &resolved, false) {
        assert!(
            !resolved.to_ascii_lowercase().starts_with("http://"),
            "{resolved}"
        );
        if creds {
            let authority = client::authority(&resolved);
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            assert_eq!(
                host.to_ascii_lowercase()
                    .trim_end_matches(":443")
                    .trim_end_matches(':'),
                "reg.example"
            );
        }
    }
}

/// A layer blob as `import` reads it: every entry checked (`scan_layer`), then rewritten
/// (`normalize_layer`) when the scan accepts it.
pub fn layer_tar(data: &[u8]) {
    use crate::import::foreign_layer::{Normalize, normalize_layer, scan_layer};
    use crate::io::compress::Compression;
    let dir = tempfile::tempdir().expect("a scratch directory");
    let blob = dir.path().join("layer");
    std::fs::write(&blob, data).expect("the blob is written");
    if scan_layer(&blob).is_ok() {
        let n = Normalize {
            source_date_epoch: 0,
            codec: crate::io::compress::Codec {
                kind: Compression::None,
                level: 0,
                threads: 2,
            },
            max_layer_size: 64 << 20,
        };
        let _ = normalize_layer(&blob, &n, &dir.path().join("out.tar"));
    }
}

/// An `import --src` archive (OCI layout or docker save, as a tar, gzip or zstd): selection,
/// every digest check, the layer scans and the repository directory it writes.
pub fn import_archive(data: &[u8]) {
    use crate::import::{ImportOptions, run};
    let dir = tempfile::tempdir().expect("a scratch directory");
    let src = dir.path().join("src.tar");
    std::fs::write(&src, data).expect("the source is written");
    let _ = run(&ImportOptions {
        src: &src,
        output_dir: &dir.path().join("out"),
        reference: None,
        platform: None,
        normalize: None,
    });
}
