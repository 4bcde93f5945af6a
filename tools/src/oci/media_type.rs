//! Media types of the documents and blobs this tool reads and writes.

pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What a registry is asked for when a manifest may be an image or an index, OCI or Docker
/// (Docker schema 1 is deliberately absent).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// The OCI media type of a Docker schema 2 layer media type (the bytes are the same), so that
/// an OCI manifest built on a Docker-format base carries only OCI layer types.
pub fn oci_layer(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => LAYER_ZSTD,
        "application/vnd.docker.image.rootfs.diff.tar" => LAYER_TAR,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        other => other,
    }
}

/// Whether a layer media type is zstd-compressed (OCI or Docker).
pub fn is_zstd_layer(media_type: &str) -> bool {
    media_type.ends_with("+zstd") || media_type.ends_with(".tar.zstd")
}

/// The two kinds of manifest a descriptor can point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

/// The kind of manifest a media type names; None for anything else (configs, layers, ...).
pub fn kind(media_type: &str) -> Option<Kind> {
    match media_type {
        MANIFEST | DOCKER_MANIFEST => Some(Kind::Image),
        INDEX | DOCKER_LIST => Some(Kind::Index),
        _ => None,
    }
}
