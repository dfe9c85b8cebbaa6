//! In-memory answers worth keeping for a little while: bearer tokens, and
//! whether a credential may read a blob.
//!
//! Both caches are sans-IO (the caller passes the time), bounded in
//! entries, and live only in memory: tokens and access answers are never
//! written anywhere. Keys use [`CredentialId`], never the credential.
//!
//! When a cache is full, expired entries go first; if none has expired,
//! the entry closest to its expiry goes, which is the one least worth
//! keeping.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use bay_wire::oci::Digest;

use super::credentials::CredentialId;

/// Most tokens kept at once.
pub const MAX_TOKENS: usize = 4096;

/// Most access answers kept at once.
pub const MAX_ACCESS_ANSWERS: usize = 65_536;

/// A token is dropped this long before its expiry, at most, so that a
/// request never carries a token that expires on its way.
pub const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(30);

/// A bounded map whose entries expire.
struct Expiring<K, V> {
    entries: HashMap<K, (V, Instant)>,
    max: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Expiring<K, V> {
    fn new(max: usize) -> Self {
        Expiring {
            entries: HashMap::new(),
            max: max.max(1),
        }
    }

    fn get(&mut self, key: &K, now: Instant) -> Option<V> {
        match self.entries.get(key) {
            Some((value, until)) if now < *until => Some(value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: K, value: V, until: Instant, now: Instant) {
        if until <= now {
            return;
        }
        if self.entries.len() >= self.max && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, u)| *u > now);
            if self.entries.len() >= self.max {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (value, until));
    }

    fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What a token is for: one registry, one scope, one credential.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TokenKey {
    /// The registry as configured (`host[:port]`).
    pub registry: String,
    /// The scope asked for, such as `repository:library/alpine:pull`.
    pub scope: String,
    /// Whose token it is.
    pub credential: CredentialId,
}

/// A bearer token. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps a token string (already checked to be header-safe).
    pub fn new(token: impl Into<String>) -> BearerToken {
        BearerToken(token.into())
    }

    /// `Bearer <token>`.
    pub fn header_value(&self) -> Vec<u8> {
        format!("Bearer {}", self.0).into_bytes()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Bearer tokens by registry, scope and credential, each until shortly
/// before it expires.
pub struct TokenCache {
    map: Expiring<TokenKey, BearerToken>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("tokens", &self.map.len())
            .finish()
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(MAX_TOKENS)
    }
}

impl TokenCache {
    /// A cache of at most `max` tokens.
    pub fn new(max: usize) -> TokenCache {
        TokenCache {
            map: Expiring::new(max),
        }
    }

    /// The token for `key`, if one is still good at `now`.
    pub fn get(&mut self, key: &TokenKey, now: Instant) -> Option<BearerToken> {
        self.map.get(key, now)
    }

    /// Keeps `token`, issued at about `now` for `lifetime`, until
    /// [`usable_for`] of that lifetime has passed.
    pub fn insert(&mut self, key: TokenKey, token: BearerToken, lifetime: Duration, now: Instant) {
        self.map.insert(key, token, now + usable_for(lifetime), now);
    }

    /// Forgets the token for `key` (the registry refused it).
    pub fn remove(&mut self, key: &TokenKey) {
        self.map.remove(key);
    }

    /// Tokens held (some may have expired).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
}

/// How long a token with `lifetime` is used: the lifetime less a margin of
/// [`TOKEN_EXPIRY_MARGIN`] or half the lifetime, whichever is less.
pub fn usable_for(lifetime: Duration) -> Duration {
    lifetime - TOKEN_EXPIRY_MARGIN.min(lifetime / 2)
}

/// Whose access to which blob an answer is about.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AccessKey {
    /// The registry as configured.
    pub registry: String,
    /// The repository.
    pub repository: String,
    /// The blob.
    pub digest: Digest,
    /// Whose access.
    pub credential: CredentialId,
}

/// Yes/no answers to "may this credential read this blob", each kept for a
/// fixed time.
pub struct AccessCache {
    map: Expiring<AccessKey, bool>,
    ttl: Duration,
}

impl fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessCache")
            .field("answers", &self.map.len())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl AccessCache {
    /// A cache keeping each answer for `ttl`, at most `max` answers.
    pub fn new(ttl: Duration, max: usize) -> AccessCache {
        AccessCache {
            map: Expiring::new(max),
            ttl,
        }
    }

    /// The answer for `key`, if one is fresh at `now`.
    pub fn get(&mut self, key: &AccessKey, now: Instant) -> Option<bool> {
        self.map.get(key, now)
    }

    /// Keeps an answer from `now` for the cache's time to live.
    pub fn insert(&mut self, key: AccessKey, allowed: bool, now: Instant) {
        self.map.insert(key, allowed, now + self.ttl, now);
    }

    /// Answers held (some may have expired).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no answer is held.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Auth;

    fn key(scope: &str, auth: &Auth) -> TokenKey {
        TokenKey {
            registry: "reg:5000".into(),
            scope: scope.into(),
            credential: auth.id(),
        }
    }

    #[test]
    fn token_used_until_margin_before_expiry() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        let k = key("repository:a:pull", &Auth::basic("u", "p"));
        c.insert(
            k.clone(),
            BearerToken::new("t"),
            Duration::from_secs(300),
            t0,
        );
        assert!(c.get(&k, t0 + Duration::from_secs(269)).is_some());
        assert!(c.get(&k, t0 + Duration::from_secs(270)).is_none());
        assert!(c.is_empty(), "expired entry removed on read");
        // Short lifetimes keep half.
        c.insert(
            k.clone(),
            BearerToken::new("t"),
            Duration::from_secs(10),
            t0,
        );
        assert!(c.get(&k, t0 + Duration::from_millis(4999)).is_some());
        assert!(c.get(&k, t0 + Duration::from_secs(5)).is_none());
        // A zero lifetime is never kept.
        c.insert(k.clone(), BearerToken::new("t"), Duration::ZERO, t0);
        assert!(c.is_empty());
    }

