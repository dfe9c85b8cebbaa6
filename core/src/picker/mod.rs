//! Which block to ask which peer for next.
//!
//! Sans-IO: the swarm tells the picker what peers have and what arrived,
//! and asks it for requests to send. Order of preference:
//!
//! 1. pieces just ahead of each stream reader, nearest first, so that a
//!    client reading a blob through the proxy is never starved;
//! 2. pieces already started, so that few pieces are half done at once and
//!    each can be verified and shared early;
//! 3. the rarest piece among the peers we know, ties broken at random, so
//!    that every piece spreads through the swarm quickly.
//!
//! Pieces whose hash is not known yet (progressive torrents, whose hashes
//! arrive while the origin is still fetching) are never picked: a block we
//! could not verify is worth nothing. When every missing block is already
//! requested, end-game lets a block be asked of a second peer; the first
//! copy to arrive wins and the others are cancelled.

use std::collections::BTreeMap;

use crate::bitfield::Bitfield;

/// Size of a request; the BEP 52 merkle leaf size.
pub const BLOCK_LEN: u32 = 16 * 1024;

/// How many peers may be asked for the same block in end-game.
const END_GAME_MAX_REQUESTERS: usize = 2;

/// Second copies asked of an idle peer at once in end-game.
const END_GAME_BATCH: usize = 4;

/// Blocks still to arrive (1 MiB) below which end-game starts, unless
/// [`Picker::set_end_game_blocks`] says otherwise.
const END_GAME_BLOCKS: usize = 64;

/// The swarm's handle for a connection (not the BitTorrent peer id).
pub type PeerKey = u32;

/// A stream reader's handle.
pub type ReaderKey = u64;

/// One request: `len` bytes at `offset` within `piece`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    pub piece: u32,
    pub offset: u32,
    pub len: u32,
}

/// What a peer says it has.
#[derive(Clone, Copy, Debug)]
pub enum PeerHas<'a> {
    All,
    Some(&'a Bitfield),
}

impl PeerHas<'_> {
    fn has(&self, piece: u32) -> bool {
        match self {
            PeerHas::All => true,
            PeerHas::Some(b) => b.has(piece),
        }
    }
}

/// What a received block means for the piece it belongs to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// We did not ask this peer for it, or already had it: drop the data.
    pub unwanted: bool,
    /// Other peers asked for the same block in end-game: cancel theirs.
    pub cancel: Vec<PeerKey>,
    /// Every block of the piece is here: verify it, then call
    /// [`Picker::piece_verified`] or [`Picker::piece_failed`].
    pub piece_complete: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BlockState {
    Free,
    Requested(Vec<PeerKey>),
    Received(PeerKey),
}

/// The block-level state of a piece that is being downloaded.
#[derive(Debug)]
struct Active {
    blocks: Vec<BlockState>,
    /// For a suspect piece: the one peer it is being fetched from.
    owner: Option<PeerKey>,
}

/// Picks blocks to request for one torrent.
#[derive(Debug)]
pub struct Picker {
    piece_len: u32,
    total_len: u64,
    have: Bitfield,
    hash_known: Bitfield,
    availability: Vec<u16>,
    seeds: u32,
    /// Pieces being downloaded, by index; `started` mirrors its keys so the
    /// scans over every piece test a bit instead of searching a map.
    active: BTreeMap<u32, Active>,
    started: Bitfield,
    /// Pieces that failed with blocks from several peers: fetched from one
    /// peer at a time from then on, so the next failure names its culprit.
    suspect: Bitfield,
    readers: BTreeMap<ReaderKey, u32>,
    readahead: u32,
    end_game_blocks: usize,
    /// Tie-breaks: they need spread, not secrecy, and a seed so that
    /// tests replay.
    rng: fastrand::Rng,
}

