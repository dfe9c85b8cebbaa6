//! The request-head parser: bytes in, a [`Request`] out, no I/O.
//!
//! It wraps httparse with the limits a public server needs (request-line
//! length, header bytes, header count) and with the HTTP/1.1 framing rules
//! httparse leaves to its caller (Host, Content-Length vs
//! Transfer-Encoding, Expect, Connection). "Need more bytes" is
//! [`Parsed::Partial`], never an error; every error names the status code
//! the server answers with before it closes the connection.

use crate::request::{BodyFraming, Header, Method, Request, Version};

/// Bounds on what a request head may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Longest request line (method, target, version), in bytes; above: 414.
    pub max_request_line: usize,
    /// Most bytes of header fields after the request line; above: 431.
    pub max_header_bytes: usize,
    /// Most header fields; above: 431.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_request_line: 8 * 1024,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// What a malformed or oversized request head was; each maps to a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The request line is longer than the limit.
    #[error("request line longer than {limit} bytes")]
    UriTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Header fields take more bytes than the limit.
    #[error("header fields larger than {limit} bytes")]
    HeadersTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// More header fields than the limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// httparse rejected the syntax.
    #[error("malformed request head: {0}")]
    Syntax(&'static str),
    /// An HTTP/1.1 request without a Host header.
    #[error("missing Host header")]
    MissingHost,
    /// More than one Host header (RFC 9112 §3.2).
    #[error("more than one Host header")]
    DuplicateHost,
    /// A request target that is not origin-form (`/path?query`), nor `*`
    /// with OPTIONS: bay's servers are never forward proxies, so the
    /// absolute and authority forms are refused, and a target that does
    /// not start with `/` could otherwise be glued onto a host name.
    #[error("request target must start with /")]
    TargetForm,
    /// Content-Length that is not a number, or several that disagree.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// Both Content-Length and Transfer-Encoding (a smuggling vector).
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    /// A transfer coding other than a lone `chunked`.
    #[error("unsupported Transfer-Encoding")]
    UnsupportedTransferEncoding,
    /// An Expect value other than `100-continue`.
    #[error("unsupported Expect")]
    UnsupportedExpect,
}

impl HeadError {
    /// The status code the server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Self::UriTooLong { .. } => 414,
            Self::HeadersTooLarge { .. } | Self::TooManyHeaders { .. } => 431,
            Self::UnsupportedTransferEncoding => 501,
            Self::UnsupportedExpect => 417,
            Self::Syntax(_)
            | Self::MissingHost
            | Self::DuplicateHost
            | Self::TargetForm
            | Self::BadContentLength
            | Self::LengthAndChunked => 400,
        }
    }
}

/// The outcome of one parse attempt.
#[derive(Debug)]
pub enum Parsed {
    /// A whole head: the request and how many bytes of input it took.
    Complete(Request, usize),
    /// The head is not finished; call again with more bytes.
    Partial,
}

