//! The trackers a proxy knows: their base URLs as the operator gave them,
//! the order in which to ask them about a blob, and the HTTP client that
//! reaches them.

use std::sync::{Arc, Mutex};

use bay_core::fleet::{maybe_sign, Signer};
use bay_httpd::client::{self, Client, ClientConfig, PlainHttp, Scheme, Url};
use bay_wire::origin::rendezvous_score;

/// A tracker URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tracker {url:?} is not an http:// or https:// URL")]
pub struct BadTrackerUrl {
    pub url: String,
}

/// The configured trackers.
#[derive(Debug, Clone)]
pub struct Trackers {
    /// As configured, without a trailing `/`: the names rendezvous hashing
    /// scores, so every proxy must write them alike.
    names: Vec<String>,
    bases: Vec<Url>,
    /// Signs every request in keyed mode.
    signer: Option<Signer>,
    /// Clients' credentials may go to plain-HTTP trackers on other hosts.
    plain_credentials: bool,
    /// How each tracker answered lately, for the status page.
    health: Arc<Vec<Mutex<Health>>>,
}

/// A tracker's last answer.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// When it last answered as asked.
    pub ok_at: Option<std::time::Instant>,
    /// When it last failed, and how.
    pub failed: Option<(std::time::Instant, String)>,
}

impl Trackers {
    /// Reads `--tracker` values (`http://host:port`, optionally with a path
    /// prefix).
    pub fn parse(list: &[String]) -> Result<Trackers, BadTrackerUrl> {
        let mut names = Vec::new();
        let mut bases = Vec::new();
        for raw in list {
            let name = raw.trim_end_matches('/').to_string();
            let base = Url::parse(&name).map_err(|_| BadTrackerUrl { url: raw.clone() })?;
            names.push(name);
            bases.push(base);
        }
        Ok(Trackers {
            names,
            signer: None,
            plain_credentials: false,
            health: Arc::new(
                bases
                    .iter()
                    .map(|_| Mutex::new(Health::default()))
                    .collect(),
            ),
            bases,
        })
    }

    /// Records that `tracker` answered as asked.
    pub fn answered(&self, tracker: usize) {
        if let Some(h) = self.health.get(tracker) {
            h.lock().unwrap_or_else(|p| p.into_inner()).ok_at = Some(std::time::Instant::now());
        }
    }

    /// Records that `tracker` failed, and why.
    pub fn failed(&self, tracker: usize, why: &str) {
        if let Some(h) = self.health.get(tracker) {
            h.lock().unwrap_or_else(|p| p.into_inner()).failed =
                Some((std::time::Instant::now(), why.to_owned()));
        }
    }

    /// Each tracker's name and last answers.
    pub fn health(&self) -> Vec<(String, Health)> {
        self.names
            .iter()
            .zip(self.health.iter())
            .map(|(n, h)| {
                (
                    n.clone(),
                    h.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                )
            })
            .collect()
    }

    /// Lets clients' credentials go to plain-HTTP trackers on other hosts.
    #[must_use]
    pub fn credentials_over_plain_http(mut self, allowed: bool) -> Trackers {
        self.plain_credentials = allowed;
        self
    }

    /// Whether clients' registry credentials may be sent to `tracker`:
    /// over https, to loopback, or where the operator allowed plain HTTP.
    pub fn may_carry_credentials(&self, tracker: usize) -> bool {
        let Some(base) = self.bases.get(tracker) else {
            return false;
        };
        let loopback = base.host() == "localhost"
            || base
                .host()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        base.scheme() == Scheme::Https || loopback || self.plain_credentials
    }

    /// Signs every request with the fleet key (keyed mode).
    #[must_use]
    pub fn signed_by(mut self, signer: Option<Signer>) -> Trackers {
        self.signer = signer;
        self
    }

    /// The signer, in keyed mode.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// A `method` request for `path_and_query` on tracker `tracker`,
    /// carrying `body`, signed in keyed mode.
    pub fn request(
        &self,
        method: &str,
        tracker: usize,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Option<client::Request> {
        let url = self.url(tracker, path_and_query)?;
        let target = url.target().to_owned();
        let mut req = client::Request::new(method.to_owned(), url);
        if !body.is_empty() {
            req = req.body(client::Body::Bytes(body.clone().into()));
        }
        Some(maybe_sign(
            self.signer.as_ref(),
            req,
            method,
            &target,
            &body,
        ))
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The tracker's URL as configured.
    pub fn name(&self, tracker: usize) -> &str {
        self.names.get(tracker).map_or("", String::as_str)
    }

    /// Tracker indices in the order to ask them about `digest`.
    pub fn order_for(&self, digest: &str) -> Vec<usize> {
        let mut scored: Vec<([u8; 32], usize)> = self
            .names
            .iter()
            .enumerate()
            .map(|(i, t)| (rendezvous_score(t, digest), i))
            .collect();
        scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
        scored.into_iter().map(|(_, i)| i).collect()
    }

    /// `path_and_query` (starting with `/`) on tracker `tracker`, after
    /// its path prefix; the host and port come from the configuration
    /// only.
    pub fn url(&self, tracker: usize, path_and_query: &str) -> Option<Url> {
        let base = self.bases.get(tracker)?;
        let prefix = base.path().trim_end_matches('/');
        Url::on_origin(base.origin().clone(), &format!("{prefix}{path_and_query}")).ok()
    }

    /// An HTTP client for the trackers: plain HTTP is allowed to exactly
    /// the trackers configured as `http://`, the operator's explicit
    /// choice.
    pub fn client(&self, tls: Arc<rustls::ClientConfig>) -> Client {
        let plain = self
            .bases
            .iter()
            .filter(|u| u.scheme() == Scheme::Http)
            .map(|u| u.origin().authority())
            .collect();
        Client::with_tls(
            ClientConfig {
                plain_http: PlainHttp::Origins(plain),
                ..ClientConfig::default()
            },
            tls,
        )
    }
}

/// `trackers` in the order to ask them about `digest`: highest rendezvous
/// score first, so every proxy picks the same owner, and the same next one
/// when the owner is down.
pub fn rendezvous_order(trackers: &[String], digest: &str) -> Vec<String> {
    let mut scored: Vec<([u8; 32], &String)> = trackers
        .iter()
        .map(|t| (rendezvous_score(t, digest), t))
        .collect();
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    scored.into_iter().map(|(_, t)| t.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matches_rendezvous_and_urls_keep_their_origin() {
        let list: Vec<String> = ["http://a.test:1", "http://b.test:2/", "https://c.test/pre"]
            .map(String::from)
            .to_vec();
        let t = Trackers::parse(&list).unwrap();
        let digest = "sha256:00";
        let by_index: Vec<String> = t
            .order_for(digest)
            .into_iter()
            .map(|i| t.name(i).to_string())
            .collect();
        let names: Vec<String> = list
            .iter()
            .map(|s| s.trim_end_matches('/').into())
            .collect();
        assert_eq!(by_index, rendezvous_order(&names, digest));
        let u = t.url(2, "/origin/v1/blobs?x=1").unwrap();
        assert_eq!(u.to_string(), "https://c.test/pre/origin/v1/blobs?x=1");
        assert_eq!(t.url(0, "//evil.test/x").unwrap().host(), "a.test");
        assert!(Trackers::parse(&["ftp://x".into()]).is_err());
    }
}
