//! One HTTP/1.1 connection: read a head, call the handler, write the
//! response, repeat; requests are answered strictly in order, so pipelined
//! requests need nothing more than the bytes left in the read buffer.
//!
//! Every wait has a bound: the head (`header_timeout`, then 408), the
//! pause between requests (`idle_timeout`), each body read and each
//! write (`body_timeout`, `write_timeout`), and a body as a whole
//! (`body_pace`, a floor under its rate). Errors in the head get their
//! 4xx and the connection closes.

use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use monoio::net::TcpStream;

use crate::body::{BodyError, Decoder, RequestBody};
use crate::config::ServerConfig;
use crate::conn_io::{ConnIo, Transport};
use crate::handler::Handler;
use crate::head::{parse_head, Parsed};
use crate::range::{self, RangeOutcome};
use crate::request::{BodyFraming, Method, Request, Version};
use crate::response::{reason, Body, BodyStream, FileBody, Response, StreamChunk};
use crate::shutdown::Drain;
use crate::tls_stream::TlsStream;

/// An unread request body up to this size is read and dropped so the
/// connection can be kept; a larger one closes it.
const DRAIN_MAX: u64 = 256 * 1024;
/// Largest piece of an in-memory body written with one timeout.
const WRITE_PIECE: usize = 256 * 1024;
/// Bodies up to this size go out in the same write as the head.
const COALESCE_MAX: usize = 16 * 1024;

enum HeadRead {
    Request(Request),
    Closed,
    Reject(u16, String),
}

