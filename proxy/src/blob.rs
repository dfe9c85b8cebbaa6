//! Blob reads: from the cache, from the swarm, or from the registry.
//!
//! 1. Cached: served by sendfile once the registry says this client may
//!    read the blob (answers cached briefly). When the registry cannot be
//!    reached, a client granted access within the last hour still gets it:
//!    a registry outage must not stop a fleet from starting what it has.
//! 2. Not cached: the tracker that owns the blob (rendezvous hashing of the
//!    digest over `--tracker`) fetches it once from the registry and seeds
//!    it; this proxy joins the swarm, learns piece hashes as the origin
//!    publishes them, and streams verified bytes to the client as they
//!    arrive. Every proxy on the way keeps and seeds the blob.
//! 3. No tracker answers, or the swarm stalls: the rest comes straight from
//!    the registry with the client's credentials. A whole blob fetched that
//!    way is cached once its digest checks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bay_core::allow::Upstream;
use bay_core::announce::{run_http, AnnounceConfig, AnnounceControl, Announcer};
use bay_core::engine::{Engine, ProgressiveSpec, TorrentHandle};
use bay_core::metrics::Counter;
use bay_core::registry::{Auth, ByteRange, CredentialId, Registries, RegistryClient};
use bay_core::store::Store;
use bay_httpd::client::{self, Client, Url};
use bay_httpd::range::{evaluate, RangeOutcome};
use bay_httpd::{Body, BodySender, FileBody, Request, Response};
use bay_wire::merkle::Hash;
use bay_wire::oci::{Digest, RepositoryName};
use bay_wire::tracker::{InfoHash, PeerId};
use rustls as rustls_config;
use sha2::{Digest as _, Sha256};

use crate::errors::oci_error;

/// No verified byte for this long: take the rest from the registry.
const STALL: Duration = Duration::from_secs(15);
/// How often a waiting reader checks whether its download lost every origin.
const ORPHAN_CHECK: Duration = Duration::from_millis(500);
/// How long an access grant still counts while the registry is down.
const OUTAGE_GRACE: Duration = Duration::from_secs(3600);

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct BlobMetrics {
    pub cache_hits: Counter,
    pub swarm_reads: Counter,
    pub registry_reads: Counter,
    pub bytes_to_clients: Counter,
    pub bytes_from_registry: Counter,
}

/// What every worker shares.
pub struct Blobs {
    pub store: Store,
    pub engine: Engine,
    pub registries: Registries,
    /// Base URLs of the trackers (`http://host:port`).
    pub trackers: Vec<String>,
    /// The address peers reach this proxy's engine at.
    pub peer_addr: SocketAddr,
    pub plain_http: Vec<String>,
    pub metrics: BlobMetrics,
    grants: Mutex<HashMap<(String, Digest, CredentialId), Instant>>,
    downloads: Mutex<HashMap<Digest, Arc<Download>>>,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs")
            .field("trackers", &self.trackers)
            .field("peer_addr", &self.peer_addr)
            .finish_non_exhaustive()
    }
}

/// A blob coming from the swarm, shared by every client reading it.
struct Download {
    handle: TorrentHandle,
    length: u64,
    /// No origin can publish the remaining piece hashes (every tracker
    /// failed): readers stop waiting for the swarm and finish from the
    /// registry at once instead of after the stall timeout.
    orphaned: AtomicBool,
}

impl Blobs {
    pub fn new(
        store: Store,
        engine: Engine,
        registries: Registries,
        trackers: Vec<String>,
        peer_addr: SocketAddr,
        plain_http: Vec<String>,
    ) -> Blobs {
        Blobs {
            store,
            engine,
            registries,
            trackers,
            peer_addr,
            plain_http,
            metrics: BlobMetrics::default(),
            grants: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
        }
    }