    #[test]
    fn tokens_are_per_scope_and_credential() {
        let mut c = TokenCache::default();
        let t0 = Instant::now();
        let a = Auth::basic("u", "p");
        let k = key("repository:a:pull", &a);
        c.insert(
            k.clone(),
            BearerToken::new("t"),
            Duration::from_secs(60),
            t0,
        );
        assert!(c.get(&key("repository:b:pull", &a), t0).is_none());
        assert!(c
            .get(&key("repository:a:pull", &Auth::basic("u", "q")), t0)
            .is_none());
        assert!(c
            .get(&key("repository:a:pull", &Auth::Anonymous), t0)
            .is_none());
        assert_eq!(c.get(&k, t0), Some(BearerToken::new("t")));
        c.remove(&k);
        assert!(c.get(&k, t0).is_none());
    }

    #[test]
    fn full_cache_drops_expired_then_soonest() {
        let mut c = TokenCache::new(2);
        let t0 = Instant::now();
        let auth = Auth::Anonymous;
        c.insert(
            key("a", &auth),
            BearerToken::new("a"),
            Duration::from_secs(100),
            t0,
        );
        c.insert(
            key("b", &auth),
            BearerToken::new("b"),
            Duration::from_secs(400),
            t0,
        );
        c.insert(
            key("c", &auth),
            BearerToken::new("c"),
            Duration::from_secs(400),
            t0,
        );
        assert_eq!(c.len(), 2);
        assert!(c.get(&key("a", &auth), t0).is_none());
        assert!(c.get(&key("b", &auth), t0).is_some());
        assert!(c.get(&key("c", &auth), t0).is_some());
    }

    #[test]
    fn access_answers_expire() {
        let mut c = AccessCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        let k = AccessKey {
            registry: "r".into(),
            repository: "a/b".into(),
            digest: Digest::sha256_of(b"x"),
            credential: Auth::Anonymous.id(),
        };
        c.insert(k.clone(), false, t0);
        assert_eq!(c.get(&k, t0 + Duration::from_secs(59)), Some(false));
        assert_eq!(c.get(&k, t0 + Duration::from_secs(60)), None);
        let other = AccessKey {
            credential: Auth::basic("u", "p").id(),
            ..k.clone()
        };
        c.insert(k.clone(), true, t0);
        assert_eq!(c.get(&other, t0), None);
    }
}
