//! Telling the blob's tracker that this proxy is in its swarm, and dialling
//! the peers it names, while the download runs and for
//! [`SEED_WINDOW`] after it completes; then `stopped` is sent and the task
//! ends, so announce tasks never outnumber recent downloads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bay_core::announce::{run_http, AnnounceConfig, AnnounceControl, Announcer};
use bay_httpd::client::Client;
use bay_wire::tracker::{InfoHash, PeerId};

use super::download::Download;
use super::Blobs;

/// How long a completed blob keeps being announced: the time a fleet's
/// cold pull of one image takes, with room to spare.
pub const SEED_WINDOW: Duration = Duration::from_secs(600);
/// Longest wait for one announce.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(http: Client, tracker: usize, blobs: Arc<Blobs>, download: Arc<Download>) {
    let swarm = download.handle.info_hash();
    let Some(url) = blobs.trackers.url(tracker, "/announce") else {
        return;
    };
    let mut config = AnnounceConfig::new(
        InfoHash(swarm),
        PeerId(blobs.engine.peer_id()),
        blobs.peer_addr.port(),
    );
    config.min_interval = Duration::from_secs(5);
    let control = AnnounceControl::new(Announcer::new(
        config,
        vec![vec![url.to_string()]],
        Instant::now(),
    ))
    .signed_by(blobs.trackers.signer().cloned());
    control.set_progress(0, 0, download.length);
    let progress = download.handle.progress().clone();
    let dialled = progress.clone();
    let engine_blobs = blobs.clone();
    let task = monoio::spawn(run_http(
        http,
        control.clone(),
        ANNOUNCE_TIMEOUT,
        move |peers| {
            // Once the blob is whole, leechers dial us; we dial nobody.
            if dialled.is_complete() {
                return;
            }
            for p in peers {
                if p != engine_blobs.peer_addr {
                    engine_blobs.engine.connect(swarm, p);
                }
            }
        },
    ));
    if progress.wait_complete().await.is_ok() {
        control.set_progress(0, download.length, 0);
        control.completed();
        monoio::time::sleep(SEED_WINDOW).await;
    }
    control.stop();
    task.await;
}
