//! The OCI image format as this tool reads and writes it: digests, media types, descriptors,
//! manifests and indexes (typed, canonical JSON), platforms and image references.

pub mod digest;
pub mod reference;
pub mod spec;
