//! The extension protocol (BEP 10): both sides that set its handshake bit
//! exchange an extended handshake. bay offers no extension messages of its
//! own; it reads the peer's client name (for logs) and `reqq`, the number
//! of requests the peer queues, which caps our pipeline to it.

use bay_wire::peer::{ExtendedHandshake, Message, EXTENDED_HANDSHAKE_ID};

use super::{DisconnectReason, Swarm};
use crate::picker::PeerKey;

impl Swarm {
    /// Our BEP 10 handshake: who we are and how many requests we queue.
    /// bay offers no extension messages (`m` is empty): pieces, hashes and
    /// everything else it needs are in the base protocol and BEP 6/52.
    pub(super) fn extended_handshake(&self) -> Message {
        ExtendedHandshake {
            client: Some(concat!("bay ", env!("CARGO_PKG_VERSION")).to_owned()),
            reqq: Some(self.config.max_queued_requests as u32),
            ..ExtendedHandshake::default()
        }
        .to_message()
    }

    /// A BEP 10 message. The handshake (id 0) tells us the peer's client
    /// and request queue; other ids name extensions we never offered, and
    /// are ignored as BEP 10 asks of messages one does not understand.
    pub(super) fn extended_message(
        &mut self,
        key: PeerKey,
        id: u8,
        payload: &[u8],
    ) -> Result<(), DisconnectReason> {
        let peer = self.peer_mut(key)?;
        if !peer.extended {
            return Err(DisconnectReason::Protocol(
                "extended message without the extension protocol".into(),
            ));
        }
        if id != EXTENDED_HANDSHAKE_ID {
            return Ok(());
        }
        let theirs = ExtendedHandshake::decode(payload)
            .map_err(|e| DisconnectReason::Protocol(e.to_string()))?;
        peer.client = theirs.client;
        peer.reqq = theirs.reqq.map(|q| (q as usize).max(1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bay_wire::peer::{Handshake, Reserved};

    use crate::bitfield::Bitfield;
    use crate::swarm::{Event, Geometry, SwarmConfig, Transmit};

    use super::*;

    fn swarm(now: Instant) -> Swarm {
        let geometry = Geometry {
            total_len: 1 << 20,
            piece_len: 1 << 16,
        };
        Swarm::new(
            SwarmConfig::default(),
            geometry,
            [7; 20],
            [0; 20],
            &Bitfield::new(16),
            now,
        )
    }

    fn theirs(reserved: Reserved) -> Handshake {
        Handshake {
            reserved,
            ..Handshake::new([7; 20], [1; 20])
        }
    }

    #[test]
    fn both_sides_exchange_extended_handshakes() {
        let t = Instant::now();
        let mut s = swarm(t);
        s.peer_connected(1, &theirs(Reserved::BAY), false, t)
            .unwrap();
        let mut out = Vec::new();
        s.poll_transmit(1, &mut out);
        let ours = out.iter().find_map(|m| match m {
            Transmit::Message(Message::Extended { id: 0, payload }) => {
                ExtendedHandshake::decode(payload).ok()
            }
            _ => None,
        });
        let ours = ours.expect("no extended handshake sent");
        assert!(ours.client.unwrap_or_default().starts_with("bay "));
        let peer = ExtendedHandshake {
            client: Some("libtorrent/2.0.8".into()),
            reqq: Some(3),
            ..ExtendedHandshake::default()
        };
        s.handle_message(1, peer.to_message(), t);
        let state = &s.peers[&1];
        assert_eq!(state.client.as_deref(), Some("libtorrent/2.0.8"));
        assert_eq!(state.reqq, Some(3));
        // Unknown extension ids are ignored.
        s.handle_message(
            1,
            Message::Extended {
                id: 9,
                payload: vec![1, 2].into(),
            },
            t,
        );
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn extended_messages_need_the_bit() {
        let t = Instant::now();
        let mut s = swarm(t);
        let plain = Reserved::NONE.with_fast_extension(true);
        s.peer_connected(1, &theirs(plain), false, t).unwrap();
        let mut out = Vec::new();
        s.poll_transmit(1, &mut out);
        assert!(!out
            .iter()
            .any(|m| matches!(m, Transmit::Message(Message::Extended { .. }))));
        s.handle_message(1, ExtendedHandshake::default().to_message(), t);
        assert!(matches!(
            s.poll_event(),
            Some(Event::Disconnect {
                peer: 1,
                reason: DisconnectReason::Protocol(_)
            })
        ));
    }
}
