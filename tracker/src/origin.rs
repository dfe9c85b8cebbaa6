//! The origin seeder: fetches each blob from the registry once, however
//! many proxies ask at the same time, and seeds it.
//!
//! While the fetch streams, each completed piece is hashed, published to
//! proxies (they long-poll `/origin/v1/hashes`) and handed to the peer
//! engine, so the swarm runs before the blob is whole. Nothing is kept
//! unless the registry answered 200 and the whole blob matches its
//! digest: an error page never becomes a layer. The client's credentials
//! are used for that one fetch and an access check, and are never stored.
//!
//! API (JSON answers, errors as `{"error": "..."}`):
//! - `POST /origin/v1/blobs?registry=R&repo=NAME&digest=D` (client's
//!   Authorization forwarded): starts or joins the fetch; answers length,
//!   piece length, swarm id and the seeder's peer address.
//! - `GET /origin/v1/hashes?digest=D&from=N`: piece hashes from N on, as
//!   32-byte records, waiting up to 10 s for new ones; `x-bay-pieces` gives
//!   the total and `x-bay-done: 1` marks the last answer.
//! - `POST /origin/v1/preheat?image=REF[&platform=os/arch]`: see
//!   [`crate::preheat`].

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bay_core::allow::{AllowList, Upstream};
use bay_core::engine::{swarm_id_for, Engine, ProgressiveSpec, TorrentHandle};
use bay_core::registry::{Auth, BlobSink, Registries, RegistryClient, RegistryError};
use bay_core::store::Store;
use bay_httpd::client::Client;
use bay_httpd::{Request, Response};
use bay_wire::merkle::{self, Hash};
use bay_wire::metainfo::{self, choose_piece_length, BuildOptions, Metainfo};
use bay_wire::oci::{Digest, RepositoryName};
use bytes::{Bytes, BytesMut};

/// How long a hashes request waits for news.
const LONG_POLL: Duration = Duration::from_secs(10);

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
    wakers: Vec<Waker>,
}

impl Fetch {
    fn lock(&self) -> MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, hash: Hash) {
        let mut s = self.lock();
        s.hashes.push(hash);
        wake(&mut s);
    }

    fn end(&self, outcome: Result<(), String>) {
        let mut s = self.lock();
        s.outcome = Some(outcome);
        wake(&mut s);
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
}

/// A worker's view: the shared origin plus this thread's HTTP client.
#[derive(Debug)]
pub struct OriginWorker {
    pub origin: Arc<Origin>,
    pub shared: Arc<crate::service::Shared>,
    pub http: Client,
}

pub(crate) fn json_error(status: u16, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    Response::new(status)
        .header("content-type", "application/json")
        .body(body.into_bytes())
}

pub(crate) fn param<'a>(req: &'a Request, key: &str) -> Option<&'a str> {
    let query = req.target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then_some(v)
    })
}

pub(crate) struct Asked {
    pub(crate) registry: RegistryClient,
    pub(crate) repo: RepositoryName,
    pub(crate) digest: Digest,
    pub(crate) auth: Auth,
}

impl OriginWorker {
    fn asked(&self, req: &Request) -> Result<Asked, Response> {
        let bad = |what: &str| json_error(400, &format!("missing or invalid {what}"));
        let upstream = param(req, "registry")
            .and_then(|r| Upstream::parse(r).ok())
            .ok_or_else(|| bad("registry"))?;
        if !self.origin.allow.allows(&upstream) {
            return Err(json_error(
                403,
                &format!("registry {upstream} is not allowed (--allow-registry)"),
            ));
        }
        let repo = param(req, "repo")
            .and_then(|r| RepositoryName::parse(r).ok())
            .ok_or_else(|| bad("repo"))?;
        let digest = param(req, "digest")
            .and_then(|d| Digest::parse(d).ok())
            .ok_or_else(|| bad("digest"))?;
        let registry = self
            .origin
            .registries
            .client(upstream.as_str(), &self.http)
            .map_err(|e| json_error(400, &e.to_string()))?;
        Ok(Asked {
            registry,
            repo,
            digest,
            auth: Auth::from_header(req.header("authorization")),
        })
    }

