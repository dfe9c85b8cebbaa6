//! The OCI and registry formats bay reads: digests, repository names,
//! references, registry API paths, manifests and auth challenges.
//!
//! bay-proxy stands between a container client and a registry. It must
//! recognise blob reads among all the registry requests it passes on, know
//! which blobs an image is made of, follow a registry's auth challenges, and
//! never let a name or digest from the network become a path trick on its
//! disk. Everything here is pure: text and bytes in, values or typed errors
//! out, no I/O.
//!
//! Layout:
//! - [`digest`]: [`Digest`] (`sha256`/`sha512` only, lowercase hex) and the
//!   streaming [`DigestVerifier`].
//! - [`name`]: [`RepositoryName`] and [`Tag`] by the distribution grammar.
//! - [`reference`](mod@reference): [`Reference`] (tag or digest) and [`ImageReference`]
//!   (`[registry/]name[:tag][@digest]` with Docker Hub's defaults).
//! - [`api`]: [`ApiPath`], a `/v2/...` request path parsed for routing.
//! - [`manifest`]: OCI and Docker manifests, indexes, configs;
//!   [`parse_manifest`].
//! - [`auth`]: `WWW-Authenticate` challenges, token request URLs, token
//!   responses.
//!
//! Decisions:
//! - Digests are `sha256` or `sha512` only. The image spec lets unknown
//!   algorithms through; bay refuses them, because it cannot verify them
//!   and nothing unverified is served. Requests naming other algorithms
//!   fail to parse and are passed on to the registry untouched.
//! - Names, tags and paths are checked byte by byte against the grammars,
//!   never percent-decoded, so no accepted value holds `..`, `%`, NUL or an
//!   empty path component.
//! - A manifest's type is its `Content-Type`, else its own `mediaType`,
//!   else its shape; a body that contradicts its `Content-Type` is refused,
//!   and Docker schema 1 is not read.
//! - Anything holding a credential (a token answer) or possibly holding
//!   one (URL user info in a realm) hides it from `Debug`.
//!
//! Sources: the OCI distribution spec (names, tags, endpoints), the OCI
//! image spec (digests, descriptors, manifests, index, config), Docker's
//! image manifest v2 schema 2, the CNCF distribution `reference` grammar
//! (image references), and RFC 9110 §11 (challenges).

pub mod api;
pub mod auth;
pub mod digest;
pub mod manifest;
pub mod name;
pub mod reference;

pub use api::{ApiPath, ApiPathError};
pub use auth::{
    parse_www_authenticate, AuthChallenge, AuthError, BearerChallenge, Challenge, TokenError,
    TokenResponse,
};
pub use digest::{Algorithm, Digest, DigestError, DigestMismatch, DigestVerifier};
pub use manifest::{
    media_type, parse_image_config, parse_manifest, ChildManifest, ConfigError, Descriptor,
    ImageConfig, ImageIndex, ImageManifest, Manifest, ManifestError, Platform, RootFs,
};
pub use name::{NameError, RepositoryName, Tag, TagError};
pub use reference::{ImageReference, ImageReferenceError, Reference, ReferenceError};
