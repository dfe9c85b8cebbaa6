//! Following a swarm download's origin: piece hashes as the origin
//! publishes them, another tracker taking over when the origin's tracker
//! goes away, and the end of every source (no origin, then no peer), which
//! sends the download's readers to the registry.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bay_httpd::client::Client;
use bay_wire::oci::Digest;
use bay_wire::origin::{BlobAsk as OriginAsk, HashesAsk};

use super::download::{Download, LIFETIME};
use super::origin_client::{ask_origin, fetch_hashes};
use super::origin_plan::{OriginPlan, Step};
use super::Blobs;

/// What another tracker needs to take the blob over: the same request,
/// with the same client's Authorization. Held in memory for that only:
/// never logged, never sent to a peer.
pub(super) struct Handover {
    pub wanted: OriginAsk,
    pub authorization: Option<Vec<u8>>,
}

/// A download with pieces missing and no peer connected for this long
/// has no source left (its origin died after publishing every hash):
/// readers take the rest from the registry instead of waiting out their
/// stall timeout.
pub const NO_PEERS_FOR: Duration = Duration::from_secs(3);

/// Waits for the download to complete, marking it orphaned while no peer
/// has been connected for [`NO_PEERS_FOR`] (a peer that comes back later
/// still completes it, for the cache).
async fn watch_sources(blobs: &Blobs, digest: &Digest, download: &Download) {
    let progress = download.handle.progress();
    let mut alone_since: Option<Instant> = None;
    loop {
        if monoio::time::timeout(Duration::from_secs(1), progress.wait_complete())
            .await
            .is_ok()
        {
            return;
        }
        let peers = blobs
            .engine
            .status(download.handle.info_hash())
            .map_or(0, |s| s.stats.peers);
        if peers > 0 {
            alone_since = None;
            continue;
        }
        let since = *alone_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= NO_PEERS_FOR && !download.orphaned.swap(true, Ordering::AcqRel) {
            tracing::info!(%digest, "no peer left for a download: its readers go to the registry");
        }
    }
}

/// Follows piece hashes until every one is known, handing over to other
/// trackers as the plan says; then waits for the download to end and
/// takes it out of the table.
pub(super) async fn follow(
    mut plan: OriginPlan,
    tracker: usize,
    http: Client,
    blobs: Arc<Blobs>,
    download: Arc<Download>,
    handover: Handover,
) {
    let digest = handover.wanted.digest.clone();
    let drive = async {
        let mut step = Step::Follow { tracker, from: 0 };
        loop {
            step = match step {
                Step::Follow { tracker, from } => {
                    let ask = HashesAsk {
                        digest: digest.clone(),
                        from,
                    };
                    match fetch_hashes(&http, &blobs.trackers, tracker, &ask).await {
                        Ok(batch) => {
                            for (piece, hash) in (batch.from..).zip(&batch.hashes) {
                                download.handle.set_piece_hash(piece, *hash);
                            }
                            let upto = batch.from + batch.hashes.len() as u32;
                            plan.hashes(tracker, upto, batch.done)
                        }
                        Err(why) => {
                            tracing::warn!(tracker = blobs.trackers.name(tracker), %digest, why, "lost the origin's hashes");
                            plan.hashes_lost(tracker)
                        }
                    }
                }
                Step::Ask { tracker, within } => {
                    let answer = ask_origin(
                        &http,
                        blobs.engine.naming(),
                        &blobs.trackers,
                        tracker,
                        &handover.wanted,
                        handover.authorization.as_deref(),
                        within,
                    )
                    .await;
                    plan.answered(tracker, answer)
                }
                Step::TakeOver {
                    tracker,
                    peer,
                    from,
                } => {
                    tracing::info!(tracker = blobs.trackers.name(tracker), %digest, "another tracker took over the origin");
                    blobs.engine.connect(download.handle.info_hash(), peer);
                    Step::Follow { tracker, from }
                }
                Step::Orphaned => {
                    download.orphaned.store(true, Ordering::Release);
                    return;
                }
                Step::Done | Step::Join { .. } | Step::Direct(_) => break,
            };
        }
        watch_sources(&blobs, &digest, &download).await;
    };
    let _ = monoio::time::timeout(LIFETIME, drive).await;
    blobs.downloads.forget(&digest, &download);
}
