//! Piece bytes moved to and from peers, over all torrents, for `/metrics`.

use crate::metrics::{Counter, Exposition, Gauge};
use crate::swarm::SwarmStats;

/// Piece bytes moved to and from peers since the engine started, for
/// `/metrics`.
#[derive(Debug, Default)]
pub struct PeerCounters {
    /// Accepted blocks.
    pub downloaded: Counter,
    pub uploaded: Counter,
    /// Blocks received that were not wanted (already had, or asked of
    /// someone else): end-game copies and late answers.
    pub wasted: Counter,
    /// Peer connections open now.
    pub connections: Gauge,
    /// Connections closed to make room, or because they had no use.
    pub closed_unused: Counter,
}

impl PeerCounters {
    /// Writes the counters as `bay_peer_*_bytes_total`.
    pub fn expose(&self, e: &mut Exposition) {
        e.counter(
            "bay_peer_downloaded_bytes_total",
            "Piece bytes received from peers and kept.",
            self.downloaded.get(),
        )
        .counter(
            "bay_peer_uploaded_bytes_total",
            "Piece bytes sent to peers.",
            self.uploaded.get(),
        )
        .counter(
            "bay_peer_wasted_bytes_total",
            "Piece bytes received from peers and dropped (already had, or asked of another peer).",
            self.wasted.get(),
        )
        .gauge(
            "bay_peer_connections",
            "Peer connections open.",
            self.connections.get(),
        )
        .counter(
            "bay_peer_connections_closed_unused_total",
            "Peer connections closed because they had no use or gave their place to a newcomer.",
            self.closed_unused.get(),
        );
    }

    /// Adds what a swarm moved since `before`.
    pub(super) fn add_since(&self, before: &SwarmStats, now: &SwarmStats) {
        self.downloaded
            .add(now.downloaded.saturating_sub(before.downloaded));
        self.uploaded
            .add(now.uploaded.saturating_sub(before.uploaded));
        self.wasted.add(now.wasted.saturating_sub(before.wasted));
    }
}