/// Parses one request head from the front of `buf`.
///
/// Bytes after the head (a body, or pipelined requests) are left alone:
/// the returned count says where the head ended.
pub fn parse_head(buf: &[u8], limits: &HeadLimits) -> Result<Parsed, HeadError> {
    // Leading blank lines before a request are allowed (RFC 9112 §2.2);
    // httparse skips them, so the line limit counts from the first byte.
    let line_len = match memchr_newline(buf) {
        Some(n) => n,
        None if buf.len() > limits.max_request_line => {
            return Err(HeadError::UriTooLong {
                limit: limits.max_request_line,
            })
        }
        None => return Ok(Parsed::Partial),
    };
    if line_len > limits.max_request_line {
        return Err(HeadError::UriTooLong {
            limit: limits.max_request_line,
        });
    }
    let head_cap = line_len
        .saturating_add(limits.max_header_bytes)
        .saturating_add(4);
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut slots);
    let status = req.parse(buf).map_err(|e| match e {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders {
            limit: limits.max_headers,
        },
        other => HeadError::Syntax(syntax_reason(other)),
    });
    let consumed = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > head_cap => {
            return Err(HeadError::HeadersTooLarge {
                limit: limits.max_header_bytes,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        // A partial head can look like too many headers only if it is
        // already over the byte limit; report the limit that was crossed.
        Err(e) => return Err(e),
    };
    if consumed > head_cap {
        return Err(HeadError::HeadersTooLarge {
            limit: limits.max_header_bytes,
        });
    }
    build_request(&req).map(|r| Parsed::Complete(r, consumed))
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    // Skip the blank lines a client may send between requests.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    buf.get(start..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|n| start + n)
}

fn syntax_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid method or target",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

fn build_request(req: &httparse::Request<'_, '_>) -> Result<Request, HeadError> {
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes());
    let target: Box<str> = req.path.unwrap_or("").into();
    if target.is_empty() {
        return Err(HeadError::Syntax("empty request target"));
    }
    let asterisk = &*target == "*" && method == Method::Options;
    if !target.starts_with('/') && !asterisk {
        return Err(HeadError::TargetForm);
    }
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(HeadError::Syntax("invalid HTTP version")),
    };
    let headers: Vec<Header> = req
        .headers
        .iter()
        .map(|h| Header::new(h.name, h.value))
        .collect();
    let framing = body_framing(&headers)?;
    let mut host = false;
    let mut keep_alive = version == Version::Http11;
    let mut expect_continue = false;
    for h in &headers {
        if h.name_is("host") {
            if host {
                return Err(HeadError::DuplicateHost);
            }
            host = true;
        } else if h.name_is("connection") {
            for token in h.value().split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name_is("expect") {
            if !h.value().trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                return Err(HeadError::UnsupportedExpect);
            }
            // HTTP/1.0 clients do not know 100 Continue (RFC 9110 §10.1.1).
            expect_continue = version == Version::Http11;
        }
    }
    if version == Version::Http11 && !host {
        return Err(HeadError::MissingHost);
    }
    Ok(Request {
        method,
        target,
        version,
        headers,
        framing,
        keep_alive,
        expect_continue,
        peer: None,
    })
}

fn body_framing(headers: &[Header]) -> Result<BodyFraming, HeadError> {
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in headers {
        if h.name_is("content-length") {
            // A list of identical values is tolerated (RFC 9110 §8.6).
            for part in h.value().split(|&b| b == b',') {
                let n = parse_decimal(part.trim_ascii()).ok_or(HeadError::BadContentLength)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::BadContentLength);
                }
                length = Some(n);
            }
        } else if h.name_is("transfer-encoding") {
            if chunked || !h.value().trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError::UnsupportedTransferEncoding);
            }
            chunked = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => Err(HeadError::LengthAndChunked),
        (None, true) => Ok(BodyFraming::Chunked),
        (Some(0) | None, false) => Ok(BodyFraming::Empty),
        (Some(n), false) => Ok(BodyFraming::Length(n)),
    }
}

