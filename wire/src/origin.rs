//! The origin API between bay-proxy and bay-tracker's origin seeder, as
//! typed requests and answers. Both programs build and read it only
//! through these types; docs/protocol.md describes it for other tools.
//!
//! ```text
//! POST /origin/v1/blobs?registry=R&repo=NAME&digest=D     BlobAsk  -> BlobGrant (JSON)
//!      (the client's Authorization passed on, for the fetch and an access check)
//! GET  /origin/v1/hashes?digest=D&from=N                  HashesAsk -> HashBatch
//!      (long poll: raw 32-byte piece hashes from N on; headers
//!       x-bay-pieces: total pieces, x-bay-done: 1 on the last batch)
//! POST /origin/v1/preheat?image=REF[&platform=os/arch]    PreheatAsk -> JSON list
//! errors: any status but 200, body {"error": "..."}        ErrorBody
//! ```
//!
//! A blob's swarm is named by [`swarm_id`] of its digest, so every host
//! derives the same name before anyone has the whole blob (the v2 info
//! hash is only known at the end).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::merkle::Hash;
use crate::oci::{Digest, RepositoryName};
use crate::percent;
use crate::tracker::query::{for_each_pair, QueryError};

/// Path of the blob request.
pub const BLOBS_PATH: &str = "/origin/v1/blobs";
/// Path of the piece-hash long poll.
pub const HASHES_PATH: &str = "/origin/v1/hashes";
/// Path of the preheat request.
pub const PREHEAT_PATH: &str = "/origin/v1/preheat";
/// Header of a [`HashBatch`]: the blob's number of pieces.
pub const PIECES_HEADER: &str = "x-bay-pieces";
/// Header of a [`HashBatch`]: `1` on the batch that ends the stream.
pub const DONE_HEADER: &str = "x-bay-done";

/// Longest query accepted.
const MAX_QUERY: usize = 4096;
/// Longest registry name (`host[:port]`).
const MAX_REGISTRY: usize = 255;
/// Most piece hashes one batch may carry (a 64 GiB blob in 64 KiB pieces).
pub const MAX_BATCH: usize = 1 << 20;
/// Largest JSON answer read.
pub const MAX_JSON: usize = 64 * 1024;

/// What is wrong with an origin API request or answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OriginApiError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("parameter {0} is invalid")]
    Invalid(&'static str),
    #[error("answer is not valid JSON of its kind: {0}")]
    Json(String),
    #[error("answer is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The 20 bytes that name the swarm of `digest`: SHA-256 of `bay-swarm:`
/// and the digest, truncated.
pub fn swarm_id(digest: &Digest) -> [u8; 20] {
    let hash = Sha256::new()
        .chain_update(b"bay-swarm:")
        .chain_update(digest.as_str().as_bytes())
        .finalize();
    let mut id = [0u8; 20];
    id.copy_from_slice(&hash[..20]);
    id
}

/// Which tracker a proxy asks to be a blob's origin: every proxy scores
/// each configured tracker URL with SHA-256 of URL, NUL, digest, and the
/// highest score owns the blob (the next highest takes over when it is
/// down), so all proxies agree without talking to each other.
pub fn rendezvous_score(tracker: &str, digest: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(tracker.as_bytes())
        .chain_update(b"\0")
        .chain_update(digest.as_bytes())
        .finalize()
        .into()
}

/// `registry=R&repo=NAME&digest=D`: which blob the origin should fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobAsk {
    /// The upstream registry as `host[:port]`, lower case.
    pub registry: String,
    pub repo: RepositoryName,
    pub digest: Digest,
}

impl BlobAsk {
    /// The query string (without `?`).
    pub fn to_query(&self) -> String {
        format!(
            "registry={}&repo={}&digest={}",
            percent::encode(self.registry.as_bytes()),
            percent::encode(self.repo.as_str().as_bytes()),
            self.digest
        )
    }

