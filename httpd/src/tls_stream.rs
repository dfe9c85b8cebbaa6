//! A TLS stream over a monoio TCP stream, for the client (registries,
//! trackers) and the server (a tracker's HTTPS listener) alike.
//!
//! monoio's streams take owned buffers (io_uring needs them), while rustls
//! works on borrowed ones, so this module keeps its own ciphertext buffer
//! and moves bytes between the two: ciphertext is read into `raw`, handed
//! to rustls, and plaintext is copied straight into the caller's buffer.
//! rustls does all the protocol work; nothing here interprets TLS bytes.

use std::io::{self, BufRead};
use std::ops::DerefMut;
use std::sync::Arc;

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::ConnectionCommon;

/// Bytes of ciphertext read from the socket at a time: several records, so
/// that one read feeds several body pieces' worth of decryption.
const RAW_READ: usize = 64 * 1024;

/// How a handshake failed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The socket failed.
    Io(io::Error),
    /// The peer or its certificate was refused, or the peer refused us.
    Tls(rustls::Error),
}

/// A TLS stream (client or server side) over a monoio TCP stream.
pub(crate) struct TlsStream<C> {
    pub(crate) tcp: TcpStream,
    conn: C,
    /// Ciphertext read from the socket, `raw[raw_pos..]` not yet fed.
    raw: Vec<u8>,
    raw_pos: usize,
}

impl<C, D> std::fmt::Debug for TlsStream<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl TlsStream<rustls::ClientConnection> {
    /// Connects as a client: runs the handshake to completion over `tcp`.
    pub(crate) async fn connect(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Self, HandshakeError> {
        let conn = rustls::ClientConnection::new(config, name).map_err(HandshakeError::Tls)?;
        TlsStream::handshake(tcp, conn).await
    }
}

impl TlsStream<rustls::ServerConnection> {
    /// Accepts as a server: runs the handshake to completion over `tcp`.
    pub(crate) async fn accept(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<Self, HandshakeError> {
        let conn = rustls::ServerConnection::new(config).map_err(HandshakeError::Tls)?;
        TlsStream::handshake(tcp, conn).await
    }
}

impl<C, D> TlsStream<C>
where
    C: DerefMut<Target = ConnectionCommon<D>>,
{
    /// Runs the handshake to completion over `tcp`.
    async fn handshake(tcp: TcpStream, conn: C) -> Result<Self, HandshakeError> {
        let mut stream = TlsStream {
            tcp,
            conn,
            raw: Vec::with_capacity(RAW_READ),
            raw_pos: 0,
        };
        while stream.conn.is_handshaking() {
            stream.flush().await.map_err(HandshakeError::Io)?;
            if !stream.conn.is_handshaking() {
                break;
            }
            if stream.raw_pos >= stream.raw.len() {
                let n = stream.read_raw().await.map_err(HandshakeError::Io)?;
                if n == 0 {
                    return Err(HandshakeError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the connection during the TLS handshake",
                    )));
                }
            }
            if let Err(e) = stream.feed() {
                return Err(stream.fail_with_alert(e).await);
            }
        }
        stream.flush().await.map_err(HandshakeError::Io)?;
        Ok(stream)
    }

    /// Sends the alert rustls queued for a failure, then returns the failure.
    async fn fail_with_alert(&mut self, e: HandshakeError) -> HandshakeError {
        let _ = self.flush().await;
        e
    }

    /// Reads plaintext, appending up to `max` bytes to `out`. `Ok(0)` means
    /// the peer closed cleanly (close_notify); a close without it is
    /// `UnexpectedEof`, since it may be a truncation.
    pub(crate) async fn read(&mut self, out: &mut impl Plaintext, max: usize) -> io::Result<usize> {
        loop {
            if let Some(n) = self.take_plaintext(out, max)? {
                return Ok(n);
            }
            // Alerts and key updates rustls wants to send go out now.
            self.flush().await?;
            if self.read_raw().await? == 0 {
                // Tell rustls about the EOF; the reader then says whether
                // the close was clean (Ok(0)) or a truncation (an error).
                let mut eof: &[u8] = &[];
                self.conn.read_tls(&mut eof)?;
                self.conn.process_new_packets().map_err(invalid_data)?;
            }
        }
    }

    /// Moves up to `max` bytes of plaintext into `out`, decrypting what
    /// ciphertext is already buffered but never waiting on the socket.
    /// `None` means nothing is available yet.
    fn take_plaintext(
        &mut self,
        out: &mut impl Plaintext,
        max: usize,
    ) -> io::Result<Option<usize>> {
        let mut total = 0;
        loop {
            match self.conn.reader().fill_buf() {
                // Empty without error: close_notify was received.
                Ok([]) => return Ok(Some(total)),
                Ok(plain) => {
                    let n = plain.len().min(max - total);
                    out.put(plain.get(..n).unwrap_or(plain));
                    self.conn.reader().consume(n);
                    total += n;
                    if total == max {
                        return Ok(Some(total));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.raw_pos < self.raw.len() {
                        self.feed().map_err(|e| match e {
                            HandshakeError::Io(e) => e,
                            HandshakeError::Tls(e) => invalid_data(e),
                        })?;
                        continue;
                    }
                    return Ok((total > 0).then_some(total));
                }
                // A truncation after some data: hand over the data first.
                Err(_) if total > 0 => return Ok(Some(total)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts and sends all of `data`.
    pub(crate) async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = io::Write::write(&mut self.conn.writer(), data)?;
            data = data.get(n..).unwrap_or_default();
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes whatever ciphertext rustls has queued.
    async fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut out = Vec::new();
            self.conn.write_tls(&mut out)?;
            let (res, _) = self.tcp.write_all(out).await;
            res?;
        }
        Ok(())
    }

    /// Reads ciphertext from the socket into `raw`; returns the byte count.
    async fn read_raw(&mut self) -> io::Result<usize> {
        let mut buf = std::mem::take(&mut self.raw);
        buf.clear();
        buf.reserve(RAW_READ);
        let (res, buf) = self.tcp.read(buf).await;
        self.raw = buf;
        self.raw_pos = 0;
        res
    }

    /// Hands unread ciphertext to rustls and processes it.
    fn feed(&mut self) -> Result<(), HandshakeError> {
        let mut pending = self.raw.get(self.raw_pos..).unwrap_or_default();
        let before = pending.len();
        self.conn
            .read_tls(&mut pending)
            .map_err(HandshakeError::Io)?;
        self.raw_pos += before - pending.len();
        self.conn
            .process_new_packets()
            .map_err(HandshakeError::Tls)?;
        Ok(())
    }
}

/// Where decrypted bytes go.
pub(crate) trait Plaintext {
    fn put(&mut self, bytes: &[u8]);
}

impl Plaintext for BytesMut {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Plaintext for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

fn invalid_data(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