    fn grants(&self) -> MutexGuard<'_, HashMap<(String, Digest, CredentialId), Instant>> {
        self.grants.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn downloads(&self) -> MutexGuard<'_, HashMap<Digest, Arc<Download>>> {
        self.downloads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Trackers in the order to ask them about `digest`: see
    /// [`rendezvous_order`].
    pub fn trackers_for(&self, digest: &Digest) -> Vec<String> {
        rendezvous_order(&self.trackers, digest.as_str())
    }
}

/// `trackers` in the order to ask them about `digest`: highest rendezvous
/// score (SHA-256 of URL, NUL, digest) first, so every proxy picks the
/// same owner, and the same next one when the owner is down.
pub fn rendezvous_order(trackers: &[String], digest: &str) -> Vec<String> {
    let mut scored: Vec<([u8; 32], &String)> = trackers
        .iter()
        .map(|t| {
            let score: [u8; 32] = Sha256::new()
                .chain_update(t.as_bytes())
                .chain_update(b"\0")
                .chain_update(digest.as_bytes())
                .finalize()
                .into();
            (score, t)
        })
        .collect();
    scored.sort_by_key(|(score, _)| std::cmp::Reverse(*score));
    scored.into_iter().map(|(_, t)| t.clone()).collect()
}

/// One worker's view.
#[derive(Debug)]
pub struct BlobWorker {
    pub blobs: Arc<Blobs>,
    /// To registries (their TLS and plain-HTTP rules).
    pub http: Client,
    /// To trackers (plain HTTP allowed for those configured as http://).
    pub trackers: Client,
}

/// A client for the tracker URLs: `http://` ones are the operator's
/// explicit choice, so plain HTTP is allowed to exactly those.
pub fn tracker_client(trackers: &[String], tls: Arc<rustls_config::ClientConfig>) -> Client {
    let plain: Vec<String> = trackers
        .iter()
        .filter_map(|t| t.strip_prefix("http://"))
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
        .collect();
    Client::with_tls(
        bay_httpd::client::ClientConfig {
            plain_http: bay_httpd::client::PlainHttp::Origins(plain),
            ..bay_httpd::client::ClientConfig::default()
        },
        tls,
    )
}

/// What a blob request is about.
#[derive(Debug)]
pub struct BlobAsk<'a> {
    pub req: &'a Request,
    pub upstream: &'a Upstream,
    pub repo: RepositoryName,
    pub digest: Digest,
    pub url: Url,
}

impl BlobWorker {
    fn registry(&self, upstream: &Upstream) -> Option<RegistryClient> {
        self.blobs
            .registries
            .client(upstream.as_str(), &self.http)
            .ok()
    }

    /// GET of a blob.
    pub async fn get(&self, ask: BlobAsk<'_>) -> Response {
        let auth = Auth::from_header(ask.req.header("authorization"));
        let Some(registry) = self.registry(ask.upstream) else {
            return oci_error(400, "NAME_INVALID", "bad upstream registry name");
        };
        if let Ok(Some(blob)) = self.blobs.store.get(&ask.digest) {
            match self.may_read(&registry, &ask, &auth).await {
                Access::Granted => {
                    self.blobs.metrics.cache_hits.inc();
                    self.blobs.metrics.bytes_to_clients.add(blob.len());
                    let file = match blob.file().try_clone() {
                        Ok(f) => Rc::new(f),
                        Err(e) => return oci_error(500, "UNKNOWN", &e.to_string()),
                    };
                    return blob_response(200, &ask.digest).body(FileBody::range(
                        file,
                        0,
                        blob.len(),
                    ));
                }
                // The registry's own answer (401 with its challenge, 404)
                // is what the client should see.
                Access::Refused => return self.direct(&ask, &auth, None).await,
                Access::Unknown(why) => {
                    tracing::warn!(digest = %ask.digest, why, "cannot confirm a client's access to a cached blob");
                    return oci_error(
                        502,
                        "UNAVAILABLE",
                        "bay-proxy: cannot confirm access with the registry",
                    );
                }
            }
        }
        match self.via_swarm(&ask, &auth).await {
            Some(r) => r,
            None => self.direct(&ask, &auth, None).await,
        }
    }