impl Picker {
    /// A picker for a blob of `total_len` bytes in pieces of `piece_len`
    /// (a power of two of at least [`BLOCK_LEN`]); `seed` drives the random
    /// tie-breaks so runs are reproducible in tests.
    pub fn new(total_len: u64, piece_len: u32, seed: u64) -> Picker {
        let pieces = piece_count(total_len, piece_len);
        Picker {
            piece_len,
            total_len,
            have: Bitfield::new(pieces),
            hash_known: Bitfield::full(pieces),
            availability: vec![0; pieces as usize],
            seeds: 0,
            active: BTreeMap::new(),
            started: Bitfield::new(pieces),
            suspect: Bitfield::new(pieces),
            readers: BTreeMap::new(),
            readahead: 4,
            end_game_blocks: END_GAME_BLOCKS,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    // ---- getters

    pub fn piece_count(&self) -> u32 {
        self.have.len()
    }

    /// Verified pieces.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    /// Byte length of `piece` (the last one may be short).
    pub fn piece_size(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * u64::from(self.piece_len);
        let end = (start + u64::from(self.piece_len)).min(self.total_len);
        end.saturating_sub(start) as u32
    }

    /// How many connected peers have `piece`.
    pub fn availability(&self, piece: u32) -> u16 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// Whether we would want anything from a peer that has `has`.
    pub fn is_interesting(&self, has: PeerHas<'_>) -> bool {
        // Spare bits past the last piece are zero in `hash_known`.
        let wanted = self
            .have
            .as_payload()
            .iter()
            .zip(self.hash_known.as_payload())
            .map(|(have, known)| known & !have);
        match has {
            PeerHas::All => wanted.into_iter().any(|w| w != 0),
            PeerHas::Some(theirs) => {
                // Eight bytes at a time where they line up: this runs for
                // every peer after every verified piece and every hash.
                let (have, known, theirs) = (
                    self.have.as_payload(),
                    self.hash_known.as_payload(),
                    theirs.as_payload(),
                );
                let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
                let whole = have.len() / 8 * 8;
                let words = have[..whole]
                    .chunks_exact(8)
                    .zip(known[..whole].chunks_exact(8))
                    .zip(theirs.get(..whole).unwrap_or(&[]).chunks_exact(8))
                    .any(|((h, k), t)| word(k) & !word(h) & word(t) != 0);
                words
                    || have[whole..]
                        .iter()
                        .zip(&known[whole..])
                        .zip(theirs.get(whole..).unwrap_or(&[]))
                        .any(|((h, k), t)| k & !h & t != 0)
            }
        }
    }

    /// End-game starts once at most `blocks` blocks are still to arrive.
    pub fn set_end_game_blocks(&mut self, blocks: usize) {
        self.end_game_blocks = blocks.max(1);
    }

    // ---- inputs: what peers have

    /// Pieces whose hashes are not known yet (progressive torrents): called
    /// once at the start; [`Picker::hash_known`] adds them back.
    pub fn set_hashes_unknown(&mut self, pieces: impl IntoIterator<Item = u32>) {
        for p in pieces {
            self.hash_known.clear(p);
        }
    }

    /// The hash of `piece` is now known, so it may be requested.
    pub fn hash_known(&mut self, piece: u32) {
        self.hash_known.set(piece);
    }

    /// A piece we already had verified on disk at start.
    pub fn already_have(&mut self, piece: u32) {
        self.have.set(piece);
    }

    pub fn peer_joined(&mut self, has: PeerHas<'_>) {
        match has {
            PeerHas::All => self.seeds += 1,
            PeerHas::Some(b) => {
                for p in b.iter() {
                    self.bump(p, true);
                }
            }
        }
    }

    /// A peer announced one more piece (HAVE).
    pub fn peer_has_piece(&mut self, piece: u32) {
        self.bump(piece, true);
    }

    /// A peer left: forget what it had and free what it was asked for.
    pub fn peer_left(&mut self, peer: PeerKey, has: PeerHas<'_>) {
        self.peer_forgotten(has);
        self.release_all(peer);
    }

    /// What a peer had no longer counts (it left, or sent a new bitfield
    /// that replaces the old one).
    pub fn peer_forgotten(&mut self, has: PeerHas<'_>) {
        match has {
            PeerHas::All => self.seeds = self.seeds.saturating_sub(1),
            PeerHas::Some(b) => {
                for p in b.iter() {
                    self.bump(p, false);
                }
            }
        }
    }

    fn bump(&mut self, piece: u32, up: bool) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a = if up {
                a.saturating_add(1)
            } else {
                a.saturating_sub(1)
            };
        }
    }

