//! What the swarm knows about one connected peer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bay_wire::peer::{BlockRequest, BLOCK_SIZE};

use super::Transmit;
use crate::bitfield::Bitfield;
use crate::picker::{Block, PeerHas};

/// The pieces a peer has told us about.
#[derive(Debug)]
pub(super) enum Remote {
    All,
    Some(Bitfield),
}

impl Remote {
    pub(super) fn as_has(&self) -> PeerHas<'_> {
        match self {
            Remote::All => PeerHas::All,
            Remote::Some(b) => PeerHas::Some(b),
        }
    }

    pub(super) fn has(&self, piece: u32) -> bool {
        match self {
            Remote::All => true,
            Remote::Some(b) => b.has(piece),
        }
    }

    /// Records a HAVE; returns whether it was news.
    pub(super) fn add(&mut self, piece: u32) -> bool {
        match self {
            Remote::All => false,
            Remote::Some(b) => b.set(piece),
        }
    }

    /// How many pieces the peer has said it has, of `pieces`.
    pub(super) fn count(&self, pieces: u32) -> u32 {
        match self {
            Remote::All => pieces,
            Remote::Some(b) => b.count(),
        }
    }

    /// Whether the peer has said it has every piece.
    pub(super) fn is_full(&self) -> bool {
        match self {
            Remote::All => true,
            Remote::Some(b) => b.is_full(),
        }
    }
}

/// Fewest requests kept in flight to a peer that has what we want.
const MIN_PIPELINE: usize = 4;

#[derive(Debug)]
pub(super) struct PeerState {
    pub(super) peer_id: [u8; 20],
    pub(super) fast: bool,
    /// Both sides set the extension-protocol bit (BEP 10).
    pub(super) extended: bool,
    /// The client name its extended handshake gave (`v`), for logs.
    pub(super) client: Option<String>,
    /// Most requests it queues (`reqq`): our pipeline to it stays below.
    pub(super) reqq: Option<usize>,
    /// We opened the connection.
    pub(super) dialled: bool,
    pub(super) connected_at: Instant,
    pub(super) remote: Remote,
    pub(super) peer_choking: bool,
    pub(super) am_interested: bool,
    /// It told us it is interested in our pieces.
    pub(super) peer_interested: bool,
    /// When it last asked us for a block or delivered one we asked for;
    /// `None` while it has done neither.
    pub(super) useful_at: Option<Instant>,
    pub(super) closing: bool,
    /// Our requests to it, with when they were sent.
    pub(super) outstanding: Vec<(Block, Instant)>,
    pub(super) outbox: VecDeque<Transmit>,
    pub(super) last_received: Instant,
    /// It sat silent on our requests (see `SILENT_PEER`): it is asked for
    /// nothing more until it says something.
    pub(super) silent: bool,
    pub(super) last_queued: Instant,
    /// Requests we keep in flight to it.
    pub(super) pipeline: usize,
    pub(super) received_in_window: u64,
    pub(super) window_start: Instant,
    /// Block bytes handed to the engine for this peer since `sent_since`.
    pub(super) sent: u64,
    pub(super) sent_since: Instant,
    /// Whether every request slot was in use at some point of the window:
    /// only then does what arrived measure the peer rather than us.
    pub(super) pipeline_was_full: bool,
}

impl PeerState {
    pub(super) fn new(peer_id: [u8; 20], fast: bool, pieces: u32, now: Instant) -> PeerState {
        PeerState {
            peer_id,
            fast,
            extended: false,
            client: None,
            reqq: None,
            dialled: false,
            connected_at: now,
            remote: Remote::Some(Bitfield::new(pieces)),
            peer_choking: true,
            am_interested: false,
            peer_interested: false,
            useful_at: None,
            closing: false,
            outstanding: Vec::new(),
            outbox: VecDeque::new(),
            last_received: now,
            silent: false,
            last_queued: now,
            pipeline: 2,
            received_in_window: 0,
            window_start: now,
            pipeline_was_full: false,
            sent: 0,
            sent_since: now,
        }
    }

    /// Sizes the request pipeline to what the peer delivered lately: the
    /// blocks it delivers in `queue_time`. While the pipeline, not the
    /// peer, is the limit, that is more than the pipeline, so it grows.
    /// It shrinks only after a window in which the pipeline was full: a
    /// peer that had little we wanted delivered little, which says nothing
    /// of how fast it can deliver once it has more (shrinking then left
    /// hosts asking each other for two blocks at a time as a blob went on).
    pub(super) fn resize_pipeline(&mut self, now: Instant, queue_time: Duration, max: usize) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed.is_zero() {
            return;
        }
        let rate = self.received_in_window as f64 / elapsed.as_secs_f64();
        let by_rate = (rate * queue_time.as_secs_f64() / f64::from(BLOCK_SIZE)) as usize;
        let by_rate = by_rate.clamp(MIN_PIPELINE, max.max(MIN_PIPELINE));
        if self.pipeline_was_full || by_rate > self.pipeline {
            self.pipeline = by_rate;
        }
        self.received_in_window = 0;
        self.window_start = now;
        self.pipeline_was_full = self.outstanding.len() >= self.pipeline;
    }

    /// Bytes a second we sent it since the last call.
    pub(super) fn take_upload_rate(&mut self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.sent_since).as_secs_f64();
        let rate = if elapsed > 0.0 {
            self.sent as f64 / elapsed
        } else {
            0.0
        };
        self.sent = 0;
        self.sent_since = now;
        rate
    }

    pub(super) fn queue(&mut self, t: Transmit, now: Instant) {
        if self.closing {
            return;
        }
        self.outbox.push_back(t);
        self.last_queued = now;
    }

    pub(super) fn queued_blocks(&self) -> usize {
        self.outbox
            .iter()
            .filter(|t| matches!(t, Transmit::Block(_)))
            .count()
    }

    /// Drops a queued block the peer cancelled (if not already sent).
    pub(super) fn outbox_cancel(&mut self, r: &BlockRequest) {
        self.outbox
            .retain(|t| !matches!(t, Transmit::Block(q) if q == r));
    }

    pub(super) fn take_queued_blocks(&mut self) -> Vec<BlockRequest> {
        let mut taken = Vec::new();
        self.outbox.retain(|t| match t {
            Transmit::Block(r) => {
                taken.push(*r);
                false
            }
            Transmit::Message(_) => true,
        });
        taken
    }

    /// Forgets one of our requests; returns whether it was outstanding.
    pub(super) fn forget_request(&mut self, block: &Block) -> bool {
        let before = self.outstanding.len();
        self.outstanding.retain(|(b, _)| b != block);
        self.outstanding.len() != before
    }

    /// Removes and returns requests older than `timeout`.
    pub(super) fn take_expired(&mut self, now: Instant, timeout: Duration) -> Vec<Block> {
        self.take_expired_if(now, timeout, |_| true)
    }

    /// Removes and returns requests older than `timeout` for which `pick`
    /// holds.
    pub(super) fn take_expired_if(
        &mut self,
        now: Instant,
        timeout: Duration,
        pick: impl Fn(&Block) -> bool,
    ) -> Vec<Block> {
        let mut expired = Vec::new();
        self.outstanding.retain(|(b, sent)| {
            let old = now.saturating_duration_since(*sent) >= timeout && pick(b);
            if old {
                expired.push(*b);
            }
            !old
        });
        expired
    }
}
