//! One peer connection: handshake, then a single task that sends what the
//! swarm queued and feeds it what arrives, waiting on socket readiness in
//! between. Blocks go out by sendfile(2) from the blob file, or on an
//! encrypted link ([`crate::peer_tls`]) read from it into TLS.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use std::cell::RefCell;

use bay_httpd::yield_now;
use bay_wire::peer::{
    encode_piece_header, AuthStep, Decoder, FleetAuth, Frame, Handshake, Limits, Status,
    BLOCK_SIZE, HANDSHAKE_LEN, NONCE_LEN,
};
use bytes::BytesMut;
use monoio::net::{TcpListener, TcpStream};

use super::torrent::{Link, Torrent};
use super::EngineState;
use crate::rate::{Grant, TokenBucket};
use crate::swarm::Transmit;
use bay_httpd::sys;

mod tls;

/// Most bytes read from one connection before others get a turn.
const READ_TURN: usize = 1 << 20;
const RECV_CHUNK: usize = 256 * 1024;
/// Padding sent after the end of a blob; a block is at most 16 KiB.
static ZEROS: [u8; BLOCK_SIZE as usize] = [0; BLOCK_SIZE as usize];
/// The time a peer gets to prove fleet membership after the handshakes:
/// short, so that a stranger who named a swarm holds no place for long.
const FLEET_PROOF_WITHIN: Duration = Duration::from_secs(2);
/// A peer that closes before its handshake was most likely full: dial it
/// again after 1, 2 and 4 s while we still need pieces, since a full
/// swarm frees places for newcomers (see `swarm/places.rs`).
const DIAL_ATTEMPTS: u32 = 4;

