//! The client's error: what failed, at which step, against which origin.
//!
//! Messages name the origin (`https://host:port`) but never a path's query
//! or a header value: object-store redirects carry signatures in the query,
//! and requests carry credentials in headers.

use std::fmt;
use std::io;
use std::time::Duration;

use super::head::HeadError;
use super::redirect::RedirectError;
use super::url::{Origin, UrlError};
use crate::chunked::ChunkedError;

/// The step of an exchange an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake.
    TlsHandshake,
    /// Sending the request head or body.
    WriteRequest,
    /// Waiting for and reading the response head.
    ReadHead,
    /// Reading the response body.
    ReadBody,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connecting to",
            Phase::TlsHandshake => "in the TLS handshake with",
            Phase::WriteRequest => "sending the request to",
            Phase::ReadHead => "reading the response head from",
            Phase::ReadBody => "reading the response body from",
        })
    }
}

/// Everything that can go wrong with a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL (given or from a redirect) was refused.
    #[error("invalid URL: {0}")]
    Url(#[from] UrlError),
    /// The request itself is malformed (method or header bytes).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Plain HTTP to an origin that was not allowed it.
    #[error("plain HTTP to {origin} is not allowed: use https or list {} as a plain-HTTP origin", origin.authority())]
    PlainHttpRefused {
        /// The origin.
        origin: Origin,
    },
    /// The host name did not resolve.
    #[error("resolving {authority}: {source}")]
    Resolve {
        /// `host:port`.
        authority: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Every address of the origin refused or failed the connection.
    #[error("connecting to {origin} ({addr}): {source}")]
    Connect {
        /// The origin.
        origin: Origin,
        /// The last address tried.
        addr: std::net::SocketAddr,
        /// The socket error (connection refused, unreachable...).
        source: io::Error,
    },
    /// The TLS handshake failed: certificate, protocol, or the peer's alert.
    #[error("TLS handshake with {origin} failed: {}", describe_tls(source))]
    Tls {
        /// The origin.
        origin: Origin,
        /// rustls's error.
        source: rustls::Error,
    },
    /// A step took longer than its timeout.
    #[error("timed out after {after:?} {phase} {origin}")]
    Timeout {
        /// The origin.
        origin: Origin,
        /// The step.
        phase: Phase,
        /// The timeout that expired.
        after: Duration,
    },
    /// A socket error during a step.
    #[error("I/O error {phase} {origin}: {source}")]
    Io {
        /// The origin.
        origin: Origin,
        /// The step.
        phase: Phase,
        /// The socket error.
        source: io::Error,
    },
    /// The server closed the connection before the step was done.
    #[error("{origin} closed the connection before {}", closed_before(*phase))]
    Closed {
        /// The origin.
        origin: Origin,
        /// The step.
        phase: Phase,
    },
    /// The response head was refused.
    #[error("bad response head from {origin}: {source}")]
    Head {
        /// The origin.
        origin: Origin,
        /// What was wrong.
        source: HeadError,
    },
    /// The chunked response body was malformed.
    #[error("bad chunked body from {origin}: {source}")]
    Chunked {
        /// The origin.
        origin: Origin,
        /// What was wrong.
        source: ChunkedError,
    },
    /// A Content-Length body ended early.
    #[error("response body from {origin} ended {missing} bytes short")]
    Truncated {
        /// The origin.
        origin: Origin,
        /// Bytes still due.
        missing: u64,
    },
    /// A body read whole was larger than the caller's limit.
    #[error("response body from {origin} larger than {limit} bytes")]
    BodyTooLarge {
        /// The origin.
        origin: Origin,
        /// The limit.
        limit: usize,
    },
    /// A redirect could not be followed.
    #[error("redirect from {origin}: {source}")]
    Redirect {
        /// The origin that answered with the redirect.
        origin: Origin,
        /// Why it could not be followed.
        source: RedirectError,
    },
    /// More redirects than the limit.
    #[error("more than {limit} redirects (the last from {origin})")]
    TooManyRedirects {
        /// The origin of the last redirect.
        origin: Origin,
        /// The limit.
        limit: usize,
    },
    /// The streamed request body failed at its source.
    #[error("request body source failed: {0}")]
    BodySource(io::Error),
    /// A streamed body of declared length gave a different number of bytes.
    #[error("request body declared {declared} bytes but its source gave {given}")]
    BodyLength {
        /// Declared length.
        declared: u64,
        /// Bytes the source gave (at least).
        given: u64,
    },
}

impl Error {
    /// What failed, in words fit for an answer to a remote client: no
    /// address, port, resolver or socket detail, so that error bodies
    /// cannot be used to probe the network behind the server. The full
    /// error (its `Display`) is for the operator's log.
    pub fn summary(&self) -> &'static str {
        match self {
            Error::Url(_) | Error::InvalidRequest(_) => "the request cannot be sent upstream",
            Error::PlainHttpRefused { .. } => "plain HTTP to the upstream is not allowed",
            Error::Resolve { .. } | Error::Connect { .. } => "cannot connect to the upstream",
            Error::Tls { .. } => "TLS handshake with the upstream failed",
            Error::Timeout { .. } => "the upstream did not answer in time",
            Error::Io { .. } | Error::Closed { .. } => "the upstream connection failed",
            Error::Head { .. } | Error::Chunked { .. } | Error::Truncated { .. } => {
                "the upstream sent a malformed response"
            }
            Error::BodyTooLarge { .. } => "the upstream response is too large",
            Error::Redirect { .. } | Error::TooManyRedirects { .. } => {
                "the upstream redirect cannot be followed"
            }
            Error::BodySource(_) | Error::BodyLength { .. } => "the request body failed",
        }
    }

    /// Whether a timeout expired.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// Whether the failure was in reaching the origin at all (resolve,
    /// connect, TLS), before any request byte was sent.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Error::Resolve { .. }
                | Error::Connect { .. }
                | Error::Tls { .. }
                | Error::Timeout {
                    phase: Phase::Connect | Phase::TlsHandshake,
                    ..
                }
        )
    }
}

fn closed_before(phase: Phase) -> &'static str {
    match phase {
        Phase::Connect | Phase::TlsHandshake => "the TLS handshake completed",
        Phase::WriteRequest => "the request was sent",
        Phase::ReadHead => "sending a response head",
        Phase::ReadBody => "the response body ended",
    }
}

/// Puts the common certificate failures in words an operator acts on.
fn describe_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let plain = match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "certificate issued by an unknown CA (add it with the CA file option)"
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "certificate expired"
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "certificate not valid for this host name",
        rustls::Error::InvalidCertificate(C::BadSignature) => "certificate signature invalid",
        rustls::Error::NoApplicationProtocol => "server does not speak http/1.1 (ALPN)",
        _ => return e.to_string(),
    };
    format!("{plain} ({e})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::url::Scheme;

    fn origin() -> Origin {
        Origin {
            scheme: Scheme::Https,
            host: "reg.example".into(),
            port: 5000,
        }
    }

    #[test]
    fn messages_name_step_and_origin() {
        let e = Error::Timeout {
            origin: origin(),
            phase: Phase::ReadHead,
            after: Duration::from_secs(3),
        };
        assert_eq!(
            e.to_string(),
            "timed out after 3s reading the response head from https://reg.example:5000"
        );
        assert!(e.is_timeout());
        let e = Error::Tls {
            origin: origin(),
            source: rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        };
        assert!(e.to_string().contains("unknown CA"), "{e}");
        assert!(e.is_connect());
    }
}
