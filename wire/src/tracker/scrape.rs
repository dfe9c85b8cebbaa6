//! HTTP scrape (BEP 48): the request's query string, a list of info
//! hashes, and the bencoded response with each swarm's counts.

use std::collections::BTreeMap;

use super::query::{self, QueryError};
use super::response::{self, Reply, ResponseError};
use super::InfoHash;
use crate::bencode::{self, Node};

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

/// A tracker's successful answer to a scrape (BEP 48).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// The counts of each swarm the tracker knows, by info hash. Swarms it
    /// does not know are simply absent.
    pub files: BTreeMap<InfoHash, ScrapeStats>,
}

impl ScrapeResponse {
    /// Appends the bencoded response body to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(16 + self.files.len() * 80);
        out.extend_from_slice(b"d5:filesd");
        // A BTreeMap of equal-length keys iterates in bencode's key order.
        for (hash, stats) in &self.files {
            bencode::encode_bytes(out, &hash.0);
            out.push(b'd');
            response::push_int(out, "complete", stats.complete);
            response::push_int(out, "downloaded", stats.downloaded);
            response::push_int(out, "incomplete", stats.incomplete);
            out.push(b'e');
        }
        out.extend_from_slice(b"ee");
    }

    /// Returns the bencoded response body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a response body: a success, or the tracker's failure reason.
    ///
    /// `complete` and `incomplete` are required for each swarm;
    /// `downloaded` is 0 when a tracker leaves it out. Other keys
    /// (`name`, BEP 21's `downloaders`, `flags`) are ignored.
    pub fn decode(body: &[u8]) -> Result<Reply<ScrapeResponse>, ResponseError> {
        let root = match response::decode_top(body)? {
            Ok(root) => root,
            Err(reason) => return Ok(Reply::Failure(reason)),
        };
        let files = root
            .get(b"files")
            .ok_or(ResponseError::Missing { key: "files" })?
            .as_dict()
            .ok_or(ResponseError::NotADict { what: "files" })?;
        let mut out = BTreeMap::new();
        for (hash, stats) in files {
            let hash: [u8; 20] = (*hash)
                .try_into()
                .map_err(|_| ResponseError::InvalidField { key: "files" })?;
            out.insert(InfoHash(hash), decode_stats(stats)?);
        }
        Ok(Reply::Success(ScrapeResponse { files: out }))
    }
}

fn decode_stats(stats: &Node<'_>) -> Result<ScrapeStats, ResponseError> {
    if stats.as_dict().is_none() {
        return Err(ResponseError::NotADict {
            what: "swarm stats",
        });
    }
    Ok(ScrapeStats {
        complete: response::req_u32(stats, "complete")?,
        downloaded: response::opt_u32(stats, "downloaded")?.unwrap_or(0),
        incomplete: response::req_u32(stats, "incomplete")?,
    })
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

    fn success(body: &[u8]) -> ScrapeResponse {
        match ScrapeResponse::decode(body) {
            Ok(Reply::Success(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_bep48_example() {
        let body =
            b"d5:filesd20:....................d8:completei5e10:downloadedi50e10:incompletei10eeee";
        let r = success(body);
        assert_eq!(
            r.files.get(&InfoHash([b'.'; 20])),
            Some(&ScrapeStats {
                complete: 5,
                downloaded: 50,
                incomplete: 10
            })
        );
        assert_eq!(r.files.len(), 1);
        assert_eq!(r.to_bytes(), body);
    }

    #[test]
    fn encodes_sorted_and_empty() {
        let mut files = BTreeMap::new();
        files.insert(InfoHash([b'b'; 20]), ScrapeStats::default());
        files.insert(InfoHash([b'a'; 20]), ScrapeStats::default());
        let body = ScrapeResponse { files }.to_bytes();
        let a = body.windows(20).position(|w| w == [b'a'; 20]);
        let b = body.windows(20).position(|w| w == [b'b'; 20]);
        assert!(a < b);
        assert!(crate::bencode::decode(&body).is_ok());
        assert_eq!(ScrapeResponse::default().to_bytes(), b"d5:filesdee");
        // downloaded may be left out by other trackers.
        let r = success(b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2eeee");
        assert_eq!(
            r.files.get(&InfoHash([b'a'; 20])),
            Some(&ScrapeStats {
                complete: 1,
                downloaded: 0,
                incomplete: 2
            })
        );
    }

    #[test]
    fn hostile_scrape_responses() {
        let cases: &[(&[u8], ResponseError)] = &[
            (b"de", ResponseError::Missing { key: "files" }),
            (b"d5:filesi1ee", ResponseError::NotADict { what: "files" }),
            (
                b"d5:filesd19:aaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2eeee",
                ResponseError::InvalidField { key: "files" },
            ),
            (
                b"d5:filesd20:aaaaaaaaaaaaaaaaaaaali1eeee",
                ResponseError::NotADict {
                    what: "swarm stats",
                },
            ),
            (
                b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad10:incompletei2eeee",
                ResponseError::Missing { key: "complete" },
            ),
            (
                b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei-1e10:incompletei2eeee",
                ResponseError::InvalidField { key: "complete" },
            ),
        ];
        for (body, err) in cases {
            assert_eq!(ScrapeResponse::decode(body).as_ref(), Err(err));
        }
        assert_eq!(
            ScrapeResponse::decode(b"d14:failure reason6:closede"),
            Ok(Reply::Failure("closed".to_owned()))
        );
        let body =
            b"d5:filesd20:....................d8:completei5e10:downloadedi50e10:incompletei10eeee";
        for end in 0..body.len() {
            assert!(ScrapeResponse::decode(&body[..end]).is_err(), "{end}");
        }
    }

    proptest! {
        #[test]
        fn response_round_trips(files in proptest::collection::btree_map(
            any::<[u8; 20]>().prop_map(InfoHash),
            any::<(u32, u32, u32)>().prop_map(|(complete, downloaded, incomplete)| ScrapeStats {
                complete, downloaded, incomplete,
            }),
            0..40,
        )) {
            let r = ScrapeResponse { files };
            prop_assert_eq!(ScrapeResponse::decode(&r.to_bytes()), Ok(Reply::Success(r)));
        }

        #[test]
        fn response_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = ScrapeResponse::decode(&bytes);
        }

        #[test]
        fn request_round_trips(hashes in proptest::collection::vec(any::<[u8; 20]>(), 1..=MAX_INFO_HASHES)) {
            let r = ScrapeRequest { info_hashes: hashes.into_iter().map(InfoHash).collect() };
            prop_assert_eq!(ScrapeRequest::parse_query(r.to_query().as_bytes()), Ok(r));
        }
    }
}
