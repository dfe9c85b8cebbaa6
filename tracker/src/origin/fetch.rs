//! One blob's fetch from the registry into the swarm: the stream is cut
//! into pieces, each hashed, published to proxies and handed to the
//! engine as soon as its last byte is in; the torrent is made from those
//! hashes once the store holds the whole, digest-checked blob.
//!
//! Each byte is hashed twice here and no more: once for its piece (on
//! this thread, as it streams past) and once for the blob's digest (by
//! the engine's verifier, over the growing prefix). The engine takes the
//! piece hash computed here instead of hashing the piece again, and the
//! torrent is built from the piece hashes instead of from the stored
//! blob.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bay_core::registry::BlobSink;
use bay_wire::merkle;
use bay_wire::metainfo::{self, BuildOptions, Metainfo};
use bay_wire::oci::Digest;
use bytes::{Bytes, BytesMut};

use super::{wake, Asked, Fetch, Origin};

pub(super) fn publish_from_store(origin: &Origin, digest: &Digest, fetch: &Fetch) {
    let hashes = origin
        .store
        .torrent(digest)
        .ok()
        .flatten()
        .and_then(|bytes| Metainfo::from_bytes(&bytes).ok())
        .map(|m| {
            (0..m.info().num_pieces())
                .filter_map(|p| m.piece_hash(p))
                .collect::<Vec<_>>()
        });
    match hashes {
        Some(hashes) => {
            for (i, h) in hashes.iter().enumerate() {
                fetch.handle.set_piece_hash(i as u32, *h);
            }
            let mut s = fetch.lock();
            s.hashes = hashes;
            s.outcome = Some(Ok(()));
            wake(&mut s);
        }
        None => fetch.end(Err("cached blob has no usable torrent".into())),
    }
}

/// Streams the blob from the registry into the swarm, piece by piece.
pub(super) async fn run_fetch(
    origin: Arc<Origin>,
    fetch: Arc<Fetch>,
    asked: Asked,
    shared: Arc<crate::service::Shared>,
) {
    let started = Instant::now();
    let mut sink = PieceSink {
        fetch: &fetch,
        buf: BytesMut::new(),
        next: 0,
    };
    let result = asked
        .registry
        // The engine checks the digest before the store keeps the blob.
        .fetch_blob_unchecked(&asked.repo, &asked.digest, &asked.auth, &mut sink)
        .await;
    let outcome = match result
        .map_err(|e| e.to_string())
        .and_then(|_| sink.flush_last())
    {
        Ok(()) => finish_torrent(&origin, &asked.digest, &fetch).await,
        Err(e) => Err(e),
    };
    match &outcome {
        Ok(()) => {
            shared.metrics.origin_fetched_bytes.add(fetch.length);
            tracing::info!(
            digest = %asked.digest,
            bytes = fetch.length,
            secs = started.elapsed().as_secs_f64(),
            "fetched from the registry"
            );
        }
        Err(why) => {
            tracing::warn!(digest = %asked.digest, why, "origin fetch failed");
            // Forget it so that a later request tries again.
            origin.fetches().remove(&asked.digest);
        }
    }
    fetch.end(outcome);
}

/// Waits for the engine to have the whole blob (digest checked), then
/// keeps its torrent, made from the piece hashes published on the way.
async fn finish_torrent(origin: &Origin, digest: &Digest, fetch: &Fetch) -> Result<(), String> {
    monoio::time::timeout(
        Duration::from_secs(60),
        fetch.handle.progress().wait_complete(),
    )
    .await
    .map_err(|_| "the store did not take the blob in time".to_string())?
    .map_err(|e| e.to_string())?;
    if !origin.store.contains(digest) {
        return Err("blob missing from the store after the fetch".into());
    }
    let hashes = fetch.lock().hashes.clone();
    let metainfo = metainfo::build_from_piece_hashes(
        fetch.length,
        hashes,
        &BuildOptions {
            name: digest.path_component(),
            piece_length: Some(fetch.piece_len),
            private: true,
            ..BuildOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    fetch.handle.set_torrent(metainfo.to_bytes());
    Ok(())
}

/// Cuts the fetched stream into pieces: each is hashed, published to the
/// proxies and given to the engine, with its hash, as soon as its last
/// byte is in. The store checks the whole blob against its digest before
/// keeping it.
struct PieceSink<'a> {
    fetch: &'a Fetch,
    buf: BytesMut,
    next: u32,
}

impl PieceSink<'_> {
    fn piece_len(&self) -> usize {
        self.fetch.piece_len as usize
    }

    fn emit(&mut self, piece: Bytes) -> std::io::Result<()> {
        let hash = merkle::piece_hash(&piece, self.fetch.piece_len, self.fetch.length)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.fetch.handle.set_piece_hash(self.next, hash);
        self.fetch
            .handle
            .supply_hashed_piece(self.next, piece, hash);
        self.fetch.publish(hash);
        self.next += 1;
        Ok(())
    }

    fn flush_last(&mut self) -> Result<(), String> {
        if !self.buf.is_empty() {
            let last = self.buf.split().freeze();
            self.emit(last).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl BlobSink for PieceSink<'_> {
    async fn write(&mut self, chunk: Bytes) -> std::io::Result<()> {
        self.buf.extend_from_slice(&chunk);
        while self.buf.len() >= self.piece_len() {
            let piece = self.buf.split_to(self.piece_len()).freeze();
            self.emit(piece)?;
        }
        Ok(())
    }
}
