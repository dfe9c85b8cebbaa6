//! What a handler returns: status, headers and one of four body kinds.
//!
//! The body kinds are chosen so that no response needs to be held whole
//! in memory: shared [`Bytes`], a [`BodySender`] the handler feeds while
//! the server writes, or a [`FileBody`] the server sends by sendfile(2).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;

/// A response: status, header fields and body.
///
/// The server writes the framing headers (Content-Length,
/// Transfer-Encoding, Connection) itself; a handler's own copies of those
/// are dropped.
#[derive(Debug)]
pub struct Response {
    status: u16,
    headers: HeaderList,
    body: Body,
    note: Option<AccessNote>,
}

/// Facts a handler adds to the access-log line of its request, also
/// while the body is still being sent (where a streamed blob's bytes came
/// from is known only at its end). Shared between the handler's tasks and
/// the server on one worker thread.
#[derive(Clone, Debug, Default)]
pub struct AccessNote(Rc<RefCell<Vec<(&'static str, String)>>>);

impl AccessNote {
    /// Sets `key` to `value`.
    pub fn set(&self, key: &'static str, value: impl std::fmt::Display) {
        let mut facts = self.0.borrow_mut();
        let value = value.to_string();
        match facts.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => facts.push((key, value)),
        }
    }

    /// Adds `n` to the number under `key`.
    pub fn add(&self, key: &'static str, n: u64) {
        let now = self
            .get(key)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.set(key, now.saturating_add(n));
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.0
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    /// `key=value` pairs, space separated, in the order first set.
    pub fn render(&self) -> String {
        self.0
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Response header fields: name and raw value, in order.
pub type HeaderList = Vec<(Box<str>, Box<[u8]>)>;

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            note: None,
        }
    }

    /// Attaches facts for the access log (see [`AccessNote`]).
    #[must_use]
    pub fn note(mut self, note: AccessNote) -> Self {
        self.note = Some(note);
        self
    }

    /// A `text/plain` response, used for errors.
    pub fn text(status: u16, text: impl Into<Bytes>) -> Self {
        Self::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(text.into())
    }

    /// Adds a header field.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header fields the handler set.
    pub fn headers(&self) -> &[(Box<str>, Box<[u8]>)] {
        &self.headers
    }

    pub(crate) fn into_parts(self) -> (u16, HeaderList, Body) {
        (self.status, self.headers, self.body)
    }

    /// The access-log facts, if the handler attached some.
    pub(crate) fn take_note(&mut self) -> Option<AccessNote> {
        self.note.take()
    }
}

/// A response body.
#[derive(Debug, Default)]
pub enum Body {
    /// No body (Content-Length: 0).
    #[default]
    Empty,
    /// Bytes already in memory.
    Bytes(Bytes),
    /// Bytes a handler produces while the server writes them.
    Stream(BodyStream),
    /// A range of a file, sent by sendfile(2); Range requests are served
    /// from it automatically.
    File(FileBody),
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::Bytes(b)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self::Bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(Bytes::from(v))
    }
}

impl From<FileBody> for Body {
    fn from(f: FileBody) -> Self {
        Self::File(f)
    }
}

impl From<BodyStream> for Body {
    fn from(s: BodyStream) -> Self {
        Self::Stream(s)
    }
}

impl Body {
    /// A streamed body and the sender that feeds it.
    ///
    /// With `length` the response carries Content-Length and the sender
    /// must deliver exactly that many bytes; without, it is chunked. At
    /// most `STREAM_QUEUE` chunks wait in between, so a fast producer
    /// waits for a slow client instead of filling memory.
    pub fn channel(length: Option<u64>) -> (BodySender, Body) {
        let chan = Rc::new(RefCell::new(Chan::default()));
        (
            BodySender {
                chan: Rc::clone(&chan),
            },
            Body::Stream(BodyStream { chan, length }),
        )
    }
}

/// Chunks queued between a [`BodySender`] and the connection.
pub const STREAM_QUEUE: usize = 4;

/// A piece of a streamed body.
#[derive(Debug)]
pub enum StreamChunk {
    Bytes(Bytes),
    /// Sent by sendfile(2), with no copy through user space.
    File(FileBody),
}