    /// Remembers that the registry let this client read the blob, so a
    /// registry outage does not stop it from reading what is cached.
    fn record_grant(&self, ask: &BlobAsk<'_>, auth: &Auth) {
        let key = (ask.upstream.to_string(), ask.digest.clone(), auth.id());
        self.blobs.grants().insert(key, Instant::now());
    }

    async fn may_read(&self, registry: &RegistryClient, ask: &BlobAsk<'_>, auth: &Auth) -> Access {
        let key = (ask.upstream.to_string(), ask.digest.clone(), auth.id());
        let checked = match auth {
            // A client that sent no credentials is judged by the
            // registry's answer to exactly that. Fetching an anonymous
            // token on its behalf would decide for a client that has not
            // done the token dance itself, and fails outright where the
            // realm is one only the client may reach.
            Auth::Anonymous => self.bare_head(&ask.url).await,
            _ => match registry.check_access(&ask.repo, &ask.digest, auth).await {
                Ok(answer) => Ok(answer),
                Err(e) if e.is_refusal() => Ok(false),
                Err(e) => Err(e.to_string()),
            },
        };
        match checked {
            Ok(true) => {
                self.record_grant(ask, auth);
                Access::Granted
            }
            Ok(false) => Access::Refused,
            Err(e) => {
                let granted = self
                    .blobs
                    .grants()
                    .get(&key)
                    .is_some_and(|t| t.elapsed() < OUTAGE_GRACE);
                if granted {
                    tracing::warn!(digest = %ask.digest, error = %e, "registry unreachable: serving a cached blob to a client granted access earlier");
                    Access::Granted
                } else {
                    Access::Unknown(e)
                }
            }
        }
    }