pub(super) async fn accept_loop(state: Rc<EngineState>, listener: TcpListener) {
    while !state.stopping.get() {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = state.stop.notified() => break,
        };
        match accepted {
            Ok((stream, addr)) => {
                if state.is_banned(addr.ip()) || !state.room_for_one_more() {
                    continue;
                }
                let state = state.clone();
                monoio::spawn(async move {
                    let _ = serve(state, stream, addr, None).await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer failed");
                // Out of descriptors and the like: don't spin.
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub(super) async fn dial(state: Rc<EngineState>, torrent: Rc<Torrent>, addr: SocketAddr) {
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=DIAL_ATTEMPTS {
        if state.is_banned(addr.ip())
            || state.stopping.get()
            || torrent.is_closed()
            || !torrent.has_place_for(addr, state.config.max_peers_per_address)
            || !state.room_for_one_more()
        {
            return;
        }
        let connect = monoio::time::timeout(state.config.connect_timeout, TcpStream::connect(addr));
        let refused = match connect.await {
            Ok(Ok(stream)) => {
                let ended = serve(state.clone(), stream, addr, Some(torrent.clone())).await;
                matches!(ended, Err(e) if e.kind() == io::ErrorKind::UnexpectedEof)
            }
            Ok(Err(e)) => {
                tracing::debug!(%addr, error = %e, "cannot connect to peer");
                false
            }
            Err(_) => {
                tracing::debug!(%addr, "connecting to peer timed out");
                false
            }
        };
        let still_needed = !torrent.swarm.borrow().is_complete();
        if !refused || !still_needed || attempt == DIAL_ATTEMPTS {
            return;
        }
        tracing::debug!(%addr, attempt, "peer closed before its handshake; dialling again");
        monoio::time::sleep(pause).await;
        pause *= 2;
    }
}

/// Runs a connection to its end. `torrent` is set when we dialled.
async fn serve(
    state: Rc<EngineState>,
    stream: TcpStream,
    addr: SocketAddr,
    torrent: Option<Rc<Torrent>>,
) -> io::Result<()> {
    state.connections.set(state.connections.get() + 1);
    state
        .counters
        .connections
        .set(state.connections.get() as u64);
    let result = session(&state, &stream, addr, torrent).await;
    if let Err(e) = &result {
        tracing::debug!(%addr, error = %e, "peer connection ended");
    }
    let left = state.connections.get().saturating_sub(1);
    state.connections.set(left);
    state.counters.connections.set(left as u64);
    if left == 0 {
        state.idle.notify();
    }
    result
}

async fn session(
    state: &Rc<EngineState>,
    stream: &TcpStream,
    addr: SocketAddr,
    dialled: Option<Rc<Torrent>>,
) -> io::Result<()> {
    sys::set_nonblocking(stream, true)?;
    let _ = stream.set_nodelay(true);
    let mut io = Io::new(stream);
    if let Some(tls) = &state.config.peer_tls {
        let conn = if dialled.is_some() {
            tls.dialled()
        } else {
            tls.accepted()
        };
        io.tls = Some(Box::new(conn.map_err(io::Error::other)?));
        match monoio::time::timeout(FLEET_PROOF_WITHIN, io.tls_handshake()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::info!(%addr, error = %e, "peer failed the TLS handshake");
                return Err(e);
            }
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake")),
        }
    }
    let keys = state.config.fleet.clone();
    if let Some(t) = &dialled {
        io.out
            .push_bytes(&our_handshake(t, keys.is_some()).to_bytes());
    }
    let mut decoder = Decoder::new(Limits::default());
    let theirs = monoio::time::timeout(
        state.config.handshake_timeout,
        io.read_handshake(&mut decoder),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no handshake"))??;
    let we_dialled = dialled.is_some();
    let torrent = match dialled {
        Some(t) => t,
        None => {
            let t = state
                .resolve(&theirs.info_hash)
                .ok_or_else(|| io::Error::other("handshake for a torrent we do not have"))?;
            io.out
                .push_bytes(&our_handshake(&t, keys.is_some()).to_bytes());
            t
        }
    };
    if torrent.is_closed() {
        return Ok(());
    }
    if !we_dialled && !torrent.has_place_for(addr, state.config.max_peers_per_address) {
        tracing::debug!(%addr, "refusing a peer: its address holds enough places in this swarm");
        return Ok(());
    }
    if let Some(keys) = keys {
        let auth = prove_fleet(&mut io, keys, &torrent, &theirs);
        match monoio::time::timeout(FLEET_PROOF_WITHIN, auth).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::info!(%addr, error = %e, "peer failed the fleet check");
                return Err(e);
            }
            Err(_) => {
                tracing::info!(%addr, "peer gave no fleet proof in time");
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no fleet proof"));
            }
        }
    }
    let key = state.next_key();
    torrent
        .swarm
        .borrow_mut()
        .peer_connected(key, &theirs, we_dialled, Instant::now())
        .map_err(io::Error::other)?;
    let link = Rc::new(Link::new(addr));
    torrent.links.borrow_mut().insert(key, link.clone());
    torrent.drive(state);
    let result = pump(state, &mut io, &torrent, key, &link, &mut decoder).await;
    torrent.links.borrow_mut().remove(&key);
    torrent.swarm.borrow_mut().peer_disconnected(key);
    torrent.drive(state);
    result
}

/// Our handshake for `torrent`, with the fleet bit in keyed mode.
fn our_handshake(torrent: &Torrent, keyed: bool) -> bay_wire::peer::Handshake {
    let mut ours = torrent.swarm.borrow().handshake();
    ours.reserved = ours.reserved.with_fleet_auth(keyed);
    ours
}

/// Both sides prove they hold the fleet key before any other message
/// (see `bay_wire::peer::fleet_auth`); a peer that cannot is closed.
async fn prove_fleet(
    io: &mut Io<'_>,
    keys: bay_wire::fleet::FleetKeys,
    torrent: &Torrent,
    theirs: &bay_wire::peer::Handshake,
) -> io::Result<()> {
    if !theirs.reserved.fleet_auth() {
        return Err(io::Error::other(
            "peer does not speak the fleet check (open mode or another client)",
        ));
    }
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    let swarm = torrent.swarm.borrow().info_hash();
    let ours = torrent.swarm.borrow().handshake().peer_id;
    let mut auth = FleetAuth::new(keys, swarm, ours, theirs.peer_id, nonce);
    io.out.push_bytes(&auth.hello());
    let unlimited = RefCell::new(TokenBucket::unlimited(Instant::now()));
    loop {
        io.flush(None, &unlimited)?;
        match auth.receive(&mut io.rbuf).map_err(io::Error::other)? {
            AuthStep::Send(proof) => {
                io.out.push_bytes(&proof);
                continue;
            }
            AuthStep::Done => {
                io.flush(None, &unlimited)?;
                return Ok(());
            }
            AuthStep::Partial => {}
        }
        let (got, eof, _) = io.fill(NONCE_LEN, &unlimited)?;
        if eof {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if got == 0 {
            io.wait_for_socket().await?;
        }
    }
}

/// Moves bytes both ways until the connection ends.
async fn pump(
    state: &Rc<EngineState>,
    io: &mut Io<'_>,
    torrent: &Rc<Torrent>,
    key: u32,
    link: &Link,
    decoder: &mut Decoder,
) -> io::Result<()> {
    let mut transmits = Vec::new();
    loop {
        if link.closing.get() || state.stopping.get() {
            // Best effort: let queued messages (a reject, a have) leave.
            let _ = io.flush(Some(&torrent.file), &state.upload);
            return Ok(());
        }
        torrent
            .swarm
            .borrow_mut()
            .poll_transmit(key, &mut transmits);
        if !transmits.is_empty() {
            torrent.count(state);
        }
        for t in transmits.drain(..) {
            io.out.push_transmit(t, torrent);
        }
        let send_wait = io.flush(Some(&torrent.file), &state.upload)?;
        let (got, eof, recv_wait) = io.fill(READ_TURN, &state.download)?;
        // Bytes may also be left over from the handshake read.
        if !io.rbuf.is_empty() {
            let now = Instant::now();
            loop {
                match decoder.decode(&mut io.rbuf) {
                    Ok(Status::Complete(Frame::Message(m), _)) => {
                        torrent.swarm.borrow_mut().handle_message(key, m, now);
                    }
                    Ok(Status::Complete(Frame::Handshake(_), _)) => {
                        return Err(io::Error::other("a second handshake"));
                    }
                    Ok(Status::Partial { .. }) => break,
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
            torrent.drive(state);
        }
        if eof {
            return Ok(());
        }
        if got > 0 {
            // A peer that never stops sending must not keep the other
            // connections of this thread waiting.
            yield_now().await;
            continue;
        }
        // A rate limit that said "wait" is waited for, not the socket:
        // the socket would say "ready" at once.
        let pending_out = io.pending_out() && send_wait.is_none();
        let throttle = send_wait.into_iter().chain(recv_wait).min();
        monoio::select! {
            r = readable_if(io.stream, recv_wait.is_none()) => r?,
            r = writable_if(io.stream, pending_out) => r?,
            _ = link.wake.notified() => {},
            _ = sleep_if(throttle) => {},
        }
    }
}

async fn readable_if(stream: &TcpStream, wanted: bool) -> io::Result<()> {
    if wanted {
        stream.readable(false).await
    } else {
        std::future::pending().await
    }
}

async fn sleep_if(wait: Option<std::time::Duration>) {
    match wait {
        Some(d) => monoio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn writable_if(stream: &TcpStream, wanted: bool) -> io::Result<()> {
    if wanted {
        stream.writable(false).await
    } else {
        std::future::pending().await
    }
}

/// Runs `io` with as many bytes as `bucket` grants of `want`, and gives
/// back what it did not use; `Err` is how long to wait for a grant.
fn metered(
    bucket: &RefCell<TokenBucket>,
    want: usize,
    io: impl FnOnce(usize) -> io::Result<usize>,
) -> Result<io::Result<usize>, Duration> {
    let allowed = match bucket.borrow_mut().take(want as u64, Instant::now()) {
        Grant::Now(n) => n as usize,
        Grant::Wait(d) => return Err(d),
    };
    let result = io(allowed);
    let used = *result.as_ref().unwrap_or(&0);
    bucket.borrow_mut().give_back((allowed - used) as u64);
    Ok(result)
}

fn blob_file_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "blob file shorter than its torrent",
    )
}

/// Buffers of one connection, and its TLS state on encrypted links.
struct Io<'s> {
    stream: &'s TcpStream,
    /// Received bytes (decrypted on encrypted links), not yet decoded.
    rbuf: BytesMut,
    out: OutQueue,
    tls: Option<Box<rustls::Connection>>,
    /// Ciphertext as read from the socket.
    cbuf: BytesMut,
    /// Blob bytes on their way into TLS (no sendfile through TLS).
    file_buf: Vec<u8>,
}

impl<'s> Io<'s> {
    fn new(stream: &'s TcpStream) -> Io<'s> {
        Io {
            stream,
            rbuf: BytesMut::with_capacity(RECV_CHUNK),
            out: OutQueue::default(),
            tls: None,
            cbuf: BytesMut::new(),
            file_buf: Vec::new(),
        }
    }

    /// Waits until the socket has bytes, or room when something waits to
    /// go out.
    async fn wait_for_socket(&self) -> io::Result<()> {
        let pending_out = self.pending_out();
        monoio::select! {
            r = self.stream.readable(false) => r,
            r = writable_if(self.stream, pending_out) => r,
        }
    }

    /// Whether something waits for the socket to take it.
    fn pending_out(&self) -> bool {
        match &self.tls {
            None => !self.out.is_empty(),
            Some(conn) => conn.wants_write() || (!conn.is_handshaking() && !self.out.is_empty()),
        }
    }

    /// Sends what the socket takes without blocking (see
    /// [`OutQueue::flush`]).
    fn flush(
        &mut self,
        file: Option<&File>,
        bucket: &RefCell<TokenBucket>,
    ) -> io::Result<Option<Duration>> {
        if self.tls.is_some() {
            self.flush_tls(file, bucket)
        } else {
            self.out.flush(self.stream, file, bucket)
        }
    }

    /// Reads what the socket has, up to `limit` bytes and what the rate
    /// limit allows. Returns bytes read, whether the peer closed, and how
    /// long the limit wants reading to pause.
    fn fill(
        &mut self,
        limit: usize,
        bucket: &RefCell<TokenBucket>,
    ) -> io::Result<(usize, bool, Option<Duration>)> {
        if self.tls.is_some() {
            return self.fill_tls(limit, bucket);
        }
        let mut total = 0;
        while total < limit {
            let result = match metered(bucket, RECV_CHUNK, |allowed| {
                sys::recv_into(self.stream, &mut self.rbuf, allowed)
            }) {
                Ok(result) => result,
                Err(wait) => return Ok((total, false, Some(wait))),
            };
            match result {
                Ok(0) => return Ok((total, true, None)),
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok((total, false, None))
    }

    async fn read_handshake(&mut self, decoder: &mut Decoder) -> io::Result<Handshake> {
        let unlimited = RefCell::new(TokenBucket::unlimited(Instant::now()));
        loop {
            self.flush(None, &unlimited)?;
            match decoder.decode(&mut self.rbuf) {
                Ok(Status::Complete(Frame::Handshake(h), _)) => return Ok(h),
                Ok(Status::Complete(Frame::Message(_), _)) => {
                    return Err(io::Error::other("message before handshake"))
                }
                Ok(Status::Partial { .. }) => {}
                Err(e) => return Err(io::Error::other(e)),
            }
            let (got, eof, _) = self.fill(HANDSHAKE_LEN, &unlimited)?;
            if eof {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if got == 0 {
                self.wait_for_socket().await?;
            }
        }
    }
}

/// Output of one connection, in order: encoded messages, and blocks to be
/// sent from the blob file.
#[derive(Default)]
struct OutQueue {
    chunks: VecDeque<Chunk>,
    scratch: BytesMut,
}

enum Chunk {
    Bytes(BytesMut),
    /// `len` bytes of the blob file at `offset`.
    File {
        offset: u64,
        len: usize,
    },
}

impl OutQueue {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Appends to the last chunk when that is bytes too, so that a run of
    /// small messages (requests, haves) leaves in one send(2).
    fn push_bytes(&mut self, b: &[u8]) {
        if let Some(Chunk::Bytes(last)) = self.chunks.back_mut() {
            last.extend_from_slice(b);
        } else {
            self.chunks.push_back(Chunk::Bytes(BytesMut::from(b)));
        }
    }

    fn push_transmit(&mut self, t: Transmit, torrent: &Torrent) {
        match t {
            Transmit::Message(m) => {
                // Encoding into our own buffer cannot fail for lack of room.
                if m.encode(&mut self.scratch).is_ok() {
                    let b = self.scratch.split();
                    self.push_bytes(&b);
                }
            }
            Transmit::Block(r) => {
                let _ = encode_piece_header(&mut self.scratch, r.piece, r.begin, r.length);
                let header = self.scratch.split();
                self.push_bytes(&header);
                let geometry = torrent.swarm.borrow().geometry();
                let offset =
                    u64::from(r.piece) * u64::from(geometry.piece_len) + u64::from(r.begin);
                let in_blob = geometry
                    .total_len
                    .saturating_sub(offset)
                    .min(u64::from(r.length));
                self.chunks.push_back(Chunk::File {
                    offset,
                    len: in_blob as usize,
                });
                // Past the end of the blob (a peer that pads the file to a
                // whole piece asked for it): zeros.
                let pad = (r.length as usize).saturating_sub(in_blob as usize);
                if pad > 0 {
                    self.push_bytes(&ZEROS[..pad.min(ZEROS.len())]);
                }
            }
        }
    }

    /// Sends what the socket takes without blocking. Blocks can only be
    /// queued once a torrent (and so `file`) is known; their bytes count
    /// against the upload limit, and when it says wait, so does this.
    fn flush(
        &mut self,
        stream: &TcpStream,
        file: Option<&File>,
        bucket: &RefCell<TokenBucket>,
    ) -> io::Result<Option<Duration>> {
        loop {
            let more = self.chunks.len() > 1;
            let Some(chunk) = self.chunks.front_mut() else {
                break;
            };
            let result = match chunk {
                Chunk::Bytes(b) => sys::send(stream, b, more).map(|n| {
                    let _ = b.split_to(n);
                    b.is_empty()
                }),
                Chunk::File { offset, len } => {
                    let file =
                        file.ok_or_else(|| io::Error::other("block queued before handshake"))?;
                    let sent = match metered(bucket, *len, |allowed| {
                        sys::sendfile(stream, file, *offset, allowed)
                    }) {
                        Ok(sent) => sent,
                        Err(wait) => return Ok(Some(wait)),
                    };
                    sent.and_then(|n| {
                        if n == 0 {
                            return Err(blob_file_short());
                        }
                        *offset += n as u64;
                        *len -= n;
                        Ok(*len == 0)
                    })
                }
            };
            match result {
                Ok(true) => {
                    self.chunks.pop_front();
                }
                Ok(false) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
