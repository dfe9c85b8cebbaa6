//! Response heads: parsing (over httparse) and what they say about the body.
//!
//! Sans-IO: [`parse_response_head`] takes the bytes read so far and answers
//! [`HeadStatus::Partial`] or [`HeadStatus::Complete`] with an owned
//! [`ResponseHead`] and the bytes it used; [`body_framing`] decides from the
//! head and the request method how the body is delimited (RFC 9112 §6.3) and
//! whether the connection can carry another request afterwards. Both are
//! strict and bounded: a head larger than the limit, too many fields, a bad
//! `Content-Length`, or both `Content-Length` and `Transfer-Encoding` in ways
//! that could desynchronise the stream are errors, never guesses.

use bytes::Bytes;

/// Bounds on a response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Most bytes in the status line and header fields, final CRLF included.
    pub max_bytes: usize,
    /// Most header fields.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_headers: 128,
        }
    }
}

/// Why a response head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The head did not end within the byte limit.
    #[error("response head larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// More fields than the limit.
    #[error("response head has more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// httparse refused the syntax.
    #[error("malformed response head: {0}")]
    Malformed(&'static str),
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("unsupported HTTP version")]
    Version,
    /// `Content-Length` not a decimal number, or several that disagree.
    #[error("invalid Content-Length")]
    ContentLength,
    /// A `Transfer-Encoding` this client cannot delimit safely.
    #[error("invalid Transfer-Encoding: {0}")]
    TransferEncoding(&'static str),
    /// 101 Switching Protocols, which the client never asks for.
    #[error("unexpected 101 Switching Protocols")]
    UnexpectedUpgrade,
}

/// One header field, name and value as received.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name, as the server spelled it.
    pub name: String,
    /// Field value bytes (not necessarily UTF-8).
    pub value: Bytes,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if is_sensitive(&self.name) {
            write!(f, "{}: <redacted>", self.name)
        } else {
            write!(
                f,
                "{}: {:?}",
                self.name,
                String::from_utf8_lossy(&self.value)
            )
        }
    }
}

/// Fields whose values are credentials and must never be printed.
pub(crate) fn is_sensitive(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

/// A parsed status line and header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in the order received, repeated names kept.
    pub headers: Vec<Header>,
}

impl ResponseHead {
    /// The first value of the field `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| &h.value)
    }

    /// Every value of the field `name`, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| &h.value)
    }

    /// Whether this is an interim (1xx) response to skip.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// Result of one parse attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadStatus {
    /// The head is not complete yet: read more.
    Partial,
    /// The head is complete and used the first `len` bytes.
    Complete {
        /// The head.
        head: ResponseHead,
        /// Bytes used, body or next head follows.
        len: usize,
    },
}

/// Parses a response head from the start of `buf`.
pub fn parse_response_head(buf: &[u8], limits: &HeadLimits) -> Result<HeadStatus, HeadError> {
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut response = httparse::Response::new(&mut fields);
    let window = buf.get(..limits.max_bytes).unwrap_or(buf);
    let status = match response.parse(window) {
        Ok(status) => status,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooManyHeaders {
                limit: limits.max_headers,
            })
        }
        Err(httparse::Error::Version) => return Err(HeadError::Version),
        Err(e) => return Err(HeadError::Malformed(parse_error_text(e))),
    };
    let len = match status {
        httparse::Status::Partial if buf.len() >= limits.max_bytes => {
            return Err(HeadError::TooLarge {
                limit: limits.max_bytes,
            })
        }
        httparse::Status::Partial => return Ok(HeadStatus::Partial),
        httparse::Status::Complete(len) => len,
    };
    let head = ResponseHead {
        status: response.code.unwrap_or(0),
        minor_version: response.version.unwrap_or(1),
        reason: response.reason.unwrap_or("").to_owned(),
        headers: response
            .headers
            .iter()
            .map(|h| Header {
                name: h.name.to_owned(),
                value: Bytes::copy_from_slice(h.value),
            })
            .collect(),
    };
    if head.status == 101 {
        return Err(HeadError::UnexpectedUpgrade);
    }
    Ok(HeadStatus::Complete { head, len })
}

