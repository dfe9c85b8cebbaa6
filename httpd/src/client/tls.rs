//! TLS for the client: the rustls configuration (trusted roots, ALPN) and a
//! stream that drives a rustls `ClientConnection` over a monoio TCP stream.
//!
//! monoio's streams take owned buffers (io_uring needs them), while rustls
//! works on borrowed ones, so this module keeps its own ciphertext buffer and
//! moves bytes between the two: ciphertext is read into `raw`, handed to
//! rustls, and plaintext is copied straight into the caller's buffer. rustls
//! does all the protocol work; nothing here interprets TLS bytes.
//!
//! Trust: the system's roots (rustls-native-certs, which reads
//! `/etc/ssl/certs` or `SSL_CERT_FILE`/`SSL_CERT_DIR`), plus an optional PEM
//! file of extra CAs for registries signed by a private CA. ALPN offers only
//! `http/1.1`. SNI is sent for DNS names; IP literals are checked against the
//! certificate's IP addresses.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Bytes of ciphertext read from the socket at a time: several records, so
/// that one read feeds several body pieces' worth of decryption.
const RAW_READ: usize = 64 * 1024;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The extra CA file could not be read.
    #[error("reading CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The extra CA file has no usable certificate.
    #[error("CA file {path} has no PEM certificate: {reason}")]
    CaFilePem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused a root certificate.
    #[error("CA certificate refused: {0}")]
    Certificate(rustls::Error),
    /// rustls refused the protocol versions.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// Builds the client's rustls configuration: system roots plus the PEM
/// certificates in `extra_ca`, ALPN `http/1.1`.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::warn!(error = %err, "skipping unreadable system CA certificates");
    }
    // Some system stores carry certificates webpki cannot parse; one bad
    // entry must not cost the others.
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(added, ignored, "system CA certificates loaded");
    }
    if let Some(path) = extra_ca {
        for cert in read_pem_certs(path)? {
            roots.add(cert).map_err(TlsSetupError::Certificate)?;
        }
    }
    if roots.is_empty() {
        // Plain-HTTP-only deployments (a container without a CA bundle)
        // still work; every TLS handshake will fail as an unknown issuer.
        tracing::warn!("no trusted CA certificates: system store empty and no CA file");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::CaFile {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::CaFilePem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::CaFilePem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The name a connection to `host` checks the certificate against.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, rustls::Error> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| rustls::Error::General(format!("{host} is not a valid TLS server name")))
}

/// How a handshake failed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The socket failed.
    Io(io::Error),
    /// The peer or its certificate was refused, or the peer refused us.
    Tls(rustls::Error),
}

/// A TLS client stream over a monoio TCP stream.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    conn: rustls::ClientConnection,
    /// Ciphertext read from the socket, `raw[raw_pos..]` not yet fed.
    raw: Vec<u8>,
    raw_pos: usize,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Runs the handshake to completion over `tcp`.
    pub(crate) async fn handshake(
        tcp: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<TlsStream, HandshakeError> {
        let conn = rustls::ClientConnection::new(config, name).map_err(HandshakeError::Tls)?;
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
    pub(crate) async fn read(&mut self, out: &mut BytesMut, max: usize) -> io::Result<usize> {
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
    fn take_plaintext(&mut self, out: &mut BytesMut, max: usize) -> io::Result<Option<usize>> {
        let mut total = 0;
        loop {
            match self.conn.reader().fill_buf() {
                // Empty without error: close_notify was received.
                Ok([]) => return Ok(Some(total)),
                Ok(plain) => {
                    let n = plain.len().min(max - total);
                    out.extend_from_slice(plain.get(..n).unwrap_or(plain));
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

fn invalid_data(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
