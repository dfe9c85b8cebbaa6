//! Which upstream registry a request is for, and whether bay may go there.
//!
//! Three ways name the upstream, in this order:
//! 1. a listener with a fixed upstream (`--upstream`), e.g. Docker Hub as
//!    dockerd's `registry-mirrors` needs;
//! 2. containerd's mirror query `?ns=<registry>`;
//! 3. the host prefix: a client pulling `p2p-<registry>/image`, with
//!    `p2p-<registry>` resolving to this host, sends `Host: p2p-<registry>`.
//!
//! Whatever names it, the upstream must match the operator's allow list
//! before anything is contacted: bay is never an open proxy.

use std::borrow::Cow;

pub use bay_core::allow::{AllowList, AllowPattern, RouteError, Upstream};

/// The prefix that marks a registry host name as "through bay".
pub const HOST_PREFIX: &str = "p2p-";

/// Finds the upstream of a request and checks it against the allow list.
///
/// `fixed` is the listener's `--upstream`, `ns` the value of a `ns` query
/// parameter, `host` the Host header.
pub fn upstream_for(
    fixed: Option<&Upstream>,
    ns: Option<&str>,
    host: Option<&str>,
    allow: &AllowList,
) -> Result<Upstream, RouteError> {
    let upstream = if let Some(u) = fixed {
        u.clone()
    } else if let Some(ns) = ns.filter(|n| !n.is_empty()) {
        Upstream::parse(ns)?
    } else if let Some(named) = host.and_then(|h| strip_prefix_ci(h, HOST_PREFIX)) {
        Upstream::parse(named)?
    } else {
        return Err(RouteError::NoUpstream);
    };
    if allow.allows(&upstream) {
        Ok(upstream)
    } else {
        Err(RouteError::NotAllowed(upstream.to_string()))
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// The value of parameter `key` in a query string, percent-decoded:
/// containerd sends `?ns=127.0.0.1%3A5000` for a registry with a port.
/// A value that does not decode to UTF-8 is returned as it came, and then
/// fails as a host name.
pub fn query_param<'a>(target: &'a str, key: &str) -> Option<Cow<'a, str>> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes; a malformed escape is left as it is.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = (b == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(patterns: &[&str]) -> AllowList {
        AllowList::new(
            patterns
                .iter()
                .map(|p| AllowPattern::parse(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn host_prefix_names_the_upstream() {
        let list = allow(&["registry.example.com"]);
        let u = upstream_for(None, None, Some("P2P-Registry.example.com:5000"), &list).unwrap();
        assert_eq!(u.as_str(), "registry.example.com:5000");
        assert_eq!(u.host(), "registry.example.com");
        assert_eq!(u.port(), Some(5000));
    }

    #[test]
    fn ns_beats_host_and_fixed_beats_both() {
        let list = allow(&["a.test", "b.test", "c.test"]);
        let u = upstream_for(None, Some("b.test:443"), Some("p2p-a.test"), &list).unwrap();
        assert_eq!(u.as_str(), "b.test:443");
        let fixed = Upstream::parse("c.test").unwrap();
        let u = upstream_for(Some(&fixed), Some("b.test"), Some("p2p-a.test"), &list).unwrap();
        assert_eq!(u.as_str(), "c.test");
    }

    #[test]
    fn nothing_outside_the_allow_list() {
        let list = allow(&["*.corp.test", "reg.test:5000"]);
        assert!(upstream_for(None, Some("x.corp.test"), None, &list).is_ok());
        assert!(upstream_for(None, Some("a.b.corp.test:1"), None, &list).is_ok());
        for denied in [
            "corp.test",
            "evilcorp.test",
            "reg.test:5001",
            "reg.test",
            "x.corp.test.evil",
        ] {
            assert_eq!(
                upstream_for(None, Some(denied), None, &list),
                Err(RouteError::NotAllowed(denied.into())),
                "{denied}"
            );
        }
        assert_eq!(
            upstream_for(None, None, Some("localhost:5000"), &list),
            Err(RouteError::NoUpstream)
        );
    }

    #[test]
    fn hostile_hosts_are_rejected() {
        let list = allow(&["*.test"]);
        for bad in [
            "a.test/x",
            "a.test@b",
            "a.test:99999",
            "a..test",
            "-a.test",
            "a.test:",
            "a test",
            "[::1",
            "a.test:1:2",
        ] {
            assert!(
                matches!(
                    upstream_for(None, Some(bad), None, &list),
                    Err(RouteError::BadHost(_))
                ),
                "{bad:?}"
            );
        }
        assert!(Upstream::parse("[::1]:5000").is_ok());
        assert!(Upstream::parse("127.0.0.1:5000").is_ok());
    }

    #[test]
    fn query_params() {
        assert_eq!(
            query_param("/v2/x/blobs/y?ns=docker.io&z", "ns").as_deref(),
            Some("docker.io")
        );
        assert_eq!(query_param("/v2/?a=b", "ns"), None);
        assert_eq!(query_param("/v2/", "ns"), None);
    }

    #[test]
    fn containerd_s_encoded_ns_names_the_upstream() {
        let ns = query_param("/v2/a/manifests/b?ns=127.0.0.1%3A5000", "ns");
        assert_eq!(ns.as_deref(), Some("127.0.0.1:5000"));
        let list = allow(&["127.0.0.1:5000"]);
        let u = upstream_for(None, ns.as_deref(), None, &list).unwrap();
        assert_eq!(u.as_str(), "127.0.0.1:5000");
        assert_eq!(
            query_param("/v2/?ns=%5B%3A%3A1%5D%3a80", "ns").as_deref(),
            Some("[::1]:80")
        );
        // Malformed or non-UTF-8 escapes stay as they came and then fail
        // as host names.
        assert_eq!(query_param("/v2/?ns=a%3", "ns").as_deref(), Some("a%3"));
        assert_eq!(query_param("/v2/?ns=a%zz", "ns").as_deref(), Some("a%zz"));
        assert_eq!(query_param("/v2/?ns=a%FF", "ns").as_deref(), Some("a%FF"));
        assert!(matches!(
            upstream_for(None, Some("a%FF"), None, &list),
            Err(RouteError::BadHost(_))
        ));
    }
}
