//! Who may download from us: a fixed number of upload slots, rotated fairly.
//!
//! Sans-IO: the swarm reports interest and calls [`Choker::rechoke`] on a
//! timer with the current time; it answers which peers to choke and unchoke.
//! In a fleet every host is cooperative, so a free slot goes to the
//! waiting peer that is furthest behind (fewest pieces; among equals, the
//! one that waited longest), and slots rotate: a peer that has held a slot
//! for a full rotation period gives it up to the next in that order.
//! Nobody waits forever and nobody holds a slot forever while others wait.
//! Furthest behind first, rather than first come first served, matters at
//! scale: slots are handed out in the first second of a download and
//! rarely rotate within it, so under first come first served a simulated
//! fleet of 200 hosts had a tail of hosts unchoked by few peers, at 40 %
//! of their link for most of the download.
//!
//! The slots follow what their holders take. A fixed count assumes every
//! holder takes a fair share of our uplink; a host on a slow link, always
//! behind and so always first in line, takes a fraction of one, and with
//! a tenth of a simulated fleet at a quarter of the rate those hosts held
//! most of every uploader's slots and every host took 4-5 times its link
//! time. So the swarm reports, once a tick, what each peer took from us:
//! while peers wait and the holders together take clearly less than the
//! most we have sent in a tick, more slots open, as many as the holders'
//! average rate says would fill the gap (at most four times the base
//! count); once the holders fill the uplink again, the extra slots close
//! one a tick as their holders give them up.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::picker::PeerKey;

#[derive(Debug)]
struct Slot {
    interested: bool,
    /// Pieces the peer has told us it has.
    pieces: u32,
    unchoked_since: Option<Instant>,
    waiting_since: Instant,
    /// Bytes a second we sent it over the last tick.
    rate: f64,
    /// It held a slot and took less than a quarter of a fair share of the
    /// uplink: it gives the slot up to a peer that waits and queues behind
    /// every peer not so marked, until it holds a slot again.
    took_little: bool,
}

/// Below this share of the best tick the holders leave the uplink idle.
const UNDERUSED: f64 = 0.8;
/// From this share on the uplink counts as full again.
const FULL: f64 = 0.95;
/// The best tick is forgotten by this much a tick, so that a link shared
/// with other torrents, or a rate measured in a burst, does not keep
/// slots open for ever.
const BEST_DECAY: f64 = 0.98;
/// A holder is judged on its rate once it has held its slot this long
/// (a tick of measurement and the time its requests take to ramp up).
const JUDGED_AFTER: Duration = Duration::from_secs(2);
/// Most slots, as a multiple of the configured count.
const MOST_SLOTS: usize = 4;

/// Upload-slot bookkeeping for one torrent.
#[derive(Debug)]
pub struct Choker {
    slots: usize,
    rotate_every: Duration,
    peers: BTreeMap<PeerKey, Slot>,
    /// Slots open beyond `slots` because the holders leave the uplink idle.
    extra: usize,
    /// The most we sent in one tick, decaying (bytes a second).
    best: f64,
}

/// A change to send: CHOKE (`unchoke == false`) or UNCHOKE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChokeChange {
    pub peer: PeerKey,
    pub unchoke: bool,
}

impl Choker {
    pub fn new(slots: usize, rotate_every: Duration) -> Choker {
        Choker {
            slots: slots.max(1),
            rotate_every,
            peers: BTreeMap::new(),
            extra: 0,
            best: 0.0,
        }
    }

    /// Slots open now.
    pub fn slot_count(&self) -> usize {
        self.slots + self.extra
    }

    pub fn peer_joined(&mut self, peer: PeerKey, now: Instant) {
        self.peers.insert(
            peer,
            Slot {
                interested: false,
                pieces: 0,
                unchoked_since: None,
                waiting_since: now,
                rate: 0.0,
                took_little: false,
            },
        );
    }

    pub fn peer_left(&mut self, peer: PeerKey) {
        self.peers.remove(&peer);
    }

