//! Held announces: bay's extension to the announce protocol. One request
//! tells a tracker every swarm a host holds whole, so a host's blobs that
//! nobody is downloading cost one request per interval, not one per blob.
//!
//! ```text
//! POST /announce/held?peer_id=ID&port=P
//! body: the swarms' 20-byte names, concatenated (at most MAX_HELD)
//! answer (bencoded): d8:acceptedi<N>e8:intervali<S>ee, or a failure reason
//! ```
//!
//! The tracker records the host as a seeder of each swarm it tracks
//! (others are ignored and not counted in `accepted`) until three
//! intervals pass without another held announce. Regular announces
//! (BEP 3) stay for blobs being downloaded.

use super::query::{fixed, for_each_pair, push_pair, required, set_once, small_number};
use super::response::{self, push_int, ResponseError};
use super::{InfoHash, PeerId, QueryError, Reply};

/// Path of the held announce.
pub const HELD_PATH: &str = "/announce/held";
/// Most swarms in one held announce (1.25 MiB of body); a host holding
/// more sends several.
pub const MAX_HELD: usize = 65_536;

/// What is wrong with a held announce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeldError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("body of {0} bytes is not whole 20-byte swarm names")]
    Body(usize),
    #[error("more than {MAX_HELD} swarms in one held announce")]
    TooMany,
}

/// One host's held announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldAnnounce {
    pub peer_id: PeerId,
    /// The port peers reach the host at.
    pub port: u16,
    pub swarms: Vec<InfoHash>,
}

impl HeldAnnounce {
    /// The query string (without `?`).
    pub fn to_query(&self) -> String {
        let mut q = String::new();
        push_pair(&mut q, "peer_id", &self.peer_id.0);
        push_pair(&mut q, "port", self.port.to_string().as_bytes());
        q
    }

    /// The body: the swarm names, concatenated.
    pub fn body(&self) -> Vec<u8> {
        self.swarms.iter().flat_map(|s| s.0).collect()
    }

    /// Reads a request's raw query string and body.
    pub fn parse(query: &[u8], body: &[u8]) -> Result<HeldAnnounce, HeldError> {
        let (mut peer_id, mut port) = (None, None);
        for_each_pair(query, 1024, 16, |k, v| {
            match k {
                b"peer_id" => set_once(&mut peer_id, "peer_id", PeerId(fixed("peer_id", v)?))?,
                b"port" => set_once(&mut port, "port", small_number::<u16>("port", v)?)?,
                _ => {}
            }
            Ok(())
        })?;
        if !body.len().is_multiple_of(20) {
            return Err(HeldError::Body(body.len()));
        }
        if body.len() / 20 > MAX_HELD {
            return Err(HeldError::TooMany);
        }
        let swarms = body
            .chunks_exact(20)
            .map(|c| {
                let mut id = [0u8; 20];
                id.copy_from_slice(c);
                InfoHash(id)
            })
            .collect();
        Ok(HeldAnnounce {
            peer_id: required(peer_id, "peer_id")?,
            port: required(port, "port")?,
            swarms,
        })
    }
}

/// The tracker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldAnswer {
    /// Swarms the tracker tracks and recorded the host in.
    pub accepted: u32,
    /// Seconds until the next held announce is due.
    pub interval: u32,
}

impl HeldAnswer {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![b'd'];
        push_int(&mut out, "accepted", self.accepted);
        push_int(&mut out, "interval", self.interval);
        out.push(b'e');
        out
    }

    pub fn decode(body: &[u8]) -> Result<Reply<HeldAnswer>, ResponseError> {
        let root = match response::decode_top(body)? {
            Ok(root) => root,
            Err(reason) => return Ok(Reply::Failure(reason)),
        };
        Ok(Reply::Success(HeldAnswer {
            accepted: response::req_u32(&root, "accepted")?,
            interval: response::req_u32(&root, "interval")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_announces_round_trip_and_bodies_are_checked() {
        let a = HeldAnnounce {
            peer_id: PeerId(*b"-BY0100-abcdefghijkl"),
            port: 6882,
            swarms: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        };
        assert_eq!(
            HeldAnnounce::parse(a.to_query().as_bytes(), &a.body()),
            Ok(a.clone())
        );
        assert_eq!(
            HeldAnnounce::parse(a.to_query().as_bytes(), &[0; 21]),
            Err(HeldError::Body(21))
        );
        assert!(HeldAnnounce::parse(b"port=1", &[]).is_err());
        let too_many = vec![0u8; (MAX_HELD + 1) * 20];
        assert_eq!(
            HeldAnnounce::parse(a.to_query().as_bytes(), &too_many),
            Err(HeldError::TooMany)
        );
        let answer = HeldAnswer {
            accepted: 7,
            interval: 300,
        };
        assert_eq!(
            HeldAnswer::decode(&answer.to_bytes()),
            Ok(Reply::Success(answer))
        );
    }
}
