//! Which registry a client talks to and how: the name's URL, plain HTTP
//! by the operator's leave only, the extra CA, timeouts, cache times.
//!
//! A registry is named as an image reference names it, `host[:port]`.
//! Docker Hub is named `docker.io` (or the older `index.docker.io`) but
//! serves its API from `registry-1.docker.io`. HTTPS is the default; plain
//! HTTP is used for exactly the hosts the operator lists, like docker's
//! `insecure-registries`, because credentials would otherwise cross the
//! network in clear.

use std::path::PathBuf;
use std::time::Duration;

use bay_httpd::client::{ClientConfig, PlainHttp, Url};
use bay_wire::oci::reference::{DOCKER_HUB, DOCKER_HUB_API_HOST};

use super::error::RegistryError;

/// Longest registry name accepted.
const MAX_REGISTRY_NAME_LEN: usize = 255;

/// How registries are reached.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `host[:port]` reached over plain HTTP instead of HTTPS (registries,
    /// and the token servers or object stores they send clients to). An
    /// entry without a port means port 80.
    pub insecure: Vec<String>,
    /// PEM file of CAs to trust besides the system's.
    pub extra_ca_file: Option<PathBuf>,
    /// Connect, response and body timeouts.
    pub timeouts: Timeouts,
    /// How long a `check_access` answer is kept.
    pub access_ttl: Duration,
    /// Most redirects followed for one request.
    pub max_redirects: usize,
    /// Idle keep-alive connections kept per origin.
    pub pool_max_idle_per_origin: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            extra_ca_file: None,
            timeouts: Timeouts::default(),
            access_ttl: Duration::from_secs(60),
            max_redirects: 5,
            pool_max_idle_per_origin: 8,
        }
    }
}

/// Limits on waiting for a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Resolving, connecting and the TLS handshake together.
    pub connect: Duration,
    /// From the end of the request to the end of the response head.
    pub response: Duration,
    /// Each read or write of a body.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            response: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        }
    }
}

impl RegistryConfig {
    /// The insecure list as `host:port` authorities, lowercased.
    pub(crate) fn insecure_authorities(&self) -> Vec<String> {
        self.insecure.iter().map(|h| with_port(h, 80)).collect()
    }

    /// The HTTP client settings these registry settings imply.
    pub(crate) fn http_config(&self) -> ClientConfig {
        ClientConfig {
            connect_timeout: self.timeouts.connect,
            header_timeout: self.timeouts.response,
            idle_timeout: self.timeouts.idle,
            max_redirects: self.max_redirects,
            pool_max_idle_per_origin: self.pool_max_idle_per_origin,
            plain_http: PlainHttp::Origins(self.insecure_authorities()),
            extra_ca_file: self.extra_ca_file.clone(),
            ..ClientConfig::default()
        }
    }
}

/// A registry: the name it goes by and the URL its API is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    name: String,
    base: Url,
}

impl Upstream {
    /// Reads `name` (`host[:port]`) and decides its scheme from
    /// `config.insecure`.
    pub fn new(name: &str, config: &RegistryConfig) -> Result<Upstream, RegistryError> {
        let invalid = |reason| RegistryError::InvalidRegistry {
            name: name.chars().take(64).collect(),
            reason,
        };
        if name.is_empty() || name.len() > MAX_REGISTRY_NAME_LEN {
            return Err(invalid("empty or too long"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        {
            return Err(invalid("not host[:port]"));
        }
        let name = name.to_ascii_lowercase();
        let name = if name == "index.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            name
        };
        let api_host = if name == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            name.as_str()
        };
        let insecure = config.insecure_authorities();
        let scheme = if insecure.contains(&with_port(api_host, 80)) {
            "http"
        } else {
            "https"
        };
        let base = Url::parse(&format!("{scheme}://{api_host}/v2/"))
            .map_err(|_| invalid("not host[:port]"))?;
        Ok(Upstream { name, base })
    }

    /// The registry's name (`docker.io` for Docker Hub).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API's base URL, `scheme://host[:port]/v2/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of a client's request target (origin-form: `/v2/...` with
    /// its query) on this registry. The host and port come from the
    /// registry's name alone; the target cannot change them.
    pub fn target_url(&self, target: &str) -> Result<Url, RegistryError> {
        Url::on_origin(self.base.origin().clone(), target).map_err(|_| {
            RegistryError::InvalidRegistry {
                name: self.name.clone(),
                reason: "request target is not an origin-form path",
            }
        })
    }

    /// The URL of an API path (which starts with `/v2/`).
    pub(crate) fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base
            .join(path)
            .map_err(|_| RegistryError::InvalidRegistry {
                name: self.name.clone(),
                reason: "API path does not form a URL",
            })
    }
}

/// `host[:port]` with `default` filled in, lowercased.
fn with_port(authority: &str, default: u16) -> String {
    let a = authority.trim().to_ascii_lowercase();
    let has_port = match a.rfind(':') {
        Some(i) => {
            // A colon inside an IPv6 literal's brackets is not a port.
            let after = a.get(i + 1..).unwrap_or_default();
            !after.is_empty()
                && after.bytes().all(|b| b.is_ascii_digit())
                && (!a.starts_with('[') || a.get(..i).is_some_and(|h| h.ends_with(']')))
        }
        None => false,
    };
    if has_port {
        a
    } else {
        format!("{a}:{default}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(insecure: &[&str]) -> RegistryConfig {
        RegistryConfig {
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
            ..RegistryConfig::default()
        }
    }

    #[test]
    fn docker_hub_maps_to_its_api_host() {
        for name in ["docker.io", "index.docker.io", "Docker.IO"] {
            let u = Upstream::new(name, &config(&[])).unwrap();
            assert_eq!(u.name(), "docker.io");
            assert_eq!(u.base().to_string(), "https://registry-1.docker.io/v2/");
        }
    }

    #[test]
    fn plain_http_only_when_listed() {
        let u = Upstream::new("127.0.0.1:5000", &config(&[])).unwrap();
        assert_eq!(u.base().to_string(), "https://127.0.0.1:5000/v2/");
        let u = Upstream::new("127.0.0.1:5000", &config(&["127.0.0.1:5000"])).unwrap();
        assert_eq!(u.base().to_string(), "http://127.0.0.1:5000/v2/");
        // Another port of the same host is not listed.
        let u = Upstream::new("127.0.0.1:5001", &config(&["127.0.0.1:5000"])).unwrap();
        assert_eq!(u.base().scheme(), bay_httpd::client::Scheme::Https);
        let u = Upstream::new("reg.local", &config(&["REG.local"])).unwrap();
        assert_eq!(u.base().to_string(), "http://reg.local/v2/");
        let u = Upstream::new("[::1]:5000", &config(&["[::1]:5000"])).unwrap();
        assert_eq!(u.base().to_string(), "http://[::1]:5000/v2/");
        assert_eq!(
            u.url("/v2/a/blobs/x").unwrap().to_string(),
            "http://[::1]:5000/v2/a/blobs/x"
        );
    }

    #[test]
    fn refuses_names_that_are_not_hosts() {
        for bad in ["", "a/b", "user@host", "h?x", "h#x", "h:99999", "h h"] {
            assert!(Upstream::new(bad, &config(&[])).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_filled_in() {
        assert_eq!(with_port("h", 80), "h:80");
        assert_eq!(with_port("h:5000", 80), "h:5000");
        assert_eq!(with_port("[::1]", 80), "[::1]:80");
        assert_eq!(with_port("[::1]:5000", 80), "[::1]:5000");
    }
}
