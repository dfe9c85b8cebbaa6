//! One torrent's swarm, as a sans-IO state machine.
//!
//! The swarm decides what to say to each peer; the engine around it moves
//! bytes. Inputs are the peers' decoded messages, results of piece checks,
//! and the time; outputs are messages to send per peer ([`Swarm::poll_transmit`]),
//! events for the engine ([`Swarm::poll_event`]: store this block, check
//! this piece, close that connection) and the next time it wants to be woken
//! ([`Swarm::poll_timeout`]). It reads no socket, file or clock, so tests
//! drive whole swarms through in-memory links with a virtual clock.
//!
//! The engine is expected, after any input, to drain `poll_event`, then
//! `poll_transmit` for each peer, then re-arm its timer with `poll_timeout`.
//!
//! Rules that keep bad bytes out: a block is only accepted if it was asked
//! of that peer; a piece is marked (and announced, and served) only after
//! the engine says its hash checked out; the sender of a piece that fails
//! is disconnected with [`DisconnectReason::BadPiece`], which the engine
//! turns into a ban. When a failed piece had several senders, it is
//! fetched again from one peer alone, so an honest peer is never banned
//! for a block another one sent.

mod api;
mod extension;
mod peer;
mod places;
mod requests;
mod reveal;

pub use api::{DisconnectReason, Event, Geometry, Refused, SwarmConfig, SwarmStats, Transmit};

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bay_wire::peer::{BlockRequest, Handshake, Message, BLOCK_SIZE};
use bytes::Bytes;

use crate::bitfield::Bitfield;
use crate::choke::Choker;
use crate::picker::{PeerKey, Picker, ReaderKey};
use peer::{PeerState, Remote};
use reveal::{Revealer, View};

/// One torrent's swarm.
#[derive(Debug)]
pub struct Swarm {
    config: SwarmConfig,
    geometry: Geometry,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    picker: Picker,
    choker: Choker,
    revealer: Option<Revealer>,
    peers: BTreeMap<PeerKey, PeerState>,
    events: VecDeque<Event>,
    next_rechoke: Instant,
    next_tick: Instant,
    stats: SwarmStats,
    announced_complete: bool,
    /// Fetch nothing until a reader comes: joined ahead of a client that
    /// may already hold the blob.
    held: bool,
    /// A peer holding our requests and silent this long is taken for dead
    /// (see `requests.rs`); set each tick from how long our requests wait.
    silent_after: Duration,
    /// `stats.downloaded` at the last tick.
    downloaded_at_tick: u64,
}

/// How often the swarm looks at request timeouts and keep-alives.
const TICK: Duration = Duration::from_secs(1);

/// Two connections to one peer this close together are taken as a
/// simultaneous dial (see [`Swarm::replaces`]).
const SIMULTANEOUS_DIAL: Duration = Duration::from_secs(2);

impl Swarm {
    /// A swarm for the torrent `info_hash` (20-byte form) as `peer_id`,
    /// starting with the verified pieces in `have`.
    pub fn new(
        config: SwarmConfig,
        geometry: Geometry,
        info_hash: [u8; 20],
        peer_id: [u8; 20],
        have: &Bitfield,
        now: Instant,
    ) -> Swarm {
        let seed = u64::from_le_bytes(peer_id[..8].try_into().unwrap_or_default());
        let mut picker = Picker::new(geometry.total_len, geometry.piece_len, seed);
        picker.set_end_game_blocks((config.end_game_bytes / u64::from(BLOCK_SIZE)) as usize);
        for piece in have.iter() {
            picker.already_have(piece);
        }
        // A blob that fits in two windows gains nothing from being revealed
        // piece by piece, and would reach all but the first host late.
        let super_seed = config.super_seed && geometry.total_len > 2 * config.reveal_window;
        let slots = if super_seed {
            config.max_peers
        } else {
            config.upload_slots
        };
        let choker = Choker::new(slots, config.rotate_every);
        let revealer = super_seed.then(|| {
            Revealer::new(
                picker.piece_count(),
                geometry.piece_len,
                config.reveal_window,
                config.reveal_stale_after,
            )
        });
        Swarm {
            revealer,
            silent_after: config.request_timeout,
            next_rechoke: now,
            next_tick: now + TICK,
            config,
            geometry,
            info_hash,
            peer_id,
            choker,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            stats: SwarmStats {
                pieces: picker.piece_count(),
                have: picker.have().count(),
                ..SwarmStats::default()
            },
            announced_complete: picker.is_complete(),
            downloaded_at_tick: 0,
            picker,
            held: false,
        }
    }

