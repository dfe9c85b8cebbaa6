//! Manifests, image indexes and image configs, as serde types.
//!
//! bay reads manifests to learn which blobs an image is made of (to preheat
//! the swarm) and passes their bytes on untouched, so these types keep what
//! bay needs and ignore unknown fields, as the image spec asks. Four
//! documents are read:
//!
//! | media type | shape |
//! |---|---|
//! | OCI image manifest, Docker v2 schema 2 manifest | [`ImageManifest`]: config + layers |
//! | OCI image index, Docker manifest list | [`ImageIndex`]: child manifests with platforms |
//!
//! [`parse_manifest`] picks the type from the response's `Content-Type`,
//! falls back to the body's own `mediaType`, and refuses bodies over
//! [`MAX_MANIFEST_SIZE`], unknown types (Docker schema 1 among them) and a
//! body whose `mediaType` contradicts its `Content-Type`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

/// Largest manifest accepted, the limit registries themselves apply.
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

/// Largest image config accepted.
pub const MAX_CONFIG_SIZE: usize = 8 * 1024 * 1024;

/// Media type strings of the OCI image spec and Docker's v2 formats.
pub mod media_type {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI descriptor.
    pub const OCI_DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
    /// OCI empty JSON blob (`{}`), the config of artifacts with none.
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// OCI layer, uncompressed tar.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI layer, gzip.
    pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI layer, zstd.
    pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI non-distributable layer, uncompressed (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE_TAR: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar";
    /// OCI non-distributable layer, gzip (deprecated by the spec).
    pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    /// Docker image manifest, v2 schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker layer, gzip.
    pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker foreign layer (fetched from its `urls`, not the registry).
    pub const DOCKER_LAYER_FOREIGN_TAR_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Docker v2 schema 1 manifest: not read by bay.
    pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    /// Docker v2 schema 1 signed manifest: not read by bay.
    pub const DOCKER_MANIFEST_V1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// Every manifest type [`parse_manifest`](super::parse_manifest) reads,
    /// in a good order for an `Accept` header.
    pub const MANIFEST_TYPES: [&str; 4] = [
        OCI_INDEX,
        OCI_MANIFEST,
        DOCKER_MANIFEST_LIST,
        DOCKER_MANIFEST,
    ];
}

/// A reference to content: its type, digest and size, and where else it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size of the referenced content in bytes.
    pub size: u64,
    /// Other places the content may be fetched from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform the content runs on (in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The content itself, base64, when embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// Whether the content is a layer registries do not serve (Docker
    /// foreign layers, OCI non-distributable layers): clients fetch it from
    /// its `urls`, so there is nothing to preheat from the registry.
    pub fn is_nondistributable(&self) -> bool {
        [
            media_type::DOCKER_LAYER_FOREIGN_TAR_GZIP,
            media_type::OCI_LAYER_NONDISTRIBUTABLE_TAR,
            media_type::OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP,
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        ]
        .iter()
        .any(|t| self.media_type.eq_ignore_ascii_case(t))
    }

    /// A descriptor with only the three required fields.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
            data: None,
        }
    }
}

/// What a manifest in an index runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture, as `GOARCH`.
    pub architecture: String,
    /// Operating system, as `GOOS`.
    pub os: String,
    /// Version of the operating system.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Features the operating system must have.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant, such as `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// CPU features (Docker manifest lists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// An image manifest: one config and its layers (OCI, or Docker v2 schema 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// The layer blobs, base layer first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (signatures, SBOMs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// The blobs the image is made of: config first, then the layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

/// An index of manifests, one per platform (OCI index, Docker manifest list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The child manifests.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A child manifest of an index, with the platform it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildManifest<'a> {
    /// The child's descriptor.
    pub descriptor: &'a Descriptor,
    /// Its platform, when the index gives one.
    pub platform: Option<&'a Platform>,
}