impl StreamChunk {
    pub fn len(&self) -> u64 {
        match self {
            StreamChunk::Bytes(b) => b.len() as u64,
            StreamChunk::File(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Default)]
struct Chan {
    queue: VecDeque<StreamChunk>,
    sender_gone: bool,
    aborted: bool,
    receiver_gone: bool,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
}

/// The handler's end of a streamed body.
///
/// Dropping it ends the body; [`BodySender::abort`] ends it as failed, and
/// the server then closes the connection so the client sees a truncated
/// response rather than a complete-looking one.
#[derive(Debug)]
pub struct BodySender {
    chan: Rc<RefCell<Chan>>,
}

/// The client went away (or the request was HEAD): stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response body is no longer being read")]
pub struct ReceiverGone;

impl BodySender {
    /// Queues a chunk, waiting while the queue is full.
    pub async fn send(&mut self, chunk: Bytes) -> Result<(), ReceiverGone> {
        self.send_chunk(StreamChunk::Bytes(chunk)).await
    }

    /// Queues a range of a file, which the server sends by sendfile(2);
    /// waits while the queue is full. The bytes must not change until
    /// they are sent.
    pub async fn send_file(&mut self, file: FileBody) -> Result<(), ReceiverGone> {
        self.send_chunk(StreamChunk::File(file)).await
    }

    async fn send_chunk(&mut self, chunk: StreamChunk) -> Result<(), ReceiverGone> {
        let mut chunk = Some(chunk);
        poll_fn(|cx| {
            let mut chan = self.chan.borrow_mut();
            if chan.receiver_gone {
                return Poll::Ready(Err(ReceiverGone));
            }
            if chan.queue.len() >= STREAM_QUEUE {
                chan.tx_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if let Some(c) = chunk.take() {
                chan.queue.push_back(c);
            }
            if let Some(w) = chan.rx_waker.take() {
                w.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ends the body as failed.
    pub fn abort(self) {
        self.chan.borrow_mut().aborted = true;
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let mut chan = self.chan.borrow_mut();
        chan.sender_gone = true;
        if let Some(w) = chan.rx_waker.take() {
            w.wake();
        }
    }
}

/// The connection's end of a streamed body.
#[derive(Debug)]
pub struct BodyStream {
    chan: Rc<RefCell<Chan>>,
    length: Option<u64>,
}

/// The producer of a streamed body gave up before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the response body was aborted by its producer")]
pub struct Aborted;

impl BodyStream {
    /// The promised length, if any.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// The next chunk; `Ok(None)` at the end.
    pub async fn next(&mut self) -> Result<Option<StreamChunk>, Aborted> {
        poll_fn(|cx| {
            let mut chan = self.chan.borrow_mut();
            if let Some(c) = chan.queue.pop_front() {
                if let Some(w) = chan.tx_waker.take() {
                    w.wake();
                }
                return Poll::Ready(Ok(Some(c)));
            }
            if chan.aborted {
                return Poll::Ready(Err(Aborted));
            }
            if chan.sender_gone {
                return Poll::Ready(Ok(None));
            }
            chan.rx_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        let mut chan = self.chan.borrow_mut();
        chan.receiver_gone = true;
        chan.queue.clear();
        if let Some(w) = chan.tx_waker.take() {
            w.wake();
        }
    }
}

/// A byte range of an open file, the representation of the response.
///
/// A Range request selects within `[offset, offset + len)`.
#[derive(Debug, Clone)]
pub struct FileBody {
    file: Rc<File>,
    offset: u64,
    len: u64,
}

impl FileBody {
    /// The whole file, as long as it is now.
    pub fn whole(file: Rc<File>) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            offset: 0,
            len,
        })
    }

    /// `len` bytes of `file` from `offset`.
    pub fn range(file: Rc<File>, offset: u64, len: u64) -> Self {
        Self { file, offset, len }
    }

    /// The file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// First byte within the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sub-range `start..=end` relative to this body.
    pub(crate) fn narrow(&self, start: u64, end: u64) -> Self {
        Self {
            file: Rc::clone(&self.file),
            offset: self.offset + start,
            len: end - start + 1,
        }
    }
}

/// The standard reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_delivers_in_order_then_ends() {
        bay_testkit::drivers::Driver::Epoll
            .block_on(async {
                let (mut tx, body) = Body::channel(None);
                let Body::Stream(mut rx) = body else {
                    panic!("not a stream")
                };
                let producer = monoio::spawn(async move {
                    for i in 0..10u8 {
                        tx.send(Bytes::from(vec![i])).await.unwrap();
                    }
                });
                let mut got = Vec::new();
                while let Some(c) = rx.next().await.unwrap() {
                    let StreamChunk::Bytes(c) = c else {
                        panic!("only bytes were sent")
                    };
                    got.extend_from_slice(&c);
                }
                producer.await;
                assert_eq!(got, (0..10u8).collect::<Vec<_>>());
            })
            .expect("a runtime");
    }

    #[test]
    fn dropped_receiver_stops_the_sender() {
        bay_testkit::drivers::Driver::Epoll
            .block_on(async {
                let (mut tx, body) = Body::channel(Some(10));
                drop(body);
                assert_eq!(tx.send(Bytes::from_static(b"x")).await, Err(ReceiverGone));
            })
            .expect("a runtime");
    }
}
