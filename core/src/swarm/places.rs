//! Which connections earn their place in a swarm.
//!
//! A connection is worth keeping while bytes flow over it or may soon: a
//! peer that asks us for blocks, one that delivers what we asked for, or
//! one whose pieces we want. Two rules follow:
//! * a full swarm lets a newcomer in by closing a peer that offers
//!   nothing: one that never asked for nor delivered a block within
//!   [`SwarmConfig::newcomer_grace`] of connecting (idle handshakes, the
//!   way a stranger would fill the slots), else one idle for
//!   [`SwarmConfig::idle_place_after`];
//! * a connection between two peers that both have every piece is closed
//!   at the next tick, and one over which neither side wants anything is
//!   closed after [`SwarmConfig::useless_after`]: a long-lived host's
//!   connections follow its active transfers, not the blobs it holds.

use std::time::Instant;

use super::{DisconnectReason, PeerState, Swarm, SwarmConfig};
use crate::picker::PeerKey;

impl Swarm {
    /// The peer that should give its place to a newcomer, with how long
    /// it has offered nothing, if any may.
    #[must_use]
    pub fn place_to_give(&self, now: Instant) -> Option<(PeerKey, std::time::Duration)> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.closing)
            .filter_map(|(k, p)| offers_nothing_for(p, &self.config, now).map(|d| (*k, d)))
            .max_by_key(|(_, d)| *d)
    }

    /// Makes room for a newcomer by closing the peer [`Swarm::place_to_give`]
    /// names; false when every peer still earns its place.
    pub fn make_room(&mut self, now: Instant) -> bool {
        let Some((victim, _)) = self.place_to_give(now) else {
            return false;
        };
        self.disconnect(victim, DisconnectReason::MadeRoom);
        self.peer_disconnected(victim);
        true
    }

    /// Closes the connection to `key` if it has no use; returns whether
    /// it did.
    pub(super) fn close_if_useless(&mut self, key: PeerKey, now: Instant) -> bool {
        let Some(peer) = self.peers.get(&key) else {
            return false;
        };
        let reason = if self.picker.is_complete() && peer.remote.is_full() {
            DisconnectReason::Finished
        } else if wants_nothing(peer) && quiet_for(peer, now) >= self.config.useless_after {
            DisconnectReason::Useless
        } else {
            return false;
        };
        self.disconnect(key, reason);
        true
    }
}

/// Neither side wants anything of the other at the moment.
fn wants_nothing(peer: &PeerState) -> bool {
    !peer.am_interested && !peer.peer_interested && peer.outstanding.is_empty()
}

/// Time since the peer last asked for or delivered a block (or since it
/// connected, if it never did).
fn quiet_for(peer: &PeerState, now: Instant) -> std::time::Duration {
    now.saturating_duration_since(peer.useful_at.unwrap_or(peer.connected_at))
}