impl ImageIndex {
    /// The child manifests with their platforms.
    pub fn children(&self) -> impl Iterator<Item = ChildManifest<'_>> {
        self.manifests.iter().map(|descriptor| ChildManifest {
            descriptor,
            platform: descriptor.platform.as_ref(),
        })
    }

    /// The child manifest for a platform, as a client on it would pick:
    /// `os` and `architecture` must match; among those, one with the asked
    /// `variant` wins over one without a variant, which wins over none.
    pub fn manifest_for(
        &self,
        os: &str,
        architecture: &str,
        variant: Option<&str>,
    ) -> Option<&Descriptor> {
        let candidates = || {
            self.manifests.iter().filter(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == os && p.architecture == architecture)
            })
        };
        let variant_of = |d: &Descriptor| d.platform.as_ref().and_then(|p| p.variant.clone());
        match variant {
            Some(v) => candidates()
                .find(|d| variant_of(d).as_deref() == Some(v))
                .or_else(|| candidates().find(|d| variant_of(d).is_none())),
            None => candidates().next(),
        }
    }
}

/// A manifest of one of the four types bay reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    /// `application/vnd.oci.image.manifest.v1+json`.
    OciManifest(ImageManifest),
    /// `application/vnd.oci.image.index.v1+json`.
    OciIndex(ImageIndex),
    /// `application/vnd.docker.distribution.manifest.v2+json`.
    DockerManifest(ImageManifest),
    /// `application/vnd.docker.distribution.manifest.list.v2+json`.
    DockerManifestList(ImageIndex),
}

impl Manifest {
    /// The media type this manifest was read as.
    pub fn media_type(&self) -> &'static str {
        match self {
            Manifest::OciManifest(_) => media_type::OCI_MANIFEST,
            Manifest::OciIndex(_) => media_type::OCI_INDEX,
            Manifest::DockerManifest(_) => media_type::DOCKER_MANIFEST,
            Manifest::DockerManifestList(_) => media_type::DOCKER_MANIFEST_LIST,
        }
    }

    /// The image manifest, if this is one (OCI or Docker).
    pub fn as_image(&self) -> Option<&ImageManifest> {
        match self {
            Manifest::OciManifest(m) | Manifest::DockerManifest(m) => Some(m),
            _ => None,
        }
    }

    /// The index, if this is one (OCI index or Docker manifest list).
    pub fn as_index(&self) -> Option<&ImageIndex> {
        match self {
            Manifest::OciIndex(i) | Manifest::DockerManifestList(i) => Some(i),
            _ => None,
        }
    }

    /// The blobs an image manifest names (config, then layers); none for an
    /// index.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        self.as_image()
            .map(|m| m.blobs().collect())
            .unwrap_or_default()
    }

    /// The child manifests an index names; none for an image manifest.
    pub fn children(&self) -> Vec<ChildManifest<'_>> {
        self.as_index()
            .map(|i| i.children().collect())
            .unwrap_or_default()
    }

    /// The manifest as JSON (not byte-identical to what was parsed: a
    /// manifest's digest is over the registry's bytes, never these).
    pub fn to_json(&self) -> Vec<u8> {
        let result = match self {
            Manifest::OciManifest(m) | Manifest::DockerManifest(m) => serde_json::to_vec(m),
            Manifest::OciIndex(i) | Manifest::DockerManifestList(i) => serde_json::to_vec(i),
        };
        // Plain structs of strings, numbers and maps with string keys
        // always serialize.
        result.unwrap_or_default()
    }
}

/// Why a body is not a manifest bay reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The body is larger than the limit.
    #[error("manifest is {size} bytes, more than the {limit} accepted")]
    TooLarge {
        /// Size of the body.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// Neither the `Content-Type` nor the body names a type bay reads.
    #[error("manifest media type {0:?} is not one bay reads")]
    UnknownMediaType(String),
    /// No type was given and the body's shape matches no manifest type.
    #[error("manifest has no media type and its shape matches none")]
    UndeterminedMediaType,
    /// The body's `mediaType` contradicts the `Content-Type`.
    #[error("manifest body says {body:?} but was served as {header:?}")]
    MediaTypeMismatch {
        /// The type from the `Content-Type`.
        header: String,
        /// The type from the body.
        body: String,
    },
    /// `schemaVersion` is not 2.
    #[error("manifest schemaVersion is {0}, only 2 is read")]
    SchemaVersion(u32),
    /// The body is not valid JSON of the expected shape.
    #[error("manifest JSON is invalid: {0}")]
    Json(String),
}

