//! HTTP/1.1 client on monoio: pooled keep-alive, rustls, redirects,
//! streamed bodies both ways.
//!
//! bay uses it to talk to upstream registries (and the object stores they
//! redirect blob reads to) and to its own services. A blob is relayed, not
//! loaded: response bodies come out piece by piece as `Bytes` split off the
//! read buffer, and a request body may stream from a [`BodySource`].
//!
//! ```text
//! Client::send(Request)
//!   ├─ redirect  (sans-IO: is it a redirect, where to, what survives)
//!   ├─ pool      (idle keep-alive connections per origin)
//!   ├─ conn      (resolve, TCP, tls; reads and writes with timeouts)
//!   ├─ request   (head encoding, body framing)
//!   ├─ head      (sans-IO response head parser and body framing rules)
//!   ├─ response  (Response, ResponseBody: Content-Length, chunked, close)
//!   └─ relay     (server request body as a source; response body into a
//!                 server response)
//! ```
//!
//! Decisions:
//! * Plain HTTP is refused unless the origin is listed ([`PlainHttp`]),
//!   like docker's `insecure-registries`: a registry's credentials must not
//!   cross the network in clear by accident.
//! * A connection goes back to the pool only after its response body was
//!   read to the end; a pooled connection the server has meanwhile closed is
//!   retried once on a fresh connection, for idempotent requests whose body
//!   can be sent again, and only when no response byte had arrived.
//! * Redirects are followed up to [`ClientConfig::max_redirects`];
//!   credentials are dropped when the origin changes (see [`redirect`]). A
//!   307/308 for a streamed body cannot be followed (the body is gone), so
//!   that response is returned as it is.
//! * Timeouts: connect (TCP and TLS together), response head (from the end
//!   of the request to the end of the head), idle (each body read or write).
//! * The client is per thread (monoio is thread per core): clone it freely
//!   within a thread; share the rustls configuration across threads with
//!   [`Client::with_tls`].
//! * Host names resolve with the system resolver, which blocks the worker
//!   while it runs; IP literals do not resolve.
//! * Errors and logs name origins, never queries or header values.

mod conn;
pub mod error;
pub mod head;
mod pool;
pub mod redirect;
mod relay;
pub mod request;
pub mod response;
pub mod tls;
pub mod url;

use std::cell::RefCell;
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

pub use error::{Error, Phase};
pub use head::{Framing, HeadLimits, Header, ResponseHead};
pub use relay::RelayError;
pub use request::{Body, BodySource, Request};
pub use response::{Response, ResponseBody};
pub use tls::TlsSetupError;
pub use url::{Origin, Scheme, Url, UrlError};

use crate::chunked::{ChunkHeader, ChunkedLimits, CHUNK_END, LAST_CHUNK};
use conn::Conn;
use head::HeadStatus;
use pool::Pool;
use request::BodyFraming;

/// Which origins may be reached over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PlainHttp {
    /// None: `http://` URLs are refused.
    #[default]
    Refuse,
    /// Only these `host:port` authorities (IPv6 in brackets).
    Origins(Vec<String>),
    /// Any origin (tests, or a deployment where the network is trusted).
    Any,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Limit for resolving, connecting and the TLS handshake together.
    pub connect_timeout: Duration,
    /// Limit from the end of the request to the end of the response head.
    pub header_timeout: Duration,
    /// Limit on each body read or write.
    pub idle_timeout: Duration,
    /// How long a connection may sit idle in the pool.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per origin.
    pub pool_max_idle_per_origin: usize,
    /// Most redirects followed for one request.
    pub max_redirects: usize,
    /// Bounds on response heads.
    pub head_limits: HeadLimits,
    /// Bounds on chunked framing.
    pub chunked_limits: ChunkedLimits,
    /// Bytes asked of the socket per body read.
    pub read_size: usize,
    /// Origins allowed plain HTTP.
    pub plain_http: PlainHttp,
    /// PEM file of CAs to trust besides the system's.
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(30),
            pool_max_idle_per_origin: 8,
            max_redirects: 5,
            head_limits: HeadLimits::default(),
            chunked_limits: ChunkedLimits::default(),
            read_size: 64 * 1024,
            plain_http: PlainHttp::Refuse,
            extra_ca_file: None,
        }
    }
}

/// Bytes of a redirect's body read to keep its connection; more closes it.
const REDIRECT_DRAIN: usize = 64 * 1024;

/// In-memory bodies up to this size go out in the same write as the head.
const COALESCE: usize = 16 * 1024;

/// An HTTP/1.1 client with a connection pool. Cheap to clone; not `Send`.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    tls: Arc<rustls::ClientConfig>,
    plain: HashSet<String>,
    pool: Rc<RefCell<Pool>>,
}

/// A failed exchange, and whether it may be retried on a fresh connection.
struct Failure {
    error: Error,
    stale: bool,
}

