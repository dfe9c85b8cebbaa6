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

/// Blocks still to arrive (1 MiB) below which end-game starts.
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
    rng: u64,
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
            rng: seed | 1,
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
        // Byte-wise: this runs for every peer after every verified piece.
        // Spare bits past the last piece are zero in `hash_known`.
        let wanted = self
            .have
            .as_payload()
            .iter()
            .zip(self.hash_known.as_payload())
            .map(|(have, known)| known & !have);
        match has {
            PeerHas::All => wanted.into_iter().any(|w| w != 0),
            PeerHas::Some(theirs) => wanted.zip(theirs.as_payload()).any(|(w, t)| w & t != 0),
        }
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
    /// [`END_GAME_BLOCKS`] blocks still to arrive. With request pipelines
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
                .take(END_GAME_BLOCKS + 1)
                .count()
                <= END_GAME_BLOCKS
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
        // (availability, position in the rotated scan, piece)
        let mut candidates: Vec<(u16, u32, u32)> = Vec::new();
        for i in 0..n {
            let p = (i + offset) % n;
            if self.wants(p) && !self.started.has(p) && has.has(p) {
                let avail = self.availability.get(p as usize).copied().unwrap_or(0);
                candidates.push((avail, i, p));
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
        // xorshift64: tie-breaking needs spread, not cryptographic strength.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
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
mod tests {
    use super::*;

    const PIECE: u32 = 2 * BLOCK_LEN;

    fn picker(pieces: u32) -> Picker {
        Picker::new(u64::from(pieces) * u64::from(PIECE), PIECE, 7)
    }

    fn pick(p: &mut Picker, peer: PeerKey, has: PeerHas<'_>, want: usize) -> Vec<Block> {
        let mut out = Vec::new();
        p.pick(peer, has, want, true, &mut out);
        out
    }

    fn deliver(p: &mut Picker, peer: PeerKey, blocks: &[Block]) -> Vec<Received> {
        blocks.iter().map(|b| p.block_received(peer, *b)).collect()
    }

    #[test]
    fn rarest_piece_first() {
        let mut p = picker(4);
        let mut common = Bitfield::full(4);
        common.clear(2);
        p.peer_joined(PeerHas::Some(&common));
        p.peer_joined(PeerHas::Some(&common));
        let blocks = pick(&mut p, 1, PeerHas::All, 2);
        assert!(blocks.iter().all(|b| b.piece == 2), "{blocks:?}");
    }

    #[test]
    fn started_pieces_are_finished_before_new_ones() {
        let mut p = picker(8);
        let first = pick(&mut p, 1, PeerHas::All, 1);
        let next = pick(&mut p, 2, PeerHas::All, 1);
        assert_eq!(first[0].piece, next[0].piece);
        assert_ne!(first[0].offset, next[0].offset);
    }

    #[test]
    fn readers_get_the_pieces_just_ahead_of_them() {
        let mut p = picker(64);
        p.set_reader(9, u64::from(PIECE) * 40 + 5);
        let blocks = pick(&mut p, 1, PeerHas::All, 4);
        let pieces: Vec<u32> = blocks.iter().map(|b| b.piece).collect();
        assert_eq!(pieces, vec![40, 40, 41, 41]);
    }

    #[test]
    fn only_pieces_the_peer_has_and_whose_hash_is_known() {
        let mut p = picker(4);
        p.set_hashes_unknown([1, 2, 3]);
        let mut peer_has = Bitfield::new(4);
        peer_has.set(1);
        assert!(pick(&mut p, 1, PeerHas::Some(&peer_has), 8).is_empty());
        assert!(!p.is_interesting(PeerHas::Some(&peer_has)));
        p.hash_known(1);
        assert!(p.is_interesting(PeerHas::Some(&peer_has)));
        let blocks = pick(&mut p, 1, PeerHas::Some(&peer_has), 8);
        assert_eq!(blocks.len(), 2);
        assert!(blocks.iter().all(|b| b.piece == 1));
    }

    #[test]
    fn piece_completes_verifies_and_is_had() {
        let mut p = picker(1);
        let blocks = pick(&mut p, 1, PeerHas::All, 8);
        assert_eq!(blocks.len(), 2);
        let r = deliver(&mut p, 1, &blocks);
        assert!(!r[0].piece_complete);
        assert!(r[1].piece_complete);
        p.piece_verified(0);
        assert!(p.is_complete());
        assert!(pick(&mut p, 1, PeerHas::All, 8).is_empty());
    }

    #[test]
    fn failed_piece_names_its_senders_and_is_picked_again() {
        let mut p = picker(1);
        let a = pick(&mut p, 1, PeerHas::All, 1);
        let b = pick(&mut p, 2, PeerHas::All, 1);
        deliver(&mut p, 1, &a);
        assert!(deliver(&mut p, 2, &b)[0].piece_complete);
        assert_eq!(p.piece_failed(0), vec![1, 2]);
        assert_eq!(pick(&mut p, 3, PeerHas::All, 8).len(), 2);
    }

    #[test]
    fn a_piece_that_failed_with_several_senders_goes_to_one_peer() {
        let mut p = picker(1);
        let a = pick(&mut p, 1, PeerHas::All, 1);
        let b = pick(&mut p, 2, PeerHas::All, 1);
        deliver(&mut p, 1, &a);
        deliver(&mut p, 2, &b);
        assert_eq!(p.piece_failed(0), vec![1, 2]);
        assert_eq!(pick(&mut p, 1, PeerHas::All, 1).len(), 1);
        assert!(
            pick(&mut p, 2, PeerHas::All, 8).is_empty(),
            "owned by peer 1"
        );
        assert_eq!(pick(&mut p, 1, PeerHas::All, 8).len(), 1);
        p.peer_left(1, PeerHas::All);
        assert_eq!(pick(&mut p, 2, PeerHas::All, 8).len(), 2, "free again");
    }

    #[test]
    fn unrequested_or_malformed_blocks_are_unwanted() {
        let mut p = picker(2);
        let blocks = pick(&mut p, 1, PeerHas::All, 1);
        assert!(p.block_received(2, blocks[0]).unwanted);
        let odd = Block {
            len: 5,
            ..blocks[0]
        };
        assert!(p.block_received(1, odd).unwanted);
        let far = Block {
            piece: 99,
            ..blocks[0]
        };
        assert!(p.block_received(1, far).unwanted);
        assert!(!p.block_received(1, blocks[0]).unwanted);
        assert!(p.block_received(1, blocks[0]).unwanted, "second copy");
    }

    #[test]
    fn a_departed_peer_frees_its_requests() {
        let mut p = picker(1);
        assert_eq!(pick(&mut p, 1, PeerHas::All, 8).len(), 2);
        p.peer_left(1, PeerHas::All);
        assert_eq!(pick(&mut p, 2, PeerHas::All, 8).len(), 2);
    }

    #[test]
    fn end_game_doubles_up_then_cancels_the_loser() {
        let mut p = picker(1);
        let slow = pick(&mut p, 1, PeerHas::All, 8);
        let fast = pick(&mut p, 2, PeerHas::All, 8);
        assert_eq!(
            slow, fast,
            "end-game asks the second peer for the same blocks"
        );
        assert!(
            pick(&mut p, 3, PeerHas::All, 8).is_empty(),
            "at most two requesters"
        );
        let r = deliver(&mut p, 2, &fast);
        assert_eq!(r[0].cancel, vec![1]);
        assert!(r[1].piece_complete);
        assert!(p.block_received(1, slow[0]).unwanted);
    }

    #[test]
    fn no_end_game_while_pieces_are_still_to_come() {
        let mut p = picker(4);
        p.set_hashes_unknown([2, 3]);
        let first = pick(&mut p, 1, PeerHas::All, 8);
        assert_eq!(first.len(), 4, "both blocks of pieces 0 and 1");
        assert!(
            pick(&mut p, 2, PeerHas::All, 8).is_empty(),
            "pieces 2 and 3 are not started: no doubling up yet"
        );
        p.hash_known(2);
        p.hash_known(3);
        assert_eq!(pick(&mut p, 1, PeerHas::All, 8).len(), 4);
        let doubled = pick(&mut p, 2, PeerHas::All, 8);
        assert_eq!(
            doubled.len(),
            END_GAME_BATCH,
            "now every piece is in flight: end-game, a few blocks at a time"
        );
        let mut busy = Vec::new();
        p.pick(3, PeerHas::All, 8, false, &mut busy);
        assert!(
            busy.is_empty(),
            "a peer with requests in flight gets no copies"
        );
    }

    #[test]
    fn short_last_piece_has_short_last_block() {
        let total = u64::from(PIECE) + 100;
        let mut p = Picker::new(total, PIECE, 1);
        p.set_reader(1, u64::from(PIECE));
        let blocks = pick(&mut p, 1, PeerHas::All, 1);
        assert_eq!(
            blocks,
            vec![Block {
                piece: 1,
                offset: 0,
                len: 100
            }]
        );
        assert_eq!(p.piece_size(1), 100);
    }

    proptest::proptest! {
        /// Peers that together hold every piece, some of whose requests are
        /// dropped, always bring the download to completion.
        #[test]
        fn swarm_of_partial_peers_completes(
            pieces in 1u32..40,
            tail in 0u32..PIECE,
            masks in proptest::collection::vec(proptest::collection::vec(proptest::bool::ANY, 40), 1..4),
            drops in proptest::collection::vec(proptest::bool::ANY, 64),
        ) {
            let total = u64::from(pieces) * u64::from(PIECE) - u64::from(tail);
            let total = total.max(1);
            let mut p = Picker::new(total, PIECE, 3);
            let n = p.piece_count();
            let mut fields: Vec<Bitfield> = masks.iter().map(|m| {
                let mut b = Bitfield::new(n);
                for (i, on) in m.iter().enumerate().take(n as usize) {
                    if *on { b.set(i as u32); }
                }
                b
            }).collect();
            // The first peer fills the gaps so the swarm as a whole is complete.
            for piece in 0..n {
                if !fields.iter().any(|f| f.has(piece)) {
                    fields[0].set(piece);
                }
            }
            for f in &fields {
                p.peer_joined(PeerHas::Some(f));
            }
            let mut round = 0usize;
            while !p.is_complete() {
                proptest::prop_assert!(round < 10_000, "no progress");
                for (key, f) in fields.iter().enumerate() {
                    let key = key as PeerKey;
                    let blocks = pick(&mut p, key, PeerHas::Some(f), 3);
                    for (i, b) in blocks.into_iter().enumerate() {
                        if drops[(round + i) % drops.len()] && round.is_multiple_of(3) {
                            p.request_dropped(key, b);
                            continue;
                        }
                        let r = p.block_received(key, b);
                        if r.piece_complete {
                            p.piece_verified(b.piece);
                        }
                    }
                }
                round += 1;
            }
        }
    }
}
