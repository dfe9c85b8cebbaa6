//! The upstream registry client bay-proxy and bay-tracker share: blob and
//! manifest reads against one registry, with its auth dance, redirects and
//! streamed bodies.
//!
//! ```text
//! Registries (once per program: TLS roots, token cache, access cache; Send + Sync)
//!   └─ http_client()   one bay_httpd client (connection pool) per worker thread
//!   └─ client(name, &http) ─▶ RegistryClient (one registry, this thread)
//!        head_blob / get_blob / fetch_blob_verified / check_access
//!        head_manifest / get_manifest
//! ```
//!
//! Decisions:
//! * Credentials come in two shapes ([`Auth`]). A relayed client header is
//!   sent verbatim and a 401 is returned to the caller with the registry's
//!   challenge, to pass back. Basic credentials (or none) make this client
//!   do the dance itself: on a 401 with a Bearer challenge it asks the realm
//!   for a token for `repository:<name>:pull` (with Basic credentials when
//!   it has them) and retries with it; on a Basic challenge it retries with
//!   Basic. Tokens are kept in memory per (registry, scope, credential)
//!   until shortly before they expire; the challenge a registry sent is
//!   remembered so later requests fetch their token before asking.
//! * Redirects are followed by the HTTP client, which drops
//!   `Authorization` whenever the origin changes: registries send blob
//!   reads to object stores and CDNs, which must never see the registry's
//!   credentials.
//! * Bodies are never loaded whole, except manifests and token answers
//!   (bounded). An error page is never a blob: a blob read that is not 200
//!   or 206 is an error carrying the status, and [`RegistryClient::fetch_blob_verified`]
//!   checks the digest as bytes stream into the caller's sink.
//! * [`RegistryClient::check_access`] asks the registry (HEAD with the
//!   caller's credentials) whether a credential may read a blob, and keeps
//!   the answer for [`RegistryConfig::access_ttl`]; bay-proxy asks before
//!   it serves a cached blob.
//! * Nothing here logs a credential or a token, and every type holding one
//!   has a `Debug` that hides it.
//!
//! Layout:
//! - [`config`]: [`RegistryConfig`], [`Upstream`] (name to URL, http or https).
//! - [`credentials`]: [`Auth`] and the credential identity used in caches.
//! - [`cache`]: token and access-answer caches (sans-IO, bounded).
//! - [`range`]: `Range` requests and `Content-Range` answers.
//! - [`client`]: [`RegistryClient`] and its operations.
//! - [`fetch`]: [`BlobSink`] and the digest-checked fetch.
//! - [`error`]: [`RegistryError`], and whether to fall back.

pub mod cache;
pub mod client;
pub mod config;
pub mod credentials;
pub mod error;
pub mod fetch;
pub mod range;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bay_httpd::client::Client;
use bay_wire::oci::BearerChallenge;

pub use cache::{AccessCache, BearerToken, TokenCache};
pub use client::{BlobHead, BlobResponse, ManifestHead, ManifestResponse, RegistryClient};
pub use config::{RegistryConfig, Timeouts, Upstream};
pub use credentials::{Auth, AuthorizationValue, BasicCredentials, CredentialId};
pub use error::{ChallengeProblem, RegistryError};
pub use fetch::BlobSink;
pub use range::{ByteRange, ContentRange, ContentRangeError};

/// What every registry client of a program shares: settings, TLS roots and
/// the caches. Cheap to clone, `Send` and `Sync`.
#[derive(Clone)]
pub struct Registries {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) config: RegistryConfig,
    tls: Arc<rustls::ClientConfig>,
    pub(crate) tokens: Mutex<TokenCache>,
    pub(crate) access: Mutex<AccessCache>,
    /// The scheme each registry last challenged with, by registry name.
    pub(crate) learned: Mutex<HashMap<String, Learned>>,
}

/// How a registry wants to be authenticated, as its last challenge said.
#[derive(Clone, Debug)]
pub(crate) enum Learned {
    Basic,
    Bearer(BearerChallenge),
}

