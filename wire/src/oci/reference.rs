//! Manifest references (tag or digest) and full image references.
//!
//! A manifest reference is what follows `/manifests/` in a registry path. An
//! image reference is what a person types: `[registry/]name[:tag][@digest]`,
//! read the way Docker and the CNCF distribution `reference` package read it:
//! the first `/`-separated part is a registry only if it contains `.` or
//! `:`, is `localhost`, or has an uppercase letter; otherwise the registry is
//! Docker Hub (`docker.io`), where one-component names live under `library/`.
//! `index.docker.io` is read as `docker.io`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::digest::{Digest, DigestError};
use super::name::{NameError, RepositoryName, Tag, TagError, MAX_NAME_LEN};

/// The registry a name without one belongs to.
pub const DOCKER_HUB: &str = "docker.io";

/// The host Docker Hub's registry API is actually served from.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// The namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";

/// The older name of Docker Hub, read as [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";

/// Longest image reference read: registry and name (255), `:` and tag
/// (129), `@` and digest (136), with room to spare.
pub const MAX_IMAGE_REFERENCE_LEN: usize = 1024;

/// What follows `/manifests/` in a registry path: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// A mutable name for a manifest.
    Tag(Tag),
    /// The manifest's content digest.
    Digest(Digest),
}

/// Why a string is not a manifest reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// It has a `:` (so it can only be a digest) but is not a valid one.
    #[error("reference is not a valid digest: {0}")]
    Digest(#[from] DigestError),
    /// It is not a valid tag.
    #[error("reference is not a valid tag: {0}")]
    Tag(#[from] TagError),
}

impl Reference {
    /// Parses a tag or, when it has a `:` (which tags cannot), a digest.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.contains(':') {
            Ok(Reference::Digest(Digest::parse(s)?))
        } else {
            Ok(Reference::Tag(Tag::parse(s)?))
        }
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) => t.as_str(),
            Reference::Digest(d) => d.as_str(),
        }
    }

    /// The digest, when the reference is one.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Reference::Digest(d) => Some(d),
            Reference::Tag(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Reference, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A full image reference: where an image lives and which one it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: RepositoryName,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageReferenceError {
    /// The input was empty.
    #[error("image reference is empty")]
    Empty,
    /// The input is longer than [`MAX_IMAGE_REFERENCE_LEN`].
    #[error("image reference is {len} bytes, more than {MAX_IMAGE_REFERENCE_LEN}")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// The registry part is not a host name, IPv4 or bracketed IPv6
    /// address with an optional port.
    #[error("image reference has an invalid registry host")]
    InvalidRegistry,
    /// The repository part is not a valid name.
    #[error("image reference has an invalid repository name: {0}")]
    Name(#[from] NameError),
    /// Registry and repository together are longer than 255 bytes.
    #[error("registry and repository are {len} bytes together, more than {MAX_NAME_LEN}")]
    NameTooLong {
        /// Length of `registry/repository`.
        len: usize,
    },
    /// The tag is not valid.
    #[error("image reference has an invalid tag: {0}")]
    Tag(#[from] TagError),
    /// The digest is not valid.
    #[error("image reference has an invalid digest: {0}")]
    Digest(#[from] DigestError),
    /// The name is 64 hex characters, which reads as an image id, not a name.
    #[error("image reference is a bare 64-hex image id, not a name")]
    AmbiguousImageId,
}

impl ImageReference {
    /// Parses `[registry/]name[:tag][@digest]`, filling in Docker Hub's
    /// defaults. No tag is filled in: [`ImageReference::tag_or_latest`] does
    /// that for callers that want it.
    pub fn parse(s: &str) -> Result<ImageReference, ImageReferenceError> {
        if s.is_empty() {
            return Err(ImageReferenceError::Empty);
        }
        if s.len() > MAX_IMAGE_REFERENCE_LEN {
            return Err(ImageReferenceError::TooLong { len: s.len() });
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (s, None),
        };
        let (name, tag) = split_tag(rest);
        let tag = tag.map(Tag::parse).transpose()?;
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ImageReferenceError::AmbiguousImageId);
        }
        let (registry, path) = split_registry(name);
        if !is_registry(registry) {
            return Err(ImageReferenceError::InvalidRegistry);
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            RepositoryName::parse(&format!("{OFFICIAL_PREFIX}{path}"))?
        } else {
            RepositoryName::parse(path)?
        };
        let full_len = registry.len() + 1 + repository.as_str().len();
        if full_len > MAX_NAME_LEN {
            return Err(ImageReferenceError::NameTooLong { len: full_len });
        }
        Ok(ImageReference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// The registry as `host[:port]`, `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to send registry API requests to: the registry, except
    /// that Docker Hub's API lives at [`DOCKER_HUB_API_HOST`].
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository within the registry, with `library/` filled in for
    /// Docker Hub's official images.
    pub fn repository(&self) -> &RepositoryName {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag given, or `latest`.
    pub fn tag_or_latest(&self) -> Tag {
        self.tag.clone().unwrap_or_else(Tag::latest)
    }

    /// What to ask `/manifests/` for: the digest when there is one (it pins
    /// the content, the tag is then only a label), else the tag or `latest`.
    pub fn manifest_reference(&self) -> Reference {
        match &self.digest {
            Some(d) => Reference::Digest(d.clone()),
            None => Reference::Tag(self.tag_or_latest()),
        }
    }
}

/// Splits `name[:tag]`: a `:` is a tag separator only after the last `/`,
/// since before it a `:` belongs to the registry's port.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let last_slash = s.rfind('/');
    match s.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (s.get(..colon).unwrap_or_default(), s.get(colon + 1..))
        }
        _ => (s, None),
    }
}

/// Splits the registry off a name by Docker's rule (see the module doc).
fn split_registry(name: &str) -> (&str, &str) {
    let Some((first, rest)) = name.split_once('/') else {
        return (DOCKER_HUB, name);
    };
    if first == LEGACY_DOCKER_HUB || first == DOCKER_HUB {
        return (DOCKER_HUB, rest);
    }
    let looks_like_host = first == "localhost"
        || first.contains(['.', ':'])
        || first.bytes().any(|b| b.is_ascii_uppercase());
    if looks_like_host {
        (first, rest)
    } else {
        (DOCKER_HUB, name)
    }
}

/// `host[:port]` where host is DNS-like labels, dotted IPv4, or `[ipv6]`.
fn is_registry(s: &str) -> bool {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        let ipv6_ok = addr.parse::<std::net::Ipv6Addr>().is_ok();
        if !ipv6_ok {
            return false;
        }
        (None, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    let host_ok = host.is_none_or(|h| !h.is_empty() && h.split('.').all(is_domain_label));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, at most 63 bytes.
fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    let edge_ok = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    b.len() <= 63
        && edge_ok(b.first())
        && edge_ok(b.last())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

impl fmt::Display for ImageReference {
    /// The fully qualified form, `registry/repository[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ImageReferenceError;

    fn from_str(s: &str) -> Result<ImageReference, ImageReferenceError> {
        ImageReference::parse(s)
    }
}

impl Serialize for ImageReference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageReference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ImageReference, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(deserializer)?;
        ImageReference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::name::tests::{name_strategy, tag_strategy};
    use proptest::prelude::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageReference::parse(s).unwrap();
        (
            r.registry().to_owned(),
            r.repository().to_string(),
            r.tag().map(ToString::to_string),
            r.digest().map(ToString::to_string),
        )
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    #[test]
    fn reference_is_tag_or_digest() {
        assert_eq!(
            Reference::parse("latest").unwrap(),
            Reference::Tag(Tag::parse("latest").unwrap())
        );
        let d = format!("sha256:{HEX}");
        assert_eq!(Reference::parse(&d).unwrap().digest().unwrap().as_str(), d);
        assert!(matches!(
            Reference::parse("sha256:short"),
            Err(ReferenceError::Digest(_))
        ));
        assert!(matches!(
            Reference::parse("../x"),
            Err(ReferenceError::Tag(_))
        ));
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(
            parts("ubuntu"),
            ("docker.io".into(), "library/ubuntu".into(), None, None)
        );
        assert_eq!(
            parts("ubuntu:22.04"),
            (
                "docker.io".into(),
                "library/ubuntu".into(),
                some("22.04"),
                None
            )
        );
        assert_eq!(
            parts("bitnami/redis"),
            ("docker.io".into(), "bitnami/redis".into(), None, None)
        );
        assert_eq!(
            parts("docker.io/ubuntu"),
            ("docker.io".into(), "library/ubuntu".into(), None, None)
        );
        assert_eq!(
            parts("index.docker.io/library/busybox:latest"),
            (
                "docker.io".into(),
                "library/busybox".into(),
                some("latest"),
                None
            )
        );
        let r = ImageReference::parse("ubuntu").unwrap();
        assert_eq!(r.api_host(), DOCKER_HUB_API_HOST);
        assert_eq!(r.tag_or_latest().as_str(), "latest");
        assert_eq!(r.to_string(), "docker.io/library/ubuntu");
    }

    #[test]
    fn registries_with_ports_and_digests() {
        let d = format!("sha256:{HEX}");
        assert_eq!(
            parts(&format!("localhost:5000/foo/bar:v1@{d}")),
            (
                "localhost:5000".into(),
                "foo/bar".into(),
                some("v1"),
                some(&d)
            )
        );
        assert_eq!(
            parts("localhost/foo"),
            ("localhost".into(), "foo".into(), None, None)
        );
        assert_eq!(
            parts("ghcr.io/owner/app"),
            ("ghcr.io".into(), "owner/app".into(), None, None)
        );
        assert_eq!(
            parts("127.0.0.1:5000/app"),
            ("127.0.0.1:5000".into(), "app".into(), None, None)
        );
        assert_eq!(
            parts("[::1]:5000/app:t"),
            ("[::1]:5000".into(), "app".into(), some("t"), None)
        );
        assert_eq!(
            parts("Registry/app"),
            ("Registry".into(), "app".into(), None, None)
        );
        // A bare `host:port` reads as name and tag, as Docker reads it.
        assert_eq!(
            parts("localhost:5000"),
            (
                "docker.io".into(),
                "library/localhost".into(),
                some("5000"),
                None
            )
        );
        let pinned = ImageReference::parse(&format!("busybox:latest@{d}")).unwrap();
        assert_eq!(pinned.manifest_reference().as_str(), d);
    }

    #[test]
    fn rejects_hostile_references() {
        use ImageReferenceError as E;
        assert_eq!(ImageReference::parse(""), Err(E::Empty));
        assert!(matches!(ImageReference::parse("UPPER"), Err(E::Name(_))));
        assert!(matches!(
            ImageReference::parse("host:99999/app"),
            Err(E::InvalidRegistry)
        ));
        assert!(matches!(
            ImageReference::parse("-bad.com/app"),
            Err(E::InvalidRegistry)
        ));
        assert!(matches!(
            ImageReference::parse("[zz]:5000/app"),
            Err(E::InvalidRegistry)
        ));
        assert!(matches!(
            ImageReference::parse("ghcr.io/../etc"),
            Err(E::Name(_))
        ));
        assert!(matches!(ImageReference::parse("app:.x"), Err(E::Tag(_))));
        assert!(matches!(
            ImageReference::parse("app@sha256:abc"),
            Err(E::Digest(_))
        ));
        assert!(matches!(
            ImageReference::parse("app@@sha256:abc"),
            Err(E::Digest(_))
        ));
        assert_eq!(ImageReference::parse(HEX), Err(E::AmbiguousImageId));
        assert!(matches!(
            ImageReference::parse(&format!("example.com/{}", "a".repeat(250))),
            Err(E::NameTooLong { .. })
        ));
        assert!(matches!(
            ImageReference::parse(&"a".repeat(2000)),
            Err(E::TooLong { len: 2000 })
        ));
        assert!(matches!(ImageReference::parse("ghcr.io/"), Err(E::Name(_))));
    }

    fn registry_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::from("docker.io")),
            "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.[a-z]{2,4}",
            "localhost:[1-9][0-9]{0,3}",
            "[1-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:5000",
            Just(String::from("[::1]:5000")),
        ]
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(
            registry in registry_strategy(),
            name in name_strategy(),
            tag in proptest::option::of(tag_strategy()),
            digest_seed in proptest::option::of(any::<u64>()),
        ) {
            let mut s = format!("{registry}/{name}");
            if let Some(t) = &tag { s.push(':'); s.push_str(t); }
            if let Some(seed) = digest_seed {
                s.push('@');
                s.push_str(Digest::sha256_of(&seed.to_le_bytes()).as_str());
            }
            prop_assume!(registry.len() + 1 + name.len() + 8 <= MAX_NAME_LEN);
            let parsed = ImageReference::parse(&s).unwrap();
            prop_assert_eq!(parsed.tag().map(Tag::as_str), tag.as_deref());
            let again = ImageReference::parse(&parsed.to_string()).unwrap();
            prop_assert_eq!(again, parsed);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            if let Ok(r) = ImageReference::parse(&s) {
                prop_assert_eq!(ImageReference::parse(&r.to_string()), Ok(r));
            }
        }
    }
}
