//! Following redirects: which responses are redirects, where they lead, and
//! what of the request survives the hop.
//!
//! Registries answer blob reads with a redirect to an object store or CDN,
//! so following them is the normal path, and the one rule that matters most
//! is that the registry's `Authorization` must never reach the other host.
//! This module decides; it does no I/O, so every rule is tested here.
//!
//! Rules (RFC 9110 §15.4, and what clients commonly do):
//! * 301, 302, 303, 307, 308 with a `Location` are redirects; others are not.
//! * 303 turns any method but HEAD into GET without a body; 301 and 302 turn
//!   POST into GET without a body; 307 and 308 keep method and body.
//! * A hop to another origin (scheme, host or port) drops `Authorization`,
//!   `Proxy-Authorization` and `Cookie`.
//! * When a hop drops the body, `Content-Type` goes with it.

use super::url::{Url, UrlError};

/// Whether `status` is a redirect status this client follows.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The request to send after a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Where to go.
    pub url: Url,
    /// Method of the next request.
    pub method: String,
    /// Whether the next request carries the same body (else it has none).
    pub keep_body: bool,
    /// Whether the origin changed, so credentials must be dropped.
    pub cross_origin: bool,
}

/// Why a redirect could not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// A redirect status without a `Location` field.
    #[error("redirect without Location")]
    MissingLocation,
    /// A `Location` that is not UTF-8.
    #[error("redirect Location is not UTF-8")]
    LocationNotUtf8,
    /// A `Location` that is not a usable URL.
    #[error("redirect Location refused: {0}")]
    Location(#[from] UrlError),
}

/// Plans the hop for a redirect response: `status` and `location` from the
/// response, `method` and `url` of the request that got it.
pub fn plan_hop(
    url: &Url,
    method: &str,
    status: u16,
    location: Option<&[u8]>,
) -> Result<Hop, RedirectError> {
    let location = location.ok_or(RedirectError::MissingLocation)?;
    let location = std::str::from_utf8(location).map_err(|_| RedirectError::LocationNotUtf8)?;
    let next = url.join(location)?;
    let is_head = method.eq_ignore_ascii_case("HEAD");
    let becomes_get = match status {
        303 => !is_head,
        301 | 302 => method.eq_ignore_ascii_case("POST"),
        _ => false,
    };
    let (method, keep_body) = if becomes_get {
        ("GET".to_owned(), false)
    } else {
        (method.to_owned(), true)
    };
    let cross_origin = next.origin() != url.origin();
    Ok(Hop {
        url: next,
        method,
        keep_body,
        cross_origin,
    })
}

/// Removes the request headers a hop must not carry.
pub fn strip_headers(headers: &mut Vec<(String, Vec<u8>)>, hop: &Hop) {
    headers.retain(|(name, _)| {
        let credential = ["authorization", "proxy-authorization", "cookie"]
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c));
        let body_field = name.eq_ignore_ascii_case("content-type");
        let drop_credential = hop.cross_origin && credential;
        let drop_body_field = !hop.keep_body && body_field;
        !(drop_credential || drop_body_field)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn headers() -> Vec<(String, Vec<u8>)> {
        vec![
            ("Authorization".into(), b"Bearer t".to_vec()),
            ("Accept".into(), b"a".to_vec()),
            ("Content-Type".into(), b"x/y".to_vec()),
            ("Accept".into(), b"b".to_vec()),
        ]
    }

    #[test]
    fn statuses() {
        for s in [301, 302, 303, 307, 308] {
            assert!(is_redirect(s));
        }
        for s in [200, 300, 304, 305, 306, 309, 404] {
            assert!(!is_redirect(s));
        }
    }

    #[test]
    fn see_other_becomes_get_without_body() {
        let hop = plan_hop(&url("http://h/a"), "PUT", 303, Some(b"/b")).unwrap();
        assert_eq!(hop.method, "GET");
        assert!(!hop.keep_body);
        assert!(!hop.cross_origin);
        let hop = plan_hop(&url("http://h/a"), "HEAD", 303, Some(b"/b")).unwrap();
        assert_eq!(hop.method, "HEAD");
    }

    #[test]
    fn temporary_and_permanent_keep_method_and_body() {
        for s in [307, 308] {
            let hop = plan_hop(&url("http://h/a"), "PUT", s, Some(b"/b")).unwrap();
            assert_eq!(hop.method, "PUT");
            assert!(hop.keep_body);
        }
        let hop = plan_hop(&url("http://h/a"), "POST", 302, Some(b"/b")).unwrap();
        assert_eq!((hop.method.as_str(), hop.keep_body), ("GET", false));
        let hop = plan_hop(&url("http://h/a"), "GET", 301, Some(b"/b")).unwrap();
        assert_eq!(hop.method, "GET");
    }

    #[test]
    fn authorization_kept_on_same_origin() {
        let hop = plan_hop(&url("https://reg/v2/x"), "GET", 307, Some(b"/v2/y")).unwrap();
        let mut h = headers();
        strip_headers(&mut h, &hop);
        assert_eq!(h, headers());
    }

    #[test]
    fn authorization_dropped_on_host_port_or_scheme_change() {
        for loc in [
            "https://s3.example/obj",
            "https://reg:8443/v2/y",
            "http://reg/v2/y",
        ] {
            let hop = plan_hop(&url("https://reg/v2/x"), "GET", 307, Some(loc.as_bytes())).unwrap();
            assert!(hop.cross_origin, "{loc}");
            let mut h = headers();
            strip_headers(&mut h, &hop);
            assert!(
                h.iter()
                    .all(|(n, _)| !n.eq_ignore_ascii_case("authorization")),
                "{loc}"
            );
            // Repeated Accept fields stay, in order.
            let accepts: Vec<_> = h.iter().filter(|(n, _)| n == "Accept").collect();
            assert_eq!(accepts.len(), 2);
            assert_eq!(accepts[0].1, b"a");
        }
    }

    #[test]
    fn dropped_body_drops_content_type() {
        let hop = plan_hop(&url("http://h/a"), "POST", 303, Some(b"/b")).unwrap();
        let mut h = headers();
        strip_headers(&mut h, &hop);
        assert!(h.iter().all(|(n, _)| n != "Content-Type"));
        assert!(h.iter().any(|(n, _)| n == "Authorization"));
    }

    #[test]
    fn bad_locations() {
        let u = url("http://h/a");
        assert_eq!(
            plan_hop(&u, "GET", 302, None),
            Err(RedirectError::MissingLocation)
        );
        assert_eq!(
            plan_hop(&u, "GET", 302, Some(b"\xff")),
            Err(RedirectError::LocationNotUtf8)
        );
        assert_eq!(
            plan_hop(&u, "GET", 302, Some(b"ftp://x/")),
            Err(RedirectError::Location(UrlError::UnsupportedScheme))
        );
    }
}