/// Serves one accepted connection until it closes.
pub(crate) async fn serve_connection<H: Handler>(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    handler: Rc<H>,
    cfg: Rc<ServerConfig>,
    drain: Rc<Drain>,
) {
    let _open = drain.open_connection();
    let _ = stream.set_nodelay(true);
    let transport = match &cfg.tls {
        None => Transport::Plain(stream),
        Some(tls) => {
            let accept = TlsStream::accept(stream, tls.clone());
            match monoio::time::timeout(cfg.header_timeout, accept).await {
                Ok(Ok(s)) => Transport::Tls(Box::new(s)),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = ?e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let mut io = ConnIo::new(transport);
    let mut first = true;
    loop {
        let mut req = match read_head(&mut io, &cfg, &drain, first).await {
            HeadRead::Request(r) => r,
            HeadRead::Closed => return,
            HeadRead::Reject(status, why) => {
                tracing::debug!(status, %why, "rejecting request head");
                let _ = write_error(&mut io, status, why, &cfg).await;
                return;
            }
        };
        req.peer = Some(peer);
        first = false;
        match exchange(io, req, &*handler, &cfg, &drain).await {
            Some(next) if !drain.is_draining() => io = next,
            _ => return,
        }
    }
}

/// Reads the next request head. The first request of a connection must
/// arrive whole within `header_timeout` of the accept; later ones within
/// `header_timeout` of their first byte, after at most `idle_timeout` of
/// silence.
async fn read_head(io: &mut ConnIo, cfg: &ServerConfig, drain: &Drain, first: bool) -> HeadRead {
    let mut deadline = first.then(|| Instant::now() + cfg.header_timeout);
    loop {
        if !io.buffered().is_empty() {
            match parse_head(io.buffered(), &cfg.limits) {
                Ok(Parsed::Complete(req, used)) => {
                    io.consume(used);
                    return HeadRead::Request(req);
                }
                Ok(Parsed::Partial) => {}
                Err(e) => return HeadRead::Reject(e.status(), e.to_string()),
            }
        }
        let idle = io.buffered().is_empty();
        let Some(due) = deadline else {
            if !wait_for_request(io, cfg.idle_timeout, drain).await {
                return HeadRead::Closed;
            }
            deadline = Some(Instant::now() + cfg.header_timeout);
            continue;
        };
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Nothing sent at all earns no answer, only a close.
            return if idle {
                HeadRead::Closed
            } else {
                timeout_reject()
            };
        }
        if idle {
            if !wait_for_request(io, left, drain).await {
                return HeadRead::Closed;
            }
            continue;
        }
        match io.fill_within(left).await {
            Ok(0) => return HeadRead::Closed,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return timeout_reject(),
            Err(_) => return HeadRead::Closed,
        }
    }
}

fn timeout_reject() -> HeadRead {
    HeadRead::Reject(408, "request head not received in time".into())
}

/// Waits up to `limit` for the first bytes of a request; false when the
/// connection should close instead (peer gone, silent too long, server
/// draining).
async fn wait_for_request(io: &mut ConnIo, limit: Duration, drain: &Drain) -> bool {
    if drain.is_draining() {
        return false;
    }
    monoio::select! {
        r = io.fill_within(limit) => matches!(r, Ok(n) if n > 0),
        _ = drain.wait() => false,
    }
}

/// One request and its response; gives the connection back when it may
/// carry another request.
async fn exchange<H: Handler>(
    mut io: ConnIo,
    req: Request,
    handler: &H,
    cfg: &ServerConfig,
    drain: &Drain,
) -> Option<ConnIo> {
    let limit = handler.body_limit(&req).unwrap_or(cfg.max_body);
    if let BodyFraming::Length(n) = req.framing {
        if n > limit {
            let why = format!("request body larger than {limit} bytes");
            let _ = write_error(&mut io, 413, why, cfg).await;
            return None;
        }
    }
    let meta = ResponseMeta {
        head_only: req.method == Method::Head,
        version: req.version,
        keep_alive: req.keep_alive,
        range: range_request(&req),
    };
    let started = std::time::Instant::now();
    let logged = cfg
        .access_log
        .then(|| (req.method.clone(), req.path().to_owned(), req.peer));
    let (resp, io) = if req.framing == BodyFraming::Empty {
        (handler.handle(req, RequestBody::empty()).await, (io, None))
    } else {
        call_with_body(io, req, handler, limit, cfg).await?
    };
    let (mut io, unread) = io;
    let mut meta = meta;
    meta.keep_alive &= !drain.is_draining() && unread.as_ref().is_none_or(can_drain);
    let mut resp = resp;
    let note = resp.take_note();
    let status = resp.status();
    let mut sent = 0u64;
    let written = write_response(&mut io, resp, &meta, cfg, &mut sent).await;
    if let Some((method, path, peer)) = logged {
        log_access(
            &method,
            &path,
            peer,
            status,
            sent,
            started,
            written.is_ok(),
            note.as_ref(),
        );
    }
    let keep = written.ok()? && meta.keep_alive;
    if !keep {
        return None;
    }
    if let Some(decoder) = unread {
        discard_body(&mut io, decoder, cfg).await?;
    }
    Some(io)
}

/// One line per request (target `bay::access`): never a query string or a
/// header value, which may carry signatures and credentials.
#[allow(clippy::too_many_arguments)]
fn log_access(
    method: &Method,
    path: &str,
    peer: Option<std::net::SocketAddr>,
    status: u16,
    bytes: u64,
    started: std::time::Instant,
    complete: bool,
    note: Option<&crate::response::AccessNote>,
) {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let client = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let note = note
        .map(crate::response::AccessNote::render)
        .unwrap_or_default();
    tracing::info!(
        target: "bay::access",
        method = method.as_str(),
        path,
        status,
        bytes,
        ms = (ms * 10.0).round() / 10.0,
        client,
        complete,
        note,
    );
}

/// The connection after a handler ran, with what is left of its body.
type Returned = (ConnIo, Option<Decoder>);

async fn call_with_body<H: Handler>(
    io: ConnIo,
    req: Request,
    handler: &H,
    limit: u64,
    cfg: &ServerConfig,
) -> Option<(Response, Returned)> {
    let (body, state) = RequestBody::new(
        io,
        req.framing,
        req.expect_continue,
        limit,
        cfg.body_timeout,
        cfg.write_timeout,
        cfg.body_pace,
    );
    let resp = handler.handle(req, body).await;
    let (mut io, decoder, failed, continue_pending) = {
        let mut st = state.borrow_mut();
        st.finished = true;
        // Without the socket (a read was abandoned midway) the connection's
        // position in the byte stream is unknown: close it.
        (
            st.io.take()?,
            st.decoder.take()?,
            st.failed.take(),
            st.continue_pending,
        )
    };
    match failed {
        Some(e @ BodyError::TooLarge { .. }) => {
            let _ = write_error(&mut io, 413, e.to_string(), cfg).await;
            return None;
        }
        Some(e @ BodyError::Malformed(_)) => {
            let _ = write_error(&mut io, 400, e.to_string(), cfg).await;
            return None;
        }
        Some(e @ BodyError::TooSlow { .. }) => {
            tracing::info!(error = %e, "closing a connection whose body came too slowly");
            let _ = write_error(&mut io, 408, e.to_string(), cfg).await;
            return None;
        }
        Some(_) => return None,
        None => {}
    }
    let unread = match decoder {
        Decoder::Done => None,
        // The client waits for 100 Continue that never came: it may or
        // may not send the body, so the stream cannot be reused.
        _ if continue_pending => Some(Decoder::Length {
            remaining: u64::MAX,
        }),
        other => Some(other),
    };
    Some((resp, (io, unread)))
}

fn can_drain(decoder: &Decoder) -> bool {
    match decoder {
        Decoder::Done => true,
        Decoder::Length { remaining } => *remaining <= DRAIN_MAX,
        Decoder::Chunked(_) => true,
    }
}

async fn discard_body(io: &mut ConnIo, mut decoder: Decoder, cfg: &ServerConfig) -> Option<()> {
    let mut dropped = 0u64;
    let mut pace = crate::pace::PaceMeter::new(cfg.body_pace);
    while let Some(chunk) = decoder.next(io, cfg.body_timeout, &mut pace).await.ok()? {
        dropped += chunk.len() as u64;
        if dropped > DRAIN_MAX {
            return None;
        }
    }
    Some(())
}

fn range_request(req: &Request) -> Option<Box<[u8]>> {
    if !matches!(req.method, Method::Get | Method::Head) || req.header("if-range").is_some() {
        // Without validators an If-Range can never be confirmed: send all.
        return None;
    }
    req.header("range").map(Into::into)
}

struct ResponseMeta {
    head_only: bool,
    version: Version,
    keep_alive: bool,
    range: Option<Box<[u8]>>,
}

/// Writes `resp`; Ok(false) when the response's framing forces a close.
async fn write_response(
    io: &mut ConnIo,
    resp: Response,
    meta: &ResponseMeta,
    cfg: &ServerConfig,
    sent: &mut u64,
) -> io::Result<bool> {
    let (status, headers, body) = resp.into_parts();
    let (status, content_range, body) = apply_range(status, body, meta.range.as_deref());
    let length = match &body {
        Body::Empty => Some(0),
        Body::Bytes(b) => Some(b.len() as u64),
        Body::File(f) => Some(f.len()),
        Body::Stream(s) => s.length(),
    };
    let no_body_status = status < 200 || status == 204 || status == 304;
    let chunked = length.is_none() && meta.version == Version::Http11 && !no_body_status;
    let handler_close = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case(b"close"));
    let keep_alive = meta.keep_alive && !handler_close && (length.is_some() || chunked);

    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    for (name, value) in &headers {
        if is_framing_header(name) {
            continue;
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(cr) = content_range {
        head.extend_from_slice(format!("Content-Range: {cr}\r\n").as_bytes());
    }
    if matches!(body, Body::File(_)) {
        head.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    }
    if !no_body_status {
        match length {
            Some(n) => head.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes()),
            None if chunked => head.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            None => {}
        }
    }
    if !keep_alive {
        head.extend_from_slice(b"Connection: close\r\n");
    } else if meta.version == Version::Http10 {
        head.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");

    if meta.head_only || no_body_status {
        io.write_within(head, cfg.write_timeout).await?;
        return Ok(keep_alive);
    }
    match body {
        Body::Empty => io.write_within(head, cfg.write_timeout).await?,
        Body::Bytes(b) => {
            let n = b.len() as u64;
            write_bytes(io, head, b, cfg.write_timeout).await?;
            *sent = n;
        }
        Body::File(f) => {
            io.write_within(head, cfg.write_timeout).await?;
            io.send_file(f.file(), f.offset(), f.len(), cfg.write_timeout)
                .await?;
            *sent = f.len();
        }
        Body::Stream(s) => {
            io.write_within(head, cfg.write_timeout).await?;
            write_stream(io, s, chunked, cfg.write_timeout, sent).await?;
        }
    }
    Ok(keep_alive)
}

fn is_framing_header(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// Turns a file body into its 206 or 416 form as the Range header asks.
fn apply_range(status: u16, body: Body, range: Option<&[u8]>) -> (u16, Option<String>, Body) {
    let Body::File(file) = body else {
        return (status, None, body);
    };
    if status != 200 {
        return (status, None, Body::File(file));
    }
    let len = file.len();
    let outcome = range::evaluate(range, len);
    let content_range = outcome.content_range(len);
    match outcome {
        RangeOutcome::Full => (200, None, Body::File(file)),
        RangeOutcome::Partial { start, end } => (
            206,
            content_range,
            Body::File(FileBody::narrow(&file, start, end)),
        ),
        RangeOutcome::Unsatisfiable => (416, content_range, Body::Empty),
    }
}

async fn write_bytes(
    io: &mut ConnIo,
    mut head: Vec<u8>,
    body: Bytes,
    limit: Duration,
) -> io::Result<()> {
    if body.len() <= COALESCE_MAX {
        head.extend_from_slice(&body);
        return io.write_within(head, limit).await;
    }
    io.write_within(head, limit).await?;
    let mut at = 0;
    while at < body.len() {
        let end = (at + WRITE_PIECE).min(body.len());
        io.write_within(body.slice(at..end), limit).await?;
        at = end;
    }
    Ok(())
}

async fn write_stream(
    io: &mut ConnIo,
    mut s: BodyStream,
    chunked: bool,
    limit: Duration,
    written: &mut u64,
) -> io::Result<()> {
    let mut sent = 0u64;
    let promised = s.length();
    loop {
        let chunk = match s.next().await {
            Ok(Some(c)) if c.is_empty() => continue,
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(_) => return Err(io::Error::other("response body aborted")),
        };
        sent += chunk.len();
        if promised.is_some_and(|p| sent > p) {
            return Err(io::Error::other(
                "response body longer than its Content-Length",
            ));
        }
        match chunk {
            StreamChunk::Bytes(bytes) => write_stream_bytes(io, bytes, chunked, limit).await?,
            StreamChunk::File(f) => {
                if chunked {
                    io.write_within(format!("{:x}\r\n", f.len()).into_bytes(), limit)
                        .await?;
                }
                io.send_file(f.file(), f.offset(), f.len(), limit).await?;
                if chunked {
                    io.write_within(&b"\r\n"[..], limit).await?;
                }
            }
        }
        *written = sent;
    }
    if promised.is_some_and(|p| sent != p) {
        return Err(io::Error::other(
            "response body shorter than its Content-Length",
        ));
    }
    if chunked {
        io.write_within(&b"0\r\n\r\n"[..], limit).await?;
    }
    Ok(())
}

async fn write_stream_bytes(
    io: &mut ConnIo,
    chunk: Bytes,
    chunked: bool,
    limit: Duration,
) -> io::Result<()> {
    if !chunked {
        return io.write_within(chunk, limit).await;
    }
    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
    if chunk.len() <= COALESCE_MAX {
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        io.write_within(framed, limit).await
    } else {
        io.write_within(framed, limit).await?;
        io.write_within(chunk, limit).await?;
        io.write_within(&b"\r\n"[..], limit).await
    }
}

async fn write_error(
    io: &mut ConnIo,
    status: u16,
    why: String,
    cfg: &ServerConfig,
) -> io::Result<()> {
    let resp = Response::text(status, format!("{why}\n"));
    let meta = ResponseMeta {
        head_only: false,
        version: Version::Http11,
        keep_alive: false,
        range: None,
    };
    write_response(io, resp, &meta, cfg, &mut 0)
        .await
        .map(|_| ())
}