    /// A HEAD of the blob without credentials: `Ok(true)` when the
    /// registry lets anyone read it, `Ok(false)` when it refuses.
    async fn bare_head(&self, url: &Url) -> Result<bool, String> {
        match self.http.send(client::Request::head(url.clone())).await {
            Ok(r) if (200..300).contains(&r.status()) => Ok(true),
            Ok(r) if matches!(r.status(), 401 | 403 | 404) => Ok(false),
            Ok(r) => Err(format!("registry answered {} to a blob HEAD", r.status())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Joins (or starts) the swarm download of the blob and streams it.
    /// `None` when no tracker could take it: the caller goes direct.
    async fn via_swarm(&self, ask: &BlobAsk<'_>, auth: &Auth) -> Option<Response> {
        let existing = self.blobs.downloads().get(&ask.digest).cloned();
        let download = match existing {
            Some(d) => {
                // The origin checked the first client's access; check ours.
                let registry = self.registry(ask.upstream)?;
                if !matches!(self.may_read(&registry, ask, auth).await, Access::Granted) {
                    return None;
                }
                d
            }
            None => self.start_download(ask, auth).await?,
        };
        self.blobs.metrics.swarm_reads.inc();
        Some(self.stream(ask, auth, &download))
    }

    async fn start_download(&self, ask: &BlobAsk<'_>, auth: &Auth) -> Option<Arc<Download>> {
        for tracker in self.blobs.trackers_for(&ask.digest) {
            match self.ask_origin(&tracker, ask, auth).await {
                Ok(origin) => {
                    // The origin read the blob with this client's
                    // credentials: that is a grant, as a HEAD would be.
                    self.record_grant(ask, auth);
                    let spec = ProgressiveSpec {
                        digest: ask.digest.clone(),
                        total_len: origin.length,
                        piece_len: origin.piece_length,
                    };
                    let handle = match self.blobs.engine.add_progressive(spec) {
                        Ok(h) => h,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot join the swarm");
                            return None;
                        }
                    };
                    self.blobs.engine.connect(handle.info_hash(), origin.peer);
                    let download = Arc::new(Download {
                        handle,
                        length: origin.length,
                        orphaned: AtomicBool::new(false),
                    });
                    {
                        let mut downloads = self.blobs.downloads();
                        if let Some(d) = downloads.get(&ask.digest) {
                            return Some(d.clone());
                        }
                        downloads.insert(ask.digest.clone(), download.clone());
                    }
                    monoio::spawn(follow_hashes(
                        self.trackers.clone(),
                        tracker.clone(),
                        OriginBlob {
                            upstream: ask.upstream.to_string(),
                            repo: ask.repo.to_string(),
                            digest: ask.digest.clone(),
                            authorization: ask.req.header("authorization").map(<[u8]>::to_vec),
                        },
                        self.blobs.clone(),
                        download.clone(),
                    ));
                    monoio::spawn(announce(
                        self.trackers.clone(),
                        tracker,
                        self.blobs.clone(),
                        download.clone(),
                    ));
                    return Some(download);
                }
                Err(OriginError::Refused(status)) => {
                    tracing::debug!(status, digest = %ask.digest, "origin refused: going to the registry");
                    return None;
                }
                Err(OriginError::Unreachable(why)) => {
                    tracing::warn!(%tracker, why, "tracker unreachable: trying the next");
                }
            }
        }
        None
    }

    async fn ask_origin(
        &self,
        tracker: &str,
        ask: &BlobAsk<'_>,
        _auth: &Auth,
    ) -> Result<OriginAnswer, OriginError> {
        let blob = OriginBlob {
            upstream: ask.upstream.to_string(),
            repo: ask.repo.to_string(),
            digest: ask.digest.clone(),
            authorization: ask.req.header("authorization").map(<[u8]>::to_vec),
        };
        request_origin(&self.trackers, tracker, &blob).await
    }

    /// Streams the asked range of a swarm download as it is verified.
    fn stream(&self, ask: &BlobAsk<'_>, auth: &Auth, download: &Arc<Download>) -> Response {
        let total = download.length;
        let (status, range) = match evaluate(ask.req.header("range"), total) {
            RangeOutcome::Full => (200, 0..total),
            RangeOutcome::Partial { start, end } => (206, start..end + 1),
            RangeOutcome::Unsatisfiable => {
                return Response::new(416).header("content-range", format!("bytes */{total}"))
            }
        };
        let reader = match download.handle.reader(range.clone()) {
            Ok(r) => r,
            Err(e) => return oci_error(500, "UNKNOWN", &e.to_string()),
        };
        let (sender, body) = Body::channel(Some(range.end - range.start));
        let fallback = Fallback {
            http: self.http.clone(),
            url: ask.url.clone(),
            authorization: ask.req.header("authorization").map(<[u8]>::to_vec),
            blobs: self.blobs.clone(),
        };
        let _ = auth;
        monoio::spawn(pump(
            reader,
            sender,
            fallback,
            self.blobs.clone(),
            download.clone(),
        ));
        let mut resp = blob_response(status, &ask.digest);
        if status == 206 {
            resp = resp.header(
                "content-range",
                format!("bytes {}-{}/{total}", range.start, range.end - 1),
            );
        }
        resp.body(body)
    }

    /// Straight from the registry with the client's credentials; a whole
    /// 200 is cached once its digest checks.
    pub async fn direct(
        &self,
        ask: &BlobAsk<'_>,
        auth: &Auth,
        _range: Option<ByteRange>,
    ) -> Response {
        self.blobs.metrics.registry_reads.inc();
        let mut out = client::Request::get(ask.url.clone());
        for h in &ask.req.headers {
            if ["authorization", "range", "accept", "user-agent"]
                .iter()
                .any(|n| h.name_is(n))
            {
                out = out.header(h.name().to_owned(), h.value().to_vec());
            }
        }
        let resp = match self.http.send(out).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(url = ?ask.url, error = %e, "registry unreachable for a blob");
                return crate::errors::registry_unreachable(&e);
            }
        };
        if resp.status() == 200 || resp.status() == 206 {
            self.record_grant(ask, auth);
        }
        let cacheable = resp.status() == 200 && ask.req.header("range").is_none();
        let length = resp.content_length();
        if !cacheable {
            return crate::passthrough::relay(resp, false, &ask.url);
        }
        let mut headers = blob_response(200, &ask.digest);
        if let Some(ct) = resp.header("content-type") {
            headers = headers.header("content-type", ct.as_ref());
        }
        let writer = self.blobs.store.begin_stream(&ask.digest, length).ok();
        let (_, mut upstream) = resp.into_parts();
        let (mut sender, body) = Body::channel(length);
        let blobs = self.blobs.clone();
        monoio::spawn(async move {
            let mut writer = writer;
            loop {
                match upstream.chunk().await {
                    Ok(Some(chunk)) => {
                        blobs.metrics.bytes_from_registry.add(chunk.len() as u64);
                        blobs.metrics.bytes_to_clients.add(chunk.len() as u64);
                        if let Some(w) = writer.as_mut() {
                            if let Err(e) = w.write(&chunk) {
                                tracing::warn!(error = %e, "not caching this blob");
                                writer = None;
                            }
                        }
                        if sender.send(chunk).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "registry stream broke");
                        sender.abort();
                        return;
                    }
                }
            }
            if let Some(w) = writer {
                if let Err(e) = w.finish() {
                    tracing::warn!(error = %e, "fetched blob not cached");
                }
            }
        });
        headers.body(body)
    }
}

