//! Which of our pieces to tell each peer about, when we seed for a whole
//! fleet from one uplink (the origin).
//!
//! A seed that announces every piece to everyone gets asked by every peer
//! for the same pieces: a fresh piece exists only at the seed, so it is the
//! rarest piece each peer sees, and the seed's link carries copies instead
//! of new data. Instead each piece is revealed to one peer first, the one
//! with the least revealed and not yet received; the others fetch it from
//! that peer once it announces it. A peer is kept a window of pieces ahead,
//! topped up as its HAVEs come back. A piece revealed a while ago is
//! revealed to every peer still lacking it, so neither a slow or departed
//! first peer nor a host that cannot reach the peers holding it is held
//! back for long; no other piece goes out twice, so the seed's link
//! carries about one copy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;
use crate::picker::PeerKey;

/// Reveal bookkeeping for one torrent.
#[derive(Debug)]
pub(super) struct Revealer {
    window: u64,
    stale_after: Duration,
    piece_len: u32,
    /// Per peer: pieces revealed to it, and how many of them it lacks.
    told: BTreeMap<PeerKey, Told>,
    /// When each piece was first revealed to any peer.
    first_told: Vec<Option<Instant>>,
    /// No piece below this index is still to be given out the first time.
    first_untold: u32,
}

#[derive(Debug)]
struct Told {
    pieces: Bitfield,
    pending: u32,
    /// Bytes this peer may have revealed and not yet received.
    window: u64,
}

/// What the swarm knows that the choice depends on.
pub(super) struct View<'a> {
    /// Our verified pieces.
    pub have: &'a Bitfield,
    /// Pieces the peer is known to have.
    pub theirs: &'a dyn Fn(u32) -> bool,
    /// How many peers have each piece.
    pub availability: &'a dyn Fn(u32) -> u16,
}

impl Revealer {
    pub(super) fn new(pieces: u32, piece_len: u32, window: u64, stale_after: Duration) -> Revealer {
        Revealer {
            window,
            stale_after,
            piece_len,
            told: BTreeMap::new(),
            first_told: vec![None; pieces as usize],
            first_untold: 0,
        }
    }

    pub(super) fn peer_joined(&mut self, peer: PeerKey, pieces: u32) {
        self.told.insert(
            peer,
            Told {
                pieces: Bitfield::new(pieces),
                pending: 0,
                window: self.window,
            },
        );
    }

    /// A peer left: what only it was given is to be given out again.
    pub(super) fn peer_left(&mut self, peer: PeerKey, availability: &dyn Fn(u32) -> u16) {
        let Some(told) = self.told.remove(&peer) else {
            return;
        };
        for piece in told.pieces.iter() {
            let held_elsewhere =
                availability(piece) > 0 || self.told.values().any(|t| t.pieces.has(piece));
            if !held_elsewhere {
                if let Some(slot) = self.first_told.get_mut(piece as usize) {
                    *slot = None;
                }
                self.first_untold = self.first_untold.min(piece);
            }
        }
    }

    /// We sent the peer `rate` bytes a second lately: its window covers
    /// half a second of that, and never less than the configured window,
    /// so a peer the origin serves fast (one host alone, on a fast link)
    /// is not held to a round trip per window.
    pub(super) fn peer_rate(&mut self, peer: PeerKey, rate: f64) {
        if let Some(told) = self.told.get_mut(&peer) {
            told.window = self.window.max((rate * 0.5) as u64);
        }
    }

    /// The peer announced `piece`.
    pub(super) fn peer_has(&mut self, peer: PeerKey, piece: u32) {
        if let Some(told) = self.told.get_mut(&peer) {
            if told.pieces.has(piece) {
                told.pending = told.pending.saturating_sub(1);
            }
        }
    }

    /// The peer replaced what it has (bitfield, have-all): recount.
    pub(super) fn peer_replaced(&mut self, peer: PeerKey, theirs: &dyn Fn(u32) -> bool) {
        if let Some(told) = self.told.get_mut(&peer) {
            told.pending = told.pieces.iter().filter(|&p| !theirs(p)).count() as u32;
        }
    }

    /// Peers that have received everything revealed to them: they may
    /// take second copies as soon as some piece has spread.
    pub(super) fn drained(&self) -> Vec<PeerKey> {
        self.told
            .iter()
            .filter(|(_, t)| t.pending == 0)
            .map(|(&k, _)| k)
            .collect()
    }