    /// Connects and trades HAVEs but asks for nothing until the first
    /// reader ([`Swarm::set_reader`]): a host that joins on seeing a
    /// manifest is ready when the blob is asked for, and fetches nothing
    /// if it never is. A swarm someone already reads is not held (the
    /// hold may arrive after the reader).
    pub fn hold_until_read(&mut self) {
        self.held = !self.picker.has_readers();
    }

    // ---- getters

    /// Our handshake for this torrent.
    pub fn handshake(&self) -> Handshake {
        Handshake::new(self.info_hash, self.peer_id)
    }

    pub fn info_hash(&self) -> [u8; 20] {
        self.info_hash
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    pub fn stats(&self) -> SwarmStats {
        SwarmStats {
            peers: self.peers.len(),
            have: self.picker.have().count(),
            ..self.stats
        }
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn has_readers(&self) -> bool {
        self.picker.has_readers()
    }

    /// Whether nothing happens here: every piece is held, no peer is
    /// connected and no reader waits.
    pub fn is_idle(&self) -> bool {
        self.picker.is_complete() && self.peers.is_empty() && !self.picker.has_readers()
    }

    // ---- inputs: connections

    /// A connection finished its handshake exchange; `dialled` says we
    /// opened it. On success the swarm queues what it sends first
    /// (bitfield, interest).
    pub fn peer_connected(
        &mut self,
        key: PeerKey,
        theirs: &Handshake,
        dialled: bool,
        now: Instant,
    ) -> Result<(), Refused> {
        if theirs.info_hash != self.info_hash {
            return Err(Refused::WrongTorrent);
        }
        if theirs.peer_id == self.peer_id {
            return Err(Refused::Myself);
        }
        if let Some((&old, existing)) = self.peers.iter().find(|(_, p)| p.peer_id == theirs.peer_id)
        {
            if !self.replaces(existing, theirs.peer_id, dialled, now) {
                return Err(Refused::Duplicate);
            }
            self.disconnect(old, DisconnectReason::Replaced);
            self.peer_disconnected(old);
        }
        if self.peers.len() >= self.config.max_peers && !self.make_room(now) {
            return Err(Refused::Full);
        }
        let ours = self.handshake().reserved;
        let fast = theirs.reserved.fast_extension() && ours.fast_extension();
        let mut peer = PeerState::new(theirs.peer_id, fast, self.picker.piece_count(), now);
        peer.dialled = dialled;
        peer.extended = theirs.reserved.extension_protocol() && ours.extension_protocol();
        if peer.extended {
            peer.queue(Transmit::Message(self.extended_handshake()), now);
        }
        peer.pipeline = self.config.initial_pipeline.min(self.config.pipeline);
        self.queue_our_pieces(&mut peer, now);
        self.peers.insert(key, peer);
        self.choker.peer_joined(key, now);
        if let Some(revealer) = &mut self.revealer {
            revealer.peer_joined(key, self.picker.piece_count());
            self.reveal_to(key, now, false);
        }
        Ok(())
    }

    /// The connection is gone (closed by either side, or after a
    /// [`Event::Disconnect`]).
    pub fn peer_disconnected(&mut self, key: PeerKey) {
        if let Some(peer) = self.peers.remove(&key) {
            self.picker.peer_left(key, peer.remote.as_has());
            self.choker.peer_left(key);
            if let Some(revealer) = &mut self.revealer {
                let picker = &self.picker;
                revealer.peer_left(key, &|p| picker.availability(p));
            }
        }
    }

    /// A message arrived from `key`.
    pub fn handle_message(&mut self, key: PeerKey, message: Message, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.last_received = now;
        peer.silent = false;
        if let Err(reason) = self.dispatch(key, message, now) {
            self.disconnect(key, reason);
        }
    }

    // ---- inputs: pieces and readers

    /// The engine checked `piece` and it matched: mark it, tell everyone.
    pub fn piece_verified(&mut self, piece: u32, now: Instant) {
        if self.picker.have().has(piece) {
            return;
        }
        self.picker.piece_verified(piece);
        if let Some(revealer) = &self.revealer {
            for key in revealer.least_pending_first() {
                self.reveal_to(key, now, false);
            }
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            // Every peer hears of it, even one that has it: a super-seed
            // learns from these HAVEs that the piece has spread.
            if let Some(peer) = self.peers.get_mut(&key) {
                if self.revealer.is_none() {
                    peer.queue(Transmit::Message(Message::Have { piece }), now);
                }
            }
            self.update_interest(key, now);
            self.fill_requests(key, now);
        }
        if self.picker.is_complete() && !self.announced_complete {
            self.announced_complete = true;
            self.events.push_back(Event::Complete);
        }
    }

    /// The engine checked `piece` and it did not match. A sole sender is
    /// disconnected as a bad peer; with several, the picker fetches the
    /// piece from one peer at a time until the culprit shows itself.
    pub fn piece_failed(&mut self, piece: u32, now: Instant) {
        if let [culprit] = self.picker.piece_failed(piece)[..] {
            self.disconnect(culprit, DisconnectReason::BadPiece);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill_requests(key, now);
        }
    }

    /// Pieces whose hashes are not known yet (progressive torrents).
    pub fn set_hashes_unknown(&mut self, pieces: impl IntoIterator<Item = u32>) {
        self.picker.set_hashes_unknown(pieces);
    }

    /// The hash of `piece` arrived from the trusted source; it may now be
    /// requested.
    pub fn hash_known(&mut self, piece: u32, now: Instant) {
        self.picker.hash_known(piece);
        self.refresh_all(now);
    }

    /// A stream reader wants bytes from `offset` on.
    pub fn set_reader(&mut self, reader: ReaderKey, offset: u64, now: Instant) {
        self.picker.set_reader(reader, offset);
        if std::mem::take(&mut self.held) {
            self.refresh_all(now);
            return;
        }
        // A reader moves with every verified stretch; where it stands
        // changes what we ask for first, never whether a peer interests
        // us, so only the request queues are topped up.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.fill_requests(key, now);
        }
    }

    pub fn remove_reader(&mut self, reader: ReaderKey) {
        self.picker.remove_reader(reader);
    }

    /// Time passed: rechoke, time out requests, keep connections alive.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_rechoke {
            self.next_rechoke = now + self.config.rechoke_every;
            self.rechoke(now);
        }
        if now >= self.next_tick {
            let since = self
                .next_tick
                .checked_sub(TICK)
                .map_or(TICK, |t| now.saturating_duration_since(t));
            self.next_tick = now + TICK;
            self.measure_silence(since);
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for key in keys {
                self.tick_peer(key, now);
                let Some(peer) = self.peers.get_mut(&key) else {
                    continue;
                };
                let rate = peer.take_upload_rate(now);
                self.choker.set_rate(key, rate);
                if let Some(revealer) = &mut self.revealer {
                    revealer.peer_rate(key, rate);
                    self.reveal_to(key, now, true);
                }
            }
            if self.choker.measured(now) {
                self.rechoke(now);
            }
        }
    }

    /// How long a peer may sit silent on our requests: our requests are
    /// served in about the time our downlink takes for all we asked for,
    /// and a peer is taken for dead only after several times that (at
    /// least `SILENT_PEER`). When nothing arrived at all the time is not
    /// known and only the request timeout applies.
    fn measure_silence(&mut self, since: Duration) {
        let got = self
            .stats
            .downloaded
            .saturating_sub(self.downloaded_at_tick);
        self.downloaded_at_tick = self.stats.downloaded;
        let asked: u64 = self
            .peers
            .values()
            .flat_map(|p| p.outstanding.iter())
            .map(|(b, _)| u64::from(b.len))
            .sum();
        let rate = got as f64 / since.as_secs_f64().max(1e-3);
        self.silent_after = if got == 0 {
            self.config.request_timeout
        } else {
            // A request timeout set below the floor wins: clamp's bounds
            // must not cross.
            let floor = requests::SILENT_PEER.min(self.config.request_timeout);
            Duration::from_secs_f64((4.0 * asked as f64 / rate).min(3600.0))
                .clamp(floor, self.config.request_timeout)
        };
    }

    // ---- outputs

    /// The next thing for the engine to do.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves everything queued for `key` into `out`, in order.
    pub fn poll_transmit(&mut self, key: PeerKey, out: &mut Vec<Transmit>) {
        if let Some(peer) = self.peers.get_mut(&key) {
            for t in peer.outbox.drain(..) {
                if let Transmit::Block(r) = &t {
                    self.stats.uploaded += u64::from(r.length);
                    peer.sent += u64::from(r.length);
                }
                out.push(t);
            }
        }
    }

    /// Whether anything is queued for `key`.
    pub fn has_transmit(&self, key: PeerKey) -> bool {
        self.peers.get(&key).is_some_and(|p| !p.outbox.is_empty())
    }

    /// When [`Swarm::handle_timeout`] next has work.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.next_rechoke.min(self.next_tick)
    }

    // ---- internals

    fn dispatch(
        &mut self,
        key: PeerKey,
        message: Message,
        now: Instant,
    ) -> Result<(), DisconnectReason> {
        match message {
            Message::KeepAlive | Message::Port(_) | Message::Suggest { .. } => {}
            Message::AllowedFast { .. } => {}
            Message::Extended { id, payload } => self.extended_message(key, id, &payload)?,
            Message::Hashes(_) | Message::HashReject(_) => {}
            Message::Choke => self.peer_choked_us(key),
            Message::Unchoke => {
                self.peer_mut(key)?.peer_choking = false;
                self.fill_requests(key, now);
            }
            Message::Interested | Message::NotInterested => {
                let interested = message == Message::Interested;
                self.peer_mut(key)?.peer_interested = interested;
                self.choker.set_interested(key, interested, now);
                // A free slot is given at once rather than at the next
                // rechoke; rotation still waits for its period.
                self.rechoke(now);
            }
            Message::Have { piece } => self.peer_has(key, piece, now)?,
            Message::Bitfield(bits) => {
                let remote = Bitfield::from_payload(&bits, self.picker.piece_count())
                    .map_err(|e| DisconnectReason::Protocol(e.to_string()))?;
                self.replace_remote(key, Remote::Some(remote), now);
            }
            Message::HaveAll => {
                self.require_fast(key, "have all")?;
                self.replace_remote(key, Remote::All, now);
            }
            Message::HaveNone => {
                self.require_fast(key, "have none")?;
                let pieces = self.picker.piece_count();
                self.replace_remote(key, Remote::Some(Bitfield::new(pieces)), now);
            }
            Message::Request(r) => self.peer_requested(key, r, now)?,
            Message::Cancel(r) => self.peer_mut(key)?.outbox_cancel(&r),
            Message::Piece(p) => self.block_arrived(key, p, now),
            Message::Reject(r) => {
                self.require_fast(key, "reject")?;
                self.request_gone(key, r);
            }
            Message::HashRequest(r) => {
                // Peers get piece layers from the .torrent; bay keeps no
                // block-level trees to prove single blocks with.
                self.peer_mut(key)?
                    .queue(Transmit::Message(Message::HashReject(r)), now);
            }
        }
        Ok(())
    }

    /// When two hosts dial each other at the same moment, each sees the
    /// other's connection as a duplicate of its own; refusing the newer one
    /// on both sides would close both. Both sides instead keep the
    /// connection dialled by the smaller peer id. Only a young connection
    /// is replaced, so a peer dialling again later (after an announce)
    /// never takes over a working one.
    fn replaces(
        &self,
        existing: &PeerState,
        theirs: [u8; 20],
        dialled: bool,
        now: Instant,
    ) -> bool {
        let dialler = |we: bool| if we { self.peer_id } else { theirs };
        let young = now.saturating_duration_since(existing.connected_at) < SIMULTANEOUS_DIAL;
        young && dialler(dialled) < dialler(existing.dialled)
    }

    fn peer_mut(&mut self, key: PeerKey) -> Result<&mut PeerState, DisconnectReason> {
        self.peers
            .get_mut(&key)
            .ok_or_else(|| DisconnectReason::Protocol("unknown peer".into()))
    }

    fn require_fast(&mut self, key: PeerKey, what: &str) -> Result<(), DisconnectReason> {
        if self.peer_mut(key)?.fast {
            Ok(())
        } else {
            Err(DisconnectReason::Protocol(format!(
                "sent {what} without the fast extension"
            )))
        }
    }

    fn queue_our_pieces(&self, peer: &mut PeerState, now: Instant) {
        let have = self.picker.have();
        let first = if self.revealer.is_some() {
            // Pieces are revealed one by one from here on.
            if peer.fast {
                Message::HaveNone
            } else {
                Message::Bitfield(Bytes::from(vec![0; have.as_payload().len()]))
            }
        } else if peer.fast && have.is_full() {
            Message::HaveAll
        } else if peer.fast && have.count() == 0 {
            Message::HaveNone
        } else {
            Message::Bitfield(Bytes::copy_from_slice(have.as_payload()))
        };
        peer.queue(Transmit::Message(first), now);
    }

    fn peer_has(&mut self, key: PeerKey, piece: u32, now: Instant) -> Result<(), DisconnectReason> {
        if piece >= self.picker.piece_count() {
            return Err(DisconnectReason::Protocol(format!(
                "have for piece {piece} of {}",
                self.picker.piece_count()
            )));
        }
        let pieces = self.picker.piece_count();
        let peer = self.peer_mut(key)?;
        if peer.remote.add(piece) {
            let count = peer.remote.count(pieces);
            self.choker.set_pieces(key, count);
            self.picker.peer_has_piece(piece);
            if let Some(revealer) = &mut self.revealer {
                revealer.peer_has(key, piece);
                // The first copy of a piece out there may go on to hosts
                // that have nothing else to fetch from us.
                let first_spread = self.picker.availability(piece) == 1;
                let others = if first_spread && self.picker.is_complete() {
                    revealer.drained()
                } else {
                    Vec::new()
                };
                self.reveal_to(key, now, false);
                for other in others {
                    self.reveal_to(other, now, false);
                }
            }
            // One more piece can only make a peer interesting, so no scan
            // of every piece: the HAVEs of a whole swarm come through here.
            if self.picker.wants(piece) && !self.held {
                self.become_interested(key, now);
                self.fill_requests(key, now);
            }
        }
        Ok(())
    }

    /// A (first or repeated) bitfield, have-all or have-none replaces what
    /// we knew of the peer.
    fn replace_remote(&mut self, key: PeerKey, remote: Remote, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let old = std::mem::replace(&mut peer.remote, remote);
        self.picker.peer_forgotten(old.as_has());
        if let Some(peer) = self.peers.get(&key) {
            self.picker.peer_joined(peer.remote.as_has());
            self.choker
                .set_pieces(key, peer.remote.count(self.picker.piece_count()));
            if let Some(revealer) = &mut self.revealer {
                revealer.peer_replaced(key, &|p| peer.remote.has(p));
            }
        }
        if self.revealer.is_some() {
            self.reveal_to(key, now, false);
        }
        self.update_interest(key, now);
        self.fill_requests(key, now);
    }

    fn peer_requested(
        &mut self,
        key: PeerKey,
        r: BlockRequest,
        now: Instant,
    ) -> Result<(), DisconnectReason> {
        // libtorrent pads a v2 file to whole pieces and asks for the last
        // block of the file in full, reaching into that padding; the engine
        // sends zeros for the bytes past the end of the blob.
        let valid = r.length > 0
            && r.length <= BLOCK_SIZE
            && r.piece < self.picker.piece_count()
            && r.begin < self.picker.piece_size(r.piece)
            && u64::from(r.begin) + u64::from(r.length) <= u64::from(self.geometry.piece_len);
        if !valid {
            return Err(DisconnectReason::Protocol(format!("bad request {r:?}")));
        }
        self.peer_mut(key)?.useful_at = Some(now);
        let serve = self.choker.is_unchoked(key) && self.picker.have().has(r.piece);
        let max_queued = self.config.max_queued_requests;
        let peer = self.peer_mut(key)?;
        if serve && peer.queued_blocks() < max_queued {
            peer.queue(Transmit::Block(r), now);
        } else if peer.fast {
            peer.queue(Transmit::Message(Message::Reject(r)), now);
        } else if serve {
            return Err(DisconnectReason::Protocol(
                "too many requests queued".into(),
            ));
        }
        Ok(())
    }

    fn update_interest(&mut self, key: PeerKey, now: Instant) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        let interested = !self.held && self.picker.is_interesting(peer.remote.as_has());
        if let Some(peer) = self.peers.get_mut(&key) {
            if interested != peer.am_interested {
                peer.am_interested = interested;
                let m = if interested {
                    Message::Interested
                } else {
                    Message::NotInterested
                };
                peer.queue(Transmit::Message(m), now);
            }
        }
    }

    /// Super-seeding: tells `key` about the pieces it should fetch from us
    /// next.
    fn reveal_to(&mut self, key: PeerKey, now: Instant, tick: bool) {
        let (Some(revealer), Some(peer)) = (&mut self.revealer, self.peers.get_mut(&key)) else {
            return;
        };
        if peer.closing {
            return;
        }
        let picker = &self.picker;
        let remote = &peer.remote;
        let view = View {
            have: picker.have(),
            theirs: &|p| remote.has(p),
            availability: &|p| picker.availability(p),
        };
        for piece in revealer.next_for(key, &view, now, tick) {
            peer.queue(Transmit::Message(Message::Have { piece }), now);
        }
    }

    fn become_interested(&mut self, key: PeerKey, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&key) {
            if !peer.am_interested {
                peer.am_interested = true;
                peer.queue(Transmit::Message(Message::Interested), now);
            }
        }
    }

    fn refresh_all(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.update_interest(key, now);
            self.fill_requests(key, now);
        }
    }

    fn rechoke(&mut self, now: Instant) {
        for change in self.choker.rechoke(now) {
            let Some(peer) = self.peers.get_mut(&change.peer) else {
                continue;
            };
            if change.unchoke {
                peer.queue(Transmit::Message(Message::Unchoke), now);
            } else {
                // Queued blocks are no longer owed; with the fast
                // extension each is rejected explicitly.
                for r in peer.take_queued_blocks() {
                    if peer.fast {
                        peer.queue(Transmit::Message(Message::Reject(r)), now);
                    }
                }
                peer.queue(Transmit::Message(Message::Choke), now);
            }
        }
    }

    fn disconnect(&mut self, key: PeerKey, reason: DisconnectReason) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.closing {
            return;
        }
        peer.closing = true;
        peer.peer_choking = true;
        peer.am_interested = false;
        peer.outbox.clear();
        for (block, _) in peer.outstanding.drain(..) {
            self.picker.request_dropped(key, block);
        }
        self.events
            .push_back(Event::Disconnect { peer: key, reason });
    }
}

#[cfg(test)]
mod tests;