/// How long `peer` has offered nothing, if long enough that it may give
/// its place to a newcomer. A peer whose pieces we want, or which waits
/// on our answers, always keeps it.
fn offers_nothing_for(
    peer: &PeerState,
    config: &SwarmConfig,
    now: Instant,
) -> Option<std::time::Duration> {
    if peer.am_interested || !peer.outstanding.is_empty() || peer.queued_blocks() > 0 {
        return None;
    }
    let quiet = quiet_for(peer, now);
    let limit = match peer.useful_at {
        None => config.newcomer_grace,
        Some(_) => config.idle_place_after,
    };
    (quiet >= limit).then_some(quiet)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bay_wire::peer::{BlockRequest, Handshake, Message};

    use super::*;
    use crate::bitfield::Bitfield;
    use crate::swarm::{Event, Geometry, Refused};

    const PIECES: u32 = 4;

    fn id(n: u8) -> [u8; 20] {
        [n; 20]
    }

    /// A seed with every piece and room for `max_peers`.
    fn seed(max_peers: usize, now: Instant) -> Swarm {
        let config = SwarmConfig {
            max_peers,
            ..SwarmConfig::default()
        };
        let geometry = Geometry {
            total_len: u64::from(PIECES) * 65_536,
            piece_len: 65_536,
        };
        Swarm::new(
            config,
            geometry,
            [7; 20],
            id(0),
            &Bitfield::full(PIECES),
            now,
        )
    }

    fn join(s: &mut Swarm, key: PeerKey, now: Instant) -> Result<(), Refused> {
        s.peer_connected(key, &Handshake::new([7; 20], id(key as u8 + 1)), false, now)
    }

    fn disconnects(s: &mut Swarm) -> Vec<(PeerKey, DisconnectReason)> {
        let mut out = Vec::new();
        while let Some(e) = s.poll_event() {
            if let Event::Disconnect { peer, reason } = e {
                out.push((peer, reason));
            }
        }
        out
    }

    #[test]
    fn idle_handshakes_give_their_place_after_the_grace() {
        let t = Instant::now();
        let mut s = seed(2, t);
        join(&mut s, 1, t).unwrap();
        join(&mut s, 2, t + Duration::from_millis(500)).unwrap();
        assert_eq!(
            join(&mut s, 3, t + Duration::from_secs(1)),
            Err(Refused::Full)
        );
        let later = t + Duration::from_secs(4);
        join(&mut s, 3, later).unwrap();
        assert_eq!(disconnects(&mut s), vec![(1, DisconnectReason::MadeRoom)]);
        assert_eq!(s.peer_count(), 2);
    }

    #[test]
    fn a_peer_that_downloads_keeps_its_place() {
        let t = Instant::now();
        let mut s = seed(2, t);
        join(&mut s, 1, t).unwrap();
        join(&mut s, 2, t).unwrap();
        s.handle_message(1, Message::Interested, t);
        let r = BlockRequest {
            piece: 0,
            begin: 0,
            length: 16_384,
        };
        s.handle_message(1, Message::Request(r), t + Duration::from_secs(2));
        s.poll_transmit(1, &mut Vec::new());
        let later = t + Duration::from_secs(10);
        join(&mut s, 3, later).unwrap();
        assert_eq!(disconnects(&mut s), vec![(2, DisconnectReason::MadeRoom)]);
        // Once it has been useful it is protected for `idle_place_after`.
        assert_eq!(join(&mut s, 4, later), Err(Refused::Full));
        let much_later = t + Duration::from_secs(40);
        join(&mut s, 4, much_later).unwrap();
        assert_eq!(disconnects(&mut s), vec![(1, DisconnectReason::MadeRoom)]);
    }

    #[test]
    fn two_complete_peers_part_at_the_next_tick() {
        let t = Instant::now();
        let mut s = seed(8, t);
        join(&mut s, 1, t).unwrap();
        join(&mut s, 2, t).unwrap();
        s.handle_message(1, Message::Bitfield(vec![0xf0].into()), t);
        s.handle_timeout(t + Duration::from_secs(1));
        assert_eq!(disconnects(&mut s), vec![(1, DisconnectReason::Finished)]);
    }

    #[test]
    fn a_link_nobody_needs_closes_after_a_minute() {
        let t = Instant::now();
        let mut s = seed(8, t);
        join(&mut s, 1, t).unwrap();
        join(&mut s, 2, t).unwrap();
        s.handle_message(2, Message::Interested, t);
        for sec in 1..=59 {
            let now = t + Duration::from_secs(sec);
            s.handle_message(1, Message::KeepAlive, now);
            s.handle_message(2, Message::KeepAlive, now);
            s.handle_timeout(now);
        }
        assert_eq!(disconnects(&mut s), vec![]);
        s.handle_timeout(t + Duration::from_secs(61));
        // Peer 2 waits for our pieces: it stays.
        assert_eq!(disconnects(&mut s), vec![(1, DisconnectReason::Useless)]);
    }
}