    /// `POST /origin/v1/blobs`.
    pub async fn blob(&self, req: &Request) -> Response {
        let asked = match self.asked(req) {
            Ok(a) => a,
            Err(r) => return r,
        };
        // Whoever asks must be allowed to read the blob, even when another
        // client's request already started (or finished) the fetch.
        match asked
            .registry
            .check_access(&asked.repo, &asked.digest, &asked.auth)
            .await
        {
            Ok(true) => {}
            Ok(false) => return json_error(403, "the registry refuses this client the blob"),
            Err(e) => return registry_error(&e),
        }
        let fetch = match self.fetch_for(&asked).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        let body = serde_json::json!({
            "digest": asked.digest.as_str(),
            "length": fetch.length,
            "piece_length": fetch.piece_len,
            "swarm_id": bay_wire::hex::encode(&swarm_id_for(&asked.digest)),
            "peer": self.origin.peer_addr.to_string(),
        });
        Response::new(200)
            .header("content-type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// The fetch of this blob: an existing one, or a new one started now.
    pub(crate) async fn fetch_for(&self, asked: &Asked) -> Result<Arc<Fetch>, Response> {
        if let Some(f) = self.origin.fetches().get(&asked.digest) {
            return Ok(f.clone());
        }
        let length = match asked
            .registry
            .head_blob(&asked.repo, &asked.digest, &asked.auth)
            .await
        {
            Ok(head) => head.length.unwrap_or(0),
            Err(e) => return Err(registry_error(&e)),
        };
        if length == 0 {
            return Err(json_error(
                422,
                "empty blob or no Content-Length: fetch it straight from the registry",
            ));
        }
        let piece_len = choose_piece_length(length);
        let spec = ProgressiveSpec {
            digest: asked.digest.clone(),
            total_len: length,
            piece_len,
        };
        let handle = self
            .origin
            .engine
            .add_progressive(spec)
            .map_err(|e| json_error(503, &e.to_string()))?;
        let swarm = bay_wire::tracker::InfoHash(handle.info_hash());
        self.shared.peers.allow(swarm);
        let fetch = Arc::new(Fetch {
            length,
            piece_len,
            state: Mutex::new(FetchState::default()),
            handle,
        });
        // Two requests may have raced past the first look: the first to
        // insert wins and only it fetches.
        {
            let mut fetches = self.origin.fetches();
            if let Some(existing) = fetches.get(&asked.digest) {
                return Ok(existing.clone());
            }
            fetches.insert(asked.digest.clone(), fetch.clone());
        }
        if fetch.handle.progress().is_complete() {
            // Already in our store: publish its hashes from the torrent.
            publish_from_store(&self.origin, &asked.digest, &fetch);
        } else {
            monoio::spawn(run_fetch(
                self.origin.clone(),
                fetch.clone(),
                Asked {
                    registry: asked.registry.clone(),
                    repo: asked.repo.clone(),
                    digest: asked.digest.clone(),
                    auth: asked.auth.clone(),
                },
            ));
        }
        Ok(fetch)
    }

    /// `GET /origin/v1/hashes?digest=D&from=N`.
    pub async fn hashes(&self, req: &Request) -> Response {
        let Some(digest) = param(req, "digest").and_then(|d| Digest::parse(d).ok()) else {
            return json_error(400, "missing or invalid digest");
        };
        let from: usize = param(req, "from").and_then(|n| n.parse().ok()).unwrap_or(0);
        let Some(fetch) = self.origin.fetches().get(&digest).cloned() else {
            return json_error(404, "no fetch of this blob: POST /origin/v1/blobs first");
        };
        let _ = monoio::time::timeout(LONG_POLL, fetch.wait_past(from)).await;
        let s = fetch.lock();
        if let Some(Err(why)) = &s.outcome {
            return json_error(502, why);
        }
        let total = fetch.length.div_ceil(fetch.piece_len);
        let mut body = Vec::new();
        for h in s.hashes.iter().skip(from) {
            body.extend_from_slice(h);
        }
        let done = s.outcome.is_some() && s.hashes.len() as u64 == total;
        Response::new(200)
            .header("content-type", "application/octet-stream")
            .header("x-bay-pieces", total.to_string())
            .header("x-bay-done", if done { "1" } else { "0" })
            .body(body)
    }
}

pub(crate) fn registry_error(e: &RegistryError) -> Response {
    let status = e
        .status()
        .filter(|s| matches!(s, 401 | 403 | 404))
        .unwrap_or(502);
    json_error(status, &e.to_string())
}

fn publish_from_store(origin: &Origin, digest: &Digest, fetch: &Fetch) {
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
async fn run_fetch(origin: Arc<Origin>, fetch: Arc<Fetch>, asked: Asked) {
    let started = Instant::now();
    let mut sink = PieceSink {
        fetch: &fetch,
        buf: BytesMut::new(),
        next: 0,
    };
    let result = asked
        .registry
        .fetch_blob_verified(&asked.repo, &asked.digest, &asked.auth, &mut sink)
        .await;
    let outcome = match result
        .map_err(|e| e.to_string())
        .and_then(|_| sink.flush_last())
    {
        Ok(()) => finish_torrent(&origin, &asked.digest, &fetch).await,
        Err(e) => Err(e),
    };
    match &outcome {
        Ok(()) => tracing::info!(
            digest = %asked.digest,
            bytes = fetch.length,
            secs = started.elapsed().as_secs_f64(),
            "fetched from the registry"
        ),
        Err(why) => {
            tracing::warn!(digest = %asked.digest, why, "origin fetch failed");
            // Forget it so that a later request tries again.
            origin.fetches().remove(&asked.digest);
        }
    }
    fetch.end(outcome);
}

/// Waits for the engine to have the whole blob, then keeps its torrent.
async fn finish_torrent(origin: &Origin, digest: &Digest, fetch: &Fetch) -> Result<(), String> {
    monoio::time::timeout(
        Duration::from_secs(60),
        fetch.handle.progress().wait_complete(),
    )
    .await
    .map_err(|_| "the store did not take the blob in time".to_string())?
    .map_err(|e| e.to_string())?;
    let blob = origin
        .store
        .get(digest)
        .map_err(|e| e.to_string())?
        .ok_or("blob missing from the store after the fetch")?;
    let map = blob.map().map_err(|e| e.to_string())?;
    let metainfo = metainfo::build(
        &map,
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
/// proxies and given to the engine as soon as its last byte is in. The
/// engine checks each piece against the hash it was just told, and the
/// store checks the whole blob against its digest before keeping it.
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
        self.fetch.handle.supply_piece(self.next, piece);
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