fn parse_error_text(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid version",
    }
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// The body's framing and whether the connection may be reused after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPlan {
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether another request may follow on this connection once the
    /// body is read.
    pub reusable: bool,
}

/// Decides a response body's framing (RFC 9112 §6.3) for a response to a
/// request with method `method`.
pub fn body_framing(method: &str, head: &ResponseHead) -> Result<BodyPlan, HeadError> {
    let mut reusable = keeps_alive(head);
    let no_body = method.eq_ignore_ascii_case("HEAD")
        || head.is_interim()
        || head.status == 204
        || head.status == 304;
    let framing = if no_body {
        // A HEAD answer's Content-Length describes the GET body: nothing
        // follows on the wire, so the connection stays in step.
        Framing::Empty
    } else if let Some(chunked) = transfer_encoding(head)? {
        // With both fields present the message may be a smuggling attempt:
        // read it by Transfer-Encoding, then do not trust the connection.
        if head.header("content-length").is_some() {
            reusable = false;
        }
        if chunked {
            Framing::Chunked
        } else {
            reusable = false;
            Framing::UntilClose
        }
    } else if let Some(len) = content_length(head)? {
        Framing::Length(len)
    } else {
        reusable = false;
        Framing::UntilClose
    };
    Ok(BodyPlan { framing, reusable })
}

/// Whether the server lets the connection live on after this response.
fn keeps_alive(head: &ResponseHead) -> bool {
    let mut close = head.minor_version == 0;
    for value in head.headers_named("connection") {
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                return false;
            }
            if token.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    !close
}

/// `Some(true)` when the final transfer coding is chunked, `Some(false)` for
/// other codings (read until close), `None` when the field is absent.
fn transfer_encoding(head: &ResponseHead) -> Result<Option<bool>, HeadError> {
    let mut last: Option<&[u8]> = None;
    let mut chunked_seen = false;
    for value in head.headers_named("transfer-encoding") {
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.is_empty() {
                continue;
            }
            if chunked_seen {
                return Err(HeadError::TransferEncoding(
                    "chunked is not the final coding",
                ));
            }
            chunked_seen = token.eq_ignore_ascii_case(b"chunked");
            last = Some(token);
        }
    }
    match last {
        None if head.header("transfer-encoding").is_some() => {
            Err(HeadError::TransferEncoding("empty"))
        }
        None => Ok(None),
        Some(_) => Ok(Some(chunked_seen)),
    }
}

