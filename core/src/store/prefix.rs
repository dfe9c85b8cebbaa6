//! The OCI digest of a download's verified prefix, advanced as pieces are
//! verified, so that the whole-blob check at the end hashes only what is
//! left (nothing, when pieces arrive in order, as stream readers make
//! them): the last piece of a blob no longer waits on a second pass over
//! the whole file.
//!
//! Verifier threads report each good piece; whichever holds the hashing
//! lock folds in the pieces that now continue the prefix, reading them
//! from the mapping while they are likely still in the CPU's cache from
//! their merkle check. A thread that finds the lock taken leaves its piece
//! to the holder, or to the end.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use bay_wire::oci::DigestVerifier;

use super::layout::Meta;

/// The digest state of pieces `0..next`.
#[derive(Debug)]
pub(crate) struct PrefixDigest {
    hashing: Mutex<Prefix>,
    /// `next` of the prefix, readable without its lock.
    hashed: AtomicU32,
    /// Verified pieces past the prefix.
    ready: Mutex<BTreeSet<u32>>,
}

#[derive(Debug)]
pub(crate) struct Prefix {
    pub(crate) verifier: DigestVerifier,
    /// The first piece not yet hashed.
    pub(crate) next: u32,
}

impl PrefixDigest {
    pub(crate) fn new(verifier: DigestVerifier) -> PrefixDigest {
        PrefixDigest {
            hashing: Mutex::new(Prefix { verifier, next: 0 }),
            hashed: AtomicU32::new(0),
            ready: Mutex::new(BTreeSet::new()),
        }
    }

    fn ready(&self) -> MutexGuard<'_, BTreeSet<u32>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `piece` checked out (hashed into the prefix or waiting).
    pub(crate) fn covers(&self, piece: u32) -> bool {
        piece < self.hashed.load(Ordering::Acquire) || self.ready().contains(&piece)
    }

    /// Piece `piece` of `map` checked out: extend the prefix if it can.
    pub(crate) fn verified(&self, piece: u32, map: &[u8], meta: &Meta) {
        self.ready().insert(piece);
        let Ok(mut prefix) = self.hashing.try_lock() else {
            return;
        };
        loop {
            let next = prefix.next;
            if !self.ready().remove(&next) {
                return;
            }
            match meta.piece_range(next).and_then(|r| map.get(r)) {
                Some(bytes) => {
                    prefix.verifier.update(bytes);
                    prefix.next += 1;
                    self.hashed.store(prefix.next, Ordering::Release);
                }
                None => return,
            }
        }
    }

    /// The state so far, to finish with the rest of the blob.
    pub(crate) fn take(&self) -> Prefix {
        let prefix = self.hashing.lock().unwrap_or_else(|p| p.into_inner());
        Prefix {
            verifier: prefix.verifier.clone(),
            next: prefix.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bay_wire::oci::Digest;

    #[test]
    fn pieces_in_any_order_give_the_digest_of_the_whole() {
        let data: Vec<u8> = (0..(5 * 16384 + 100)).map(|i| (i % 251) as u8).collect();
        let digest = Digest::sha256_of(&data);
        let meta = Meta {
            total_len: data.len() as u64,
            piece_len: 16384,
        };
        let prefix = PrefixDigest::new(DigestVerifier::new(&digest));
        for piece in [2, 0, 5, 1] {
            prefix.verified(piece, &data, &meta);
        }
        assert!(prefix.covers(5) && prefix.covers(1) && !prefix.covers(3));
        let Prefix { mut verifier, next } = prefix.take();
        assert_eq!(next, 3);
        let from = meta.piece_range(next).map(|r| r.start).unwrap();
        verifier.update(&data[from..]);
        assert!(verifier.finish().is_ok());
    }
}
