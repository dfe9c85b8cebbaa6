//! The vocabulary of a swarm's interface: its tunables, what it asks the
//! engine to send and do, and its counts.

use std::time::Duration;

use bay_wire::peer::{BlockRequest, Message};
use bytes::Bytes;

use crate::picker::PeerKey;

/// Tunables of a swarm; the defaults suit a data-centre fleet.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// Most connections to this torrent.
    pub max_peers: usize,
    /// Peers we upload to at once.
    pub upload_slots: usize,
    /// How long a peer keeps an upload slot while others wait.
    pub rotate_every: Duration,
    /// How often upload slots are reconsidered.
    pub rechoke_every: Duration,
    /// Most requests in flight per peer: 128 x 16 KiB = 2 MiB, enough to
    /// fill a 10 Gbit/s link with 1.5 ms of round trip.
    pub pipeline: usize,
    /// Requests in flight to a peer whose rate is not measured yet.
    pub initial_pipeline: usize,
    /// Each peer gets as many requests as it delivers in this long, within
    /// 2..=`pipeline`. Short queues keep a slow origin from being asked for
    /// everything at once, so hosts fetch different pieces and trade.
    pub request_queue_time: Duration,
    /// Most requests of one peer we queue before rejecting more.
    pub max_queued_requests: usize,
    /// A request unanswered this long is asked of someone else.
    pub request_timeout: Duration,
    /// Send a keep-alive after this long without sending anything.
    pub keepalive_every: Duration,
    /// Close a connection that said nothing for this long.
    pub idle_timeout: Duration,
    /// When the swarm is full, a peer that has neither asked us for a
    /// block nor delivered one this long after connecting gives its place
    /// to a newcomer.
    pub newcomer_grace: Duration,
    /// When the swarm is full, a peer that has neither asked for nor
    /// delivered a block for this long gives its place to a newcomer.
    pub idle_place_after: Duration,
    /// A connection over which neither side wants anything is closed after
    /// this long (at once when both sides have every piece): a host's
    /// connections follow its active transfers, not the blobs it holds.
    pub useless_after: Duration,
    /// Seed for a fleet from one uplink: reveal each piece to one peer
    /// first and let the peers pass it on (see `reveal.rs`); every
    /// interested peer gets an upload slot. For the origin.
    pub super_seed: bool,
    /// With `super_seed`: bytes of pieces revealed to a peer that it has
    /// not announced back yet (at least 4 pieces).
    pub reveal_window: u64,
    /// With `super_seed`: a piece first revealed this long ago is revealed
    /// to any peer still lacking it (a first peer that sat on it, or a
    /// host that cannot reach the peers that have it).
    pub reveal_stale_after: Duration,
    /// End-game (second copies of outstanding blocks) starts once every
    /// missing piece is in flight and at most this many bytes are still
    /// to arrive. A setting so that a simulation in larger units can keep
    /// it at the same share of a blob.
    pub end_game_bytes: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            max_peers: 64,
            upload_slots: 8,
            rotate_every: Duration::from_secs(30),
            rechoke_every: Duration::from_secs(10),
            pipeline: 128,
            initial_pipeline: 16,
            request_queue_time: Duration::from_millis(500),
            max_queued_requests: 512,
            request_timeout: Duration::from_secs(20),
            keepalive_every: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(180),
            newcomer_grace: Duration::from_secs(3),
            idle_place_after: Duration::from_secs(30),
            useless_after: Duration::from_secs(60),
            super_seed: false,
            reveal_window: 1 << 20,
            reveal_stale_after: Duration::from_secs(5),
            end_game_bytes: 1 << 20,
        }
    }
}

/// The shape of the torrent's single file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub total_len: u64,
    /// A power of two, at least 16 KiB.
    pub piece_len: u32,
}

/// Something to send to a peer, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    Message(Message),
    /// A block of a verified piece: the engine writes the piece message
    /// header and then the bytes straight from the blob file. A block of
    /// the last piece may reach past the end of the blob (a peer that pads
    /// files to whole pieces asks for that); the part past the end is
    /// sent as zeros.
    Block(BlockRequest),
}

/// Why the swarm wants a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// It sent data for a piece that failed its hash: ban it.
    BadPiece,
    /// It broke the protocol (the text says how).
    Protocol(String),
    /// It said nothing for too long.
    Idle,
    /// The peer and we dialled each other at the same moment; the other
    /// connection was kept.
    Replaced,
    /// Both sides have every piece: the connection has no use.
    Finished,
    /// Neither side wanted anything from the other for a while.
    Useless,
    /// The swarm was full and this peer, which offered nothing, gave its
    /// place to a newcomer.
    MadeRoom,
}

/// Work for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Write these (not yet verified) bytes at `begin` within `piece`.
    StoreBlock { piece: u32, begin: u32, data: Bytes },
    /// Every block of `piece` is stored: check it, then call
    /// [`Swarm::piece_verified`] or [`Swarm::piece_failed`].
    VerifyPiece { piece: u32 },
    /// Close the connection, then call [`Swarm::peer_disconnected`].
    Disconnect {
        peer: PeerKey,
        reason: DisconnectReason,
    },
    /// Every piece is verified.
    Complete,
}

/// Why a new connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the swarm has its maximum number of peers")]
    Full,
    #[error("already connected to this peer id")]
    Duplicate,
    #[error("connected to ourselves")]
    Myself,
    #[error("the handshake names another torrent")]
    WrongTorrent,
}

/// Counts for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwarmStats {
    pub peers: usize,
    pub have: u32,
    pub pieces: u32,
    /// Bytes of blocks accepted from peers.
    pub downloaded: u64,
    /// Bytes of blocks handed to the engine to upload.
    pub uploaded: u64,
    /// Bytes received that we did not want (late end-game copies, etc.).
    pub wasted: u64,
}