    /// Reads a raw query string (after `?`).
    pub fn parse_query(query: &[u8]) -> Result<BlobAsk, OriginApiError> {
        let (mut registry, mut repo, mut digest) = (None, None, None);
        for_each_pair(query, MAX_QUERY, 16, |k, v| {
            match k {
                b"registry" => registry = Some(v),
                b"repo" => repo = Some(v),
                b"digest" => digest = Some(v),
                _ => {}
            }
            Ok(())
        })?;
        let registry = text(registry, "registry", MAX_REGISTRY)?;
        if !valid_registry(&registry) {
            return Err(OriginApiError::Invalid("registry"));
        }
        let repo = text(repo, "repo", MAX_QUERY)?;
        let digest = text(digest, "digest", 200)?;
        Ok(BlobAsk {
            registry: registry.to_ascii_lowercase(),
            repo: RepositoryName::parse(&repo).map_err(|_| OriginApiError::Invalid("repo"))?,
            digest: Digest::parse(&digest).map_err(|_| OriginApiError::Invalid("digest"))?,
        })
    }
}

/// `host[:port]`: letters, digits, `.-_:[]`, nothing that could end the
/// authority (`/?#@`). The programs check it against their allow lists.
fn valid_registry(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
}

/// A parameter's value, percent-decoded into UTF-8.
fn text(raw: Option<&[u8]>, key: &'static str, max: usize) -> Result<String, OriginApiError> {
    let raw = raw.ok_or(OriginApiError::Missing(key))?;
    let bytes = percent::decode(raw, max).map_err(|_| OriginApiError::Invalid(key))?;
    String::from_utf8(bytes).map_err(|_| OriginApiError::Invalid(key))
}

/// The origin's answer to a [`BlobAsk`]: the blob's geometry and where to
/// reach the seeder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobGrant {
    pub digest: Digest,
    pub length: u64,
    pub piece_length: u64,
    /// Hex of [`swarm_id`] of the digest.
    pub swarm_id: String,
    /// The seeder's peer address.
    pub peer: SocketAddr,
}

impl BlobGrant {
    /// A grant for `digest`, whose swarm the origin named `swarm`.
    pub fn new(
        digest: Digest,
        length: u64,
        piece_length: u64,
        peer: SocketAddr,
        swarm: [u8; 20],
    ) -> BlobGrant {
        let swarm_id = crate::hex::encode(&swarm);
        BlobGrant {
            digest,
            length,
            piece_length,
            swarm_id,
            peer,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads and checks an answer: a non-empty blob, a power-of-two piece
    /// length of at least 16 KiB, and a 20-byte swarm name (whether it is
    /// one of the reader's names for the digest is the reader's check:
    /// open names and fleet-keyed ones differ).
    pub fn parse(body: &[u8]) -> Result<BlobGrant, OriginApiError> {
        if body.len() > MAX_JSON {
            return Err(OriginApiError::Json("too long".into()));
        }
        let g: BlobGrant =
            serde_json::from_slice(body).map_err(|e| OriginApiError::Json(e.to_string()))?;
        if g.length == 0 {
            return Err(OriginApiError::Inconsistent("empty blob"));
        }
        if !g.piece_length.is_power_of_two() || g.piece_length < 16 * 1024 {
            return Err(OriginApiError::Inconsistent("piece length"));
        }
        if g.swarm().is_none() {
            return Err(OriginApiError::Inconsistent("swarm id"));
        }
        Ok(g)
    }

    /// The swarm's 20-byte name.
    pub fn swarm(&self) -> Option<[u8; 20]> {
        crate::hex::decode_array(&self.swarm_id).ok()
    }

    /// Pieces of the blob.
    pub fn pieces(&self) -> u64 {
        self.length.div_ceil(self.piece_length)
    }
}

/// `digest=D&from=N`: piece hashes from piece `from` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashesAsk {
    pub digest: Digest,
    pub from: u32,
}

impl HashesAsk {
    pub fn to_query(&self) -> String {
        format!("digest={}&from={}", self.digest, self.from)
    }

