//! bay-core: what both bay programs share.
//!
//! It owns the blob store (content addressed, crash safe, evicting), the
//! piece engine (swarms, picking, peers, choking), the announce client, web
//! seed fallback, the stream reader that yields only verified bytes, and the
//! upstream registry client (auth challenges, tokens, blob and manifest
//! reads, redirects).
//!
//! It must not hold policy of either program (which tracker owns a blob,
//! which client may read what): those decisions live in tracker/ and
//! proxy/, which call in here.
//!
//! Layout:
//! - [`bitfield`]: which pieces a party has, in the BEP 3 layout.
//! - [`picker`]: which block to request from which peer next.
//! - [`choke`]: who holds an upload slot, rotated fairly.
//! - [`rate`]: token-bucket bandwidth limits.
//! - [`store`]: content-addressed blobs on disk, partial downloads, eviction.
//! - [`swarm`]: one torrent's swarm as a sans-IO state machine.
//! - [`engine`]: the peer engine thread: connections, storage, timers.
//! - [`progress`]: verified pieces shared across threads; stream readers.
//! - [`allow`]: upstream registry names and the operator's allow list.
//! - [`metrics`]: counters rendered as Prometheus text.
//! - [`config`]: the node settings both programs share, typed sizes,
//!   configuration files.
//! - [`node`]: store, peer engine and registry access, started from them.
//! - [`logging`]: log set-up.
//! - [`fleet`]: signing tracker requests with the fleet key.
//! - [`page`]: the status pages' common HTML parts.
//! - [`announce`]: telling trackers about a torrent, learning its peers.
//! - [`webseed`]: piece ranges fetched over HTTP(S) from a URL or registry.
//! - [`registry`]: the upstream registry client: auth, blobs, manifests.

pub mod allow;
pub mod announce;
pub mod bitfield;
pub mod choke;
pub mod config;
pub mod engine;
pub mod fleet;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod page;
pub mod peer_tls;
pub mod picker;
pub mod progress;
pub mod rate;
pub mod registry;
pub mod store;
pub mod swarm;
pub mod webseed;