    /// Peers in the order fresh pieces should go to them: least pending
    /// first.
    pub(super) fn least_pending_first(&self) -> Vec<PeerKey> {
        let mut keys: Vec<(u32, PeerKey)> =
            self.told.iter().map(|(&k, t)| (t.pending, k)).collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, k)| k).collect()
    }

    /// Pieces to reveal to `peer` now (the caller sends a HAVE for each).
    /// Second copies scan every piece, so while we are still receiving the
    /// blob the caller asks for them only on its periodic tick (`tick`).
    pub(super) fn next_for(
        &mut self,
        peer: PeerKey,
        view: &View<'_>,
        now: Instant,
        tick: bool,
    ) -> Vec<u32> {
        let Some((pending, window)) = self.told.get(&peer).map(|t| (t.pending, t.window)) else {
            return Vec::new();
        };
        let budget = (window / u64::from(self.piece_len.max(1))).max(4) as u32;
        let room = budget.saturating_sub(pending) as usize;
        if room == 0 {
            return Vec::new();
        }
        let mut out = self.untold(peer, view, room);
        // Second copies only to a peer that has drained what it was given:
        // until then the origin's link has first copies to carry.
        let drained = pending == 0 && out.is_empty();
        if drained && (tick || view.have.is_full()) {
            let more = self.second_copies(peer, view, room - out.len(), now, &out);
            out.extend(more);
        }
        if let Some(told) = self.told.get_mut(&peer) {
            for &piece in &out {
                if told.pieces.set(piece) {
                    told.pending += 1;
                }
                if let Some(slot) = self.first_told.get_mut(piece as usize) {
                    slot.get_or_insert(now);
                }
            }
        }
        out
    }

    /// Pieces no peer was given yet, lowest first (so the peers' readers,
    /// which read in order, find them early somewhere in the swarm).
    fn untold(&mut self, peer: PeerKey, view: &View<'_>, room: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut all_given_below = true;
        for piece in self.first_untold..view.have.len() {
            let given = self.first_told[piece as usize].is_some() || (view.availability)(piece) > 0;
            if given {
                if all_given_below {
                    self.first_untold = piece + 1;
                }
                continue;
            }
            if !view.have.has(piece) {
                all_given_below = false;
                continue;
            }
            if (view.theirs)(piece) || self.told_to(peer, piece) {
                all_given_below = false;
                continue;
            }
            out.push(piece);
            if out.len() == room {
                break;
            }
        }
        out
    }

    /// Pieces other peers were given, for a peer with room once nothing
    /// new is left: only pieces first revealed long ago (their first peer
    /// sat on them, or this peer cannot reach the peers that have them),
    /// those shared least first. A complete seed used to give drained
    /// peers any piece others held, to keep its link busy to the end; a
    /// simulated fleet of 200 hosts showed that bought no time (the hosts
    /// pass on what their peers hold as fast) and cost the origin a
    /// quarter of a copy per blob, and 8 to 16 hosts finished no later
    /// without it.
    fn second_copies(
        &self,
        peer: PeerKey,
        view: &View<'_>,
        room: usize,
        now: Instant,
        taken: &[u32],
    ) -> Vec<u32> {
        let mut candidates: Vec<(u16, u32)> = Vec::new();
        for piece in 0..view.have.len() {
            if !view.have.has(piece)
                || (view.theirs)(piece)
                || self.told_to(peer, piece)
                || taken.contains(&piece)
            {
                continue;
            }
            // The more of our peers hold the piece, the longer a peer
            // lacking it is left to fetch it from them: in a simulated
            // fleet of 1,000 hosts one 5 s age for every piece had the
            // origin send 1.37 copies, most of them pieces that dozens of
            // its peers already held and were passing on.
            let shared = (view.availability)(piece);
            let age = self.stale_after * u32::from(shared.max(1));
            let stale = self.first_told[piece as usize]
                .is_some_and(|t| now.saturating_duration_since(t) >= age);
            if stale {
                candidates.push((shared, piece));
            }
        }
        candidates.sort_unstable();
        candidates.truncate(room);
        candidates.into_iter().map(|(_, p)| p).collect()
    }

    fn told_to(&self, peer: PeerKey, piece: u32) -> bool {
        self.told.get(&peer).is_some_and(|t| t.pieces.has(piece))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u32 = 16 * 1024;
    const STALE: Duration = Duration::from_secs(5);

    /// A revealer for `pieces` pieces with a window of `window` pieces and
    /// peers 1 and 2 connected.
    fn two_peers(pieces: u32, window: u32) -> Revealer {
        let mut r = Revealer::new(pieces, PIECE, u64::from(window * PIECE), STALE);
        r.peer_joined(1, pieces);
        r.peer_joined(2, pieces);
        r
    }

    fn view<'a>(
        have: &'a Bitfield,
        theirs: &'a dyn Fn(u32) -> bool,
        availability: &'a dyn Fn(u32) -> u16,
    ) -> View<'a> {
        View {
            have,
            theirs,
            availability,
        }
    }

    #[test]
    fn each_piece_goes_to_one_peer_first() {
        let t0 = Instant::now();
        let mut r = two_peers(16, 4);
        let have = Bitfield::full(16);
        let none = |_| false;
        let zero = |_| 0;
        let a = r.next_for(1, &view(&have, &none, &zero), t0, false);
        let b = r.next_for(2, &view(&have, &none, &zero), t0, false);
        assert_eq!(a, vec![0, 1, 2, 3]);
        assert_eq!(b, vec![4, 5, 6, 7]);
        assert!(
            r.next_for(1, &view(&have, &none, &zero), t0, false)
                .is_empty(),
            "window full"
        );
        r.peer_has(1, 0);
        assert_eq!(
            r.next_for(1, &view(&have, &none, &zero), t0, false),
            vec![8]
        );
    }

    #[test]
    fn a_peer_served_fast_gets_a_larger_window() {
        let t0 = Instant::now();
        let mut r = Revealer::new(64, PIECE, 4 * u64::from(PIECE), Duration::from_secs(3));
        r.peer_joined(1, 64);
        let have = Bitfield::full(64);
        let none = |_| false;
        let zero = |_| 0;
        assert_eq!(
            r.next_for(1, &view(&have, &none, &zero), t0, false).len(),
            4
        );
        // 32 pieces a second: half a second of that is 16 pieces.
        r.peer_rate(1, f64::from(32 * PIECE));
        assert_eq!(
            r.next_for(1, &view(&have, &none, &zero), t0, false).len(),
            12
        );
    }

    #[test]
    fn fresh_pieces_go_out_as_they_arrive_and_only_once() {
        let t0 = Instant::now();
        let mut r = two_peers(8, 8);
        let mut have = Bitfield::new(8);
        let none = |_| false;
        let zero = |_| 0;
        assert!(r
            .next_for(1, &view(&have, &none, &zero), t0, false)
            .is_empty());
        have.set(0);
        assert_eq!(r.least_pending_first(), vec![1, 2]);
        assert_eq!(
            r.next_for(1, &view(&have, &none, &zero), t0, false),
            vec![0]
        );
        assert!(r
            .next_for(2, &view(&have, &none, &zero), t0, false)
            .is_empty());
        have.set(1);
        assert_eq!(r.least_pending_first(), vec![2, 1]);
        assert_eq!(
            r.next_for(2, &view(&have, &none, &zero), t0, false),
            vec![1]
        );
    }

    /// Two peers; we have piece 0 of 8 and revealed it to peer 1 at `t0`.
    fn piece_0_revealed_to_peer_1(t0: Instant) -> (Revealer, Bitfield) {
        let mut r = two_peers(8, 8);
        let mut have = Bitfield::new(8);
        have.set(0);
        let revealed = r.next_for(1, &view(&have, &|_| false, &|_| 0), t0, false);
        assert_eq!(revealed, vec![0]);
        (r, have)
    }

    #[test]
    fn a_piece_its_first_peer_sat_on_goes_to_another_later() {
        let t0 = Instant::now();
        let (mut r, have) = piece_0_revealed_to_peer_1(t0);
        let none = |_| false;
        let zero = |_| 0;
        assert!(r
            .next_for(2, &view(&have, &none, &zero), t0 + STALE / 2, true)
            .is_empty());
        assert!(r
            .next_for(2, &view(&have, &none, &zero), t0 + STALE, false)
            .is_empty());
        assert_eq!(
            r.next_for(2, &view(&have, &none, &zero), t0 + STALE, true),
            vec![0]
        );
    }

    #[test]
    fn a_host_that_cannot_reach_the_holder_gets_the_piece_later() {
        let t0 = Instant::now();
        let (mut r, have) = piece_0_revealed_to_peer_1(t0);
        let none = |_| false;
        r.peer_has(1, 0);
        // Peer 1 has piece 0 but peer 2 never gets it from there.
        let one = |_| 1;
        let v = view(&have, &none, &one);
        assert!(r.next_for(2, &v, t0 + STALE / 2, true).is_empty());
        assert_eq!(r.next_for(2, &v, t0 + STALE, true), vec![0]);
    }

    #[test]
    fn once_complete_a_drained_peer_gets_second_copies_only_when_stale() {
        let t0 = Instant::now();
        let mut r = two_peers(4, 4);
        let have = Bitfield::full(4);
        let none = |_| false;
        let zero = |_| 0;
        assert_eq!(
            r.next_for(1, &view(&have, &none, &zero), t0, false),
            vec![0, 1, 2, 3]
        );
        // Peer 1 now has 0..4; peers 3 and 4 have piece 2 as well. Peer 2
        // fetches them from the peers, not from us: no second copies yet.
        let avail = |p| if p == 2 { 3 } else { 1 };
        assert!(r
            .next_for(2, &view(&have, &none, &avail), t0, true)
            .is_empty());
        // Still lacking them 5 s on, it gets those only peer 1 has; the
        // piece three peers hold waits three times as long (15 s).
        let mine = r.next_for(2, &view(&have, &none, &avail), t0 + STALE, true);
        assert_eq!(mine, vec![0, 1, 3]);
    }

    #[test]
    fn what_a_departed_peer_was_given_is_given_again() {
        let t0 = Instant::now();
        let mut r = two_peers(4, 2);
        let have = Bitfield::full(4);
        let none = |_| false;
        let zero = |_| 0;
        assert_eq!(
            r.next_for(1, &view(&have, &none, &zero), t0, false),
            vec![0, 1, 2, 3]
        );
        r.peer_left(1, &zero);
        assert_eq!(
            r.next_for(2, &view(&have, &none, &zero), t0, false),
            vec![0, 1, 2, 3]
        );
    }
}
