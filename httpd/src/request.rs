//! The parsed request head a handler receives.
//!
//! Owned (not borrowed from the read buffer) so that a handler can keep it
//! across awaits while the connection reads the body into the same buffer.

/// The request method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD: answered with the headers of the GET, without the body.
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// Any other token, as sent.
    Other(Box<str>),
}

impl Method {
    /// Classifies a method token (case-sensitive, as RFC 9110 says).
    pub fn from_bytes(token: &[u8]) -> Self {
        match token {
            b"GET" => Self::Get,
            b"HEAD" => Self::Head,
            b"POST" => Self::Post,
            b"PUT" => Self::Put,
            b"PATCH" => Self::Patch,
            b"DELETE" => Self::Delete,
            b"OPTIONS" => Self::Options,
            other => Self::Other(String::from_utf8_lossy(other).into()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other(s) => s,
        }
    }
}

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes (never zero).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// One header field; the name keeps the case the client sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    name: Box<str>,
    value: Box<[u8]>,
}

impl Header {
    /// Makes a header field.
    pub fn new(name: &str, value: &[u8]) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The field name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field value, raw.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// Whether the name is `name`, ignoring ASCII case.
    pub fn name_is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials must never reach logs through Debug.
        let value = if self.name_is("authorization")
            || self.name_is("proxy-authorization")
            || self.name_is("cookie")
        {
            "<redacted>".into()
        } else {
            String::from_utf8_lossy(&self.value)
        };
        write!(f, "{}: {}", self.name, value)
    }
}

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target as sent (origin form: path and query).
    pub target: Box<str>,
    /// The protocol version.
    pub version: Version,
    /// Every header field, in order, repeats kept.
    pub headers: Vec<Header>,
    /// How the body is delimited.
    pub framing: BodyFraming,
    /// Whether the client allows another request on this connection.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending its body.
    pub expect_continue: bool,
    /// The client's address, when the request came over a socket (the
    /// sans-IO parser leaves it empty; the server fills it in).
    pub peer: Option<std::net::SocketAddr>,
}

impl Request {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name_is(name))
            .map(Header::value)
    }

    /// Every value of header `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name_is(name))
            .map(Header::value)
    }

    /// The path part of the target (before `?`).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}
