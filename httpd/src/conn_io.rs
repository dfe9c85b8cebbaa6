//! A connection's socket (plain, or TLS on an HTTPS listener) with its
//! read buffer.
//!
//! monoio reads into owned buffers, so the buffer is moved into each read
//! and back; bytes not yet parsed (a body, pipelined requests) stay in it
//! between requests. Over TLS, rustls's plaintext is copied into it, and a
//! file body is read and encrypted rather than sent by sendfile(2).

use std::io;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::tls_stream::TlsStream;

const INITIAL_CAPACITY: usize = 16 * 1024;
const MIN_READ: usize = 4 * 1024;

/// The byte stream under a connection.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<rustls::ServerConnection>>),
}

/// The socket and the bytes read from it but not yet consumed.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) stream: Transport,
    data: Vec<u8>,
    start: usize,
}

/// Largest piece of a file read and encrypted at once over TLS.
const TLS_FILE_PIECE: usize = 64 * 1024;

impl ConnIo {
    pub(crate) fn new(stream: Transport) -> Self {
        Self {
            stream,
            data: Vec::with_capacity(INITIAL_CAPACITY),
            start: 0,
        }
    }

    /// Sends `len` bytes of `file` from `offset`: by sendfile(2) on a plain
    /// socket, read and encrypted over TLS.
    pub(crate) async fn send_file(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
        limit: Duration,
    ) -> io::Result<()> {
        match &mut self.stream {
            Transport::Plain(tcp) => {
                crate::zerocopy::send_file(tcp, file, offset, len, limit).await
            }
            Transport::Tls(tls) => {
                use std::os::unix::fs::FileExt;
                let mut at = offset;
                let end = offset.saturating_add(len);
                let mut buf = vec![0u8; TLS_FILE_PIECE];
                while at < end {
                    let want = usize::try_from(end - at)
                        .unwrap_or(TLS_FILE_PIECE)
                        .min(TLS_FILE_PIECE);
                    let piece = buf.get_mut(..want).unwrap_or_default();
                    let n = file.read_at(piece, at)?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let sent = tls.write_all(piece.get(..n).unwrap_or_default());
                    match monoio::time::timeout(limit, sent).await {
                        Ok(r) => r?,
                        Err(_) => return Err(io::ErrorKind::TimedOut.into()),
                    }
                    at += n as u64;
                }
                Ok(())
            }
        }
    }

    /// Bytes read and not yet consumed.
    pub(crate) fn buffered(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }

    /// Marks `n` buffered bytes as used.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes after the buffered ones; `Ok(0)` at end of stream.
    pub(crate) async fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.data.drain(..self.start);
            self.start = 0;
        }
        if self.data.capacity() - self.data.len() < MIN_READ {
            self.data.reserve(INITIAL_CAPACITY.max(self.data.len()));
        }
        match &mut self.stream {
            Transport::Plain(tcp) => {
                let buf = std::mem::take(&mut self.data);
                let len = buf.len();
                let cap = buf.capacity();
                // If this future is dropped mid-read the buffer goes with
                // the operation; the connection is being closed then.
                let (res, slice) = tcp.read(buf.slice_mut(len..cap)).await;
                self.data = slice.into_inner();
                res
            }
            Transport::Tls(tls) => {
                let room = self.data.capacity() - self.data.len();
                tls.read(&mut self.data, room.max(MIN_READ)).await
            }
        }
    }

    /// Reads more bytes, failing with `TimedOut` after `limit`.
    pub(crate) async fn fill_within(&mut self, limit: Duration) -> io::Result<usize> {
        match monoio::time::timeout(limit, self.fill()).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Writes all of `buf`, failing with `TimedOut` after `limit`.
    pub(crate) async fn write_within<B: monoio::buf::IoBuf + AsRef<[u8]> + 'static>(
        &mut self,
        buf: B,
        limit: Duration,
    ) -> io::Result<()> {
        match &mut self.stream {
            Transport::Plain(tcp) => match monoio::time::timeout(limit, tcp.write_all(buf)).await {
                Ok((r, _)) => r.map(|_| ()),
                Err(_) => Err(io::ErrorKind::TimedOut.into()),
            },
            Transport::Tls(tls) => {
                match monoio::time::timeout(limit, tls.write_all(buf.as_ref())).await {
                    Ok(r) => r,
                    Err(_) => Err(io::ErrorKind::TimedOut.into()),
                }
            }
        }
    }
}