/// Parses a non-empty run of ASCII digits that fits in a u64.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> Result<Parsed, HeadError> {
        parse_head(input, &HeadLimits::default())
    }

    fn complete(input: &[u8]) -> (Request, usize) {
        match parse(input) {
            Ok(Parsed::Complete(r, n)) => (r, n),
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    #[test]
    fn simple_get_is_complete_and_keeps_alive() {
        let (r, n) = complete(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\nNEXT");
        assert_eq!(n, 30);
        assert_eq!(r.method, Method::Get);
        assert_eq!(&*r.target, "/a?b");
        assert!(r.keep_alive);
        assert_eq!(r.framing, BodyFraming::Empty);
        assert_eq!(r.header("HOST"), Some(&b"x"[..]));
    }

    #[test]
    fn every_prefix_is_partial() {
        let full = b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
        for cut in 0..full.len() {
            assert!(
                matches!(parse(&full[..cut]), Ok(Parsed::Partial)),
                "prefix of {cut} bytes"
            );
        }
        let (r, _) = complete(full);
        assert_eq!(r.framing, BodyFraming::Length(5));
    }

    #[test]
    fn http10_closes_unless_asked() {
        let (r, _) = complete(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) = complete(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(r.keep_alive);
        let (r, _) = complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert!(!r.keep_alive);
    }

    #[test]
    fn long_request_line_is_414_even_before_newline() {
        let mut long = b"GET /".to_vec();
        long.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(parse(&long).map(|_| ()).unwrap_err().status(), 414);
        long.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(parse(&long).map(|_| ()).unwrap_err().status(), 414);
    }

    #[test]
    fn header_limits_are_431() {
        let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let err = parse(&many).map(|_| ()).unwrap_err();
        assert_eq!(err, HeadError::TooManyHeaders { limit: 100 });

        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        big.extend_from_slice(b"X-Big: ");
        big.extend(std::iter::repeat_n(b'v', 70 * 1024));
        // Not yet terminated: still over the limit.
        assert_eq!(parse(&big).map(|_| ()).unwrap_err().status(), 431);
    }

    #[test]
    fn framing_rules() {
        let (r, _) = complete(b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(r.framing, BodyFraming::Chunked);
        let bad: &[&[u8]] = &[
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"\x00\x01 garbage\r\n\r\n",
        ];
        for input in bad {
            assert!(
                parse(input).is_err(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let (r, _) = complete(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n");
        assert_eq!(r.framing, BodyFraming::Length(3));
    }

    #[test]
    fn expect_continue_only_for_http11() {
        let (r, _) = complete(
            b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        );
        assert!(r.expect_continue);
        let err = parse(b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.status(), 417);
    }

    #[test]
    fn decimal_parser_bounds() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"18446744073709551615"), None);
        assert_eq!(
            parse_decimal(b"1844674407370955161"),
            Some(1_844_674_407_370_955_161)
        );
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"1a"), None);
    }

    #[test]
    fn only_origin_form_targets_and_asterisk_for_options() {
        for target in [
            "2/v2/",
            ".evil.test:22222/v2/",
            "http://evil.test/v2/",
            "evil.test:443",
            "*",
            "@x/v2/",
        ] {
            let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
            let err = parse(head.as_bytes()).unwrap_err();
            assert_eq!(err, HeadError::TargetForm, "{target}");
            assert_eq!(err.status(), 400);
        }
        let (r, _) = complete(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(&*r.target, "*");
        let (r, _) = complete(b"GET //x/v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(&*r.target, "//x/v2/");
    }

    #[test]
    fn two_host_headers_are_400() {
        let err = parse(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n").unwrap_err();
        assert_eq!(err, HeadError::DuplicateHost);
        assert_eq!(err.status(), 400);
        let err = parse(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n").unwrap_err();
        assert_eq!(err, HeadError::DuplicateHost);
    }
    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&input);
        }

        #[test]
        fn valid_heads_parse_the_same_whatever_the_split(
            path in "/[a-z0-9/]{0,40}",
            names in proptest::collection::vec("[A-Za-z][A-Za-z0-9-]{0,15}", 0..10),
            len in 0u64..100_000,
        ) {
            let mut head = format!("PUT {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {len}\r\n");
            for (i, n) in names.iter().enumerate() {
                head.push_str(&format!("X-{n}: v{i}\r\n"));
            }
            head.push_str("\r\n");
            let bytes = head.as_bytes();
            for cut in 0..bytes.len() {
                proptest::prop_assert!(matches!(parse(&bytes[..cut]), Ok(Parsed::Partial)));
            }
            let (req, used) = complete(bytes);
            proptest::prop_assert_eq!(used, bytes.len());
            proptest::prop_assert_eq!(&*req.target, path.as_str());
            proptest::prop_assert_eq!(req.headers.len(), names.len() + 2);
            let want = if len == 0 { BodyFraming::Empty } else { BodyFraming::Length(len) };
            proptest::prop_assert_eq!(req.framing, want);
        }
    }
}
