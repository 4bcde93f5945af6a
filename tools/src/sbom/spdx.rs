//! The part of SPDX 2.3's JSON form that an image's SBOM uses, typed (field names as the
//! SPDX JSON schema spells them).

use serde::Serialize;

pub const VERSION: &str = "SPDX-2.3";
/// SPDX documents are CC0-1.0: the only value the spec allows.
pub const DATA_LICENSE: &str = "CC0-1.0";
pub const NOASSERTION: &str = "NOASSERTION";

#[derive(Debug, Serialize)]
pub struct Document {
    #[serde(rename = "spdxVersion")]
    pub spdx_version: &'static str,
    #[serde(rename = "dataLicense")]
    pub data_license: &'static str,
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    #[serde(rename = "documentNamespace")]
    pub document_namespace: String,
    #[serde(rename = "creationInfo")]
    pub creation_info: CreationInfo,
    pub packages: Vec<Package>,
    pub files: Vec<File>,
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Serialize)]
pub struct CreationInfo {
    pub created: String,
    pub creators: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Package {
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    pub name: String,
    #[serde(rename = "versionInfo", skip_serializing_if = "Option::is_none")]
    pub version_info: Option<String>,
    #[serde(rename = "downloadLocation")]
    pub download_location: String,
    #[serde(rename = "filesAnalyzed")]
    pub files_analyzed: bool,
    #[serde(
        rename = "packageVerificationCode",
        skip_serializing_if = "Option::is_none"
    )]
    pub verification_code: Option<VerificationCode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<Checksum>,
    #[serde(rename = "externalRefs", skip_serializing_if = "Vec::is_empty")]
    pub external_refs: Vec<ExternalRef>,
    #[serde(
        rename = "primaryPackagePurpose",
        skip_serializing_if = "Option::is_none"
    )]
    pub purpose: Option<&'static str>,
    #[serde(rename = "licenseConcluded")]
    pub license_concluded: &'static str,
    #[serde(rename = "licenseDeclared")]
    pub license_declared: &'static str,
    #[serde(rename = "copyrightText")]
    pub copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct VerificationCode {
    #[serde(rename = "packageVerificationCodeValue")]
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct Checksum {
    pub algorithm: &'static str,
    #[serde(rename = "checksumValue")]
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    pub category: &'static str,
    #[serde(rename = "referenceType")]
    pub kind: &'static str,
    #[serde(rename = "referenceLocator")]
    pub locator: String,
}

#[derive(Debug, Serialize)]
pub struct File {
    #[serde(rename = "SPDXID")]
    pub spdx_id: String,
    #[serde(rename = "fileName")]
    pub file_name: String,
    pub checksums: Vec<Checksum>,
    #[serde(rename = "licenseConcluded")]
    pub license_concluded: &'static str,
    #[serde(rename = "copyrightText")]
    pub copyright_text: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Relationship {
    #[serde(rename = "spdxElementId")]
    pub element: String,
    #[serde(rename = "relationshipType")]
    pub kind: &'static str,
    #[serde(rename = "relatedSpdxElement")]
    pub related: String,
}

impl Package {
    /// A package whose license and copyright this tool cannot know.
    pub fn new(spdx_id: String, name: String) -> Package {
        Package {
            spdx_id,
            name,
            version_info: None,
            download_location: NOASSERTION.into(),
            files_analyzed: false,
            verification_code: None,
            checksums: Vec::new(),
            external_refs: Vec::new(),
            purpose: None,
            license_concluded: NOASSERTION,
            license_declared: NOASSERTION,
            copyright_text: NOASSERTION,
            comment: None,
        }
    }
}

pub fn relationship(element: &str, kind: &'static str, related: &str) -> Relationship {
    Relationship {
        element: element.into(),
        kind,
        related: related.into(),
    }
}
