//! Registry API request paths (`/v2/...`), parsed so a proxy can route them.
//!
//! The endpoints are those of the OCI distribution spec (end-1 to end-14)
//! plus `/v2/_catalog`, which every registry serves. A repository name may
//! itself contain `/`, so a path is read from its right end: the last one to
//! three segments say which endpoint it is, and everything between `/v2/` and
//! them is the name, validated by the name grammar. The query string is
//! ignored: routing never depends on it.
//!
//! Paths are matched as sent, not percent-decoded: no valid name, digest or
//! tag has a `%`, so an encoded path is refused rather than decoded into
//! something else. An error means "not a request bay understands", which a
//! proxy answers by passing the request on untouched.

use std::fmt;

use super::digest::{Digest, DigestError};
use super::name::{NameError, RepositoryName};
use super::reference::{Reference, ReferenceError};

/// Longest request path read, well above the longest valid one.
pub const MAX_API_PATH_LEN: usize = 2048;

/// Longest upload session id accepted.
pub const MAX_UPLOAD_ID_LEN: usize = 512;

/// One registry API endpoint with its path parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ApiPath {
    /// `/v2/`: the version check (end-1).
    Base,
    /// `/v2/_catalog`: the list of repositories.
    Catalog,
    /// `/v2/<name>/tags/list` (end-8).
    Tags {
        /// The repository.
        name: RepositoryName,
    },
    /// `/v2/<name>/manifests/<reference>` (end-3, end-7, end-9).
    Manifest {
        /// The repository.
        name: RepositoryName,
        /// The tag or digest.
        reference: Reference,
    },
    /// `/v2/<name>/blobs/<digest>` (end-2, end-10).
    Blob {
        /// The repository.
        name: RepositoryName,
        /// The blob's digest.
        digest: Digest,
    },
    /// `/v2/<name>/blobs/uploads/`: starts an upload (end-4, end-11).
    UploadStart {
        /// The repository.
        name: RepositoryName,
    },
    /// `/v2/<name>/blobs/uploads/<id>`: an upload session (end-5, 6, 13, 14).
    Upload {
        /// The repository.
        name: RepositoryName,
        /// The registry's opaque session id.
        id: String,
    },
    /// `/v2/<name>/referrers/<digest>` (end-12).
    Referrers {
        /// The repository.
        name: RepositoryName,
        /// The digest of the manifest whose referrers are listed.
        digest: Digest,
    },
}

/// Why a path is not a registry API path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiPathError {
    /// The path is longer than [`MAX_API_PATH_LEN`].
    #[error("path is {len} bytes, more than {MAX_API_PATH_LEN}")]
    TooLong {
        /// Length of the path in bytes.
        len: usize,
    },
    /// The path does not start with `/v2/`.
    #[error("path is not under /v2/")]
    NotV2,
    /// The path's ending matches no endpoint.
    #[error("path names no registry endpoint")]
    UnknownEndpoint,
    /// The repository part is not a valid name.
    #[error("path has an invalid repository name: {0}")]
    Name(#[from] NameError),
    /// The blob or referrers digest is invalid.
    #[error("path has an invalid digest: {0}")]
    Digest(#[from] DigestError),
    /// The manifest reference is invalid.
    #[error("path has an invalid manifest reference: {0}")]
    Reference(#[from] ReferenceError),
    /// The upload session id is empty, too long, or has bytes outside
    /// `[A-Za-z0-9._~=+-]`.
    #[error("path has an invalid upload session id")]
    UploadId,
}

impl ApiPath {
    /// Parses a request target; anything from `?` on is ignored.
    pub fn parse(target: &str) -> Result<ApiPath, ApiPathError> {
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        if path.len() > MAX_API_PATH_LEN {
            return Err(ApiPathError::TooLong { len: path.len() });
        }
        if path == "/v2" || path == "/v2/" {
            return Ok(ApiPath::Base);
        }
        let rest = path.strip_prefix("/v2/").ok_or(ApiPathError::NotV2)?;
        if rest == "_catalog" {
            return Ok(ApiPath::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Ok(ApiPath::Tags {
                name: name_of(name)?,
            });
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Ok(ApiPath::UploadStart {
                name: name_of(name)?,
            });
        }
        let (before, last) = rest.rsplit_once('/').ok_or(ApiPathError::UnknownEndpoint)?;
        let (name, kind) = before
            .rsplit_once('/')
            .ok_or(ApiPathError::UnknownEndpoint)?;
        match kind {
            "uploads" => {
                let name = name
                    .strip_suffix("/blobs")
                    .ok_or(ApiPathError::UnknownEndpoint)?;
                Ok(ApiPath::Upload {
                    name: name_of(name)?,
                    id: upload_id(last)?,
                })
            }
            "blobs" => Ok(ApiPath::Blob {
                name: name_of(name)?,
                digest: Digest::parse(last)?,
            }),
            "manifests" => Ok(ApiPath::Manifest {
                name: name_of(name)?,
                reference: Reference::parse(last)?,
            }),
            "referrers" => Ok(ApiPath::Referrers {
                name: name_of(name)?,
                digest: Digest::parse(last)?,
            }),
            _ => Err(ApiPathError::UnknownEndpoint),
        }
    }

    /// The repository the request is about, if any.
    pub fn name(&self) -> Option<&RepositoryName> {
        match self {
            ApiPath::Base | ApiPath::Catalog => None,
            ApiPath::Tags { name }
            | ApiPath::Manifest { name, .. }
            | ApiPath::Blob { name, .. }
            | ApiPath::UploadStart { name }
            | ApiPath::Upload { name, .. }
            | ApiPath::Referrers { name, .. } => Some(name),
        }
    }
}

fn name_of(s: &str) -> Result<RepositoryName, ApiPathError> {
    Ok(RepositoryName::parse(s)?)
}

fn upload_id(s: &str) -> Result<String, ApiPathError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_UPLOAD_ID_LEN
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'=' | b'+' | b'-')
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ApiPathError::UploadId)
    }
}

