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

/// `WWW-Authenticate` challenges and `Location` headers, as a registry sends them.
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
}