    pub fn parse_query(query: &[u8]) -> Result<HashesAsk, OriginApiError> {
        let (mut digest, mut from) = (None, None);
        for_each_pair(query, MAX_QUERY, 16, |k, v| {
            match k {
                b"digest" => digest = Some(v),
                b"from" => from = Some(v),
                _ => {}
            }
            Ok(())
        })?;
        let digest = text(digest, "digest", 200)?;
        let from = match from {
            None => 0,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(OriginApiError::Invalid("from"))?,
        };
        Ok(HashesAsk {
            digest: Digest::parse(&digest).map_err(|_| OriginApiError::Invalid("digest"))?,
            from,
        })
    }
}

/// One answer of the hash long poll: the hashes of pieces `from..`, and
/// whether the stream is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashBatch {
    /// The first piece this batch's hashes are for.
    pub from: u32,
    /// Pieces in the blob.
    pub pieces: u32,
    pub hashes: Vec<Hash>,
    /// No hash will follow: every piece's hash has been sent.
    pub done: bool,
}

impl HashBatch {
    /// The body: the hashes, 32 bytes each, in piece order.
    pub fn body(&self) -> Vec<u8> {
        self.hashes.concat()
    }

    /// The `x-bay-pieces` header value.
    pub fn pieces_header(&self) -> String {
        self.pieces.to_string()
    }

    /// The `x-bay-done` header value.
    pub fn done_header(&self) -> &'static str {
        if self.done {
            "1"
        } else {
            "0"
        }
    }

    /// Reads a batch asked for `from`: the body must be whole hashes, the
    /// hashes must fit the blob, and `done` must mean every piece is known.
    pub fn parse(
        from: u32,
        pieces_header: Option<&[u8]>,
        done_header: Option<&[u8]>,
        body: &[u8],
    ) -> Result<HashBatch, OriginApiError> {
        let pieces: u32 = pieces_header
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse().ok())
            .ok_or(OriginApiError::Invalid(PIECES_HEADER))?;
        let done = match done_header.map(<[u8]>::trim_ascii) {
            Some(b"1") => true,
            Some(b"0") | None => false,
            Some(_) => return Err(OriginApiError::Invalid(DONE_HEADER)),
        };
        if !body.len().is_multiple_of(32) {
            return Err(OriginApiError::Inconsistent("body is not whole hashes"));
        }
        let count = body.len() / 32;
        if count > MAX_BATCH || u64::from(from) + count as u64 > u64::from(pieces) {
            return Err(OriginApiError::Inconsistent("more hashes than pieces"));
        }
        if done && u64::from(from) + count as u64 != u64::from(pieces) {
            return Err(OriginApiError::Inconsistent("done before every piece"));
        }
        let hashes = body
            .chunks_exact(32)
            .map(|c| {
                let mut h: Hash = [0; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(HashBatch {
            from,
            pieces,
            hashes,
            done,
        })
    }
}

/// `image=REF[&platform=os/arch[/variant]]`: an image to fetch ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreheatAsk {
    pub image: String,
    pub platform: Option<String>,
}

impl PreheatAsk {
    pub fn to_query(&self) -> String {
        let mut q = format!("image={}", percent::encode(self.image.as_bytes()));
        if let Some(p) = &self.platform {
            q.push_str("&platform=");
            q.push_str(&percent::encode(p.as_bytes()));
        }
        q
    }

    pub fn parse_query(query: &[u8]) -> Result<PreheatAsk, OriginApiError> {
        let (mut image, mut platform) = (None, None);
        for_each_pair(query, MAX_QUERY, 16, |k, v| {
            match k {
                b"image" => image = Some(v),
                b"platform" => platform = Some(v),
                _ => {}
            }
            Ok(())
        })?;
        Ok(PreheatAsk {
            image: text(image, "image", 1024)?,
            platform: platform
                .map(|p| text(Some(p), "platform", 64))
                .transpose()?,
        })
    }
}

/// The answer to a [`PreheatAsk`]: the blobs whose fetch has started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreheatAnswer {
    pub image: String,
    pub blobs: Vec<PreheatedBlob>,
}

/// One blob of a [`PreheatAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreheatedBlob {
    pub digest: Digest,
    pub length: u64,
}

impl PreheatAnswer {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(body: &[u8]) -> Result<PreheatAnswer, OriginApiError> {
        serde_json::from_slice(body).map_err(|e| OriginApiError::Json(e.to_string()))
    }
}

/// The body of every answer but 200: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

