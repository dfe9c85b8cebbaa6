//! Announcing every blob this host holds whole, to the tracker that owns
//! each, in one request per tracker every held interval (and once at
//! start, so a restarted host is found again at once). Downloads announce
//! themselves while they run ([`crate::blob`]); afterwards this is the
//! only cost a held blob has, so a host's idle announce traffic does not
//! grow with its cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bay_httpd::client::Client;
use bay_httpd::{build_runtime, resolve_driver, Driver, Shutdown};
use bay_wire::tracker::held::{HeldAnnounce, HeldAnswer, HELD_PATH, MAX_HELD};
use bay_wire::tracker::{InfoHash, PeerId, Reply};

use crate::blob::Blobs;

/// Until a tracker says otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Shortest interval taken from a tracker's answer.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for one held announce.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the announcing thread; it ends when `shutdown` triggers.
pub fn start(
    blobs: Arc<Blobs>,
    tls: Arc<rustls::ClientConfig>,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("bay-held".into())
        .spawn(move || {
            let runtime = resolve_driver(Driver::Auto).and_then(build_runtime);
            let mut runtime = match runtime {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the held announcer");
                    return;
                }
            };
            let http = blobs.trackers.client(tls);
            loop {
                let interval = runtime.block_on(announce_all(&http, &blobs));
                if shutdown.wait_blocking(interval) {
                    return;
                }
            }
        })
}

/// The swarms this host holds, grouped by the tracker that owns each.
fn by_owner(blobs: &Blobs) -> BTreeMap<usize, Vec<InfoHash>> {
    let mut groups: BTreeMap<usize, Vec<InfoHash>> = BTreeMap::new();
    for (digest, _) in blobs.store.complete_blobs() {
        if let Some(&owner) = blobs.trackers.order_for(digest.as_str()).first() {
            let swarm = InfoHash(blobs.engine.swarm_id(&digest));
            groups.entry(owner).or_default().push(swarm);
        }
    }
    groups
}

/// One round of held announces; returns when the next one is due.
async fn announce_all(http: &Client, blobs: &Blobs) -> Duration {
    let mut next = DEFAULT_INTERVAL;
    for (tracker, swarms) in by_owner(blobs) {
        for chunk in swarms.chunks(MAX_HELD) {
            let held = HeldAnnounce {
                peer_id: PeerId(blobs.engine.peer_id()),
                port: blobs.peer_addr.port(),
                swarms: chunk.to_vec(),
            };
            match monoio::time::timeout(TIMEOUT, announce(http, blobs, tracker, &held)).await {
                Ok(Ok(answer)) => {
                    blobs.trackers.answered(tracker);
                    let asked = Duration::from_secs(u64::from(answer.interval));
                    next = next.min(asked.max(MIN_INTERVAL));
                    tracing::debug!(
                        tracker = blobs.trackers.name(tracker),
                        held = chunk.len(),
                        accepted = answer.accepted,
                        "held announce"
                    );
                }
                Ok(Err(why)) => {
                    blobs.trackers.failed(tracker, &why);
                    tracing::warn!(
                        tracker = blobs.trackers.name(tracker),
                        why,
                        "held announce failed"
                    );
                }
                Err(_) => {
                    tracing::warn!(
                        tracker = blobs.trackers.name(tracker),
                        "held announce timed out"
                    );
                }
            }
        }
    }
    next
}

async fn announce(
    http: &Client,
    blobs: &Blobs,
    tracker: usize,
    held: &HeldAnnounce,
) -> Result<HeldAnswer, String> {
    let path = format!("{HELD_PATH}?{}", held.to_query());
    let req = blobs
        .trackers
        .request("POST", tracker, &path, held.body())
        .ok_or("tracker URL")?
        .header("content-type", "application/octet-stream");
    let resp = http.send(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes(4096).await.map_err(|e| e.to_string())?;
    match HeldAnswer::decode(&body) {
        Ok(Reply::Success(a)) if status == 200 => Ok(a),
        Ok(Reply::Failure(reason)) => Err(reason),
        _ => Err(format!("status {status}")),
    }
}