enum Access {
    Granted,
    Refused,
    Unknown(String),
}

struct OriginAnswer {
    length: u64,
    piece_length: u64,
    peer: SocketAddr,
}

enum OriginError {
    /// The origin answered and said no (401/403/404/422/502 from the
    /// registry): going direct gives the client the registry's answer.
    Refused(u16),
    /// This tracker is down; the next one may do.
    Unreachable(String),
}

/// What an origin is asked for, kept by a download so that another
/// tracker can take over if the owner dies. The client's Authorization is
/// held in memory for that only: never logged, never sent to a peer.
struct OriginBlob {
    upstream: String,
    repo: String,
    digest: Digest,
    authorization: Option<Vec<u8>>,
}

/// `POST /origin/v1/blobs` on `tracker`: the blob's geometry and the
/// origin's peer address.
async fn request_origin(
    http: &Client,
    tracker: &str,
    blob: &OriginBlob,
) -> Result<OriginAnswer, OriginError> {
    let url = Url::parse(&format!(
        "{tracker}/origin/v1/blobs?registry={}&repo={}&digest={}",
        blob.upstream, blob.repo, blob.digest
    ))
    .map_err(|e| OriginError::Unreachable(e.to_string()))?;
    let mut req = client::Request::new("POST", url);
    if let Some(a) = &blob.authorization {
        req = req.header("authorization", a.clone());
    }
    let resp = http
        .send(req)
        .await
        .map_err(|e| OriginError::Unreachable(e.to_string()))?;
    let status = resp.status();
    let body = resp
        .bytes(64 * 1024)
        .await
        .map_err(|e| OriginError::Unreachable(e.to_string()))?;
    if status != 200 {
        return if status >= 500 && status != 502 {
            Err(OriginError::Unreachable(format!("status {status}")))
        } else {
            Err(OriginError::Refused(status))
        };
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| OriginError::Unreachable(format!("bad origin answer: {e}")))?;
    let parsed = (|| {
        Some(OriginAnswer {
            length: v.get("length")?.as_u64()?,
            piece_length: v.get("piece_length")?.as_u64()?,
            peer: v.get("peer")?.as_str()?.parse().ok()?,
        })
    })();
    parsed.ok_or_else(|| OriginError::Unreachable("incomplete origin answer".into()))
}

fn blob_response(status: u16, digest: &Digest) -> Response {
    Response::new(status)
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", digest.as_str())
}

/// How to get the rest of a blob when the swarm stalls.
struct Fallback {
    http: Client,
    url: Url,
    authorization: Option<Vec<u8>>,
    blobs: Arc<Blobs>,
}