impl ErrorBody {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The message of an error answer, if the body is one.
    pub fn parse(body: &[u8]) -> Option<ErrorBody> {
        (body.len() <= MAX_JSON)
            .then(|| serde_json::from_slice(body).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::sha256_of(b"layer")
    }

    #[test]
    fn blob_asks_round_trip_and_refuse_hosts_that_end_the_authority() {
        let ask = BlobAsk {
            registry: "reg.test:5000".into(),
            repo: RepositoryName::parse("team/app").unwrap(),
            digest: digest(),
        };
        assert_eq!(BlobAsk::parse_query(ask.to_query().as_bytes()), Ok(ask));
        for bad in ["reg.test/x", "a@b", "reg.test%3Fx", "", "a#b"] {
            let q = format!("registry={bad}&repo=a&digest={}", digest());
            assert!(BlobAsk::parse_query(q.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(
            BlobAsk::parse_query(b"registry=r&repo=a"),
            Err(OriginApiError::Missing("digest"))
        );
    }

    #[test]
    fn grants_round_trip_and_are_checked() {
        let g = BlobGrant::new(
            digest(),
            100_000,
            65_536,
            "127.0.0.1:6881".parse().unwrap(),
            swarm_id(&digest()),
        );
        assert_eq!(BlobGrant::parse(&g.to_json()), Ok(g.clone()));
        assert_eq!(g.pieces(), 2);
        let mut bad = g.clone();
        bad.swarm_id = "0".repeat(39);
        assert_eq!(
            BlobGrant::parse(&bad.to_json()),
            Err(OriginApiError::Inconsistent("swarm id"))
        );
        let mut bad = g.clone();
        bad.piece_length = 1000;
        assert!(BlobGrant::parse(&bad.to_json()).is_err());
        assert!(BlobGrant::parse(b"{}").is_err());
        assert!(BlobGrant::parse(b"[").is_err());
    }

    #[test]
    fn hash_batches_round_trip_and_must_fit_the_blob() {
        let b = HashBatch {
            from: 2,
            pieces: 4,
            hashes: vec![[1; 32], [2; 32]],
            done: true,
        };
        let parsed = HashBatch::parse(
            2,
            Some(b.pieces_header().as_bytes()),
            Some(b.done_header().as_bytes()),
            &b.body(),
        );
        assert_eq!(parsed, Ok(b.clone()));
        // Half a hash, too many hashes, done too early, bad headers.
        assert!(HashBatch::parse(2, Some(b"4"), None, &[0; 33]).is_err());
        assert!(HashBatch::parse(3, Some(b"4"), None, &b.body()).is_err());
        assert!(HashBatch::parse(1, Some(b"4"), Some(b"1"), &b.body()).is_err());
        assert!(HashBatch::parse(0, None, None, &[]).is_err());
        assert!(HashBatch::parse(0, Some(b"4"), Some(b"yes"), &[]).is_err());
        assert_eq!(
            HashBatch::parse(0, Some(b"4"), Some(b"0"), &[]).map(|b| b.hashes.len()),
            Ok(0)
        );
    }

    #[test]
    fn hashes_and_preheat_queries_round_trip() {
        let h = HashesAsk {
            digest: digest(),
            from: 7,
        };
        assert_eq!(HashesAsk::parse_query(h.to_query().as_bytes()), Ok(h));
        assert!(HashesAsk::parse_query(b"digest=x&from=1").is_err());
        let p = PreheatAsk {
            image: "reg.test/team/app:1.4".into(),
            platform: Some("linux/arm64/v8".into()),
        };
        assert_eq!(PreheatAsk::parse_query(p.to_query().as_bytes()), Ok(p));
    }

    #[test]
    fn swarm_ids_are_what_hosts_derived_before() {
        // SHA-256("bay-swarm:" + digest), first 20 bytes: a fleet of mixed
        // versions must keep naming swarms alike.
        let d = Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        let mut want = Sha256::new();
        want.update(b"bay-swarm:sha256:");
        want.update("ab".repeat(32).as_bytes());
        assert_eq!(swarm_id(&d)[..], want.finalize()[..20]);
    }
}
