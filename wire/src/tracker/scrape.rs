//! HTTP scrape (BEP 48): the request's query string, a list of info
//! hashes, and the bencoded response with each swarm's counts.

use super::query::{self, QueryError};
use super::InfoHash;

/// Most info hashes accepted in one scrape request. Clients batch far
/// fewer; the bound keeps one request from costing the tracker much.
pub const MAX_INFO_HASHES: usize = 128;
/// Longest scrape query string accepted: room for [`MAX_INFO_HASHES`]
/// fully escaped info hashes and a few other parameters.
pub const MAX_QUERY_LEN: usize = MAX_INFO_HASHES * 72 + 512;

/// One swarm's counts, as both the HTTP (BEP 48) and UDP (BEP 15) scrape
/// responses carry them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScrapeStats {
    /// Peers with the whole torrent (seeders).
    pub complete: u32,
    /// Times a peer announced `completed`.
    pub downloaded: u32,
    /// Peers still downloading (leechers).
    pub incomplete: u32,
}

/// A scrape request: the swarms whose counts the client wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// At least one and at most [`MAX_INFO_HASHES`] info hashes, in the
    /// order given.
    pub info_hashes: Vec<InfoHash>,
}

impl ScrapeRequest {
    /// Parses the raw query string (the bytes after `?`).
    ///
    /// At least one `info_hash` is required: bay's trackers do not list
    /// every swarm they know to an anonymous caller. Other parameters are
    /// ignored.
    pub fn parse_query(query: &[u8]) -> Result<ScrapeRequest, QueryError> {
        let mut info_hashes = Vec::new();
        query::for_each_pair(query, MAX_QUERY_LEN, MAX_INFO_HASHES + 16, |key, value| {
            if key == b"info_hash" {
                if info_hashes.len() == MAX_INFO_HASHES {
                    return Err(QueryError::TooManyParams {
                        max: MAX_INFO_HASHES,
                    });
                }
                info_hashes.push(InfoHash(query::fixed("info_hash", value)?));
            }
            Ok(())
        })?;
        if info_hashes.is_empty() {
            return Err(QueryError::Missing { key: "info_hash" });
        }
        Ok(ScrapeRequest { info_hashes })
    }

    /// Builds the query string (without the `?`).
    pub fn to_query(&self) -> String {
        let mut out = String::with_capacity(self.info_hashes.len() * 72);
        for hash in &self.info_hashes {
            query::push_pair(&mut out, "info_hash", &hash.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_several_info_hashes_in_order() {
        let a = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
        let b = "aaaaaaaaaaaaaaaaaaaa";
        let q = format!("info_hash={a}&foo=bar&info_hash={b}");
        let r = ScrapeRequest::parse_query(q.as_bytes());
        let Ok(r) = r else { panic!("{r:?}") };
        assert_eq!(r.info_hashes.len(), 2);
        assert_eq!(r.info_hashes.first().map(|h| h.0[0]), Some(0x12));
        assert_eq!(r.info_hashes.get(1), Some(&InfoHash([b'a'; 20])));
    }

    #[test]
    fn rejects_missing_short_and_too_many() {
        assert_eq!(
            ScrapeRequest::parse_query(b"foo=1"),
            Err(QueryError::Missing { key: "info_hash" })
        );
        assert_eq!(
            ScrapeRequest::parse_query(b"info_hash=abc"),
            Err(QueryError::WrongLength {
                key: "info_hash",
                expected: 20
            })
        );
        let many = vec!["info_hash=aaaaaaaaaaaaaaaaaaaa"; MAX_INFO_HASHES + 1].join("&");
        assert_eq!(
            ScrapeRequest::parse_query(many.as_bytes()),
            Err(QueryError::TooManyParams {
                max: MAX_INFO_HASHES
            })
        );
        let full = vec!["info_hash=aaaaaaaaaaaaaaaaaaaa"; MAX_INFO_HASHES].join("&");
        assert!(ScrapeRequest::parse_query(full.as_bytes()).is_ok());
    }

    proptest! {
        #[test]
        fn request_round_trips(hashes in proptest::collection::vec(any::<[u8; 20]>(), 1..=MAX_INFO_HASHES)) {
            let r = ScrapeRequest { info_hashes: hashes.into_iter().map(InfoHash).collect() };
            prop_assert_eq!(ScrapeRequest::parse_query(r.to_query().as_bytes()), Ok(r));
        }
    }
}
