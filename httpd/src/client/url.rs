//! `http` and `https` URLs: parsing, origins, and resolving a `Location`.
//!
//! The client needs only what a request line and a connection need: scheme,
//! host, port, and path with query. A general URL library would accept far
//! more than a registry ever sends, so this one is small and strict:
//! userinfo is refused (credentials in a URL end up in logs), fragments are
//! dropped (never sent), and bytes outside printable ASCII are refused rather
//! than silently re-encoded. Nothing here does I/O.

use std::fmt;
use std::net::Ipv6Addr;

/// Longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 8192;

/// The two schemes the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP/1.1 over TCP.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
}

impl Scheme {
    /// The scheme's name as written in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Longer than [`MAX_URL_LEN`].
    #[error("URL longer than {MAX_URL_LEN} bytes")]
    TooLong,
    /// Not `http://` or `https://`.
    #[error("URL scheme is not http or https")]
    UnsupportedScheme,
    /// `user:password@` in the authority.
    #[error("URL carries userinfo (credentials belong in headers)")]
    Userinfo,
    /// No host, or a host with bytes a DNS name or IP literal cannot have.
    #[error("URL host is empty or invalid")]
    InvalidHost,
    /// A port that is not a number from 1 to 65535.
    #[error("URL port is invalid")]
    InvalidPort,
    /// A byte outside printable ASCII (or a space) in the path or query.
    #[error("URL path or query has byte {0:#04x}; it must be percent-encoded")]
    InvalidPathByte(u8),
    /// A request target for [`Url::on_origin`] that does not start with `/`.
    #[error("request target does not start with /")]
    NotOriginForm,
}

/// Where a connection goes: scheme, host and port. Pooling, TLS names and
/// the same-origin checks on redirects are all by origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Scheme.
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets, lowercase.
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
}

impl Origin {
    /// `host:port`, with brackets around an IPv6 literal: the form used to
    /// connect and to list origins allowed plain HTTP.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The Host header value: the port is left out when it is the default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.authority())
    }
}

/// A parsed `http` or `https` URL.
///
/// `Display` prints the whole URL. Query strings may carry signatures (object
/// store redirects do), so errors and logs print only the [`Origin`].
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    origin: Origin,
    /// Path and query as sent on the request line; starts with `/`.
    target: String,
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the origin and path: a query may be a bearer of access.
        let path = self.target.split('?').next().unwrap_or("/");
        write!(f, "Url({}{path})", self.origin)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.origin.scheme.as_str();
        write!(f, "{scheme}://{}{}", self.origin.host_header(), self.target)
    }
}

impl std::str::FromStr for Url {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, UrlError> {
        Url::parse(s)
    }
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(input: &str) -> Result<Url, UrlError> {
        if input.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        let (scheme, rest) = split_scheme(input).ok_or(UrlError::UnsupportedScheme)?;
        let (authority, target) = split_authority(rest);
        let origin = parse_authority(scheme, authority)?;
        let target = normalize_target(target)?;
        Ok(Url { origin, target })
    }

    /// `target` (path and query, origin-form) on `origin`. The authority
    /// comes only from `origin`: nothing in `target` can change the host
    /// or port a request goes to, which joining strings could
    /// (`https://reg` + `.evil:1/v2/`).
    pub fn on_origin(origin: Origin, target: &str) -> Result<Url, UrlError> {
        if target.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        if !target.starts_with('/') {
            return Err(UrlError::NotOriginForm);
        }
        let target = normalize_target(target)?;
        Ok(Url { origin, target })
    }

    /// The origin (scheme, host, port).
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.origin.scheme
    }

    /// The host, without brackets.
    pub fn host(&self) -> &str {
        &self.origin.host
    }

    /// The port, explicit or default.
    pub fn port(&self) -> u16 {
        self.origin.port
    }

    /// Path and query, as sent on the request line.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// Resolves a `Location` header value against this URL (RFC 3986 §5.2
    /// for the forms servers send: absolute, scheme-relative, absolute-path,
    /// relative-path, query-only).
    pub fn join(&self, location: &str) -> Result<Url, UrlError> {
        let location = location.trim_matches(|c| c == ' ' || c == '\t');
        if location.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        if split_scheme(location).is_some() {
            return Url::parse(location);
        }
        if has_other_scheme(location) {
            return Err(UrlError::UnsupportedScheme);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let (authority, target) = split_authority(rest);
            let origin = parse_authority(self.origin.scheme, authority)?;
            let target = normalize_target(target)?;
            return Ok(Url { origin, target });
        }
        let joined = if location.starts_with('/') {
            location.to_owned()
        } else if location.starts_with('?') {
            format!("{}{location}", self.path())
        } else if location.is_empty() || location.starts_with('#') {
            self.target.clone()
        } else {
            let path = self.path();
            let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
            format!("{dir}{location}")
        };
        let target = normalize_target(&joined)?;
        Ok(Url {
            origin: self.origin.clone(),
            target,
        })
    }
}