/// Sends verified stretches to the client as the swarm delivers them; a
/// stall hands the rest to the registry.
async fn pump(
    mut reader: bay_core::progress::BlobReader,
    mut sender: BodySender,
    fallback: Fallback,
    blobs: Arc<Blobs>,
    download: Arc<Download>,
) {
    // The client gets verified stretches straight from the download's
    // file by sendfile(2): no copy through the proxy.
    let file = match reader.file().try_clone() {
        Ok(f) => Rc::new(f),
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the download for streaming");
            sender.abort();
            return;
        }
    };
    loop {
        let (offset, len) = match next_verified(&mut reader, &download).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(why) => {
                tracing::warn!(why, "finishing from the registry");
                return finish_direct(fallback, reader.position(), reader.end(), sender).await;
            }
        };
        blobs.metrics.bytes_to_clients.add(len);
        if sender
            .send_file(FileBody::range(file.clone(), offset, len))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The next verified stretch for this reader; `Err` when the swarm
/// cannot deliver it: the download failed, nothing verified for
/// [`STALL`], or no origin is left to publish the missing hashes (checked
/// every [`ORPHAN_CHECK`], so readers do not wait out the whole stall).
async fn next_verified(
    reader: &mut bay_core::progress::BlobReader,
    download: &Download,
) -> Result<Option<(u64, u64)>, &'static str> {
    let started = Instant::now();
    loop {
        // `next_range` moves the reader only when it completes, so a
        // timed-out wait can be started again.
        match monoio::time::timeout(ORPHAN_CHECK, reader.next_range()).await {
            Ok(None) => return Ok(None),
            Ok(Some(Ok(r))) => return Ok(Some(r)),
            Ok(Some(Err(_))) => return Err("swarm download failed"),
            Err(_) if download.orphaned.load(Ordering::Acquire) => {
                return Err("no origin left for this blob")
            }
            Err(_) if started.elapsed() >= STALL => return Err("swarm stalled"),
            Err(_) => {}
        }
    }
}

async fn finish_direct(f: Fallback, from: u64, end: u64, mut sender: BodySender) {
    if from >= end {
        return;
    }
    let mut req =
        client::Request::get(f.url.clone()).header("range", format!("bytes={from}-{}", end - 1));
    if let Some(a) = &f.authorization {
        req = req.header("authorization", a.clone());
    }
    let mut resp = match f.http.send(req).await {
        Ok(r) if r.status() == 206 => r,
        Ok(r) => {
            tracing::warn!(status = r.status(), "registry refused the rest of the blob");
            sender.abort();
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "registry unreachable for the rest of the blob");
            sender.abort();
            return;
        }
    };
    f.blobs.metrics.registry_reads.inc();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                f.blobs.metrics.bytes_from_registry.add(chunk.len() as u64);
                f.blobs.metrics.bytes_to_clients.add(chunk.len() as u64);
                if sender.send(chunk).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(_) => {
                sender.abort();
                return;
            }
        }
    }
}

/// Long-polls the origin for piece hashes until it has published them all.
/// When the origin's tracker stops answering part-way, the next tracker in
/// rendezvous order is asked for the same blob (with the same client's
/// credentials) and the hashes are taken up from there: piece hashes
/// depend only on the blob, so every origin publishes the same ones. When
/// no tracker can take over, the download is dropped from the table so
/// that later requests start afresh instead of joining a stalled swarm.
async fn follow_hashes(
    http: Client,
    tracker: String,
    blob: OriginBlob,
    blobs: Arc<Blobs>,
    download: Arc<Download>,
) {
    let mut from = 0usize;
    let mut tracker = tracker;
    let mut tried = vec![tracker.clone()];
    loop {
        match hashes_from(&http, &tracker, &blob.digest, &download, &mut from).await {
            Ok(()) => return,
            Err(why) => {
                tracing::warn!(%tracker, digest = %blob.digest, why, "lost the origin's hashes");
            }
        }
        match take_over(&http, &blobs, &blob, &download, &mut tried).await {
            Some(next) => tracker = next,
            None => {
                download.orphaned.store(true, Ordering::Release);
                forget_download(&blobs, &blob.digest, &download);
                return;
            }
        }
    }
}

