//! The registry client's error: which registry, what was being done, what
//! failed, and whether the caller should try another road.
//!
//! [`RegistryError::should_fall_back`] splits the variants in two. An
//! answer the registry gave on purpose (unauthorised, denied, not found,
//! a client error) is authoritative: relay it, do not look elsewhere. A
//! failure to get an answer at all (unreachable, TLS, timeout, 5xx, 429, a
//! broken or wrong body) says nothing about the blob: another source, a
//! retry, or the cache may serve.
//!
//! Messages never carry a credential, a token, or a URL query (object
//! store redirects put signatures there).

use std::io;

use bay_httpd::client::{Error as HttpError, TlsSetupError};
use bay_wire::oci::{AuthError, DigestMismatch, TokenError};

use super::range::ContentRangeError;

/// Everything the registry client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry name is not `host[:port]`.
    #[error("invalid registry name {name:?}: {reason}")]
    InvalidRegistry {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The TLS settings (extra CA file) could not be loaded.
    #[error("TLS set-up for registries failed: {0}")]
    TlsSetup(#[from] TlsSetupError),
    /// 401: the credentials were missing or refused. `challenge` is the
    /// registry's `WWW-Authenticate` value, to relay to a client.
    #[error("registry {registry} refused the credentials for {what} (401)")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The registry's challenge, if it sent one.
        challenge: Option<String>,
    },
    /// 403: authenticated, but not allowed.
    #[error("registry {registry} denied access to {what} (403)")]
    Denied {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
    },
    /// 404.
    #[error("registry {registry} has no {what} (404)")]
    NotFound {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
    },
    /// 416: the range asked for lies outside the blob.
    #[error("registry {registry} cannot satisfy the range asked of {what} (416)")]
    RangeNotSatisfiable {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
    },
    /// Any other status that is not the success expected.
    #[error("registry {registry} answered {status} for {what}")]
    Status {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The status code.
        status: u16,
    },
    /// The token server refused or failed.
    #[error("token server of {registry} answered {status} for {what}")]
    TokenServer {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The token server's status.
        status: u16,
    },
    /// The token server's answer was unusable.
    #[error("token server of {registry} sent an unusable answer for {what}: {source}")]
    Token {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// Why.
        source: TokenError,
    },
    /// The registry's `WWW-Authenticate` could not be used.
    #[error("registry {registry} sent an unusable challenge for {what}: {reason}")]
    Challenge {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// Why.
        reason: ChallengeProblem,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("registry {registry}: {source}")]
    Tls {
        /// The registry.
        registry: String,
        /// The HTTP client's error, naming the origin.
        source: Box<HttpError>,
    },
    /// A connect, response or body timeout expired.
    #[error("registry {registry}, {what}: {source}")]
    Timeout {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The HTTP client's error, naming the step.
        source: Box<HttpError>,
    },
    /// Redirects went on past the limit.
    #[error("registry {registry}, {what}: redirect loop: {source}")]
    RedirectLoop {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The HTTP client's error.
        source: Box<HttpError>,
    },
    /// Any other transport failure (refused connection, reset, bad head,
    /// truncated body, refused plain HTTP, bad redirect).
    #[error("registry {registry}, {what}: {source}")]
    Http {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The HTTP client's error.
        source: Box<HttpError>,
    },
    /// A header the answer depends on was malformed.
    #[error("registry {registry} sent a bad {header} for {what}")]
    BadHeader {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The header's name.
        header: &'static str,
    },
    /// A `Content-Range` that cannot be parsed.
    #[error("registry {registry} sent a bad Content-Range for {what}: {source}")]
    ContentRange {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// Why.
        source: ContentRangeError,
    },
    /// Content that does not hash to its digest.
    #[error("registry {registry} sent wrong content for {what}: {source}")]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// Expected and actual digests.
        source: DigestMismatch,
    },
    /// The caller's sink failed while a blob streamed into it.
    #[error("writing {what} from registry {registry}: {source}")]
    Sink {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The sink's error.
        source: io::Error,
    },
}

/// What was wrong with a registry's challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeProblem {
    /// `WWW-Authenticate` did not parse.
    #[error("{0}")]
    Syntax(#[from] AuthError),
    /// The Bearer realm is not an http(s) URL this client accepts.
    #[error("token realm is not a usable URL")]
    Realm,
}

impl RegistryError {
    /// Whether the registry failed to answer (unreachable, TLS, timeout,
    /// server error, throttling, broken or wrong content), so that another
    /// source or a retry may serve; `false` when the registry gave an
    /// authoritative answer (401, 403, 404, 416, other 4xx) or the caller
    /// is at fault.
    pub fn should_fall_back(&self) -> bool {
        match self {
            RegistryError::InvalidRegistry { .. }
            | RegistryError::TlsSetup(_)
            | RegistryError::Unauthorized { .. }
            | RegistryError::Denied { .. }
            | RegistryError::NotFound { .. }
            | RegistryError::RangeNotSatisfiable { .. }
            | RegistryError::Sink { .. } => false,
            RegistryError::Status { status, .. } | RegistryError::TokenServer { status, .. } => {
                *status >= 500 || *status == 429
            }
            RegistryError::Token { .. }
            | RegistryError::Challenge { .. }
            | RegistryError::Tls { .. }
            | RegistryError::Timeout { .. }
            | RegistryError::RedirectLoop { .. }
            | RegistryError::Http { .. }
            | RegistryError::BadHeader { .. }
            | RegistryError::ContentRange { .. }
            | RegistryError::DigestMismatch { .. } => true,
        }
    }

    /// The status the registry answered with, when the failure is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Unauthorized { .. } => Some(401),
            RegistryError::Denied { .. } => Some(403),
            RegistryError::NotFound { .. } => Some(404),
            RegistryError::RangeNotSatisfiable { .. } => Some(416),
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the answer means "this credential may not read it"
    /// (401, 403, 404: distribution answers 404 for a repository a token
    /// does not cover as well as for a missing blob).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RegistryError::Unauthorized { .. }
                | RegistryError::Denied { .. }
                | RegistryError::NotFound { .. }
        )
    }

    /// Classifies an HTTP client error.
    pub(crate) fn from_http(registry: &str, what: &str, source: HttpError) -> RegistryError {
        let registry = registry.to_owned();
        let what = what.to_owned();
        match source {
            source @ HttpError::Tls { .. } => RegistryError::Tls {
                registry,
                source: Box::new(source),
            },
            source if source.is_timeout() => RegistryError::Timeout {
                registry,
                what,
                source: Box::new(source),
            },
            source @ HttpError::TooManyRedirects { .. } => RegistryError::RedirectLoop {
                registry,
                what,
                source: Box::new(source),
            },
            source => RegistryError::Http {
                registry,
                what,
                source: Box::new(source),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authoritative_answers_do_not_fall_back() {
        let r = || "reg:5000".to_owned();
        let w = || "blob sha256:ab in a/b".to_owned();
        let e = RegistryError::NotFound {
            registry: r(),
            what: w(),
        };
        assert!(!e.should_fall_back());
        assert_eq!(
            e.to_string(),
            "registry reg:5000 has no blob sha256:ab in a/b (404)"
        );
        for (status, fall_back) in [
            (500, true),
            (503, true),
            (429, true),
            (400, false),
            (405, false),
        ] {
            let e = RegistryError::Status {
                registry: r(),
                what: w(),
                status,
            };
            assert_eq!(e.should_fall_back(), fall_back, "{status}");
            assert_eq!(e.status(), Some(status));
        }
    }
}
