//! The tracker's HTTP endpoints: `/announce`, `/announce/held`,
//! `/scrape`, the origin API, `/metrics`, `/healthz`, `/readyz`; in keyed
//! mode every fleet endpoint first passes [`RequestGuard`]. Protocol work is in bay-wire and the peer store;
//! this module maps requests to them and answers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bay_core::metrics::{Counter, Exposition, CONTENT_TYPE};
use bay_httpd::{Method, Request, RequestBody, Response};
use bay_wire::tracker::held::{HeldAnnounce, HELD_PATH, MAX_HELD};
use bay_wire::tracker::response::encode_failure;
use bay_wire::tracker::{AnnounceRequest, ScrapeRequest};

use crate::catalog::Catalog;
use crate::guard::RequestGuard;
use crate::origin::OriginWorker;
use crate::peers::{PeerStore, Source};

/// What every worker shares.
#[derive(Debug)]
pub struct Shared {
    pub peers: PeerStore,
    /// Sources whose announces may name another address with `ip=`.
    pub trusted_sources: Vec<IpAddr>,
    pub metrics: TrackerMetrics,
    /// In keyed mode: the check every fleet request passes.
    pub guard: Option<RequestGuard>,
    /// The blobs behind the swarms, as the origin served them.
    pub catalog: Catalog,
    /// When the tracker started.
    pub started: Instant,
}

/// One worker's request handler.
#[derive(Debug)]
pub struct Worker {
    pub shared: Arc<Shared>,
    pub origin: Option<OriginWorker>,
}

/// Paths that serve the fleet only, in keyed mode. Health and metrics
/// stay open to the operator's probes and scrapers.
fn fleet_only(path: &str) -> bool {
    matches!(path, "/announce" | "/scrape" | HELD_PATH) || path.starts_with("/origin/")
}

impl Worker {
    /// `GET /` (HTML) and `GET /status` (JSON); in keyed mode only to
    /// loopback clients and fleet-signed requests.
    fn status(&self, req: &Request) -> Response {
        let local = req.peer.is_some_and(|p| p.ip().is_loopback());
        if !local {
            if let Some(r) = self.refused(req, b"") {
                return r;
            }
        }
        let query = req.target.split_once('?').map_or("", |(_, q)| q);
        let origin = self.origin.as_ref().map(|o| &*o.origin);
        if req.path() == "/" {
            let status =
                crate::status::collect(&self.shared, origin, 0, crate::status::PAGE_SWARMS);
            return Response::new(200)
                .header("content-type", "text/html; charset=utf-8")
                .body(crate::status::html(&status).into_bytes());
        }
        let (offset, limit) = crate::status::paging(query);
        let status = crate::status::collect(&self.shared, origin, offset, limit);
        Response::new(200)
            .header("content-type", "application/json")
            .body(crate::status::json(&status))
    }

    /// Refuses `req` unless it is signed by a fleet key (keyed mode).
    fn refused(&self, req: &Request, body: &[u8]) -> Option<Response> {
        let guard = self.shared.guard.as_ref()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let refusal = guard.check(req, body, now).err()?;
        self.shared.metrics.refused.inc();
        let source = req.peer.map(|p| p.ip().to_string()).unwrap_or_default();
        tracing::warn!(source, path = req.path(), why = %refusal, "refused a request without a fleet signature");
        Some(Response::text(refusal.status(), format!("{refusal}\n")))
    }
}

impl bay_httpd::Handler for Worker {
    async fn handle(&self, req: Request, body: RequestBody) -> Response {
        if fleet_only(req.path()) && req.path() != HELD_PATH {
            if let Some(r) = self.refused(&req, b"") {
                return r;
            }
        }
        match (req.path(), &self.origin) {
            ("/" | "/status", _) if req.method == Method::Get => self.status(&req),
            ("/origin/v1/blobs", Some(o)) if req.method == Method::Post => o.blob(&req).await,
            ("/origin/v1/hashes", Some(o)) => o.hashes(&req).await,
            ("/origin/v1/preheat", Some(o)) if req.method == Method::Post => o.preheat(&req).await,
            ("/metrics", Some(o)) => metrics(&self.shared, Some(&o.origin.engine)),
            (HELD_PATH, _) if req.method == Method::Post => self.held(&req, body).await,
            _ => handle(self.shared.clone(), req, body).await,
        }
    }
}

#[derive(Debug, Default)]
pub struct TrackerMetrics {
    pub announces: Counter,
    pub announce_failures: Counter,
    pub scrapes: Counter,
    pub held_announces: Counter,
    /// Requests refused for want of a fleet signature.
    pub refused: Counter,
    /// Blob bytes hosts finished downloading through the swarms (each
    /// completed announce counts its blob's size).
    pub fleet_delivered_bytes: Counter,
    /// Blob bytes the origin fetched from registries.
    pub origin_fetched_bytes: Counter,
}

/// Answers one request.
pub async fn handle(shared: Arc<Shared>, req: Request, _body: RequestBody) -> Response {
    if req.method != Method::Get && req.method != Method::Head {
        return Response::text(405, "only GET\n").header("allow", "GET, HEAD");
    }
    match req.path() {
        "/announce" => announce(&shared, &req),
        "/scrape" => scrape(&shared, &req),
        "/healthz" | "/readyz" => Response::text(200, "ok\n"),
        "/metrics" => metrics(&shared, None),
        _ => Response::text(404, "not found\n"),
    }
}

