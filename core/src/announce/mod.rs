//! The announce client: tells a torrent's trackers that we are in its
//! swarm, and learns the other peers from them.
//!
//! The logic is a sans-IO state machine, [`Announcer`], one per torrent:
//! the BEP 12 tracker tiers, the `started` / `completed` / `stopped`
//! events, the re-announce interval and the backoff after failures, all
//! driven by the time the caller passes in, so tests run it on a virtual
//! clock. [`run_http`] is the thin monoio driver that performs its requests
//! with bay-httpd's client and parses the answers with bay-wire.
//!
//! Layout:
//! - [`announcer`]: the state machine and its settings.
//! - `tiers`: the BEP 12 tracker list and the walk through it.
//! - `backoff`: retry delays and the seeded jitter behind them.
//! - [`error`]: why one announce failed.
//! - [`http`]: the monoio driver.

pub mod announcer;
mod backoff;
pub mod error;
pub mod http;
mod tiers;

#[cfg(test)]
mod tests;

pub use announcer::{AnnounceConfig, AnnounceRequest, Announcer};
pub use error::AnnounceError;
pub use http::{run_http, AnnounceControl};