    /// Whether any stream reader waits on this blob.
    pub fn has_readers(&self) -> bool {
        !self.readers.is_empty()
    }

    // ---- inputs: readers

    /// A stream reader needs bytes from `offset` on; pieces just ahead of it
    /// are picked first.
    pub fn set_reader(&mut self, reader: ReaderKey, offset: u64) {
        let piece = (offset / u64::from(self.piece_len)) as u32;
        self.readers.insert(reader, piece);
    }

    pub fn remove_reader(&mut self, reader: ReaderKey) {
        self.readers.remove(&reader);
    }

    // ---- inputs: blocks

    /// A block arrived from `peer`.
    pub fn block_received(&mut self, peer: PeerKey, block: Block) -> Received {
        let Some(index) = self.block_index(block) else {
            return Received {
                unwanted: true,
                ..Received::default()
            };
        };
        let Some(active) = self.active.get_mut(&block.piece) else {
            return Received {
                unwanted: true,
                ..Received::default()
            };
        };
        let Some(state) = active.blocks.get_mut(index) else {
            return Received {
                unwanted: true,
                ..Received::default()
            };
        };
        let BlockState::Requested(requesters) = state else {
            return Received {
                unwanted: true,
                ..Received::default()
            };
        };
        if !requesters.contains(&peer) {
            return Received {
                unwanted: true,
                ..Received::default()
            };
        }
        let cancel = requesters.iter().copied().filter(|&p| p != peer).collect();
        *state = BlockState::Received(peer);
        let piece_complete = active
            .blocks
            .iter()
            .all(|b| matches!(b, BlockState::Received(_)));
        Received {
            unwanted: false,
            cancel,
            piece_complete,
        }
    }

    /// `peer` will not send `block` (choke, reject, cancel, timeout).
    pub fn request_dropped(&mut self, peer: PeerKey, block: Block) {
        let Some(index) = self.block_index(block) else {
            return;
        };
        if let Some(active) = self.active.get_mut(&block.piece) {
            if let Some(state) = active.blocks.get_mut(index) {
                release(state, peer);
            }
            active.release_owner();
        }
    }

    /// The piece checked out: it is ours to serve and share.
    pub fn piece_verified(&mut self, piece: u32) {
        self.stop(piece);
        self.suspect.clear(piece);
        self.have.set(piece);
    }

