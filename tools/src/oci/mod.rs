//! The OCI image format as this tool reads and writes it: digests, media types, descriptors,
//! manifests and indexes (typed, canonical JSON), platforms and THE platform matcher, image
//! references, and the layout / docker-save archive formats.

pub mod config;
pub mod descriptor;
pub mod digest;
pub mod json;
pub mod layout;
pub mod manifest;
pub mod media_type;
pub mod platform;
pub mod reference;

pub use descriptor::Descriptor;
pub use digest::Digest;
pub use manifest::{ImageIndex, ImageManifest};
pub use platform::Platform;