impl From<serde_json::Error> for ManifestError {
    fn from(e: serde_json::Error) -> ManifestError {
        ManifestError::Json(e.to_string())
    }
}

/// Media type given by a server for content that did not say what it is;
/// treated as if no `Content-Type` were given.
fn is_generic_content_type(t: &str) -> bool {
    ["application/json", "application/octet-stream", "text/plain"]
        .iter()
        .any(|g| t.eq_ignore_ascii_case(g))
}

/// The bare media type of a `Content-Type` value: parameters dropped,
/// whitespace trimmed. Media types compare case-insensitively, so the
/// result is matched with `eq_ignore_ascii_case`.
fn bare_media_type(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(t, _)| t)
        .trim()
}

/// The manifest kind a media type names, if bay reads it.
fn kind_of(media_type: &str) -> Option<&'static str> {
    media_type::MANIFEST_TYPES
        .into_iter()
        .find(|known| media_type.eq_ignore_ascii_case(known))
}

/// The few fields needed to tell the type of an unlabelled body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    layers: Option<serde::de::IgnoredAny>,
}

/// Parses a manifest body given the response's `Content-Type`, if any.
///
/// The type comes from `content_type` unless it is absent or generic
/// (`application/json`, `application/octet-stream`, `text/plain`); then
/// from the body's `mediaType`; then, for OCI documents, which may omit it,
/// from the body's shape (`manifests` is an index, `config` and `layers`
/// an image manifest). A body whose `mediaType` names a different type than
/// the `Content-Type` is refused.
pub fn parse_manifest(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, ManifestError> {
    if body.len() > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge {
            size: body.len(),
            limit: MAX_MANIFEST_SIZE,
        });
    }
    let header = content_type
        .map(bare_media_type)
        .filter(|t| !t.is_empty() && !is_generic_content_type(t));
    let header_kind = match header {
        Some(t) => Some(kind_of(t).ok_or_else(|| ManifestError::UnknownMediaType(clip(t)))?),
        None => None,
    };
    // serde would also read a struct from a JSON array; manifests are objects.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ManifestError::Json("body is not a JSON object".into()));
    }
    let probe: Probe = serde_json::from_slice(body)?;
    let body_kind = match probe.media_type.as_deref() {
        Some(t) => Some(kind_of(t).ok_or_else(|| ManifestError::UnknownMediaType(clip(t)))?),
        None => None,
    };
    let kind = match (header_kind, body_kind) {
        (Some(h), Some(b)) if h != b => {
            return Err(ManifestError::MediaTypeMismatch {
                header: h.to_owned(),
                body: b.to_owned(),
            })
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => match (probe.manifests, probe.config, probe.layers) {
            (Some(_), None, None) => media_type::OCI_INDEX,
            (None, Some(_), Some(_)) => media_type::OCI_MANIFEST,
            _ => return Err(ManifestError::UndeterminedMediaType),
        },
    };
    let manifest = match kind {
        media_type::OCI_MANIFEST => Manifest::OciManifest(image_manifest(body)?),
        media_type::DOCKER_MANIFEST => Manifest::DockerManifest(image_manifest(body)?),
        media_type::OCI_INDEX => Manifest::OciIndex(image_index(body)?),
        _ => Manifest::DockerManifestList(image_index(body)?),
    };
    Ok(manifest)
}

fn image_manifest(body: &[u8]) -> Result<ImageManifest, ManifestError> {
    let m: ImageManifest = serde_json::from_slice(body)?;
    check_schema_version(m.schema_version)?;
    Ok(m)
}

fn image_index(body: &[u8]) -> Result<ImageIndex, ManifestError> {
    let i: ImageIndex = serde_json::from_slice(body)?;
    check_schema_version(i.schema_version)?;
    Ok(i)
}

fn check_schema_version(v: u32) -> Result<(), ManifestError> {
    if v == 2 {
        Ok(())
    } else {
        Err(ManifestError::SchemaVersion(v))
    }
}

/// At most 128 characters of untrusted text, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(128).collect()
}

