//! One client connection: opening it (resolve, TCP, TLS), and moving bytes
//! over it with a timeout on every step.
//!
//! A connection owns its read buffer: response bytes are read into it and
//! body pieces leave it as `Bytes` split off the front, so a body goes from
//! the socket to the caller without another copy (over TLS, rustls's
//! plaintext is copied once into it). On a timeout the in-flight operation is
//! dropped and with it the connection: an io_uring read may still complete
//! into a buffer the connection no longer owns, so the connection must never
//! be used again.

use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::error::{Error, Phase};
use super::tls::{self, HandshakeError, TlsStream};
use super::url::{Origin, Scheme};

/// The byte stream under a connection.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<rustls::ClientConnection>>),
}

/// An open connection to one origin.
#[derive(Debug)]
pub(crate) struct Conn {
    io: Transport,
    /// Bytes read and not yet consumed.
    pub(crate) buf: BytesMut,
    pub(crate) origin: Origin,
    /// Whether it served a request before (came from the pool).
    pub(crate) reused: bool,
    /// When it last finished a response, for the pool's idle timeout.
    pub(crate) idle_since: Instant,
}

/// Runs `fut` with a timeout, turning both failures into [`Error`].
pub(crate) async fn timed<T>(
    origin: &Origin,
    phase: Phase,
    after: Duration,
    fut: impl Future<Output = std::io::Result<T>>,
) -> Result<T, Error> {
    match monoio::time::timeout(after, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Error::Io {
            origin: origin.clone(),
            phase,
            source,
        }),
        Err(_) => Err(Error::Timeout {
            origin: origin.clone(),
            phase,
            after,
        }),
    }
}

impl Conn {
    /// Resolves, connects and (for https) handshakes, all within
    /// `timeout`.
    pub(crate) async fn open(
        origin: &Origin,
        tls_config: &Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Conn, Error> {
        let deadline = Instant::now() + timeout;
        let tcp = connect_tcp(origin, timeout).await?;
        let io = match origin.scheme {
            Scheme::Http => Transport::Plain(tcp),
            Scheme::Https => {
                let name = tls::server_name(&origin.host).map_err(|source| Error::Tls {
                    origin: origin.clone(),
                    source,
                })?;
                let left = deadline.saturating_duration_since(Instant::now());
                let handshake = TlsStream::connect(tcp, tls_config.clone(), name);
                match monoio::time::timeout(left, handshake).await {
                    Ok(Ok(stream)) => Transport::Tls(Box::new(stream)),
                    Ok(Err(HandshakeError::Tls(source))) => {
                        return Err(Error::Tls {
                            origin: origin.clone(),
                            source,
                        })
                    }
                    Ok(Err(HandshakeError::Io(source))) => {
                        return Err(Error::Io {
                            origin: origin.clone(),
                            phase: Phase::TlsHandshake,
                            source,
                        })
                    }
                    Err(_) => {
                        return Err(Error::Timeout {
                            origin: origin.clone(),
                            phase: Phase::TlsHandshake,
                            after: timeout,
                        })
                    }
                }
            }
        };
        Ok(Conn {
            io,
            buf: BytesMut::new(),
            origin: origin.clone(),
            reused: false,
            idle_since: Instant::now(),
        })
    }

    /// Reads at most `max` more bytes onto the end of `buf`; 0 means the
    /// peer closed.
    pub(crate) async fn read_more(
        &mut self,
        max: usize,
        phase: Phase,
        timeout: Duration,
    ) -> Result<usize, Error> {
        let origin = self.origin.clone();
        match &mut self.io {
            Transport::Plain(tcp) => {
                let mut buf = std::mem::take(&mut self.buf);
                buf.reserve(max);
                let start = buf.len();
                let end = start + max.min(buf.capacity() - start);
                let read = tcp.read(buf.slice_mut(start..end));
                let result = monoio::time::timeout(timeout, read).await;
                match result {
                    Ok((res, slice)) => {
                        self.buf = slice.into_inner();
                        res.map_err(|source| Error::Io {
                            origin,
                            phase,
                            source,
                        })
                    }
                    // The buffer went with the cancelled read; the
                    // connection is finished anyway.
                    Err(_) => Err(Error::Timeout {
                        origin,
                        phase,
                        after: timeout,
                    }),
                }
            }
            Transport::Tls(stream) => {
                timed(&origin, phase, timeout, stream.read(&mut self.buf, max)).await
            }
        }
    }

    /// Writes `data` whole.
    pub(crate) async fn write_all(&mut self, data: Bytes, timeout: Duration) -> Result<(), Error> {
        let origin = self.origin.clone();
        let phase = Phase::WriteRequest;
        match &mut self.io {
            Transport::Plain(tcp) => {
                timed(&origin, phase, timeout, async {
                    let (res, _) = tcp.write_all(data).await;
                    res.map(|_| ())
                })
                .await
            }
            Transport::Tls(stream) => timed(&origin, phase, timeout, stream.write_all(&data)).await,
        }
    }
}

/// Resolves the origin and connects to its addresses in turn.
async fn connect_tcp(origin: &Origin, timeout: Duration) -> Result<TcpStream, Error> {
    // Resolution blocks the worker for the duration of getaddrinfo; IP
    // literals (the common case for bay's own services) do not resolve.
    let addrs: Vec<SocketAddr> = (origin.host.as_str(), origin.port)
        .to_socket_addrs()
        .map_err(|source| Error::Resolve {
            authority: origin.authority(),
            source,
        })?
        .collect();
    let mut last = None;
    let deadline = Instant::now() + timeout;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        match monoio::time::timeout(left, TcpStream::connect_addr(addr)).await {
            Ok(Ok(tcp)) => {
                // Heads and small bodies go out in separate writes; do not
                // let Nagle hold them back.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => last = Some((addr, e)),
            Err(_) => {
                return Err(Error::Timeout {
                    origin: origin.clone(),
                    phase: Phase::Connect,
                    after: timeout,
                })
            }
        }
    }
    match last {
        Some((addr, source)) => Err(Error::Connect {
            origin: origin.clone(),
            addr,
            source,
        }),
        None => Err(Error::Resolve {
            authority: origin.authority(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
        }),
    }
}