    pub fn set_interested(&mut self, peer: PeerKey, interested: bool, now: Instant) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            if interested && !slot.interested && slot.unchoked_since.is_none() {
                slot.waiting_since = now;
            }
            slot.interested = interested;
        }
    }

    /// The peer has `pieces` pieces: among peers waiting for a slot, the
    /// one with the fewest goes first.
    pub fn set_pieces(&mut self, peer: PeerKey, pieces: u32) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.pieces = pieces;
        }
    }

    /// We sent the peer `rate` bytes a second over the last tick; call
    /// [`Choker::measured`] once every peer's rate is in.
    pub fn set_rate(&mut self, peer: PeerKey, rate: f64) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.rate = rate;
        }
    }

    /// A tick's rates are in: opens slots when the holders leave the
    /// uplink idle while peers wait, closes them once it is full, and
    /// marks holders that take far less than a fair share. Returns whether
    /// the slots should be reconsidered now.
    pub fn measured(&mut self, now: Instant) -> bool {
        let total: f64 = self.peers.values().map(|s| s.rate).sum();
        self.best = total.max(self.best * BEST_DECAY);
        let little = self.best / self.slot_count() as f64 / 4.0;
        let mut marked = false;
        for slot in self.peers.values_mut() {
            let judged = slot
                .unchoked_since
                .is_some_and(|t| now.saturating_duration_since(t) >= JUDGED_AFTER);
            if judged && slot.interested && slot.rate < little && !slot.took_little {
                slot.took_little = true;
                marked = true;
            }
        }
        let holders = self
            .peers
            .values()
            .filter(|s| s.unchoked_since.is_some())
            .count();
        let waiting = self
            .peers
            .values()
            .filter(|s| s.interested && s.unchoked_since.is_none())
            .count();
        let most = (self.slots * MOST_SLOTS).saturating_sub(self.slots);
        if waiting > 0 && holders >= self.slot_count() && total < UNDERUSED * self.best {
            // Each new holder is taken to take what the present ones take
            // on average; a holder that takes nothing counts as a tenth of
            // the best, so an idle link opens slots a few at a time.
            let each = (total / holders.max(1) as f64).max(self.best / 10.0);
            let gap = ((self.best - total) / each).ceil() as usize;
            let grown = (self.extra + gap.clamp(1, waiting)).min(most);
            let opened = grown > self.extra;
            self.extra = grown;
            return opened || marked;
        }
        if total >= FULL * self.best || waiting == 0 {
            self.extra = self.extra.saturating_sub(1);
        }
        marked && waiting > 0
    }

    pub fn is_unchoked(&self, peer: PeerKey) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|s| s.unchoked_since.is_some())
    }

    /// Recomputes who holds a slot; returns the changes to send.
    pub fn rechoke(&mut self, now: Instant) -> Vec<ChokeChange> {
        let mut changes = Vec::new();
        // Free slots held by peers that lost interest, when someone else
        // wants one. Otherwise the slot stays: a host that has every piece
        // we have for the moment loses interest and regains it with our
        // next piece, and choking it on each flap made it drop requests
        // whose blocks were already on the wire and fetch them twice.
        let someone_waits = self
            .peers
            .values()
            .any(|s| s.interested && s.unchoked_since.is_none());
        // A holder that takes little gives way only to a peer that may
        // take more.
        let a_taker_waits = self
            .peers
            .values()
            .any(|s| s.interested && s.unchoked_since.is_none() && !s.took_little);
        for (&peer, slot) in &mut self.peers {
            let gives_way =
                (someone_waits && !slot.interested) || (a_taker_waits && slot.took_little);
            if gives_way && slot.unchoked_since.is_some() {
                slot.unchoked_since = None;
                slot.waiting_since = now;
                changes.push(ChokeChange {
                    peer,
                    unchoke: false,
                });
            }
        }
        let mut waiting: Vec<(bool, u32, Instant, PeerKey)> = self
            .peers
            .iter()
            .filter(|(_, s)| s.interested && s.unchoked_since.is_none())
            .map(|(&p, s)| (s.took_little, s.pieces, s.waiting_since, p))
            .collect();
        waiting.sort_unstable();
        let mut holders: Vec<(Instant, PeerKey)> = self
            .peers
            .iter()
            .filter_map(|(&p, s)| s.unchoked_since.map(|t| (t, p)))
            .collect();
        holders.sort_unstable();
        let mut holders = holders.into_iter();
        let mut free = self.slot_count().saturating_sub(holders.len());
        for (_, _, _, peer) in waiting {
            if free == 0 {
                // Take the slot of the longest holder, if its turn is over.
                match holders.next() {
                    Some((since, old))
                        if now.saturating_duration_since(since) >= self.rotate_every =>
                    {
                        self.set_unchoked(old, None, now);
                        changes.push(ChokeChange {
                            peer: old,
                            unchoke: false,
                        });
                    }
                    _ => break,
                }
            } else {
                free -= 1;
            }
            self.set_unchoked(peer, Some(now), now);
            changes.push(ChokeChange {
                peer,
                unchoke: true,
            });
        }
        changes
    }

    fn set_unchoked(&mut self, peer: PeerKey, since: Option<Instant>, now: Instant) {
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.unchoked_since = since;
            if since.is_none() {
                slot.waiting_since = now;
            } else {
                slot.took_little = false;
                slot.rate = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unchoked(c: &Choker, peers: std::ops::Range<PeerKey>) -> Vec<PeerKey> {
        peers.filter(|&p| c.is_unchoked(p)).collect()
    }

    #[test]
    fn slots_go_first_come_first_served() {
        let t0 = Instant::now();
        let mut c = Choker::new(2, Duration::from_secs(30));
        for p in 0..4 {
            c.peer_joined(p, t0);
        }
        for (i, p) in [2, 0, 3].into_iter().enumerate() {
            c.set_interested(p, true, t0 + Duration::from_millis(i as u64));
        }
        let changes = c.rechoke(t0 + Duration::from_secs(1));
        assert_eq!(changes.len(), 2);
        assert_eq!(unchoked(&c, 0..4), vec![0, 2]);
    }

    #[test]
    fn a_free_slot_goes_to_the_waiting_peer_furthest_behind() {
        let t0 = Instant::now();
        let mut c = Choker::new(1, Duration::from_secs(30));
        for p in 0..3 {
            c.peer_joined(p, t0);
        }
        c.set_pieces(0, 10);
        c.set_pieces(1, 50);
        c.set_pieces(2, 3);
        for p in 0..3 {
            c.set_interested(p, true, t0 + Duration::from_millis(u64::from(p)));
        }
        c.rechoke(t0 + Duration::from_secs(1));
        assert_eq!(unchoked(&c, 0..3), vec![2]);
        // It loses interest while others wait: its slot goes to peer 0,
        // which has fewer pieces than peer 1 though it waited as long.
        c.set_interested(2, false, t0 + Duration::from_secs(2));
        c.rechoke(t0 + Duration::from_secs(2));
        assert_eq!(unchoked(&c, 0..3), vec![0]);
    }

    #[test]
    fn slots_rotate_so_nobody_waits_forever() {
        let t0 = Instant::now();
        let mut c = Choker::new(1, Duration::from_secs(30));
        for p in 0..3 {
            c.peer_joined(p, t0);
            c.set_interested(p, true, t0 + Duration::from_millis(u64::from(p)));
        }
        let mut served = Vec::new();
        let mut now = t0;
        for _ in 0..9 {
            now += Duration::from_secs(10);
            c.rechoke(now);
            served.extend(unchoked(&c, 0..3));
        }
        for p in 0..3 {
            assert!(served.contains(&p), "peer {p} never got a slot: {served:?}");
        }
        assert_eq!(served.len(), 9, "exactly one slot at a time");
    }

    #[test]
    fn losing_interest_frees_the_slot() {
        let t0 = Instant::now();
        let mut c = Choker::new(1, Duration::from_secs(30));
        c.peer_joined(1, t0);
        c.peer_joined(2, t0);
        c.set_interested(1, true, t0);
        c.set_interested(2, true, t0 + Duration::from_millis(1));
        c.rechoke(t0);
        assert_eq!(unchoked(&c, 1..3), vec![1]);
        c.set_interested(1, false, t0);
        let changes = c.rechoke(t0 + Duration::from_secs(1));
        assert!(changes.contains(&ChokeChange {
            peer: 1,
            unchoke: false
        }));
        assert_eq!(unchoked(&c, 1..3), vec![2]);
        c.peer_left(2);
        assert!(unchoked(&c, 1..3).is_empty());
    }

    #[test]
    fn slots_open_while_the_holders_leave_the_uplink_idle_and_close_after() {
        let t0 = Instant::now();
        let mut c = Choker::new(2, Duration::from_secs(30));
        for p in 0..8 {
            c.peer_joined(p, t0);
            c.set_interested(p, true, t0 + Duration::from_millis(u64::from(p)));
        }
        c.rechoke(t0);
        assert_eq!(unchoked(&c, 0..8), vec![0, 1]);
        // Two fast holders fill the uplink: nothing opens.
        c.set_rate(0, 50e6);
        c.set_rate(1, 50e6);
        assert!(!c.measured(t0 + Duration::from_secs(3)));
        assert_eq!(c.slot_count(), 2);
        // The slots pass to slow hosts that take a tenth each: the uplink
        // idles while six wait, so slots open for them.
        c.set_rate(0, 5e6);
        c.set_rate(1, 5e6);
        assert!(c.measured(t0 + Duration::from_secs(3)));
        assert!(c.slot_count() > 2, "{}", c.slot_count());
        assert!(c.slot_count() <= 8);
        c.rechoke(t0 + Duration::from_secs(1));
        assert_eq!(unchoked(&c, 0..8).len(), c.slot_count());
        // Once the holders fill the uplink again the extra slots close,
        // one a tick, as their holders give them up.
        for p in 0..8 {
            c.set_rate(p, 100e6 / 8.0);
        }
        let before = c.slot_count();
        assert!(!c.measured(t0 + Duration::from_secs(3)));
        assert_eq!(c.slot_count(), before - 1);
        for _ in 0..10 {
            c.measured(t0 + Duration::from_secs(3));
        }
        assert_eq!(c.slot_count(), 2);
    }

    #[test]
    fn an_idle_link_with_nobody_waiting_opens_nothing() {
        let t0 = Instant::now();
        let mut c = Choker::new(2, Duration::from_secs(30));
        c.peer_joined(0, t0);
        c.set_interested(0, true, t0);
        c.rechoke(t0);
        c.set_rate(0, 10e6);
        assert!(!c.measured(t0 + Duration::from_secs(3)));
        c.set_rate(0, 1e6);
        assert!(!c.measured(t0 + Duration::from_secs(3)));
        assert_eq!(c.slot_count(), 2);
    }
}
