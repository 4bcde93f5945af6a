//! What the build actions write: layers, image manifests (with their configs), indexes.

pub mod index;
pub mod layer;
pub mod manifest;