/// Reads hashes from `tracker` until all are known (`Ok`) or it fails.
async fn hashes_from(
    http: &Client,
    tracker: &str,
    digest: &Digest,
    download: &Download,
    from: &mut usize,
) -> Result<(), String> {
    loop {
        let url = Url::parse(&format!(
            "{tracker}/origin/v1/hashes?digest={digest}&from={from}"
        ))
        .map_err(|e| e.to_string())?;
        let resp = http
            .send(client::Request::get(url))
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let done = resp
            .header("x-bay-done")
            .is_some_and(|v| v.as_ref() == b"1");
        let body = resp.bytes(16 << 20).await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("status {status}"));
        }
        for chunk in body.chunks_exact(32) {
            let mut hash: Hash = [0; 32];
            hash.copy_from_slice(chunk);
            download.handle.set_piece_hash(*from as u32, hash);
            *from += 1;
        }
        if done {
            return Ok(());
        }
    }
}

/// Asks the trackers not tried yet, in rendezvous order, to become the
/// blob's origin; returns the one that did, with its seeder dialled.
async fn take_over(
    http: &Client,
    blobs: &Blobs,
    blob: &OriginBlob,
    download: &Download,
    tried: &mut Vec<String>,
) -> Option<String> {
    for next in blobs.trackers_for(&blob.digest) {
        if tried.contains(&next) {
            continue;
        }
        tried.push(next.clone());
        match request_origin(http, &next, blob).await {
            Ok(origin)
                if origin.length == download.length
                    && origin.piece_length == download.handle.progress().piece_len() =>
            {
                tracing::info!(tracker = %next, digest = %blob.digest, "another tracker took over the origin");
                blobs
                    .engine
                    .connect(download.handle.info_hash(), origin.peer);
                return Some(next);
            }
            Ok(origin) => {
                tracing::warn!(tracker = %next, length = origin.length, piece_length = origin.piece_length, "origin disagrees on the blob's geometry");
            }
            Err(OriginError::Refused(status)) => {
                tracing::warn!(tracker = %next, status, "tracker refused to take over the origin");
            }
            Err(OriginError::Unreachable(why)) => {
                tracing::warn!(tracker = %next, why, "tracker unreachable");
            }
        }
    }
    None
}

/// Removes `download` from the table unless it is complete or already
/// replaced.
fn forget_download(blobs: &Blobs, digest: &Digest, download: &Arc<Download>) {
    if download.handle.progress().is_complete() {
        return;
    }
    let mut downloads = blobs.downloads();
    if downloads
        .get(digest)
        .is_some_and(|d| Arc::ptr_eq(d, download))
    {
        downloads.remove(digest);
    }
}

/// Tells the tracker we are in the swarm, and dials the peers it names,
/// until the blob is complete and a while after (to seed).
async fn announce(http: Client, tracker: String, blobs: Arc<Blobs>, download: Arc<Download>) {
    let swarm = download.handle.info_hash();
    let mut id = [0u8; 20];
    id.copy_from_slice(&bay_core::engine::new_peer_id());
    let mut config = AnnounceConfig::new(InfoHash(swarm), PeerId(id), blobs.peer_addr.port());
    config.min_interval = Duration::from_secs(5);
    let control = AnnounceControl::new(Announcer::new(
        config,
        vec![vec![format!("{tracker}/announce")]],
        Instant::now(),
    ));
    control.set_progress(0, 0, download.length);
    let engine_blobs = blobs.clone();
    let progress = download.handle.progress().clone();
    let dial_progress = progress.clone();
    let task = monoio::spawn(run_http(
        http,
        control.clone(),
        Duration::from_secs(10),
        move |peers| {
            // Once the blob is whole, leechers dial us; we dial nobody.
            if dial_progress.is_complete() {
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
    }
    // The announcer keeps running to seed; its task is detached.
    drop(task);
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("length", &self.length)
            .finish()
    }
}
