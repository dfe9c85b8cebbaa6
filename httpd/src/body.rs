//! The request body as a handler reads it: chunk by chunk, straight from
//! the connection, never buffered whole.
//!
//! The body borrows the connection's socket for each read and gives it
//! back after, so the server can answer and read the next request once
//! the handler is done. A handler that does not read its body leaves the
//! server to discard it (small) or close the connection (large).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::chunked::{ChunkedDecoder, Decoded};
use crate::conn_io::ConnIo;
use crate::pace::{BodyPace, PaceMeter};
use crate::request::BodyFraming;

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than the handler's limit; the server answers 413.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// The chunked framing was malformed; the server answers 400.
    #[error("malformed chunked body: {0}")]
    Malformed(String),
    /// The client sent the body slower than the server's floor
    /// ([`crate::BodyPace`]); the server answers 408.
    #[error("request body arrived slower than {min_rate} bytes a second")]
    TooSlow {
        /// The floor, in bytes a second.
        min_rate: u64,
    },
    /// The client stopped sending, closed early, or the socket failed.
    #[error("reading the request body failed: {0}")]
    Io(String),
    /// The response was already sent; the body is no longer readable.
    #[error("the request is finished")]
    Finished,
}

impl BodyError {
    fn io(e: &io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// A request body, read with [`RequestBody::chunk`].
#[derive(Debug)]
pub struct RequestBody {
    state: Option<Rc<RefCell<BodyState>>>,
}

#[derive(Debug)]
pub(crate) struct BodyState {
    pub(crate) io: Option<ConnIo>,
    pub(crate) decoder: Option<Decoder>,
    pub(crate) continue_pending: bool,
    pub(crate) failed: Option<BodyError>,
    pub(crate) finished: bool,
    limit: u64,
    received: u64,
    read_timeout: Duration,
    write_timeout: Duration,
    pace: PaceMeter,
}

/// Where the body's framing stands.
#[derive(Debug)]
pub(crate) enum Decoder {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    Done,
}

impl Decoder {
    pub(crate) fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::Empty => Self::Done,
            BodyFraming::Length(n) => Self::Length { remaining: n },
            BodyFraming::Chunked => Self::Chunked(ChunkedDecoder::new()),
        }
    }

    /// Takes the next piece of body from `io`, reading if needed; `None`
    /// at the end of the body. Each read waits at most `timeout`, and
    /// `pace` holds the waits against the body's floor.
    pub(crate) async fn next(
        &mut self,
        io: &mut ConnIo,
        timeout: Duration,
        pace: &mut PaceMeter,
    ) -> Result<Option<Bytes>, BodyError> {
        loop {
            match self {
                Self::Done => return Ok(None),
                Self::Length { remaining } => {
                    let buffered = io.buffered();
                    if !buffered.is_empty() {
                        let n = usize::try_from(*remaining)
                            .unwrap_or(usize::MAX)
                            .min(buffered.len());
                        let chunk = Bytes::copy_from_slice(buffered.get(..n).unwrap_or_default());
                        io.consume(n);
                        *remaining -= n as u64;
                        if *remaining == 0 {
                            *self = Self::Done;
                        }
                        return Ok(Some(chunk));
                    }
                }
                Self::Chunked(dec) => match dec.decode(io.buffered()) {
                    Ok(Decoded::Data { data, consumed }) => {
                        let chunk =
                            Bytes::copy_from_slice(io.buffered().get(data).unwrap_or_default());
                        io.consume(consumed);
                        return Ok(Some(chunk));
                    }
                    Ok(Decoded::Done { consumed }) => {
                        io.consume(consumed);
                        *self = Self::Done;
                        return Ok(None);
                    }
                    Ok(Decoded::Partial { consumed }) => io.consume(consumed),
                    Err(e) => return Err(BodyError::Malformed(e.to_string())),
                },
            }
            let budget = pace.budget();
            let wait = budget.map_or(timeout, |b| b.min(timeout));
            let started = std::time::Instant::now();
            let filled = io.fill_within(wait).await;
            let got = match filled {
                Ok(0) => return Err(BodyError::Io("connection closed mid-body".into())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut && wait < timeout => 0,
                Err(e) => return Err(BodyError::io(&e)),
            };
            pace.record(started.elapsed(), got as u64)
                .map_err(|_| BodyError::TooSlow {
                    min_rate: pace.min_rate(),
                })?;
        }
    }
}

impl RequestBody {
    pub(crate) fn empty() -> Self {
        Self { state: None }
    }

    pub(crate) fn new(
        io: ConnIo,
        framing: BodyFraming,
        expect_continue: bool,
        limit: u64,
        read_timeout: Duration,
        write_timeout: Duration,
        pace: BodyPace,
    ) -> (Self, Rc<RefCell<BodyState>>) {
        let state = Rc::new(RefCell::new(BodyState {
            io: Some(io),
            decoder: Some(Decoder::new(framing)),
            continue_pending: expect_continue,
            failed: None,
            finished: false,
            limit,
            received: 0,
            read_timeout,
            write_timeout,
            pace: PaceMeter::new(pace),
        }));
        (
            Self {
                state: Some(Rc::clone(&state)),
            },
            state,
        )
    }

    /// The next piece of the body; `Ok(None)` once it is all read.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        let (mut io, mut decoder, send_continue, read_timeout, write_timeout, mut pace) = {
            let mut st = state.borrow_mut();
            if let Some(e) = &st.failed {
                return Err(e.clone());
            }
            if st.finished {
                return Err(BodyError::Finished);
            }
            if matches!(st.decoder, Some(Decoder::Done)) {
                return Ok(None);
            }
            let (Some(io), Some(decoder)) = (st.io.take(), st.decoder.take()) else {
                return Err(BodyError::Finished);
            };
            let send_continue = std::mem::take(&mut st.continue_pending);
            (
                io,
                decoder,
                send_continue,
                st.read_timeout,
                st.write_timeout,
                st.pace.clone(),
            )
        };
        let mut result = Ok(None);
        if send_continue {
            if let Err(e) = io
                .write_within(&b"HTTP/1.1 100 Continue\r\n\r\n"[..], write_timeout)
                .await
            {
                result = Err(BodyError::io(&e));
            }
        }
        if result.is_ok() {
            result = decoder.next(&mut io, read_timeout, &mut pace).await;
        }
        let mut st = state.borrow_mut();
        st.io = Some(io);
        st.decoder = Some(decoder);
        st.pace = pace;
        if let Ok(Some(chunk)) = &result {
            st.received = st.received.saturating_add(chunk.len() as u64);
            if st.received > st.limit {
                result = Err(BodyError::TooLarge { limit: st.limit });
            }
        }
        if let Err(e) = &result {
            st.failed = Some(e.clone());
        }
        result
    }

    /// Reads the whole body into memory, failing above `max` bytes.
    pub async fn to_bytes(mut self, max: usize) -> Result<Bytes, BodyError> {
        let mut all = bytes::BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            if all.len() + chunk.len() > max {
                return Err(BodyError::TooLarge { limit: max as u64 });
            }
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}
