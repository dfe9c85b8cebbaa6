//! The TLS side of an encrypted peer link ([`crate::peer_tls`]): the same
//! connection buffers, with a rustls session between them and the socket.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use bay_httpd::sys;
use bytes::BytesMut;
use monoio::net::TcpStream;

use super::{blob_file_short, metered, Chunk, Io, RECV_CHUNK};
use crate::rate::TokenBucket;

/// Blob bytes read for TLS at a time: a few records.
const TLS_FILE_CHUNK: usize = 64 * 1024;

impl Io<'_> {
    /// Completes the TLS handshake of an encrypted link.
    pub(super) async fn tls_handshake(&mut self) -> io::Result<()> {
        let unlimited = RefCell::new(TokenBucket::unlimited(Instant::now()));
        loop {
            self.flush(None, &unlimited)?;
            let Some(conn) = &self.tls else {
                return Ok(());
            };
            if !conn.is_handshaking() && !conn.wants_write() {
                return Ok(());
            }
            let (got, eof, _) = self.fill(RECV_CHUNK, &unlimited)?;
            if eof {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if got == 0 {
                self.wait_for_socket().await?;
            }
        }
    }

    /// [`Io::flush`] on an encrypted link: what TLS holds goes out first,
    /// and the next chunk goes into TLS only once the socket took it all,
    /// so at most one chunk waits in TLS.
    pub(super) fn flush_tls(
        &mut self,
        file: Option<&File>,
        bucket: &RefCell<TokenBucket>,
    ) -> io::Result<Option<Duration>> {
        let Io {
            stream,
            out,
            tls,
            file_buf,
            ..
        } = self;
        let Some(conn) = tls.as_mut() else {
            return Ok(None);
        };
        loop {
            while conn.wants_write() {
                match conn.write_tls(&mut SocketWriter(stream)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if conn.is_handshaking() {
                return Ok(None);
            }
            let Some(chunk) = out.chunks.front_mut() else {
                return Ok(None);
            };
            let done = match chunk {
                Chunk::Bytes(b) => {
                    conn.writer().write_all(b)?;
                    true
                }
                Chunk::File { offset, len } => {
                    let file =
                        file.ok_or_else(|| io::Error::other("block queued before handshake"))?;
                    let read = metered(bucket, (*len).min(TLS_FILE_CHUNK), |allowed| {
                        file_buf.resize(allowed, 0);
                        file.read_at(file_buf, *offset)
                    });
                    let n = match read {
                        Ok(read) => read?,
                        Err(wait) => return Ok(Some(wait)),
                    };
                    if n == 0 {
                        return Err(blob_file_short());
                    }
                    conn.writer().write_all(&file_buf[..n])?;
                    *offset += n as u64;
                    *len -= n;
                    *len == 0
                }
            };
            if done {
                out.chunks.pop_front();
            }
        }
    }

    /// [`Io::fill`] on an encrypted link: counts the ciphertext read, and
    /// leaves the plaintext in `rbuf`.
    pub(super) fn fill_tls(
        &mut self,
        limit: usize,
        bucket: &RefCell<TokenBucket>,
    ) -> io::Result<(usize, bool, Option<Duration>)> {
        let Io {
            stream,
            rbuf,
            tls,
            cbuf,
            ..
        } = self;
        let Some(conn) = tls.as_mut() else {
            return Ok((0, true, None));
        };
        let mut total = 0;
        while total < limit {
            cbuf.clear();
            let result = match metered(bucket, RECV_CHUNK, |allowed| {
                sys::recv_into(*stream, cbuf, allowed)
            }) {
                Ok(result) => result,
                Err(wait) => return Ok((total, false, Some(wait))),
            };
            match result {
                Ok(0) => return Ok((total, true, None)),
                Ok(n) => {
                    total += n;
                    let mut rest = &cbuf[..];
                    while !rest.is_empty() {
                        conn.read_tls(&mut rest)?;
                        conn.process_new_packets()
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        if take_plaintext(conn, rbuf)? {
                            return Ok((total, true, None));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((total, false, None))
    }
}

/// Moves what TLS decrypted into `rbuf`; true when the peer closed the
/// TLS session.
fn take_plaintext(conn: &mut rustls::Connection, rbuf: &mut BytesMut) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match conn.reader().read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// TLS output straight into the socket.
struct SocketWriter<'a>(&'a TcpStream);

impl io::Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send(self.0, buf, false)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
