//! The origin seeder: fetches each blob from the registry once, however
//! many proxies ask at the same time, and seeds it.
//!
//! While the fetch streams, each completed piece is hashed, published to
//! proxies (they long-poll for hashes) and handed to the peer engine, so
//! the swarm runs before the blob is whole. Nothing is kept unless the
//! registry answered 200 and the whole blob matches its digest: an error
//! page never becomes a layer. The client's credentials are used for that
//! one fetch and an access check, and are never stored.
//!
//! The API is [`bay_wire::origin`] (typed requests and answers, described
//! in docs/protocol.md). Layout: [`api`] (the handlers), [`fetch`] (one
//! blob's fetch from the registry into the swarm), [`preheat`].
//!
//! The table of fetches is bounded: a finished fetch is forgotten
//! [`FINISHED_TTL`] after it ended (a later request for the blob starts
//! again from the store, which is cheap), and beyond [`MAX_FETCHES`] the
//! oldest finished ones go first. Fetches in progress are never dropped.

mod api;
mod fetch;
pub mod preheat;

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bay_core::allow::AllowList;
use bay_core::engine::{Engine, TorrentHandle};
use bay_core::registry::Registries;
use bay_core::store::Store;
use bay_httpd::client::Client;
use bay_wire::merkle::Hash;
use bay_wire::oci::Digest;

pub(crate) use api::{json_error, registry_error, Asked};

/// How long a hashes request waits for news.
const LONG_POLL: Duration = Duration::from_secs(10);
/// A finished fetch is forgotten this long after it ended.
pub const FINISHED_TTL: Duration = Duration::from_secs(600);
/// Most fetches remembered; beyond, the oldest finished ones are dropped.
pub const MAX_FETCHES: usize = 4096;

/// Shared by every worker.
pub struct Origin {
    pub registries: Registries,
    pub allow: AllowList,
    pub engine: Engine,
    pub store: Store,
    /// Where proxies reach this seeder's peer engine.
    pub peer_addr: SocketAddr,
    fetches: Mutex<HashMap<Digest, Arc<Fetch>>>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

/// One blob's fetch, watched by any number of proxies.
pub(crate) struct Fetch {
    pub(crate) length: u64,
    piece_len: u64,
    state: Mutex<FetchState>,
    handle: TorrentHandle,
}

#[derive(Default)]
struct FetchState {
    hashes: Vec<Hash>,
    /// `Some(Ok)` when the blob is whole and checked, `Some(Err)` when the
    /// fetch failed (proxies fall back to the registry).
    outcome: Option<Result<(), String>>,
    ended_at: Option<Instant>,
    wakers: Vec<Waker>,
}

impl Fetch {
    fn lock(&self) -> MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pieces(&self) -> u32 {
        u32::try_from(self.length.div_ceil(self.piece_len)).unwrap_or(u32::MAX)
    }

    fn publish(&self, hash: Hash) {
        let mut s = self.lock();
        s.hashes.push(hash);
        wake(&mut s);
    }

    fn end(&self, outcome: Result<(), String>) {
        let mut s = self.lock();
        s.outcome = Some(outcome);
        s.ended_at = Some(Instant::now());
        wake(&mut s);
    }

    /// When the fetch ended, if it did.
    fn ended_at(&self) -> Option<Instant> {
        self.lock().ended_at
    }

    /// Waits until there are hashes past `from`, or the fetch ended.
    async fn wait_past(&self, from: usize) {
        poll_fn(|cx| {
            let mut s = self.lock();
            if s.hashes.len() > from || s.outcome.is_some() {
                Poll::Ready(())
            } else {
                s.wakers.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

fn wake(s: &mut FetchState) {
    for w in s.wakers.drain(..) {
        w.wake();
    }
}

impl Origin {
    pub fn new(
        registries: Registries,
        allow: AllowList,
        engine: Engine,
        store: Store,
        peer_addr: SocketAddr,
    ) -> Origin {
        Origin {
            registries,
            allow,
            engine,
            store,
            peer_addr,
            fetches: Mutex::new(HashMap::new()),
        }
    }

    fn fetches(&self) -> MutexGuard<'_, HashMap<Digest, Arc<Fetch>>> {
        self.fetches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fetches remembered now (for metrics and tests).
    pub fn fetch_count(&self) -> usize {
        self.fetches().len()
    }

    /// Records `fetch` unless another one for the blob got there first
    /// (which is returned instead), forgetting old finished fetches.
    fn remember(&self, digest: &Digest, fetch: Arc<Fetch>, now: Instant) -> Arc<Fetch> {
        let mut fetches = self.fetches();
        if let Some(existing) = fetches.get(digest) {
            return existing.clone();
        }
        forget_finished(&mut fetches, now);
        fetches.insert(digest.clone(), fetch.clone());
        fetch
    }
}

/// Drops fetches that ended more than [`FINISHED_TTL`] ago and, while the
/// table is at [`MAX_FETCHES`], the oldest finished ones.
fn forget_finished(fetches: &mut HashMap<Digest, Arc<Fetch>>, now: Instant) {
    fetches.retain(|_, f| {
        f.ended_at()
            .is_none_or(|t| now.saturating_duration_since(t) < FINISHED_TTL)
    });
    if fetches.len() < MAX_FETCHES {
        return;
    }
    let mut finished: Vec<(Instant, Digest)> = fetches
        .iter()
        .filter_map(|(d, f)| Some((f.ended_at()?, d.clone())))
        .collect();
    finished.sort();
    let excess = fetches.len() + 1 - MAX_FETCHES;
    for (_, d) in finished.into_iter().take(excess) {
        fetches.remove(&d);
    }
}

/// A worker's view: the shared origin plus this thread's HTTP client.
#[derive(Debug)]
pub struct OriginWorker {
    pub origin: Arc<Origin>,
    pub shared: Arc<crate::service::Shared>,
    pub http: Client,
}