    /// The piece did not match its hash: start it again, and return the
    /// peers that sent its blocks. One sender is the culprit; with several
    /// the piece becomes suspect and is fetched from a single peer next.
    pub fn piece_failed(&mut self, piece: u32) -> Vec<PeerKey> {
        let mut senders: Vec<PeerKey> = self
            .stop(piece)
            .map(|a| {
                a.blocks
                    .into_iter()
                    .filter_map(|b| match b {
                        BlockState::Received(p) => Some(p),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        senders.sort_unstable();
        senders.dedup();
        if senders.len() > 1 {
            self.suspect.set(piece);
        }
        senders
    }

    // ---- outputs

    /// Appends up to `want` blocks to ask `peer` for, best first. In
    /// end-game a peer is given second copies of blocks only while it has
    /// nothing else in flight (`idle`), a few at a time: a full pipeline of
    /// duplicates made hosts receive several MiB per blob twice.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        has: PeerHas<'_>,
        want: usize,
        idle: bool,
        out: &mut Vec<Block>,
    ) {
        let start = out.len();
        let taken = |picker: &mut Picker, piece: u32, out: &mut Vec<Block>| {
            let room = want - (out.len() - start);
            picker.take_free_blocks(peer, piece, room, out);
            out.len() - start >= want
        };
        for piece in self.reader_window(has) {
            if taken(self, piece, out) {
                return;
            }
        }
        let started: Vec<u32> = self
            .active
            .keys()
            .copied()
            .filter(|&p| has.has(p))
            .collect();
        for piece in started {
            if taken(self, piece, out) {
                return;
            }
        }
        let room = want - (out.len() - start);
        for piece in self.rarest_unstarted(has, room) {
            if taken(self, piece, out) {
                return;
            }
        }
        if out.len() == start && idle && self.is_end_game() {
            self.pick_end_game(peer, has, want.min(END_GAME_BATCH), out);
        }
    }

    /// Whether every piece we lack is in flight: only then is it the end
    /// game. While some piece is not started yet (its hash has not come
    /// from the origin, or no peer offered it yet), asking a second peer
    /// for blocks already requested would only double the traffic: in a
    /// cold swarm that streams from the origin this held all along and
    /// made hosts receive about 1.6 times the blob.
    fn all_started(&self) -> bool {
        // `have` and `active` are disjoint: a verified piece leaves `active`.
        self.have.count() as usize + self.active.len() >= self.piece_count() as usize
    }

    /// End-game: every missing piece in flight and at most
    /// [`END_GAME_BLOCKS`] blocks (or the configured number) still to
    /// arrive. With request pipelines
    /// of up to 128 blocks per peer every piece of a small blob is in
    /// flight almost from the start, and doubling requests that early
    /// made hosts receive 5-10 % of each image twice.
    fn is_end_game(&self) -> bool {
        self.all_started()
            && self
                .active
                .values()
                .flat_map(|a| &a.blocks)
                .filter(|b| !matches!(b, BlockState::Received(_)))
                .take(self.end_game_blocks + 1)
                .count()
                <= self.end_game_blocks
    }

    /// Whether `piece` is in some reader's read-ahead window.
    pub fn is_near_reader(&self, piece: u32) -> bool {
        self.readers
            .values()
            .any(|&first| piece >= first && piece < first.saturating_add(self.readahead))
    }

    /// Pieces in each reader's read-ahead window that this peer can give.
    fn reader_window(&self, has: PeerHas<'_>) -> Vec<u32> {
        let mut window = Vec::new();
        for &first in self.readers.values() {
            let end = first.saturating_add(self.readahead).min(self.piece_count());
            for p in first..end {
                if self.wants(p) && has.has(p) && !window.contains(&p) {
                    window.push(p);
                }
            }
        }
        window
    }

    /// Whether `piece` is one we still need and could verify.
    pub fn wants(&self, piece: u32) -> bool {
        !self.have.has(piece) && self.hash_known.has(piece)
    }

    /// Up to `count` wanted pieces not yet started that the peer has,
    /// rarest first; among equally rare pieces the order starts at a random
    /// piece, so ties spread over the swarm. One pass over the pieces
    /// however many are asked for: this runs for nearly every block
    /// received.
    fn rarest_unstarted(&mut self, has: PeerHas<'_>, count: usize) -> Vec<u32> {
        let n = self.piece_count();
        if n == 0 || count == 0 {
            return Vec::new();
        }
        let offset = (self.next_random() % u64::from(n)) as u32;
        // (availability, position in the rotated scan, piece). The scan
        // goes a byte (eight pieces) at a time and skips bytes with no
        // candidate: it runs for nearly every block received, over
        // thousands of pieces. Spare bits past the last piece are zero in
        // `hash_known`, so no piece past the end is taken.
        let mut candidates: Vec<(u16, u32, u32)> = Vec::new();
        let (have, known, started) = (
            self.have.as_payload(),
            self.hash_known.as_payload(),
            self.started.as_payload(),
        );
        let theirs = match has {
            PeerHas::All => None,
            PeerHas::Some(b) => Some(b.as_payload()),
        };
        for (i, ((&h, &k), &st)) in have.iter().zip(known).zip(started).enumerate() {
            let mut open = k & !h & !st;
            if let Some(t) = theirs {
                open &= t.get(i).copied().unwrap_or(0);
            }
            while open != 0 {
                let bit = open.leading_zeros();
                open &= !(0x80 >> bit);
                let p = i as u32 * 8 + bit;
                let avail = self.availability.get(p as usize).copied().unwrap_or(0);
                candidates.push((avail, (p + n - offset) % n, p));
            }
        }
        if candidates.len() > count {
            candidates.select_nth_unstable(count - 1);
            candidates.truncate(count);
        }
        candidates.sort_unstable();
        candidates.into_iter().map(|(_, _, p)| p).collect()
    }

    fn stop(&mut self, piece: u32) -> Option<Active> {
        self.started.clear(piece);
        self.active.remove(&piece)
    }

    fn take_free_blocks(&mut self, peer: PeerKey, piece: u32, room: usize, out: &mut Vec<Block>) {
        if room == 0 || !self.wants(piece) {
            return;
        }
        let count = self.piece_size(piece).div_ceil(BLOCK_LEN) as usize;
        let suspect = self.suspect.has(piece);
        self.started.set(piece);
        let active = self.active.entry(piece).or_insert_with(|| Active {
            blocks: vec![BlockState::Free; count],
            owner: None,
        });
        if suspect {
            match active.owner {
                Some(owner) if owner != peer => return,
                _ => active.owner = Some(peer),
            }
        }
        let mut taken = 0;
        for (i, state) in active.blocks.iter_mut().enumerate() {
            if taken == room {
                break;
            }
            if *state == BlockState::Free {
                *state = BlockState::Requested(vec![peer]);
                out.push(block_at(piece, i, self.piece_len, self.total_len));
                taken += 1;
            }
        }
    }

    /// Every block is asked of someone: ask this peer too for blocks that
    /// have the fewest requesters, so one slow peer can't hold the end.
    fn pick_end_game(
        &mut self,
        peer: PeerKey,
        has: PeerHas<'_>,
        want: usize,
        out: &mut Vec<Block>,
    ) {
        let (piece_len, total_len) = (self.piece_len, self.total_len);
        let pieces: Vec<u32> = self
            .active
            .keys()
            .copied()
            .filter(|&p| has.has(p))
            .collect();
        let mut added = 0;
        for piece in pieces {
            let Some(active) = self.active.get_mut(&piece) else {
                continue;
            };
            if active.owner.is_some_and(|owner| owner != peer) {
                continue;
            }
            for (i, state) in active.blocks.iter_mut().enumerate() {
                if added == want {
                    return;
                }
                if let BlockState::Requested(requesters) = state {
                    if !requesters.contains(&peer) && requesters.len() < END_GAME_MAX_REQUESTERS {
                        requesters.push(peer);
                        out.push(block_at(piece, i, piece_len, total_len));
                        added += 1;
                    }
                }
            }
        }
    }

    fn release_all(&mut self, peer: PeerKey) {
        for active in self.active.values_mut() {
            for state in &mut active.blocks {
                release(state, peer);
            }
            active.release_owner();
        }
    }

    fn block_index(&self, block: Block) -> Option<usize> {
        let size = self.piece_size(block.piece);
        let aligned = block.offset.is_multiple_of(BLOCK_LEN);
        let expected_len = (size.saturating_sub(block.offset)).min(BLOCK_LEN);
        (aligned && block.offset < size && block.len == expected_len)
            .then_some((block.offset / BLOCK_LEN) as usize)
    }

    fn next_random(&mut self) -> u64 {
        self.rng.u64(..)
    }
}

impl Active {
    /// A suspect piece nobody is working on any more may go to another peer.
    fn release_owner(&mut self) {
        let idle = self.blocks.iter().all(|b| *b == BlockState::Free);
        if idle {
            self.owner = None;
        }
    }
}

fn release(state: &mut BlockState, peer: PeerKey) {
    if let BlockState::Requested(requesters) = state {
        requesters.retain(|&p| p != peer);
        if requesters.is_empty() {
            *state = BlockState::Free;
        }
    }
}

fn block_at(piece: u32, index: usize, piece_len: u32, total_len: u64) -> Block {
    let offset = index as u32 * BLOCK_LEN;
    let piece_start = u64::from(piece) * u64::from(piece_len);
    let piece_end = (piece_start + u64::from(piece_len)).min(total_len);
    let size = piece_end.saturating_sub(piece_start) as u32;
    Block {
        piece,
        offset,
        len: size.saturating_sub(offset).min(BLOCK_LEN),
    }
}

/// Number of pieces of `piece_len` needed for `total_len` bytes.
pub fn piece_count(total_len: u64, piece_len: u32) -> u32 {
    total_len.div_ceil(u64::from(piece_len.max(1))) as u32
}

#[cfg(test)]
mod tests;