/// Splits `http://` or `https://` (any case) off the front.
fn split_scheme(input: &str) -> Option<(Scheme, &str)> {
    let (name, rest) = input.split_once("://")?;
    if name.eq_ignore_ascii_case("http") {
        Some((Scheme::Http, rest))
    } else if name.eq_ignore_ascii_case("https") {
        Some((Scheme::Https, rest))
    } else {
        None
    }
}

/// Whether a reference starts with some scheme other than ours
/// (`ftp:`, `mailto:`), which must not be taken as a relative path.
fn has_other_scheme(location: &str) -> bool {
    let Some((name, _)) = location.split_once(':') else {
        return false;
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Splits the authority from the path, query and fragment that follow.
fn split_authority(rest: &str) -> (&str, &str) {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.split_at(end)
}

fn parse_authority(scheme: Scheme, authority: &str) -> Result<Origin, UrlError> {
    if authority.contains('@') {
        return Err(UrlError::Userinfo);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (literal, after) = v6.split_once(']').ok_or(UrlError::InvalidHost)?;
        let addr: Ipv6Addr = literal.parse().map_err(|_| UrlError::InvalidHost)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::InvalidHost)?),
        };
        (addr.to_string(), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if !valid_reg_name(host) {
            return Err(UrlError::InvalidHost);
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(p) => parse_port(p)?,
    };
    Ok(Origin { scheme, host, port })
}

/// A DNS name or IPv4 literal: letters, digits, `-`, `.`, `_`.
fn valid_reg_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn parse_port(p: &str) -> Result<u16, UrlError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidPort);
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(UrlError::InvalidPort),
        Ok(port) => Ok(port),
    }
}

