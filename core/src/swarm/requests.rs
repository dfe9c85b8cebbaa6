//! The download side of a swarm: asking peers for blocks, taking the
//! blocks they send, and giving requests to others when a peer chokes us,
//! sits on them or times out.

use std::time::{Duration, Instant};

use bay_wire::peer::{BlockRequest, Message, Piece};

use super::{DisconnectReason, Event, Swarm, Transmit};
use crate::picker::{Block, PeerKey};

/// A request for a block just ahead of a stream reader that is not
/// answered within this long is asked of another peer.
const READER_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer that holds requests of ours and has sent nothing at all for
/// this long, or for four times what our requests take to come back if
/// that is longer (no block, no HAVE, no keep-alive), is taken for dead:
/// its requests go to other peers at once. The request
/// timeout (20 s) and the connection's idle timeout (minutes) are far
/// longer than a whole download on a fast link: in a simulated fleet
/// with 5 % of the hosts dying silently, the hosts that had asked them
/// for blocks waited out the timeout and finished at 1.7x instead of
/// 1.2x their link time.
pub(super) const SILENT_PEER: Duration = Duration::from_secs(3);

impl Swarm {
    pub(super) fn peer_choked_us(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.peer_choking = true;
        // Without the fast extension a choke cancels every request. With
        // it the peer rejects the ones it will not serve, one by one, and
        // the blocks it already sent still arrive: dropping them all here
        // had them fetched twice.
        if peer.fast {
            return;
        }
        for (block, _) in peer.outstanding.drain(..) {
            self.picker.request_dropped(key, block);
        }
    }

    pub(super) fn block_arrived(&mut self, key: PeerKey, p: Piece, now: Instant) {
        let block = Block {
            piece: p.piece,
            offset: p.begin,
            len: u32::try_from(p.block.len()).unwrap_or(u32::MAX),
        };
        let received = self.picker.block_received(key, block);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.forget_request(&block);
        }
        if received.unwanted {
            self.stats.wasted += u64::from(block.len);
            return;
        }
        self.stats.downloaded += u64::from(block.len);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.received_in_window += u64::from(block.len);
            peer.useful_at = Some(now);
        }
        for other in received.cancel {
            if let Some(peer) = self.peers.get_mut(&other) {
                peer.forget_request(&block);
                let r = BlockRequest {
                    piece: block.piece,
                    begin: block.offset,
                    length: block.len,
                };
                peer.queue(Transmit::Message(Message::Cancel(r)), now);
            }
        }
        self.events.push_back(Event::StoreBlock {
            piece: p.piece,
            begin: p.begin,
            data: p.block,
        });
        if received.piece_complete {
            self.events.push_back(Event::VerifyPiece { piece: p.piece });
        }
        self.fill_requests(key, now);
    }

    pub(super) fn request_gone(&mut self, key: PeerKey, r: BlockRequest) {
        let block = Block {
            piece: r.piece,
            offset: r.begin,
            len: r.length,
        };
        if let Some(peer) = self.peers.get_mut(&key) {
            if peer.forget_request(&block) {
                self.picker.request_dropped(key, block);
            }
        }
    }

    pub(super) fn fill_requests(&mut self, key: PeerKey, now: Instant) {
        let Some(peer) = self.peers.get(&key) else {
            return;
        };
        if peer.peer_choking || !peer.am_interested || peer.silent {
            return;
        }
        // A peer that said how many requests it queues gets no more.
        let pipeline = peer.reqq.map_or(peer.pipeline, |q| peer.pipeline.min(q));
        let want = pipeline.saturating_sub(peer.outstanding.len());
        if want == 0 {
            if let Some(peer) = self.peers.get_mut(&key) {
                peer.pipeline_was_full = true;
            }
            return;
        }
        let mut blocks = Vec::new();
        self.picker.pick(
            key,
            peer.remote.as_has(),
            want,
            peer.outstanding.is_empty(),
            &mut blocks,
        );
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.pipeline_was_full |= blocks.len() == want;
            for b in blocks {
                peer.outstanding.push((b, now));
                let r = BlockRequest {
                    piece: b.piece,
                    begin: b.offset,
                    length: b.len,
                };
                peer.queue(Transmit::Message(Message::Request(r)), now);
            }
        }
    }

    pub(super) fn tick_peer(&mut self, key: PeerKey, now: Instant) {
        let (timeout, keepalive, idle) = (
            self.config.request_timeout,
            self.config.keepalive_every,
            self.config.idle_timeout,
        );
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if now.saturating_duration_since(peer.last_received) >= idle {
            self.disconnect(key, DisconnectReason::Idle);
            return;
        }
        if self.close_if_useless(key, now) {
            return;
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let silent = !peer.outstanding.is_empty()
            && now.saturating_duration_since(peer.last_received) >= self.silent_after;
        let mut expired = if silent {
            peer.silent = true;
            peer.take_expired(now, Duration::ZERO)
        } else {
            peer.take_expired(now, timeout)
        };
        // A stream reader waits on the blocks just ahead of it: one the
        // peer sits on goes to another peer long before the request times
        // out (the proxy falls back to the registry after 15 s without
        // progress).
        let picker = &self.picker;
        let rescued = peer.take_expired_if(now, READER_REQUEST_TIMEOUT, |b| {
            picker.is_near_reader(b.piece)
        });
        expired.extend(&rescued);
        peer.resize_pipeline(now, self.config.request_queue_time, self.config.pipeline);
        if now.saturating_duration_since(peer.last_queued) >= keepalive {
            peer.queue(Transmit::Message(Message::KeepAlive), now);
        }
        for block in &expired {
            self.picker.request_dropped(key, *block);
        }
        if !expired.is_empty() {
            // Give the blocks to faster peers first.
            let keys: Vec<PeerKey> = self.peers.keys().copied().filter(|&k| k != key).collect();
            for other in keys {
                self.fill_requests(other, now);
            }
        }
        if rescued.is_empty() {
            self.fill_requests(key, now);
        }
    }
}