impl Client {
    /// A client with TLS trusting the system roots and
    /// `config.extra_ca_file`.
    pub fn new(config: ClientConfig) -> Result<Client, TlsSetupError> {
        let tls = tls::client_config(config.extra_ca_file.as_deref())?;
        Ok(Client::with_tls(config, tls))
    }

    /// A client with a ready rustls configuration (built once, shared by the
    /// clients of every worker thread).
    pub fn with_tls(config: ClientConfig, tls: Arc<rustls::ClientConfig>) -> Client {
        let plain = match &config.plain_http {
            PlainHttp::Origins(list) => list.iter().map(|a| a.to_ascii_lowercase()).collect(),
            PlainHttp::Refuse | PlainHttp::Any => HashSet::new(),
        };
        let pool = Pool::new(config.pool_max_idle_per_origin, config.pool_idle_timeout);
        Client {
            inner: Rc::new(Inner {
                config,
                tls,
                plain,
                pool: Rc::new(RefCell::new(pool)),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Idle pooled connections to `origin`.
    pub fn idle_connections(&self, origin: &Origin) -> usize {
        self.inner.pool.borrow().idle_count(origin)
    }

    /// Sends `request`, following redirects unless it says not to, and
    /// returns once the final response head has arrived.
    pub async fn send(&self, request: Request) -> Result<Response, Error> {
        let Request {
            mut method,
            mut url,
            mut headers,
            mut body,
            follow_redirects,
        } = request;
        let mut hops = 0;
        loop {
            let replay = body.replay();
            let response = self.exchange(&method, &url, &headers, body).await?;
            let status = response.status();
            if !follow_redirects || !redirect::is_redirect(status) {
                return Ok(response);
            }
            if hops >= self.inner.config.max_redirects {
                return Err(Error::TooManyRedirects {
                    origin: url.origin().clone(),
                    limit: self.inner.config.max_redirects,
                });
            }
            let location = response.header("location").map(|v| v.as_ref());
            let hop = redirect::plan_hop(&url, &method, status, location).map_err(|source| {
                Error::Redirect {
                    origin: url.origin().clone(),
                    source,
                }
            })?;
            body = match (hop.keep_body, replay) {
                (false, _) => Body::Empty,
                (true, Some(again)) => again,
                // The streamed body is spent; the caller sees the redirect.
                (true, None) => return Ok(response),
            };
            tracing::debug!(
                from = %url.origin(),
                to = %hop.url.origin(),
                path = hop.url.path(),
                status,
                "following redirect"
            );
            response.discard(REDIRECT_DRAIN).await;
            redirect::strip_headers(&mut headers, &hop);
            method = hop.method;
            url = hop.url;
            hops += 1;
        }
    }

    /// One request and its response head, on a pooled connection if there
    /// is one, else on a new one.
    async fn exchange(
        &self,
        method: &str,
        url: &Url,
        headers: &[(String, Vec<u8>)],
        mut body: Body,
    ) -> Result<Response, Error> {
        let origin = url.origin();
        self.check_plain(origin)?;
        let framing = BodyFraming::of(method, &body);
        let head = Bytes::from(
            request::encode_head(method, url, headers, framing).map_err(Error::InvalidRequest)?,
        );
        tracing::debug!(%origin, method, path = url.path(), "sending request");
        let pooled = self.inner.pool.borrow_mut().take(origin, Instant::now());
        if let Some(conn) = pooled {
            let replay = body.replay().filter(|_| is_idempotent(method));
            match self.round_trip(conn, method, url, head.clone(), body).await {
                Ok(response) => return Ok(response),
                Err(Failure { stale: true, error }) if replay.is_some() => {
                    tracing::debug!(%origin, %error, "pooled connection was closed; retrying");
                    body = replay.unwrap_or(Body::Empty);
                }
                Err(failure) => return Err(failure.error),
            }
        }
        let conn = Conn::open(origin, &self.inner.tls, self.inner.config.connect_timeout).await?;
        self.round_trip(conn, method, url, head, body)
            .await
            .map_err(|f| f.error)
    }

    fn check_plain(&self, origin: &Origin) -> Result<(), Error> {
        let allowed = origin.scheme == Scheme::Https
            || match self.inner.config.plain_http {
                PlainHttp::Any => true,
                PlainHttp::Refuse => false,
                PlainHttp::Origins(_) => self.inner.plain.contains(&origin.authority()),
            };
        if allowed {
            Ok(())
        } else {
            Err(Error::PlainHttpRefused {
                origin: origin.clone(),
            })
        }
    }

    /// Sends the request on `conn` and reads the response head.
    async fn round_trip(
        &self,
        mut conn: Conn,
        method: &str,
        url: &Url,
        head: Bytes,
        body: Body,
    ) -> Result<Response, Failure> {
        let config = &self.inner.config;
        let reused = conn.reused;
        // A write failing on a pooled connection means the server closed it
        // while idle: nothing was processed.
        let stale = |error: Error| Failure {
            error,
            stale: reused,
        };
        self.write_request(&mut conn, head, body)
            .await
            .map_err(|e| match e {
                e @ (Error::BodySource(_) | Error::BodyLength { .. }) => Failure {
                    error: e,
                    stale: false,
                },
                e => stale(e),
            })?;
        let response_head = self
            .read_head(&mut conn)
            .await
            .map_err(|(error, nothing)| Failure {
                error,
                stale: reused && nothing,
            })?;
        let plan = head::body_framing(method, &response_head).map_err(|source| Failure {
            error: Error::Head {
                origin: conn.origin.clone(),
                source,
            },
            stale: false,
        })?;
        tracing::debug!(
            origin = %conn.origin,
            status = response_head.status,
            framing = ?plan.framing,
            reused,
            "response head"
        );
        let body = ResponseBody::new(
            conn,
            plan.framing,
            plan.reusable,
            self.inner.pool.clone(),
            config.idle_timeout,
            config.read_size,
            config.chunked_limits,
        );
        Ok(Response::new(response_head, url.clone(), reused, body))
    }

    async fn write_request(&self, conn: &mut Conn, head: Bytes, body: Body) -> Result<(), Error> {
        let timeout = self.inner.config.idle_timeout;
        match body {
            Body::Empty => conn.write_all(head, timeout).await,
            Body::Bytes(data) if data.len() <= COALESCE => {
                let mut both = Vec::with_capacity(head.len() + data.len());
                both.extend_from_slice(&head);
                both.extend_from_slice(&data);
                conn.write_all(Bytes::from(both), timeout).await
            }
            Body::Bytes(data) => {
                conn.write_all(head, timeout).await?;
                conn.write_all(data, timeout).await
            }
            Body::Stream { length, source } => {
                conn.write_all(head, timeout).await?;
                send_stream(conn, length, source, timeout).await
            }
        }
    }

    /// Reads until a final (non-1xx) response head. The error says whether
    /// no byte at all had arrived.
    async fn read_head(&self, conn: &mut Conn) -> Result<ResponseHead, (Error, bool)> {
        let config = &self.inner.config;
        let deadline = Instant::now() + config.header_timeout;
        let mut nothing = conn.buf.is_empty();
        loop {
            match head::parse_response_head(&conn.buf, &config.head_limits) {
                Ok(HeadStatus::Complete { head, len }) => {
                    conn.buf.advance(len);
                    if !head.is_interim() {
                        return Ok(head);
                    }
                }
                Ok(HeadStatus::Partial) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let read = conn
                        .read_more(config.read_size, Phase::ReadHead, left)
                        .await;
                    match read {
                        Ok(0) => {
                            let error = Error::Closed {
                                origin: conn.origin.clone(),
                                phase: Phase::ReadHead,
                            };
                            return Err((error, nothing));
                        }
                        Ok(_) => nothing = false,
                        Err(Error::Timeout { origin, phase, .. }) => {
                            let after = config.header_timeout;
                            return Err((
                                Error::Timeout {
                                    origin,
                                    phase,
                                    after,
                                },
                                false,
                            ));
                        }
                        Err(e) => return Err((e, nothing)),
                    }
                }
                Err(source) => {
                    let error = Error::Head {
                        origin: conn.origin.clone(),
                        source,
                    };
                    return Err((error, false));
                }
            }
        }
    }
}

/// Methods that may be sent twice without changing the outcome.
fn is_idempotent(method: &str) -> bool {
    ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"].contains(&method)
}

/// Sends a streamed body, checking a declared length or chunking it.
async fn send_stream(
    conn: &mut Conn,
    length: Option<u64>,
    mut source: Box<dyn BodySource>,
    timeout: Duration,
) -> Result<(), Error> {
    let mut sent: u64 = 0;
    while let Some(piece) = source.next_chunk().await.map_err(Error::BodySource)? {
        let Some(len) = NonZeroUsize::new(piece.len()) else {
            continue;
        };
        sent += len.get() as u64;
        match length {
            Some(declared) if sent > declared => {
                return Err(Error::BodyLength {
                    declared,
                    given: sent,
                })
            }
            Some(_) => conn.write_all(piece, timeout).await?,
            None if piece.len() <= COALESCE => {
                let header = ChunkHeader::new(len);
                let mut framed = Vec::with_capacity(piece.len() + 24);
                framed.extend_from_slice(header.as_bytes());
                framed.extend_from_slice(&piece);
                framed.extend_from_slice(CHUNK_END);
                conn.write_all(Bytes::from(framed), timeout).await?;
            }
            None => {
                let header = Bytes::copy_from_slice(ChunkHeader::new(len).as_bytes());
                conn.write_all(header, timeout).await?;
                conn.write_all(piece, timeout).await?;
                conn.write_all(Bytes::from_static(CHUNK_END), timeout)
                    .await?;
            }
        }
    }
    match length {
        Some(declared) if sent != declared => Err(Error::BodyLength {
            declared,
            given: sent,
        }),
        Some(_) => Ok(()),
        None => {
            conn.write_all(Bytes::from_static(LAST_CHUNK), timeout)
                .await
        }
    }
}
