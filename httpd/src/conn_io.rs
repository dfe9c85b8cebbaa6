//! A connection's socket with its read buffer.
//!
//! monoio reads into owned buffers, so the buffer is moved into each read
//! and back; bytes not yet parsed (a body, pipelined requests) stay in it
//! between requests.

use std::io;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

const INITIAL_CAPACITY: usize = 16 * 1024;
const MIN_READ: usize = 4 * 1024;

/// The socket and the bytes read from it but not yet consumed.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) stream: TcpStream,
    data: Vec<u8>,
    start: usize,
}

impl ConnIo {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            data: Vec::with_capacity(INITIAL_CAPACITY),
            start: 0,
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
        let buf = std::mem::take(&mut self.data);
        let len = buf.len();
        let cap = buf.capacity();
        // If this future is dropped mid-read the buffer goes with the
        // operation; the connection is being closed in that case.
        let (res, slice) = self.stream.read(buf.slice_mut(len..cap)).await;
        self.data = slice.into_inner();
        res
    }

    /// Reads more bytes, failing with `TimedOut` after `limit`.
    pub(crate) async fn fill_within(&mut self, limit: Duration) -> io::Result<usize> {
        match monoio::time::timeout(limit, self.fill()).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Writes all of `buf`, failing with `TimedOut` after `limit`.
    pub(crate) async fn write_within<B: monoio::buf::IoBuf + 'static>(
        &mut self,
        buf: B,
        limit: Duration,
    ) -> io::Result<()> {
        match monoio::time::timeout(limit, self.stream.write_all(buf)).await {
            Ok((r, _)) => r.map(|_| ()),
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}