impl fmt::Debug for Registries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        f.debug_struct("Registries")
            .field("config", &s.config)
            .field("tokens", &*lock(&s.tokens))
            .field("access", &*lock(&s.access))
            .finish()
    }
}

impl Registries {
    /// Loads the TLS roots (system and `config.extra_ca_file`) and sets up
    /// empty caches.
    pub fn new(config: RegistryConfig) -> Result<Registries, RegistryError> {
        let tls = bay_httpd::client::tls::client_config(config.extra_ca_file.as_deref())?;
        let access = AccessCache::new(config.access_ttl, cache::MAX_ACCESS_ANSWERS);
        Ok(Registries {
            shared: Arc::new(Shared {
                config,
                tls,
                tokens: Mutex::new(TokenCache::default()),
                access: Mutex::new(access),
                learned: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.shared.config
    }

    /// A new HTTP client (and connection pool) for the calling thread; make
    /// one per worker and hand it to [`Registries::client`].
    pub fn http_client(&self) -> Client {
        Client::with_tls(self.shared.config.http_config(), self.shared.tls.clone())
    }

    /// Where the registry `name` (`host[:port]`) is, and by which scheme.
    pub fn upstream(&self, name: &str) -> Result<Upstream, RegistryError> {
        Upstream::new(name, &self.shared.config)
    }

    /// A client for the registry `name` (`host[:port]`) over `http`.
    pub fn client(&self, name: &str, http: &Client) -> Result<RegistryClient, RegistryError> {
        let upstream = Upstream::new(name, &self.shared.config)?;
        Ok(RegistryClient::from_parts(
            upstream,
            http.clone(),
            self.shared.clone(),
        ))
    }

    /// Tokens currently cached (for metrics and tests).
    pub fn cached_tokens(&self) -> usize {
        lock(&self.shared.tokens).len()
    }
}

/// Locks a cache; a panic elsewhere while it was held leaves nothing
/// half-written that matters (each update is one map operation).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::cache::{AccessKey, TokenKey};
    use super::*;

    /// Every type that holds a credential or token, formatted with `{:?}`
    /// (and `{:#?}`), shows none of it.
    #[test]
    fn debug_never_shows_secrets() {
        let (password, token, header) = ("pw-7f3a", "tok-9c1e", "Bearer hdr-55d2");
        let basic = Auth::basic("user-x1", password);
        let relayed = Auth::from_header(Some(header.as_bytes()));
        let registries = Registries::new(RegistryConfig::default()).unwrap();
        let now = Instant::now();
        let key = TokenKey {
            registry: "r".into(),
            scope: "repository:a:pull".into(),
            credential: basic.id(),
        };
        lock(&registries.shared.tokens).insert(
            key.clone(),
            BearerToken::new(token),
            Duration::from_secs(60),
            now,
        );
        let access_key = AccessKey {
            registry: "r".into(),
            repository: "a".into(),
            digest: bay_wire::oci::Digest::sha256_of(b"x"),
            credential: relayed.id(),
        };
        lock(&registries.shared.access).insert(access_key.clone(), true, now);
        let error = RegistryError::Unauthorized {
            registry: "r".into(),
            what: "blob".into(),
            challenge: Some("Bearer realm=\"https://auth/token\"".into()),
        };
        let shown: Vec<String> = [
            format!("{basic:?}"),
            format!("{relayed:?}"),
            format!("{:?}", BasicCredentials::new("user-x1", password)),
            format!("{:?}", AuthorizationValue::new(header)),
            format!("{:?}", basic.id()),
            format!("{key:?}"),
            format!("{access_key:?}"),
            format!("{:?}", BearerToken::new(token)),
            format!("{:?}", lock(&registries.shared.tokens)),
            format!("{:?}", lock(&registries.shared.access)),
            format!("{registries:?}"),
            format!("{registries:#?}"),
            format!("{error:?}"),
        ]
        .into();
        for s in &shown {
            for secret in [password, token, "hdr-55d2", "user-x1"] {
                assert!(!s.contains(secret), "{secret} shown in {s}");
            }
        }
        assert_eq!(
            lock(&registries.shared.tokens).get(&key, now),
            Some(BearerToken::new(token))
        );
    }
}
