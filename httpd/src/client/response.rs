//! Responses and their streamed bodies.
//!
//! A body is read piece by piece with [`Response::chunk`] (or
//! [`ResponseBody::chunk`]), each piece a `Bytes` split off the connection's
//! read buffer, so a layer of any size can be relayed into a server response
//! while only one read's worth of it is in memory. When the last piece has
//! been read the connection goes back to the pool (if the server allows
//! keep-alive); a response dropped before its end takes its connection with
//! it, since the stream is then in the middle of a message.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::conn::Conn;
use super::error::{Error, Phase};
use super::head::{Framing, Header, ResponseHead};
use super::pool::Pool;
use super::url::{Origin, Url};
use crate::chunked::{ChunkedDecoder, ChunkedLimits, Decoded};

/// A response whose head has arrived; the body follows on demand.
#[derive(Debug)]
pub struct Response {
    head: ResponseHead,
    url: Url,
    reused: bool,
    body: ResponseBody,
}

impl Response {
    pub(crate) fn new(head: ResponseHead, url: Url, reused: bool, body: ResponseBody) -> Response {
        Response {
            head,
            url,
            reused,
            body,
        }
    }

    /// Status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// Status line and header fields.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// Header fields in order, repeats kept.
    pub fn headers(&self) -> &[Header] {
        &self.head.headers
    }

    /// The first value of the field `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&Bytes> {
        self.head.header(name)
    }

    /// The URL that answered, after any redirects.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the request went over a pooled keep-alive connection.
    pub fn connection_reused(&self) -> bool {
        self.reused
    }

    /// How the body is delimited on the wire.
    pub fn framing(&self) -> Framing {
        self.body.framing
    }

    /// The body length when the server declared it (`Content-Length`; 0 for
    /// responses without a body).
    pub fn content_length(&self) -> Option<u64> {
        match self.body.framing {
            Framing::Empty => Some(0),
            Framing::Length(n) => Some(n),
            Framing::Chunked | Framing::UntilClose => None,
        }
    }

    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.body.chunk().await
    }

    /// Reads the whole body into memory, failing past `limit` bytes. For
    /// small bodies (manifests, tokens, errors); stream blobs with
    /// [`Response::chunk`].
    pub async fn bytes(mut self, limit: usize) -> Result<Bytes, Error> {
        let mut all = BytesMut::new();
        while let Some(piece) = self.body.chunk().await? {
            if all.len() + piece.len() > limit {
                return Err(Error::BodyTooLarge {
                    origin: self.url.origin().clone(),
                    limit,
                });
            }
            all.extend_from_slice(&piece);
        }
        Ok(all.freeze())
    }

    /// Splits into head and body, for relaying the body elsewhere.
    pub fn into_parts(self) -> (ResponseHead, ResponseBody) {
        (self.head, self.body)
    }

    /// Reads and drops up to `limit` body bytes so the connection can be
    /// reused; a longer body closes the connection instead.
    pub(crate) async fn discard(mut self, limit: usize) {
        let mut seen = 0;
        while let Ok(Some(piece)) = self.body.chunk().await {
            seen += piece.len();
            if seen > limit {
                return;
            }
        }
    }
}

#[derive(Debug)]
enum State {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// The body of a response, read piece by piece.
#[derive(Debug)]
pub struct ResponseBody {
    conn: Option<Conn>,
    origin: Origin,
    state: State,
    framing: Framing,
    reusable: bool,
    pool: Rc<RefCell<Pool>>,
    idle_timeout: Duration,
    read_size: usize,
}

impl ResponseBody {
    pub(crate) fn new(
        conn: Conn,
        framing: Framing,
        reusable: bool,
        pool: Rc<RefCell<Pool>>,
        idle_timeout: Duration,
        read_size: usize,
        chunked_limits: ChunkedLimits,
    ) -> ResponseBody {
        let state = match framing {
            Framing::Empty => State::Length(0),
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(ChunkedDecoder::with_limits(chunked_limits)),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = ResponseBody {
            origin: conn.origin.clone(),
            conn: Some(conn),
            state,
            framing,
            reusable,
            pool,
            idle_timeout,
            read_size,
        };
        if matches!(body.state, State::Length(0)) {
            body.finish();
        }
        body
    }

    /// Whether the whole body has been read.
    pub fn is_end(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next piece of the body, `None` at its end. Each piece is at most
    /// one read of the socket; the wait for each read is bounded by the
    /// idle timeout.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            match &mut self.state {
                State::Done => return Ok(None),
                State::Length(remaining) => {
                    if *remaining == 0 {
                        self.finish();
                        return Ok(None);
                    }
                    if !conn.buf.is_empty() {
                        let n = usize::try_from(*remaining)
                            .map_or(conn.buf.len(), |r| r.min(conn.buf.len()));
                        *remaining -= n as u64;
                        let piece = conn.buf.split_to(n).freeze();
                        if *remaining == 0 {
                            self.finish();
                        }
                        return Ok(Some(piece));
                    }
                    let missing = *remaining;
                    if self.read().await? == 0 {
                        return Err(self.fail(Error::Truncated {
                            origin: self.origin.clone(),
                            missing,
                        }));
                    }
                }
                State::Chunked(decoder) => match decoder.decode(&conn.buf) {
                    Ok(Decoded::Data { data, consumed }) => {
                        let spent = conn.buf.split_to(consumed).freeze();
                        return Ok(Some(spent.slice(data)));
                    }
                    Ok(Decoded::Partial { consumed }) => {
                        conn.buf.advance(consumed);
                        if self.read().await? == 0 {
                            return Err(self.fail(Error::Closed {
                                origin: self.origin.clone(),
                                phase: Phase::ReadBody,
                            }));
                        }
                    }
                    Ok(Decoded::Done { consumed }) => {
                        conn.buf.advance(consumed);
                        self.finish();
                        return Ok(None);
                    }
                    Err(source) => {
                        return Err(self.fail(Error::Chunked {
                            origin: self.origin.clone(),
                            source,
                        }))
                    }
                },
                State::UntilClose => {
                    if !conn.buf.is_empty() {
                        return Ok(Some(conn.buf.split().freeze()));
                    }
                    if self.read().await? == 0 {
                        self.finish();
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Reads more bytes into the connection buffer; drops the connection
    /// on failure.
    async fn read(&mut self) -> Result<usize, Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        match conn
            .read_more(self.read_size, Phase::ReadBody, self.idle_timeout)
            .await
        {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Ends the body after an error: the connection is not reusable.
    fn fail(&mut self, e: Error) -> Error {
        self.conn = None;
        self.state = State::Done;
        e
    }

    /// Ends the body normally, returning the connection to the pool when
    /// the server allows it.
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take() {
            if self.reusable {
                self.pool.borrow_mut().put(conn, Instant::now());
            }
        }
    }
}
