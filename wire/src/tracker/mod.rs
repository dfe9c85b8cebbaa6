//! The tracker protocol: announce and scrape over HTTP.
//!
//! Pure and sans-IO like the rest of bay-wire: it parses the raw query
//! string of a request (the bytes after `?`, still percent-encoded) and
//! builds one, and encodes and decodes the bencoded response bodies.
//! (bay speaks no UDP tracker protocol: its trackers are reached over
//! HTTP, which carries fleet authentication and bulk announces.) Sockets, timers, retries
//! and the swarm bookkeeping belong to the callers in bay-core and
//! bay-tracker.
//!
//! Layout:
//! - [`query`]: splitting a raw query string into bounded key/value pairs.
//! - [`response`]: what announce and scrape responses share: the failure
//!   reply, the error type, the bencode field readers.
//! - [`announce`]: HTTP announce request (BEP 3) and its response, with
//!   compact IPv4 (BEP 23) and IPv6 (BEP 7) peer lists.
//! - [`scrape`]: HTTP scrape request and response (BEP 48).
//! - [`held`]: bay's held announce: every swarm a host holds, in one
//!   request.
//! - [`compact`]: the 6- and 18-byte compact peer records.
//!
//! Torrents are BitTorrent v2 (BEP 52), whose peers announce with the v2
//! info hash truncated to 20 bytes: every info hash here is 20 bytes, the
//! same width as a v1 SHA-1 hash, and this module does not care which it is.

pub mod announce;
pub mod compact;
pub mod held;
pub mod query;
pub mod response;
pub mod scrape;

use std::fmt;

use crate::metainfo::InfoHashV2;

pub use announce::{AnnounceRequest, AnnounceResponse};
pub use query::QueryError;
pub use response::{Reply, ResponseError};
pub use scrape::{ScrapeRequest, ScrapeResponse, ScrapeStats};

/// The 20 bytes that name a swarm on a tracker: a v1 SHA-1 info hash or a
/// v2 SHA-256 info hash truncated to its first 20 bytes (BEP 52).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHash(pub [u8; 20]);

/// A peer's self-chosen 20-byte identifier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub [u8; 20]);

impl From<InfoHashV2> for InfoHash {
    /// A v2 torrent announces under its info hash truncated to 20 bytes.
    fn from(v2: InfoHashV2) -> Self {
        InfoHash(v2.truncated())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash(")?;
        write_hex(f, &self.0)?;
        write!(f, ")")
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId(")?;
        write_hex(f, &self.0)?;
        write!(f, ")")
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// Why a peer is announcing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Event {
    /// A regular announce (`event` absent or empty; UDP 0).
    #[default]
    None,
    /// The download finished (UDP 1).
    Completed,
    /// The first announce of a download (UDP 2).
    Started,
    /// The peer is leaving the swarm (UDP 3).
    Stopped,
    /// The peer is a partial seed (BEP 21, HTTP only: BEP 15 has no value
    /// for it, so UDP sends it as a regular announce).
    Paused,
}

impl Event {
    /// The value of the HTTP `event` parameter; `None` for a regular
    /// announce, which omits the parameter.
    pub fn as_query_value(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Completed => Some("completed"),
            Event::Started => Some("started"),
            Event::Stopped => Some("stopped"),
            Event::Paused => Some("paused"),
        }
    }

    /// Parses the decoded HTTP `event` value; empty means a regular announce.
    pub fn from_query_value(value: &[u8]) -> Option<Event> {
        match value {
            b"" => Some(Event::None),
            b"completed" => Some(Event::Completed),
            b"started" => Some(Event::Started),
            b"stopped" => Some(Event::Stopped),
            b"paused" => Some(Event::Paused),
            _ => None,
        }
    }
}
