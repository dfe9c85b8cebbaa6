//! Swarm downloads: the table every worker shares, and the I/O shell of
//! [`OriginPlan`]: asking trackers, starting the download, following
//! piece hashes and handing over to another origin.
//!
//! A download leaves the table when it completes (the cache serves the
//! blob from then on), fails, is orphaned, or outlives [`LIFETIME`]; at
//! most [`MAX_DOWNLOADS`] run at once, beyond which new blobs are read
//! straight from the registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bay_core::engine::{ProgressiveSpec, TorrentHandle};
use bay_core::registry::{Auth, RegistryClient};
use bay_wire::oci::Digest;
use bay_wire::origin::BlobAsk as OriginAsk;

use super::access::Access;
use super::follow::{follow, Handover};
use super::origin_client::ask_origin;
use super::origin_plan::{Geometry, NoSwarm, OriginPlan, Step};
use super::read_plan::Health;
use super::{announce, BlobAsk, BlobWorker, Blobs};

/// Most downloads running at once.
pub const MAX_DOWNLOADS: usize = 1024;
/// A download is forgotten this long after it started, finished or not.
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// How long a tracker gets to answer "be this blob's origin" (it may have
/// to ask the registry first).
pub const ASK_WITHIN: Duration = Duration::from_secs(10);

/// A blob coming from the swarm, shared by every client reading it.
pub struct Download {
    pub handle: TorrentHandle,
    pub length: u64,
    /// No origin can publish the remaining piece hashes, or no peer is
    /// left to fetch pieces from.
    pub(super) orphaned: AtomicBool,
    /// A client has read from it.
    read: AtomicBool,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("length", &self.length)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// A client reads it: a download joined ahead of the client is kept.
    pub fn mark_read(&self) {
        self.read.store(true, Ordering::Release);
    }

    /// What a waiting reader needs to know.
    pub fn health(&self) -> Health {
        Health {
            failed: false,
            orphaned: self.orphaned.load(Ordering::Acquire),
            verified_pieces: self.handle.progress().verified_pieces(),
        }
    }
}

/// The downloads running now, by digest.
#[derive(Debug, Default)]
pub struct Downloads {
    table: Mutex<HashMap<Digest, Arc<Download>>>,
}