/// Drops the fragment, checks the bytes, removes dot segments, and makes
/// sure the target starts with `/`.
fn normalize_target(raw: &str) -> Result<String, UrlError> {
    let raw = raw.split('#').next().unwrap_or("");
    if let Some(bad) = raw.bytes().find(|b| !(0x21..=0x7e).contains(b)) {
        return Err(UrlError::InvalidPathByte(bad));
    }
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let mut out = remove_dot_segments(path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// RFC 3986 §5.2.4, on a path that is absolute or empty.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing_slash && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_host_port_target() {
        let u = Url::parse("https://Registry.Example:5000/v2/a/b?x=1#frag").unwrap();
        assert_eq!(u.scheme(), Scheme::Https);
        assert_eq!(u.host(), "registry.example");
        assert_eq!(u.port(), 5000);
        assert_eq!(u.target(), "/v2/a/b?x=1");
        assert_eq!(u.path(), "/v2/a/b");
        assert_eq!(u.origin().host_header(), "registry.example:5000");
        assert_eq!(u.to_string(), "https://registry.example:5000/v2/a/b?x=1");
    }

    #[test]
    fn default_ports_and_empty_path() {
        let u = Url::parse("http://h").unwrap();
        assert_eq!((u.port(), u.target()), (80, "/"));
        assert_eq!(u.origin().host_header(), "h");
        let u = Url::parse("HTTPS://h:/?q").unwrap();
        assert_eq!((u.port(), u.target()), (443, "/?q"));
    }

    #[test]
    fn a_target_on_an_origin_cannot_move_it() {
        let origin = Url::parse("http://reg.test:2222/")
            .unwrap()
            .origin()
            .clone();
        for target in ["/v2/", "//evil.test:1/v2/", "/v2/@evil.test", "/../x:1/"] {
            let u = Url::on_origin(origin.clone(), target).unwrap();
            assert_eq!(u.origin(), &origin, "{target}");
        }
        for target in ["2/v2/", ".evil.test:22222/v2/", "", "*", "http://x/"] {
            assert_eq!(
                Url::on_origin(origin.clone(), target),
                Err(UrlError::NotOriginForm),
                "{target}"
            );
        }
        assert!(Url::on_origin(origin, "/a b").is_err());
    }

    #[test]
    fn ipv6_literals() {
        let u = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(u.host(), "::1");
        assert_eq!(u.origin().authority(), "[::1]:8080");
        assert_eq!(u.origin().host_header(), "[::1]:8080");
        let u = Url::parse("https://[2001:DB8::1]/").unwrap();
        assert_eq!(u.host(), "2001:db8::1");
        assert_eq!(u.origin().host_header(), "[2001:db8::1]");
        assert_eq!(Url::parse("http://[::1/"), Err(UrlError::InvalidHost));
        assert_eq!(Url::parse("http://[zz]/"), Err(UrlError::InvalidHost));
        assert_eq!(Url::parse("http://[::1]x/"), Err(UrlError::InvalidHost));
        assert_eq!(Url::parse("http://::1/"), Err(UrlError::InvalidHost));
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        assert_eq!(Url::parse("ftp://h/"), Err(UrlError::UnsupportedScheme));
        assert_eq!(Url::parse("h/x"), Err(UrlError::UnsupportedScheme));
        assert_eq!(Url::parse("http://u:p@h/"), Err(UrlError::Userinfo));
        assert_eq!(Url::parse("http:///x"), Err(UrlError::InvalidHost));
        assert_eq!(Url::parse("http://h:0/"), Err(UrlError::InvalidPort));
        assert_eq!(Url::parse("http://h:65536/"), Err(UrlError::InvalidPort));
        assert_eq!(Url::parse("http://h:+80/"), Err(UrlError::InvalidPort));
        assert_eq!(
            Url::parse("http://h/a b"),
            Err(UrlError::InvalidPathByte(b' '))
        );
        assert_eq!(
            Url::parse("http://h/a\r\nX: y"),
            Err(UrlError::InvalidPathByte(b'\r'))
        );
        assert_eq!(
            Url::parse("http://h/é"),
            Err(UrlError::InvalidPathByte(0xc3))
        );
        let long = format!("http://h/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(Url::parse(&long), Err(UrlError::TooLong));
    }

    #[test]
    fn removes_dot_segments() {
        let u = Url::parse("http://h/a/./b/../c/").unwrap();
        assert_eq!(u.target(), "/a/c/");
        let u = Url::parse("http://h/../../x/..").unwrap();
        assert_eq!(u.target(), "/");
    }

    #[test]
    fn joins_locations() {
        let base = Url::parse("https://reg:5000/v2/lib/blobs/sha256:ab?x=1").unwrap();
        let j = |l| base.join(l).unwrap().to_string();
        assert_eq!(
            j("https://s3.example/bucket/obj?X-Sig=z"),
            "https://s3.example/bucket/obj?X-Sig=z"
        );
        assert_eq!(j("//cdn.example/p"), "https://cdn.example/p");
        assert_eq!(j("/v2/other"), "https://reg:5000/v2/other");
        assert_eq!(j("sibling"), "https://reg:5000/v2/lib/blobs/sibling");
        assert_eq!(j("../up"), "https://reg:5000/v2/lib/up");
        assert_eq!(j("?y=2"), "https://reg:5000/v2/lib/blobs/sha256:ab?y=2");
        assert_eq!(j(" /t#f "), "https://reg:5000/t");
        assert_eq!(base.join("mailto:x@y"), Err(UrlError::UnsupportedScheme));
        assert_eq!(base.join("//u@h/"), Err(UrlError::Userinfo));
    }

    #[test]
    fn debug_hides_query() {
        let u = Url::parse("https://h/p?X-Amz-Signature=secret").unwrap();
        let shown = format!("{u:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("/p"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn host() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,3}",
                any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])),
                any::<[u16; 8]>().prop_map(|s| format!("[{}]", Ipv6Addr::from(s))),
            ]
        }

        proptest! {
            #[test]
            fn display_parses_back_to_the_same_url(
                https in any::<bool>(),
                host in host(),
                port in proptest::option::of(1u16..),
                path in "(/[a-zA-Z0-9._~%:@!$&'()*+,;=-]{0,12}){0,5}",
                query in proptest::option::of("[a-zA-Z0-9=&%/?:@._-]{0,30}"),
            ) {
                let scheme = if https { "https" } else { "http" };
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                let text = format!("{scheme}://{host}{port}{path}{query}");
                let url = Url::parse(&text).unwrap();
                let again = Url::parse(&url.to_string()).unwrap();
                prop_assert_eq!(&again, &url);
                prop_assert!(url.target().starts_with('/'));
                prop_assert_eq!(url.join(&url.to_string()).unwrap(), url);
            }

            #[test]
            fn arbitrary_text_never_panics(input in "\\PC{0,80}", base_path in "/[a-z/.]{0,20}") {
                let _ = Url::parse(&input);
                let base = Url::parse(&format!("http://h{base_path}")).unwrap();
                if let Ok(joined) = base.join(&input) {
                    prop_assert!(joined.target().starts_with('/'));
                    prop_assert!(!joined.path().split('/').any(|s| s == "." || s == ".."));
                }
            }
        }
    }
}
