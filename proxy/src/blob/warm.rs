//! Getting ahead of the client: when an image manifest passes through,
//! each of its blobs not cached here gets an origin and a swarm before
//! the client asks for it. The origin's registry fetch, the announce and
//! the peer connections then overlap the client's own work between the
//! manifest and its blob requests.
//!
//! With `prefetch = "join"` (the default) nothing is fetched until a
//! client reads the blob: the client may hold the layer already, and a
//! swarm joined for nothing is let go after [`super::download::UNREAD_FOR`].
//! With `prefetch = "all"` every blob is fetched at once.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use bay_core::allow::Upstream;
use bay_core::registry::Auth;
use bay_wire::oci::{parse_manifest, Digest, RepositoryName};
use bay_wire::origin::BlobAsk as OriginAsk;

use super::download::{Fetch, MAX_DOWNLOADS};
use super::BlobWorker;
use crate::config::Prefetch;

/// Most blobs being warmed at once, over every worker; a manifest seen
/// beyond that is passed on without warming the rest.
pub const MAX_WARMING: usize = 64;

/// The blobs whose warming is under way (asking the origin, joining).
#[derive(Debug, Default)]
pub struct Warming {
    table: Mutex<HashSet<Digest>>,
}

impl Warming {
    fn table(&self) -> MutexGuard<'_, HashSet<Digest>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this caller warms `digest` (no one else is, and there is
    /// room).
    fn claim(&self, digest: &Digest) -> bool {
        let mut table = self.table();
        table.len() < MAX_WARMING && table.insert(digest.clone())
    }

    fn done(&self, digest: &Digest) {
        self.table().remove(digest);
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A manifest on its way to a client.
#[derive(Debug)]
pub struct SeenManifest<'a> {
    pub upstream: &'a Upstream,
    pub repo: &'a RepositoryName,
    /// The client's Authorization: the origin reads the blobs with it.
    pub authorization: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

impl BlobWorker {
    /// Starts warming the blobs `seen` names, in the background.
    pub fn warm(&self, seen: SeenManifest<'_>) {
        let fetch = match self.blobs.prefetch {
            Prefetch::Off => return,
            Prefetch::Join => Fetch::OnRead,
            Prefetch::All => Fetch::Now,
        };
        if self.blobs.trackers.is_empty() {
            return;
        }
        let manifest = match parse_manifest(seen.content_type, seen.body) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "a manifest bay cannot read: nothing warmed");
                return;
            }
        };
        // An index names platform manifests, not blobs: the client asks
        // for its platform's manifest next, and that one is warmed.
        let Some(image) = manifest.as_image() else {
            return;
        };
        for descriptor in image.blobs() {
            let digest = &descriptor.digest;
            if descriptor.is_nondistributable() || !self.needs_warming(digest) {
                continue;
            }
            let wanted = OriginAsk {
                registry: seen.upstream.to_string(),
                repo: seen.repo.clone(),
                digest: digest.clone(),
            };
            let authorization = seen.authorization.map(<[u8]>::to_vec);
            let worker = self.clone();
            monoio::spawn(async move {
                let auth = Auth::from_header(authorization.as_deref());
                let digest = wanted.digest.clone();
                worker
                    .start_download(wanted, authorization, &auth, fetch)
                    .await;
                worker.blobs.metrics.warmed.inc();
                worker.blobs.warming.done(&digest);
            });
        }
    }

    /// Whether `digest` is neither here, nor coming, nor being warmed (in
    /// which case the caller now warms it).
    fn needs_warming(&self, digest: &Digest) -> bool {
        let blobs = &self.blobs;
        !blobs.store.contains(digest)
            && blobs.downloads.get(digest).is_none()
            && blobs.downloads.len() < MAX_DOWNLOADS
            && blobs.warming.claim(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warming_is_bounded_and_claimed_once() {
        let w = Warming::default();
        let d = |i: u32| Digest::sha256_of(&i.to_le_bytes());
        assert!(w.claim(&d(0)));
        assert!(!w.claim(&d(0)), "the same blob warmed twice");
        for i in 1..MAX_WARMING as u32 {
            assert!(w.claim(&d(i)));
        }
        assert!(!w.claim(&d(9999)), "more than MAX_WARMING at once");
        w.done(&d(0));
        assert!(w.claim(&d(9999)));
    }
}
