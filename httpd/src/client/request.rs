//! Requests: what a caller builds, and the bytes of the request head.
//!
//! Header fields are a list, not a map: repeated fields (several `Accept`
//! lines from docker) go out as given, in order. The client owns the fields
//! that frame the message on this connection (`Host`, `Content-Length`,
//! `Transfer-Encoding`, `Connection` and the other hop-by-hop fields), so
//! those are taken from the URL and body and any caller copies are left out.
//! Encoding refuses a method or header that could split the request (CR, LF,
//! NUL, bytes outside a token) rather than sending it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use super::head::is_sensitive;
use super::url::Url;

/// A source of request body pieces, for bodies that are not in memory
/// (a push relayed from a client, a file). Returns `Ok(None)` at the end.
pub trait BodySource {
    /// The next piece of the body; empty pieces are skipped.
    fn next_chunk(&mut self) -> Pin<Box<dyn Future<Output = std::io::Result<Option<Bytes>>> + '_>>;
}

/// A request body.
pub enum Body {
    /// No body.
    Empty,
    /// A body in memory; it can be sent again after a redirect or on a
    /// fresh connection.
    Bytes(Bytes),
    /// A streamed body, sent once: with `length` as `Content-Length`, or
    /// chunked when the length is unknown.
    Stream {
        /// The exact length, if known.
        length: Option<u64>,
        /// Where the pieces come from.
        source: Box<dyn BodySource>,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream { length, .. } => write!(f, "Stream(length: {length:?})"),
        }
    }
}

impl Body {
    /// Whether the body can be sent a second time.
    pub fn is_replayable(&self) -> bool {
        !matches!(self, Body::Stream { .. })
    }

    /// A copy for a second send, if replayable.
    pub(crate) fn replay(&self) -> Option<Body> {
        match self {
            Body::Empty => Some(Body::Empty),
            Body::Bytes(b) => Some(Body::Bytes(b.clone())),
            Body::Stream { .. } => None,
        }
    }
}

/// An HTTP request to send with [`super::Client::send`].
pub struct Request {
    pub(crate) method: String,
    pub(crate) url: Url,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Body,
    pub(crate) follow_redirects: bool,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| {
                if is_sensitive(n) {
                    format!("{n}: <redacted>")
                } else {
                    format!("{n}: {}", String::from_utf8_lossy(v))
                }
            })
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("follow_redirects", &self.follow_redirects)
            .finish()
    }
}

impl Request {
    /// A request with no headers and no body that follows redirects.
    pub fn new(method: impl Into<String>, url: Url) -> Request {
        Request {
            method: method.into(),
            url,
            headers: Vec::new(),
            body: Body::Empty,
            follow_redirects: true,
        }
    }

    /// A GET request.
    pub fn get(url: Url) -> Request {
        Request::new("GET", url)
    }

    /// A HEAD request.
    pub fn head(url: Url) -> Request {
        Request::new("HEAD", url)
    }

    /// Appends a header field (repeats are kept, in order).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends several header fields.
    pub fn headers<N, V>(mut self, fields: impl IntoIterator<Item = (N, V)>) -> Request
    where
        N: Into<String>,
        V: Into<Vec<u8>>,
    {
        self.headers
            .extend(fields.into_iter().map(|(n, v)| (n.into(), v.into())));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }

    /// Whether redirects are followed (the default) or returned as they are.
    pub fn follow_redirects(mut self, follow: bool) -> Request {
        self.follow_redirects = follow;
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// Fields the client writes itself.
fn is_connection_field(name: &str) -> bool {
    [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    ]
    .iter()
    .any(|f| name.eq_ignore_ascii_case(f))
}

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// No body and no framing field.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl BodyFraming {
    pub(crate) fn of(method: &str, body: &Body) -> BodyFraming {
        match body {
            // Servers may wait for a body on these unless told there is none.
            Body::Empty if ["POST", "PUT", "PATCH"].contains(&method) => BodyFraming::Length(0),
            Body::Empty => BodyFraming::None,
            Body::Bytes(b) => BodyFraming::Length(b.len() as u64),
            Body::Stream {
                length: Some(n), ..
            } => BodyFraming::Length(*n),
            Body::Stream { length: None, .. } => BodyFraming::Chunked,
        }
    }
}

/// Encodes the request head.
pub(crate) fn encode_head(
    method: &str,
    url: &Url,
    headers: &[(String, Vec<u8>)],
    framing: BodyFraming,
) -> Result<Vec<u8>, &'static str> {
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err("method is not a token");
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(url.target().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(url.origin().host_header().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err("header name is not a token");
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err("header value has a control byte");
        }
        if is_connection_field(name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim_ascii());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        BodyFraming::None => {}
        BodyFraming::Length(n) => {
            out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn head_keeps_repeated_fields_in_order() {
        let headers = vec![
            (
                "Accept".into(),
                b"application/vnd.oci.image.manifest.v1+json".to_vec(),
            ),
            ("Authorization".into(), b"Bearer x".to_vec()),
            (
                "Accept".into(),
                b"application/vnd.docker.distribution.manifest.v2+json".to_vec(),
            ),
        ];
        let head = encode_head(
            "GET",
            &url("http://[::1]:5000/v2/a/manifests/latest?x=1"),
            &headers,
            BodyFraming::None,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET /v2/a/manifests/latest?x=1 HTTP/1.1\r\nHost: [::1]:5000\r\n\
             Accept: application/vnd.oci.image.manifest.v1+json\r\n\
             Authorization: Bearer x\r\n\
             Accept: application/vnd.docker.distribution.manifest.v2+json\r\n\r\n"
        );
    }

    #[test]
    fn client_owns_framing_fields() {
        let headers = vec![
            ("host".into(), b"evil".to_vec()),
            ("Content-Length".into(), b"999".to_vec()),
            ("Transfer-Encoding".into(), b"chunked".to_vec()),
            ("Connection".into(), b"close".to_vec()),
        ];
        let head =
            encode_head("PUT", &url("https://h/u"), &headers, BodyFraming::Length(3)).unwrap();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"
        );
        let head = encode_head("POST", &url("http://h/"), &[], BodyFraming::Chunked).unwrap();
        assert!(head.ends_with(b"Transfer-Encoding: chunked\r\n\r\n"));
    }

    #[test]
    fn refuses_injection() {
        let u = url("http://h/");
        assert!(encode_head("GET /x", &u, &[], BodyFraming::None).is_err());
        assert!(encode_head("", &u, &[], BodyFraming::None).is_err());
        let bad_value = vec![("X".into(), b"a\r\nEvil: 1".to_vec())];
        assert!(encode_head("GET", &u, &bad_value, BodyFraming::None).is_err());
        let bad_name = vec![("X Y".into(), b"a".to_vec())];
        assert!(encode_head("GET", &u, &bad_name, BodyFraming::None).is_err());
    }

    #[test]
    fn framing_of_bodies() {
        assert_eq!(BodyFraming::of("GET", &Body::Empty), BodyFraming::None);
        assert_eq!(BodyFraming::of("PUT", &Body::Empty), BodyFraming::Length(0));
        assert_eq!(
            BodyFraming::of("PUT", &Body::Bytes(Bytes::from_static(b"abc"))),
            BodyFraming::Length(3)
        );
    }

    #[test]
    fn debug_redacts_authorization() {
        let r = Request::get(url("http://h/")).header("Authorization", "Bearer secret");
        let shown = format!("{r:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