/// The parts of an image config bay reads: what it runs on and its layers'
/// uncompressed digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture, as `GOARCH`.
    pub architecture: String,
    /// Operating system, as `GOOS`.
    pub os: String,
    /// Version of the operating system.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The layers' uncompressed digests.
    pub rootfs: RootFs,
}

/// The `rootfs` of an image config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Digests of the uncompressed layers, base layer first.
    pub diff_ids: Vec<Digest>,
}

/// Why a body is not an image config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The body is larger than [`MAX_CONFIG_SIZE`].
    #[error("image config is {size} bytes, more than the {MAX_CONFIG_SIZE} accepted")]
    TooLarge {
        /// Size of the body.
        size: usize,
    },
    /// The body is not valid JSON of the expected shape.
    #[error("image config JSON is invalid: {0}")]
    Json(String),
}

/// Parses an image config (OCI or Docker; they share these fields).
pub fn parse_image_config(body: &[u8]) -> Result<ImageConfig, ConfigError> {
    if body.len() > MAX_CONFIG_SIZE {
        return Err(ConfigError::TooLarge { size: body.len() });
    }
    serde_json::from_slice(body).map_err(|e| ConfigError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OCI_MANIFEST: &str = include_str!("testdata/oci-manifest.json");
    const OCI_INDEX: &str = include_str!("testdata/oci-index.json");
    const DOCKER_MANIFEST: &str = include_str!("testdata/docker-manifest.json");
    const DOCKER_LIST: &str = include_str!("testdata/docker-manifest-list.json");
    const OCI_CONFIG: &str = include_str!("testdata/oci-config.json");
    const ARTIFACT: &str = include_str!("testdata/oci-artifact.json");
    const SCHEMA1: &str = include_str!("testdata/docker-schema1.json");

    #[test]
    fn oci_manifest_from_spec() {
        let m = parse_manifest(Some(media_type::OCI_MANIFEST), OCI_MANIFEST.as_bytes()).unwrap();
        assert_eq!(m.media_type(), media_type::OCI_MANIFEST);
        let blobs = m.blobs();
        assert_eq!(blobs.len(), 4);
        assert_eq!(blobs[0].media_type, media_type::OCI_CONFIG);
        assert_eq!(blobs[0].size, 7023);
        assert_eq!(
            blobs[3].digest.as_str(),
            "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736"
        );
        assert_eq!(
            m.as_image().unwrap().annotations.get("com.example.key1"),
            Some(&"value1".to_owned())
        );
        assert!(m.children().is_empty());
    }

    #[test]
    fn oci_index_from_spec_without_media_type() {
        // The spec's example index has no mediaType: the shape decides.
        let m = parse_manifest(None, OCI_INDEX.as_bytes()).unwrap();
        assert_eq!(m.media_type(), media_type::OCI_INDEX);
        let children = m.children();
        assert_eq!(children.len(), 2);
        assert_eq!(children[0].platform.unwrap().architecture, "ppc64le");
        assert_eq!(children[1].platform.unwrap().architecture, "amd64");
        assert_eq!(children[1].descriptor.size, 7682);
        assert!(m.blobs().is_empty());
    }

    #[test]
    fn docker_manifest_and_list() {
        let m = parse_manifest(
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
            DOCKER_MANIFEST.as_bytes(),
        )
        .unwrap();
        assert!(matches!(m, Manifest::DockerManifest(_)));
        assert_eq!(m.blobs()[0].media_type, media_type::DOCKER_CONFIG);
        assert_eq!(m.blobs().len(), 4);
        let foreign: Vec<bool> = m.blobs().iter().map(|b| b.is_nondistributable()).collect();
        assert_eq!(foreign, [false, false, false, true]);
        assert_eq!(m.blobs()[3].urls, ["https://example.com/layer.tar.gz"]);

        let l = parse_manifest(Some("application/json"), DOCKER_LIST.as_bytes()).unwrap();
        assert!(matches!(l, Manifest::DockerManifestList(_)));
        let c = l.children();
        assert_eq!(c[1].platform.unwrap().features, vec!["sse4".to_owned()]);
        assert_eq!(c[2].platform.unwrap().variant.as_deref(), Some("v7"));
        let index = l.as_index().unwrap();
        assert_eq!(
            index
                .manifest_for("linux", "arm", Some("v7"))
                .map(|d| d.size),
            Some(1024)
        );
        assert_eq!(index.manifest_for("linux", "arm", Some("v6")), None);
        assert_eq!(
            index.manifest_for("linux", "amd64", None).map(|d| d.size),
            Some(7682)
        );
        assert_eq!(index.manifest_for("windows", "amd64", None), None);
    }

    /// Bodies and Content-Types as served by CNCF distribution 2.8 for an
    /// image pushed by skopeo in both formats.
    #[test]
    fn manifests_served_by_distribution() {
        let oci = include_bytes!("testdata/distribution-oci-manifest.json");
        let docker = include_bytes!("testdata/distribution-docker-manifest.json");
        let m = parse_manifest(Some("application/vnd.oci.image.manifest.v1+json"), oci).unwrap();
        let d = parse_manifest(
            Some("application/vnd.docker.distribution.manifest.v2+json"),
            docker,
        )
        .unwrap();
        assert!(matches!(m, Manifest::OciManifest(_)));
        assert!(matches!(d, Manifest::DockerManifest(_)));
        let digests = |m: &Manifest| -> Vec<String> {
            m.blobs().iter().map(|b| b.digest.to_string()).collect()
        };
        assert_eq!(digests(&m), digests(&d));
        assert_eq!(
            digests(&m)[1],
            "sha256:88981090314e0a27c1af968f6e280f97a4c9bd990bbdee15395a2b939bdfcdfc"
        );
    }

    #[test]
    fn artifact_with_subject() {
        let m = parse_manifest(None, ARTIFACT.as_bytes()).unwrap();
        let image = m.as_image().unwrap();
        assert_eq!(image.config.media_type, media_type::OCI_EMPTY);
        assert_eq!(
            image.artifact_type.as_deref(),
            Some("application/vnd.example.sbom.v1")
        );
        assert!(image.subject.is_some());
    }

    #[test]
    fn refuses_bad_types() {
        assert!(matches!(
            parse_manifest(None, SCHEMA1.as_bytes()),
            Err(ManifestError::UnknownMediaType(_))
        ));
        assert!(matches!(
            parse_manifest(
                Some(media_type::DOCKER_MANIFEST_V1_SIGNED),
                SCHEMA1.as_bytes()
            ),
            Err(ManifestError::UnknownMediaType(_))
        ));
        assert_eq!(
            parse_manifest(Some(media_type::OCI_INDEX), OCI_MANIFEST.as_bytes()),
            Err(ManifestError::MediaTypeMismatch {
                header: media_type::OCI_INDEX.into(),
                body: media_type::OCI_MANIFEST.into()
            })
        );
        assert!(matches!(
            parse_manifest(Some("text/html"), OCI_MANIFEST.as_bytes()),
            Err(ManifestError::UnknownMediaType(_))
        ));
        assert_eq!(
            parse_manifest(None, b"{\"schemaVersion\":2}"),
            Err(ManifestError::UndeterminedMediaType)
        );
        // Told it is an index, but the body is an image manifest without a
        // mediaType: the index shape is missing.
        let unlabelled = OCI_MANIFEST.replace(
            "\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n",
            "",
        );
        assert!(matches!(
            parse_manifest(Some(media_type::OCI_INDEX), unlabelled.as_bytes()),
            Err(ManifestError::Json(_))
        ));
    }

    #[test]
    fn refuses_hostile_bodies() {
        let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
        assert_eq!(
            parse_manifest(None, &big),
            Err(ManifestError::TooLarge {
                size: MAX_MANIFEST_SIZE + 1,
                limit: MAX_MANIFEST_SIZE
            })
        );
        let bad_digest = OCI_MANIFEST.replace("sha256:b5b2", "sha256:B5B2");
        assert!(matches!(
            parse_manifest(None, bad_digest.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        let negative = OCI_MANIFEST.replace("7023", "-7023");
        assert!(matches!(
            parse_manifest(None, negative.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        let v1 = OCI_MANIFEST.replace("\"schemaVersion\": 2", "\"schemaVersion\": 1");
        assert_eq!(
            parse_manifest(None, v1.as_bytes()),
            Err(ManifestError::SchemaVersion(1))
        );
        let duplicate = OCI_MANIFEST.replace(
            "\"schemaVersion\": 2,",
            "\"schemaVersion\": 2, \"schemaVersion\": 2,",
        );
        assert!(matches!(
            parse_manifest(Some(media_type::OCI_MANIFEST), duplicate.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse_manifest(None, deep.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        for junk in [&b""[..], b"null", b"[]", b"{", b"\xff\xfe"] {
            assert!(parse_manifest(None, junk).is_err());
        }
    }

    #[test]
    fn image_config_from_spec() {
        let c = parse_image_config(OCI_CONFIG.as_bytes()).unwrap();
        assert_eq!(c.architecture, "amd64");
        assert_eq!(c.os, "linux");
        assert_eq!(c.rootfs.kind, "layers");
        assert_eq!(c.rootfs.diff_ids.len(), 2);
        assert!(parse_image_config(b"{\"os\":\"linux\"}").is_err());
        assert!(matches!(
            parse_image_config(&vec![b' '; MAX_CONFIG_SIZE + 1]),
            Err(ConfigError::TooLarge { .. })
        ));
    }

    fn descriptor_strategy() -> impl Strategy<Value = Descriptor> {
        (
            "[a-z./+-]{1,40}",
            any::<[u8; 8]>(),
            any::<u64>(),
            proptest::collection::vec("\\PC{0,20}", 0..3),
            proptest::collection::btree_map("\\PC{1,10}", "\\PC{0,10}", 0..3),
            proptest::option::of((
                "[a-z0-9]{1,8}",
                "[a-z]{1,8}",
                proptest::option::of("v[0-9]"),
            )),
        )
            .prop_map(|(mt, seed, size, urls, annotations, platform)| Descriptor {
                urls,
                annotations,
                platform: platform.map(|(architecture, os, variant)| Platform {
                    architecture,
                    os,
                    os_version: None,
                    os_features: Vec::new(),
                    variant,
                    features: Vec::new(),
                }),
                ..Descriptor::new(&mt, Digest::sha256_of(&seed), size)
            })
    }

    proptest! {
        #[test]
        fn image_manifest_round_trip(
            config in descriptor_strategy(),
            layers in proptest::collection::vec(descriptor_strategy(), 0..4),
            docker in any::<bool>(),
            labelled in any::<bool>(),
        ) {
            let mt = if docker { media_type::DOCKER_MANIFEST } else { media_type::OCI_MANIFEST };
            let m = ImageManifest {
                schema_version: 2,
                media_type: labelled.then(|| mt.to_owned()),
                artifact_type: None,
                config,
                layers,
                subject: None,
                annotations: BTreeMap::new(),
            };
            let wrapped = if docker { Manifest::DockerManifest(m) } else { Manifest::OciManifest(m) };
            let json = wrapped.to_json();
            prop_assert_eq!(parse_manifest(Some(mt), &json), Ok(wrapped.clone()));
            if labelled {
                prop_assert_eq!(parse_manifest(None, &json), Ok(wrapped));
            }
        }

        #[test]
        fn image_index_round_trip(
            manifests in proptest::collection::vec(descriptor_strategy(), 0..4),
            docker in any::<bool>(),
        ) {
            let mt = if docker { media_type::DOCKER_MANIFEST_LIST } else { media_type::OCI_INDEX };
            let i = ImageIndex {
                schema_version: 2,
                media_type: Some(mt.to_owned()),
                artifact_type: None,
                manifests,
                subject: None,
                annotations: BTreeMap::new(),
            };
            let wrapped = if docker { Manifest::DockerManifestList(i) } else { Manifest::OciIndex(i) };
            let json = wrapped.to_json();
            prop_assert_eq!(parse_manifest(None, &json), Ok(wrapped));
        }

        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_manifest(None, &body);
            let _ = parse_manifest(Some(media_type::OCI_INDEX), &body);
        }
    }
}
