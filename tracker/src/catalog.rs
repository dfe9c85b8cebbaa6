//! What the tracker knows of the blobs behind its swarms: digest,
//! repository and size, recorded when its origin serves a blob, for the
//! status page and the fleet's byte counts. Bounded: the oldest entries
//! give way beyond [`MAX_ENTRIES`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bay_wire::oci::Digest;
use bay_wire::tracker::InfoHash;

/// Most blobs remembered.
pub const MAX_ENTRIES: usize = 100_000;

/// One blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    /// The repository it was first asked for in, where known.
    pub repo: Option<String>,
    pub length: u64,
}

/// Blobs by swarm.
#[derive(Debug, Default)]
pub struct Catalog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_swarm: HashMap<InfoHash, BlobInfo>,
    order: VecDeque<InfoHash>,
}

impl Catalog {
    /// Records `info` as the blob of `swarm` (once: the first repository
    /// named stays).
    pub fn record(&self, swarm: InfoHash, info: BlobInfo) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.by_swarm.contains_key(&swarm) {
            return;
        }
        while inner.order.len() >= MAX_ENTRIES {
            if let Some(old) = inner.order.pop_front() {
                inner.by_swarm.remove(&old);
            }
        }
        inner.order.push_back(swarm);
        inner.by_swarm.insert(swarm, info);
    }

    pub fn get(&self, swarm: &InfoHash) -> Option<BlobInfo> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_swarm.get(swarm).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_swarm
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_the_first_repository() {
        let c = Catalog::default();
        let info = |repo: &str| BlobInfo {
            digest: Digest::sha256_of(b"x"),
            repo: Some(repo.into()),
            length: 5,
        };
        c.record(InfoHash([1; 20]), info("a"));
        c.record(InfoHash([1; 20]), info("b"));
        assert_eq!(
            c.get(&InfoHash([1; 20])).unwrap().repo.as_deref(),
            Some("a")
        );
        for i in 0..MAX_ENTRIES as u32 + 5 {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id[4] = 9;
            c.record(InfoHash(id), info("c"));
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        assert!(c.get(&InfoHash([1; 20])).is_none());
    }
}