fn query(req: &Request) -> &[u8] {
    req.target
        .split_once('?')
        .map_or(&b""[..], |(_, q)| q.as_bytes())
}

/// A tracker answers errors in a bencoded body with status 200, which is
/// what BitTorrent clients read.
fn failure(reason: &str) -> Response {
    let mut body = Vec::new();
    encode_failure(reason, &mut body);
    Response::new(200)
        .header("content-type", "text/plain")
        .body(body)
}

fn announce(shared: &Shared, req: &Request) -> Response {
    shared.metrics.announces.inc();
    let parsed = match AnnounceRequest::parse_query(query(req)) {
        Ok(a) => a,
        Err(e) => {
            shared.metrics.announce_failures.inc();
            return failure(&e.to_string());
        }
    };
    let Some(remote) = req.peer.map(|p| p.ip()) else {
        return failure("no peer address");
    };
    let source = Source {
        ip: remote,
        trusted: shared.trusted_sources.contains(&remote),
    };
    if parsed.event == bay_wire::tracker::Event::Completed {
        if let Some(info) = shared.catalog.get(&parsed.info_hash) {
            shared.metrics.fleet_delivered_bytes.add(info.length);
        }
    }
    match shared.peers.announce(&parsed, source, Instant::now()) {
        Ok(answer) => Response::new(200)
            .header("content-type", "text/plain")
            .body(answer.to_bytes()),
        Err(e) => {
            shared.metrics.announce_failures.inc();
            failure(&e.to_string())
        }
    }
}

/// Largest held-announce body read.
const MAX_HELD_BODY: usize = MAX_HELD * 20;

impl Worker {
    /// `POST /announce/held`: read the body, check the signature over it,
    /// record the host in every swarm it holds.
    async fn held(&self, req: &Request, body: RequestBody) -> Response {
        let body = match body.to_bytes(MAX_HELD_BODY).await {
            Ok(b) => b,
            Err(e) => return failure(&e.to_string()),
        };
        if let Some(r) = self.refused(req, &body) {
            return r;
        }
        held(&self.shared, req, &body)
    }
}

fn held(shared: &Shared, req: &Request, body: &[u8]) -> Response {
    shared.metrics.held_announces.inc();
    let Some(remote) = req.peer.map(|p| p.ip()) else {
        return failure("no peer address");
    };
    let parsed = match HeldAnnounce::parse(query(req), body) {
        Ok(h) => h,
        Err(e) => return failure(&e.to_string()),
    };
    let source = Source {
        ip: remote,
        trusted: false,
    };
    match shared.peers.hold(&parsed, source, Instant::now()) {
        Ok(answer) => Response::new(200)
            .header("content-type", "text/plain")
            .body(answer.to_bytes()),
        Err(e) => failure(&e.to_string()),
    }
}

fn scrape(shared: &Shared, req: &Request) -> Response {
    shared.metrics.scrapes.inc();
    match ScrapeRequest::parse_query(query(req)) {
        Ok(s) => Response::new(200)
            .header("content-type", "text/plain")
            .body(shared.peers.scrape(&s.info_hashes).to_bytes()),
        Err(e) => failure(&e.to_string()),
    }
}

/// The tracker's counters, and its origin seeder's peer traffic if it
/// runs one.
fn metrics(shared: &Shared, engine: Option<&bay_core::engine::Engine>) -> Response {
    let (swarms, peers) = shared.peers.sizes();
    let m = &shared.metrics;
    let mut e = Exposition::default();
    e.counter(
        "bay_tracker_announces_total",
        "Announce requests received.",
        m.announces.get(),
    )
    .counter(
        "bay_tracker_announce_failures_total",
        "Announces answered with a failure reason.",
        m.announce_failures.get(),
    )
    .counter(
        "bay_tracker_scrapes_total",
        "Scrape requests received.",
        m.scrapes.get(),
    )
    .counter(
        "bay_tracker_fleet_delivered_bytes_total",
        "Blob bytes hosts finished downloading through the swarms.",
        m.fleet_delivered_bytes.get(),
    )
    .counter(
        "bay_tracker_origin_fetched_bytes_total",
        "Blob bytes the origin fetched from registries.",
        m.origin_fetched_bytes.get(),
    )
    .counter(
        "bay_tracker_refused_total",
        "Requests refused for want of a valid fleet signature (keyed mode).",
        m.refused.get(),
    )
    .counter(
        "bay_tracker_held_announces_total",
        "Held announces received (every blob a host holds, in one request).",
        m.held_announces.get(),
    )
    .gauge(
        "bay_tracker_swarms",
        "Swarms with at least one peer.",
        swarms as u64,
    )
    .gauge(
        "bay_tracker_peers",
        "Peers across all swarms.",
        peers as u64,
    );
    if let Some(engine) = engine {
        engine.counters().expose(&mut e);
    }
    Response::new(200)
        .header("content-type", CONTENT_TYPE)
        .body(e.finish().into_bytes())
}
