//! Telling the blob's tracker that this proxy is in its swarm, and dialling
//! the peers it names, while the download runs and for
//! [`SEED_WINDOW`] after it completes; then the task ends (the host's held
//! announce keeps naming the blob), so announce tasks never outnumber
//! recent downloads. A download that failed sends `stopped`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bay_core::announce::{run_http, AnnounceConfig, AnnounceControl, Announcer};
use bay_httpd::client::Client;
use bay_wire::tracker::{InfoHash, PeerId};

use super::download::Download;
use super::Blobs;

/// How long a completed blob keeps being announced on its own: until the
/// host's held announce names it (within [`crate::held::NEW_BLOBS_AFTER`]
/// of completion), with room to spare. Held announces keep it findable
/// from then on, so a host that pulls many blobs does not send one
/// announce a minute per blob for long.
pub const SEED_WINDOW: Duration = Duration::from_secs(120);
/// Longest wait for one announce.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Announces `download`'s swarm to `tracker`. Holds the download's
/// progress only, not the download: its open blob file closes when the
/// download leaves the table, not at the end of the seeding window.
pub fn run(
    http: Client,
    tracker: usize,
    blobs: Arc<Blobs>,
    download: &Download,
) -> impl std::future::Future<Output = ()> + 'static {
    let swarm = download.handle.info_hash();
    let progress = download.handle.progress().clone();
    announce(http, tracker, blobs, swarm, download.length, progress)
}

async fn announce(
    http: Client,
    tracker: usize,
    blobs: Arc<Blobs>,
    swarm: [u8; 20],
    length: u64,
    progress: Arc<bay_core::progress::Progress>,
) {
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
    control.set_progress(0, 0, length);
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
        control.set_progress(0, length, 0);
        control.completed();
        monoio::time::sleep(SEED_WINDOW).await;
        // The held announce names the blob from now on; `stopped` would
        // take this host off the tracker's list until its next round.
        control.hand_over();
    } else {
        control.stop();
    }
    task.await;
}
