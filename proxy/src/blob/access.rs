//! May this client read this cached blob? The registry decides, with this
//! client's credentials (a HEAD, its answer cached briefly by the registry
//! client). When the registry cannot be reached, a client granted the same
//! blob within [`OUTAGE_GRACE`] still gets it: a registry outage must not
//! stop a fleet from starting what it has.
//!
//! The table of grants is bounded: entries expire after [`OUTAGE_GRACE`]
//! and at most [`MAX_GRANTS`] are kept, the oldest going first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bay_core::registry::{Auth, CredentialId, RegistryClient};
use bay_httpd::client::{self, Client, Url};
use bay_wire::oci::{Digest, RepositoryName};

/// How long a grant still counts while the registry is down.
pub const OUTAGE_GRACE: Duration = Duration::from_secs(3600);
/// Most grants remembered.
pub const MAX_GRANTS: usize = 65_536;

/// The registry's word on a client reading a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Granted,
    /// The registry refused: its own answer is what the client should see.
    Refused,
    /// The registry could not be asked, and no recent grant stands in.
    Unknown(String),
}

type GrantKey = (String, Digest, CredentialId);

/// Recent grants, by (registry, blob, credential).
#[derive(Debug, Default)]
pub struct Grants {
    table: Mutex<HashMap<GrantKey, Instant>>,
}

impl Grants {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<GrantKey, Instant>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The registry let `auth` read `digest` of `registry` at `now`.
    pub fn record(&self, registry: &str, digest: &Digest, auth: &Auth, now: Instant) {
        let mut table = self.table();
        if table.len() >= MAX_GRANTS {
            table.retain(|_, at| now.saturating_duration_since(*at) < OUTAGE_GRACE);
        }
        if table.len() >= MAX_GRANTS {
            if let Some(oldest) = table
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
            {
                table.remove(&oldest);
            }
        }
        table.insert((registry.to_owned(), digest.clone(), auth.id()), now);
    }

    /// Whether a grant to `auth` for `digest` still stands at `now`.
    pub fn stands(&self, registry: &str, digest: &Digest, auth: &Auth, now: Instant) -> bool {
        let key = (registry.to_owned(), digest.clone(), auth.id());
        self.table()
            .get(&key)
            .is_some_and(|at| now.saturating_duration_since(*at) < OUTAGE_GRACE)
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the access check needs about the request.
#[derive(Debug)]
pub struct AccessAsk<'a> {
    pub registry_name: &'a str,
    pub registry: &'a RegistryClient,
    pub repo: &'a RepositoryName,
    pub digest: &'a Digest,
    /// The blob's URL on the registry, for the anonymous HEAD.
    pub url: &'a Url,
    pub auth: &'a Auth,
}

/// Asks the registry whether this client may read the blob.
pub async fn check(http: &Client, grants: &Grants, ask: &AccessAsk<'_>) -> Access {
    let checked = match ask.auth {
        // A client that sent no credentials is judged by the registry's
        // answer to exactly that. Fetching an anonymous token on its
        // behalf would decide for a client that has not done the token
        // dance itself, and fails outright where the realm is one only
        // the client may reach.
        Auth::Anonymous => bare_head(http, ask.url).await,
        _ => match ask
            .registry
            .check_access(ask.repo, ask.digest, ask.auth)
            .await
        {
            Ok(answer) => Ok(answer),
            Err(e) if e.is_refusal() => Ok(false),
            Err(e) => Err(e.to_string()),
        },
    };
    let now = Instant::now();
    match checked {
        Ok(true) => {
            grants.record(ask.registry_name, ask.digest, ask.auth, now);
            Access::Granted
        }
        Ok(false) => Access::Refused,
        Err(e) if grants.stands(ask.registry_name, ask.digest, ask.auth, now) => {
            tracing::warn!(digest = %ask.digest, error = %e, "registry unreachable: serving a cached blob to a client granted access earlier");
            Access::Granted
        }
        Err(e) => Access::Unknown(e),
    }
}

/// A HEAD of the blob without credentials: `Ok(true)` when the registry
/// lets anyone read it, `Ok(false)` when it refuses.
async fn bare_head(http: &Client, url: &Url) -> Result<bool, String> {
    match http.send(client::Request::head(url.clone())).await {
        Ok(r) if (200..300).contains(&r.status()) => Ok(true),
        Ok(r) if matches!(r.status(), 401 | 403 | 404) => Ok(false),
        Ok(r) => Err(format!("registry answered {} to a blob HEAD", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_expire_and_stay_bounded() {
        let g = Grants::default();
        let t = Instant::now();
        let d = Digest::sha256_of(b"x");
        let alice = Auth::basic("alice", "pw");
        g.record("reg", &d, &alice, t);
        assert!(g.stands("reg", &d, &alice, t + Duration::from_secs(60)));
        assert!(!g.stands("reg", &d, &Auth::basic("bob", "pw"), t));
        assert!(!g.stands("other", &d, &alice, t));
        assert!(!g.stands("reg", &d, &alice, t + OUTAGE_GRACE));
        for i in 0..MAX_GRANTS as u32 + 10 {
            g.record("reg", &Digest::sha256_of(&i.to_be_bytes()), &alice, t);
        }
        assert_eq!(g.len(), MAX_GRANTS);
    }
}
