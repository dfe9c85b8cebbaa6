//! Credentials for an upstream registry, and what identifies them in a
//! cache without keeping them in it.
//!
//! Two callers bring credentials in two shapes. bay-proxy relays the
//! `Authorization` header its client sent, untouched: the client already
//! did whatever dance the registry asked for. The origin seeder and preheat
//! hold a user name and password (or nothing) and let this client do the
//! dance. Both are secrets: every type here has a `Debug` that hides them,
//! none has `Display`, and cache keys use a SHA-256 of the secret
//! ([`CredentialId`]) so a cache never holds the secret itself.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// How a request to the registry is authorised.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials: anonymous access, with an anonymous token when the
    /// registry asks for one (Docker Hub's public images).
    Anonymous,
    /// The caller's own `Authorization` value, sent verbatim and never
    /// exchanged for anything else (the proxy relaying its client).
    Passthrough(AuthorizationValue),
    /// A user name and password, sent to the token server (Bearer
    /// challenge) or to the registry itself (Basic challenge).
    Basic(BasicCredentials),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Passthrough(v) => f.debug_tuple("Passthrough").field(v).finish(),
            Auth::Basic(c) => f.debug_tuple("Basic").field(c).finish(),
        }
    }
}

impl Auth {
    /// A passthrough of a client's `Authorization` header value, or
    /// [`Auth::Anonymous`] when the client sent none.
    pub fn from_header(value: Option<&[u8]>) -> Auth {
        match value {
            Some(v) => Auth::Passthrough(AuthorizationValue::new(v.to_vec())),
            None => Auth::Anonymous,
        }
    }

    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Basic(BasicCredentials::new(username, password))
    }

    /// What identifies these credentials in caches.
    pub fn id(&self) -> CredentialId {
        let mut h = Sha256::new();
        match self {
            Auth::Anonymous => h.update(b"anonymous"),
            Auth::Passthrough(v) => {
                h.update(b"header\0");
                h.update(&v.0);
            }
            Auth::Basic(c) => {
                // Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
                h.update(b"basic\0");
                h.update((c.username.len() as u64).to_be_bytes());
                h.update(c.username.as_bytes());
                h.update(c.password.as_bytes());
            }
        }
        CredentialId(h.finalize().into())
    }
}

/// An `Authorization` header value relayed as it came.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationValue(Vec<u8>);

impl AuthorizationValue {
    /// Wraps a header value.
    pub fn new(value: impl Into<Vec<u8>>) -> AuthorizationValue {
        AuthorizationValue(value.into())
    }

    /// The value's bytes, to put in a request header.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The scheme word (`Basic`, `Bearer`, ...), which is not secret.
    pub fn scheme(&self) -> &str {
        let word = self.0.split(|&b| b == b' ').next().unwrap_or_default();
        std::str::from_utf8(word)
            .ok()
            .filter(|w| w.len() <= 16 && w.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or("?")
    }
}

impl fmt::Debug for AuthorizationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorizationValue({} <redacted>)", self.scheme())
    }
}

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    username: String,
    password: String,
}

impl BasicCredentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> BasicCredentials {
        BasicCredentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// `Basic <base64(user:password)>` (RFC 7617).
    pub fn header_value(&self) -> Vec<u8> {
        let joined = format!("{}:{}", self.username, self.password);
        let mut out = b"Basic ".to_vec();
        out.extend_from_slice(STANDARD.encode(joined.as_bytes()).as_bytes());
        out
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The user name is not a secret by itself, but together with a
        // registry it says whose pulls these are: keep it out as well.
        f.write_str("BasicCredentials(<redacted>)")
    }
}

/// SHA-256 of a credential: a cache key that holds no secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialId([u8; 32]);

impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An unsalted hash of a password can be searched for: not shown.
        f.write_str("CredentialId(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_value() {
        let c = BasicCredentials::new("Aladdin", "open sesame");
        assert_eq!(c.header_value(), b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn ids_differ_by_secret_and_shape() {
        let ids = [
            Auth::Anonymous.id(),
            Auth::basic("ab", "c").id(),
            Auth::basic("a", "bc").id(),
            Auth::basic("a", "bd").id(),
            Auth::from_header(Some(b"Basic YWI6Yw==")).id(),
        ];
        for (i, a) in ids.iter().enumerate() {
            for b in ids.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        assert_eq!(Auth::basic("a", "b").id(), Auth::basic("a", "b").id());
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = [
            format!("{:?}", Auth::basic("alice", "hunter2")),
            format!("{:?}", Auth::from_header(Some(b"Bearer tok.en.value"))),
            format!("{:?}", Auth::basic("alice", "hunter2").id()),
        ];
        for s in &shown {
            for secret in ["alice", "hunter2", "tok.en.value"] {
                assert!(!s.contains(secret), "{s}");
            }
        }
        assert!(shown[1].contains("Bearer"), "{}", shown[1]);
    }
}