impl Downloads {
    fn table(&self) -> MutexGuard<'_, HashMap<Digest, Arc<Download>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, digest: &Digest) -> Option<Arc<Download>> {
        self.table().get(digest).cloned()
    }

    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Every download running, for the status page.
    pub fn list(&self) -> Vec<(Digest, Arc<Download>)> {
        self.table()
            .iter()
            .map(|(d, x)| (d.clone(), x.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `download` unless one for the blob is there already (which
    /// is returned instead).
    fn insert_if_absent(&self, digest: &Digest, download: Arc<Download>) -> Arc<Download> {
        self.table()
            .entry(digest.clone())
            .or_insert(download)
            .clone()
    }

    /// Removes `download` unless it was already replaced.
    pub(super) fn forget(&self, digest: &Digest, download: &Arc<Download>) {
        let mut table = self.table();
        if table.get(digest).is_some_and(|d| Arc::ptr_eq(d, download)) {
            table.remove(digest);
        }
    }
}

/// When a download fetches its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// At once: a client is waiting, or the proxy prefetches.
    Now,
    /// Once a client reads the blob: joined on seeing a manifest.
    OnRead,
}

/// A download joined ahead of its client and not read within this long
/// is let go: the client held the blob already, or never came.
pub const UNREAD_FOR: Duration = Duration::from_secs(300);

/// Releases `download` if no client has read it after [`UNREAD_FOR`].
async fn release_unread(blobs: Arc<Blobs>, digest: Digest, download: Arc<Download>) {
    monoio::time::sleep(UNREAD_FOR).await;
    if !download.read.load(Ordering::Acquire) {
        tracing::debug!(%digest, "no client read a blob joined ahead: leaving its swarm");
        download.handle.release();
        blobs.downloads.forget(&digest, &download);
    }
}

/// Where a blob read goes.
#[derive(Debug)]
pub enum Joined {
    Swarm(Arc<Download>),
    Direct,
}

impl BlobWorker {
    /// Joins the swarm download of the blob, or starts one.
    pub(super) async fn join_or_start(
        &self,
        registry: &RegistryClient,
        ask: &BlobAsk<'_>,
        auth: &Auth,
    ) -> Joined {
        if let Some(d) = self.blobs.downloads.get(&ask.digest) {
            // The origin checked the first client's access; check ours.
            return match self.access(registry, ask, auth).await {
                Access::Granted => Joined::Swarm(d),
                _ => Joined::Direct,
            };
        }
        if self.blobs.trackers.is_empty() {
            return Joined::Direct;
        }
        if self.blobs.downloads.len() >= MAX_DOWNLOADS {
            tracing::warn!(digest = %ask.digest, "{MAX_DOWNLOADS} swarm downloads running: reading from the registry");
            return Joined::Direct;
        }
        self.start(ask, auth).await
    }

    async fn start(&self, ask: &BlobAsk<'_>, auth: &Auth) -> Joined {
        let wanted = OriginAsk {
            registry: ask.upstream.to_string(),
            repo: ask.repo.clone(),
            digest: ask.digest.clone(),
        };
        let authorization = ask.authorization().map(<[u8]>::to_vec);
        self.start_download(wanted, authorization, auth, Fetch::Now)
            .await
    }

    /// Asks the blob's trackers for an origin, joins its swarm and puts
    /// the download in the table; `fetch` says whether pieces are fetched
    /// now or only once a client reads the blob.
    pub(super) async fn start_download(
        &self,
        wanted: OriginAsk,
        authorization: Option<Vec<u8>>,
        auth: &Auth,
        fetch: Fetch,
    ) -> Joined {
        let blobs = &self.blobs;
        let digest = wanted.digest.clone();
        let mut plan = OriginPlan::new(blobs.trackers.order_for(digest.as_str()), ASK_WITHIN);
        let mut step = plan.start();
        loop {
            step = match step {
                Step::Ask { tracker, within } => {
                    let answer = ask_origin(
                        &self.trackers,
                        blobs.engine.naming(),
                        &blobs.trackers,
                        tracker,
                        &wanted,
                        authorization.as_deref(),
                        within,
                    )
                    .await;
                    plan.answered(tracker, answer)
                }
                Step::Join {
                    tracker,
                    geometry,
                    peer,
                    swarm,
                } => {
                    // The origin read the blob with this client's
                    // credentials: that is a grant, as a HEAD would be.
                    blobs
                        .grants
                        .record(&wanted.registry, &digest, auth, Instant::now());
                    let Some(download) = self.begin(&digest, geometry, swarm) else {
                        return Joined::Direct;
                    };
                    if fetch == Fetch::OnRead {
                        download.handle.hold_until_read();
                    }
                    blobs.engine.connect(download.handle.info_hash(), peer);
                    let kept = blobs.downloads.insert_if_absent(&digest, download.clone());
                    if Arc::ptr_eq(&kept, &download) {
                        monoio::spawn(follow(
                            plan,
                            tracker,
                            self.trackers.clone(),
                            blobs.clone(),
                            download.clone(),
                            Handover {
                                wanted,
                                authorization,
                            },
                        ));
                        monoio::spawn(announce::run(
                            self.trackers.clone(),
                            tracker,
                            blobs.clone(),
                            &download,
                        ));
                        if fetch == Fetch::OnRead {
                            monoio::spawn(release_unread(blobs.clone(), digest, download));
                        }
                    }
                    return Joined::Swarm(kept);
                }
                Step::Direct(why) => {
                    match why {
                        NoSwarm::Refused(status) => {
                            tracing::debug!(status, %digest, "origin refused: going to the registry");
                        }
                        NoSwarm::NoTracker => {
                            tracing::warn!(%digest, "no tracker answered: going to the registry");
                        }
                    }
                    return Joined::Direct;
                }
                // Only a grant gets past the first asks.
                Step::TakeOver { .. } | Step::Follow { .. } | Step::Orphaned | Step::Done => {
                    return Joined::Direct
                }
            };
        }
    }

    fn begin(&self, digest: &Digest, geometry: Geometry, swarm: [u8; 20]) -> Option<Arc<Download>> {
        let spec = ProgressiveSpec {
            digest: digest.clone(),
            total_len: geometry.length,
            piece_len: geometry.piece_length,
        };
        match self.blobs.engine.add_progressive_named(spec, swarm) {
            Ok(handle) => Some(Arc::new(Download {
                handle,
                length: geometry.length,
                orphaned: AtomicBool::new(false),
                read: AtomicBool::new(false),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "cannot join the swarm");
                None
            }
        }
    }
}
