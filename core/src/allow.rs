//! Which upstream registries bay may contact: `host[:port]` names and the
//! operator's allow list (`--allow-registry`). Both programs check it
//! before any connection, so bay is never an open proxy.

use std::fmt;

/// An upstream registry as `host[:port]`, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upstream(String);

impl Upstream {
    /// Validates `host[:port]`: a DNS name, IPv4 literal or bracketed IPv6
    /// literal, and an optional port.
    pub fn parse(text: &str) -> Result<Upstream, RouteError> {
        let bad = || RouteError::BadHost(text.chars().take(64).collect());
        if text.is_empty() || text.len() > 255 {
            return Err(bad());
        }
        let (host, port) = split_host_port(text).ok_or_else(bad)?;
        if let Some(port) = port {
            if port.is_empty() || port.len() > 5 || port.parse::<u16>().is_err() {
                return Err(bad());
            }
        }
        let valid_host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        {
            v6.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        };
        if !valid_host {
            return Err(bad());
        }
        Ok(Upstream(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host without the port.
    pub fn host(&self) -> &str {
        split_host_port(&self.0).map_or(&self.0, |(h, _)| h)
    }

    /// The port, if one was given.
    pub fn port(&self) -> Option<u16> {
        split_host_port(&self.0)
            .and_then(|(_, p)| p)
            .and_then(|p| p.parse().ok())
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            _ => rest.strip_prefix(':').map(|p| (host, Some(p))),
        };
    }
    match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((text, None)),
    }
}

/// Why a request cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no upstream registry named: pull p2p-<registry>/image, use a mirror configuration, or start bay-proxy with --upstream")]
    NoUpstream,
    #[error("registry {0} is not in this proxy's allow list (--allow-registry)")]
    NotAllowed(String),
    #[error("not a registry host: {0:?}")]
    BadHost(String),
}

/// One `--allow-registry` pattern: `host`, `host:port`, `*.domain` or
/// `*.domain:port`. A pattern without a port allows any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl AllowPattern {
    pub fn parse(text: &str) -> Result<AllowPattern, RouteError> {
        let (wildcard, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let parsed = Upstream::parse(rest)?;
        Ok(AllowPattern {
            host: parsed.host().to_string(),
            wildcard,
            port: parsed.port(),
        })
    }

    pub fn matches(&self, upstream: &Upstream) -> bool {
        let host = upstream.host();
        let host_ok = if self.wildcard {
            host.len() > self.host.len()
                && host.ends_with(&self.host)
                && host.as_bytes().get(host.len() - self.host.len() - 1) == Some(&b'.')
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| upstream.port() == Some(p))
    }
}

/// The operator's allow list.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<AllowPattern>);

impl AllowList {
    pub fn new(patterns: Vec<AllowPattern>) -> AllowList {
        AllowList(patterns)
    }

    pub fn allows(&self, upstream: &Upstream) -> bool {
        self.0.iter().any(|p| p.matches(upstream))
    }
}
