//! Announcing every blob this host holds whole, to the tracker that owns
//! each, in one request per tracker every held interval (and once at
//! start, so a restarted host is found again at once; and within
//! [`NEW_BLOBS_AFTER`] of a blob joining the cache, so a fresh blob stays
//! findable once its download stops announcing). Downloads announce
//! themselves while they run and shortly after ([`crate::blob`]);
//! afterwards this is the only cost a held blob has, so a host's idle
//! announce traffic does not grow with its cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
/// New blobs in the cache bring the next round forward to this long
/// after the last one: at most one extra request a minute while a host
/// pulls, none at rest.
pub const NEW_BLOBS_AFTER: Duration = Duration::from_secs(60);
/// How often the cache is looked at for new blobs between rounds.
const LOOK_EVERY: Duration = Duration::from_secs(5);

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
            let mut rounds = Rounds::new(blobs.store.additions(), Instant::now());
            loop {
                let now = Instant::now();
                if rounds.due(blobs.store.additions(), now) {
                    let additions = blobs.store.additions();
                    let interval = runtime.block_on(announce_all(&http, &blobs));
                    rounds.done(additions, interval, Instant::now());
                }
                if shutdown.wait_blocking(rounds.wait(Instant::now())) {
                    return;
                }
            }
        })
}

/// When the next round of held announces is due: at the interval the
/// trackers ask for, or [`NEW_BLOBS_AFTER`] the last round once the cache
/// has new blobs.
#[derive(Debug)]
struct Rounds {
    /// The store's addition count the last round saw.
    seen: u64,
    last: Option<Instant>,
    next: Instant,
}

impl Rounds {
    /// The first round is due at once.
    fn new(additions: u64, now: Instant) -> Rounds {
        Rounds {
            seen: additions,
            last: None,
            next: now,
        }
    }

    fn due(&self, additions: u64, now: Instant) -> bool {
        let fresh = additions != self.seen
            && self
                .last
                .is_none_or(|last| now.saturating_duration_since(last) >= NEW_BLOBS_AFTER);
        now >= self.next || fresh
    }

    fn done(&mut self, additions: u64, interval: Duration, now: Instant) {
        self.seen = additions;
        self.last = Some(now);
        self.next = now + interval;
    }

    /// How long to sleep before looking again.
    fn wait(&self, now: Instant) -> Duration {
        self.next.saturating_duration_since(now).min(LOOK_EVERY)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_blobs_bring_a_round_forward_at_most_once_a_minute() {
        let t0 = Instant::now();
        let mut r = Rounds::new(7, t0);
        assert!(r.due(7, t0), "the first round waits");
        r.done(7, DEFAULT_INTERVAL, t0);
        assert!(!r.due(7, t0 + Duration::from_secs(200)));
        assert!(
            !r.due(8, t0 + Duration::from_secs(30)),
            "a new blob brought a round within a minute of the last"
        );
        assert!(r.due(8, t0 + NEW_BLOBS_AFTER));
        r.done(8, DEFAULT_INTERVAL, t0 + NEW_BLOBS_AFTER);
        assert!(
            !r.due(8, t0 + Duration::from_secs(300)),
            "nothing new, not due"
        );
        assert!(r.due(8, t0 + NEW_BLOBS_AFTER + DEFAULT_INTERVAL));
        assert_eq!(r.wait(t0 + NEW_BLOBS_AFTER), LOOK_EVERY);
    }
}