impl fmt::Display for ApiPath {
    /// The canonical path, without a query string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiPath::Base => f.write_str("/v2/"),
            ApiPath::Catalog => f.write_str("/v2/_catalog"),
            ApiPath::Tags { name } => write!(f, "/v2/{name}/tags/list"),
            ApiPath::Manifest { name, reference } => write!(f, "/v2/{name}/manifests/{reference}"),
            ApiPath::Blob { name, digest } => write!(f, "/v2/{name}/blobs/{digest}"),
            ApiPath::UploadStart { name } => write!(f, "/v2/{name}/blobs/uploads/"),
            ApiPath::Upload { name, id } => write!(f, "/v2/{name}/blobs/uploads/{id}"),
            ApiPath::Referrers { name, digest } => write!(f, "/v2/{name}/referrers/{digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::name::tests::{name_strategy, tag_strategy};
    use proptest::prelude::*;

    fn digest() -> Digest {
        Digest::sha256_of(b"x")
    }

    fn name(s: &str) -> RepositoryName {
        RepositoryName::parse(s).unwrap()
    }

    #[test]
    fn routes_spec_endpoints() {
        let d = digest();
        let cases = [
            ("/v2/", ApiPath::Base),
            ("/v2", ApiPath::Base),
            ("/v2/_catalog?n=10", ApiPath::Catalog),
            (
                "/v2/library/ubuntu/tags/list?n=5&last=a",
                ApiPath::Tags {
                    name: name("library/ubuntu"),
                },
            ),
            (
                "/v2/library/ubuntu/manifests/latest",
                ApiPath::Manifest {
                    name: name("library/ubuntu"),
                    reference: Reference::parse("latest").unwrap(),
                },
            ),
            (
                &format!("/v2/a/b/c/blobs/{d}"),
                ApiPath::Blob {
                    name: name("a/b/c"),
                    digest: d.clone(),
                },
            ),
            (
                "/v2/a/blobs/uploads/?digest=x",
                ApiPath::UploadStart { name: name("a") },
            ),
            (
                "/v2/a/blobs/uploads",
                ApiPath::UploadStart { name: name("a") },
            ),
            (
                "/v2/a/blobs/uploads/4f2b-9c_d.e=?_state=zz",
                ApiPath::Upload {
                    name: name("a"),
                    id: "4f2b-9c_d.e=".into(),
                },
            ),
            (
                &format!("/v2/a/referrers/{d}?artifactType=x"),
                ApiPath::Referrers {
                    name: name("a"),
                    digest: d.clone(),
                },
            ),
        ];
        for (path, want) in cases {
            assert_eq!(ApiPath::parse(path), Ok(want), "{path}");
        }
    }

    #[test]
    fn names_that_look_like_endpoints_parse_from_the_right() {
        let d = digest();
        assert_eq!(
            ApiPath::parse(&format!("/v2/x/blobs/manifests/blobs/{d}")),
            Ok(ApiPath::Blob {
                name: name("x/blobs/manifests"),
                digest: d
            })
        );
        assert_eq!(
            ApiPath::parse("/v2/tags/list/tags/list"),
            Ok(ApiPath::Tags {
                name: name("tags/list")
            })
        );
        assert_eq!(
            ApiPath::parse("/v2/blobs/uploads/blobs/uploads/id"),
            Ok(ApiPath::Upload {
                name: name("blobs/uploads"),
                id: "id".into()
            })
        );
    }

    #[test]
    fn rejects_hostile_paths() {
        use ApiPathError as E;
        let d = digest();
        assert_eq!(ApiPath::parse("/v1/"), Err(E::NotV2));
        assert_eq!(ApiPath::parse("v2/"), Err(E::NotV2));
        assert_eq!(ApiPath::parse("/v2/a"), Err(E::UnknownEndpoint));
        assert_eq!(ApiPath::parse("/v2/a/things/x"), Err(E::UnknownEndpoint));
        assert!(matches!(
            ApiPath::parse(&format!("/v2/../blobs/{d}")),
            Err(E::Name(_))
        ));
        assert!(matches!(
            ApiPath::parse(&format!("/v2//a/blobs/{d}")),
            Err(E::Name(_))
        ));
        assert!(matches!(
            ApiPath::parse(&format!("/v2/a%2Fb/blobs/{d}")),
            Err(E::Name(_))
        ));
        assert!(matches!(
            ApiPath::parse("/v2/a/blobs/sha256:..%2f"),
            Err(E::Digest(_))
        ));
        assert!(matches!(
            ApiPath::parse("/v2/a/manifests/.x"),
            Err(E::Reference(_))
        ));
        assert_eq!(
            ApiPath::parse("/v2/a/blobs/uploads/%2e%2e"),
            Err(E::UploadId)
        );
        assert_eq!(
            ApiPath::parse("/v2/a/blobs/uploads/a/b"),
            Err(E::UnknownEndpoint)
        );
        let long = format!("/v2/{}", "a/".repeat(2000));
        assert!(matches!(ApiPath::parse(&long), Err(E::TooLong { .. })));
    }

    fn api_path_strategy() -> impl Strategy<Value = ApiPath> {
        let n = name_strategy().prop_filter("length", |n| n.len() <= 255);
        let d = any::<u64>().prop_map(|s| Digest::sha256_of(&s.to_le_bytes()));
        prop_oneof![
            Just(ApiPath::Base),
            Just(ApiPath::Catalog),
            n.clone().prop_map(|n| ApiPath::Tags { name: name(&n) }),
            (n.clone(), tag_strategy()).prop_map(|(n, t)| ApiPath::Manifest {
                name: name(&n),
                reference: Reference::parse(&t).unwrap()
            }),
            (n.clone(), d.clone()).prop_map(|(n, d)| ApiPath::Manifest {
                name: name(&n),
                reference: Reference::Digest(d)
            }),
            (n.clone(), d.clone()).prop_map(|(n, digest)| ApiPath::Blob {
                name: name(&n),
                digest
            }),
            n.clone()
                .prop_map(|n| ApiPath::UploadStart { name: name(&n) }),
            (n.clone(), "[A-Za-z0-9._~=+-]{1,40}")
                .prop_map(|(n, id)| ApiPath::Upload { name: name(&n), id }),
            (n, d).prop_map(|(n, digest)| ApiPath::Referrers {
                name: name(&n),
                digest
            }),
        ]
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(p in api_path_strategy()) {
            prop_assert_eq!(ApiPath::parse(&p.to_string()), Ok(p));
        }

        #[test]
        fn parse_never_panics(s in "/v2/[a-z/._:-]{0,60}") {
            if let Ok(p) = ApiPath::parse(&s) {
                prop_assert_eq!(ApiPath::parse(&p.to_string()), Ok(p));
            }
        }
    }
}