/// The Content-Length, if any; repeated fields (or a list) must agree.
fn content_length(head: &ResponseHead) -> Result<Option<u64>, HeadError> {
    let mut found: Option<u64> = None;
    for value in head.headers_named("content-length") {
        for item in value.split(|&b| b == b',') {
            let n = parse_decimal(item.trim_ascii()).ok_or(HeadError::ContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(HeadError::ContentLength);
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> ResponseHead {
        match parse_response_head(raw, &HeadLimits::default()).unwrap() {
            HeadStatus::Complete { head, len } => {
                assert_eq!(len, raw.len());
                head
            }
            HeadStatus::Partial => panic!("partial"),
        }
    }

    fn plan(method: &str, raw: &[u8]) -> Result<BodyPlan, HeadError> {
        body_framing(method, &parse(raw))
    }

    #[test]
    fn parses_status_and_repeated_headers() {
        let head = parse(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: x\r\na: 2\r\n\r\n");
        assert_eq!(head.status, 200);
        assert_eq!(head.reason, "OK");
        assert_eq!(head.minor_version, 1);
        let all: Vec<_> = head.headers_named("A").collect();
        assert_eq!(all, [&Bytes::from_static(b"1"), &Bytes::from_static(b"2")]);
        assert_eq!(head.headers.len(), 3);
    }

    #[test]
    fn partial_then_complete_with_trailing_body() {
        let limits = HeadLimits::default();
        let raw = b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\nBODY";
        for cut in 0..raw.len() - 4 {
            assert_eq!(
                parse_response_head(&raw[..cut], &limits).unwrap(),
                HeadStatus::Partial
            );
        }
        match parse_response_head(raw, &limits).unwrap() {
            HeadStatus::Complete { len, .. } => assert_eq!(&raw[len..], b"BODY"),
            HeadStatus::Partial => panic!("partial"),
        }
    }

    #[test]
    fn enforces_limits() {
        let limits = HeadLimits {
            max_bytes: 40,
            max_headers: 2,
        };
        let big = b"HTTP/1.1 200 OK\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            parse_response_head(big, &limits),
            Err(HeadError::TooLarge { limit: 40 })
        );
        let many = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        let limits = HeadLimits {
            max_bytes: 1000,
            max_headers: 2,
        };
        assert_eq!(
            parse_response_head(many, &limits),
            Err(HeadError::TooManyHeaders { limit: 2 })
        );
    }

    #[test]
    fn rejects_garbage_and_upgrade() {
        let limits = HeadLimits::default();
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 2x0 OK\r\n\r\n", &limits),
            Err(HeadError::Malformed(_))
        ));
        assert_eq!(
            parse_response_head(b"HTTP/2.0 200 OK\r\n\r\n", &limits),
            Err(HeadError::Version)
        );
        assert_eq!(
            parse_response_head(b"HTTP/1.1 101 Switching\r\n\r\n", &limits),
            Err(HeadError::UnexpectedUpgrade)
        );
    }

    #[test]
    fn framing_by_length_chunked_close() {
        assert_eq!(
            plan("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
            Ok(BodyPlan {
                framing: Framing::Length(12),
                reusable: true
            })
        );
        assert_eq!(
            plan(
                "GET",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            Ok(BodyPlan {
                framing: Framing::Chunked,
                reusable: true
            })
        );
        assert_eq!(
            plan("GET", b"HTTP/1.1 200 OK\r\n\r\n"),
            Ok(BodyPlan {
                framing: Framing::UntilClose,
                reusable: false
            })
        );
        assert_eq!(
            plan("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Ok(BodyPlan {
                framing: Framing::UntilClose,
                reusable: false
            })
        );
    }

    #[test]
    fn framing_without_body() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
        assert_eq!(plan("HEAD", head).unwrap().framing, Framing::Empty);
        assert!(plan("HEAD", head).unwrap().reusable);
        for status in ["204 No Content", "304 Not Modified", "100 Continue"] {
            let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            assert_eq!(plan("GET", raw.as_bytes()).unwrap().framing, Framing::Empty);
        }
    }

    #[test]
    fn connection_close_and_http10() {
        let p = plan(
            "GET",
            b"HTTP/1.1 200 OK\r\nConnection: x, Close\r\nContent-Length: 1\r\n\r\n",
        );
        assert!(!p.unwrap().reusable);
        let p = plan("GET", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(!p.unwrap().reusable);
        let p = plan(
            "GET",
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
        );
        assert!(p.unwrap().reusable);
    }

    #[test]
    fn content_length_is_strict() {
        for bad in [
            "-1",
            "+1",
            "1 2",
            "0x10",
            "",
            "99999999999999999999",
            "1, 2",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                plan("GET", raw.as_bytes()),
                Err(HeadError::ContentLength),
                "{bad}"
            );
        }
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\n";
        assert_eq!(plan("GET", raw).unwrap().framing, Framing::Length(3));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(plan("GET", raw), Err(HeadError::ContentLength));
    }

    #[test]
    fn transfer_encoding_rules() {
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            plan("GET", both),
            Ok(BodyPlan {
                framing: Framing::Chunked,
                reusable: false
            })
        );
        let not_last = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        assert!(matches!(
            plan("GET", not_last),
            Err(HeadError::TransferEncoding(_))
        ));
        let split =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(plan("GET", split).unwrap().framing, Framing::Chunked);
    }

    #[test]
    fn debug_redacts_credentials() {
        let head = parse(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=secret\r\n\r\n");
        let shown = format!("{head:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
