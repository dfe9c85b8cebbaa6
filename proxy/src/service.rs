//! Routes each request: bay's own endpoints, blob GETs to [`crate::blob`],
//! everything else through [`crate::passthrough`] to the upstream.

use std::sync::Arc;

use bay_core::allow::{AllowList, Upstream};
use bay_core::metrics::{Exposition, CONTENT_TYPE};
use bay_httpd::client::Client;
use bay_httpd::{AccessNote, Handler, Method, Request, RequestBody, Response};
use bay_wire::oci::ApiPath;

use crate::blob::{BlobAsk, BlobWorker, Blobs, SeenManifest, Source};
use crate::errors::{bad_target, refused};
use crate::passthrough::{forward, forward_manifest, upstream_url};
use crate::route::{query_param, upstream_for};

/// What every worker shares besides the blobs.
#[derive(Debug)]
pub struct Routing {
    pub fixed: Option<Upstream>,
    pub allow: AllowList,
    /// When the proxy started (for the status page).
    pub started: std::time::Instant,
    /// How it was started (for the status page).
    pub facts: crate::status::Facts,
}

/// One worker's handler.
#[derive(Debug)]
pub struct Worker {
    pub routing: Arc<Routing>,
    pub blobs: BlobWorker,
    pub http: Client,
}

impl Handler for Worker {
    async fn handle(&self, req: Request, body: RequestBody) -> Response {
        match req.path() {
            "/healthz" | "/readyz" => return Response::text(200, "ok\n"),
            "/metrics" => return metrics(&self.blobs.blobs),
            "/" if req.method == Method::Get => {
                let status = crate::status::collect(
                    &self.blobs.blobs,
                    self.routing.started,
                    &self.routing.facts,
                );
                return Response::new(200)
                    .header("content-type", "text/html; charset=utf-8")
                    .body(crate::status::html(&status).into_bytes());
            }
            "/status" if req.method == Method::Get => {
                let status = crate::status::collect(
                    &self.blobs.blobs,
                    self.routing.started,
                    &self.routing.facts,
                );
                return Response::new(200)
                    .header("content-type", "application/json")
                    .body(crate::status::json(&status));
            }
            _ => {}
        }
        if !req.target.starts_with('/') {
            return bad_target();
        }
        let note = AccessNote::default();
        self.route(req, body, &note).await.note(note)
    }
}

impl Worker {
    /// A registry request: which upstream, then a blob read or a pass
    /// through.
    async fn route(&self, req: Request, body: RequestBody, note: &AccessNote) -> Response {
        let host = req.header("host").and_then(|h| std::str::from_utf8(h).ok());
        let ns = query_param(&req.target, "ns");
        let upstream = match upstream_for(
            self.routing.fixed.as_ref(),
            ns.as_deref(),
            host,
            &self.routing.allow,
        ) {
            Ok(u) => u,
            Err(e) => {
                tracing::info!(error = %e, "request refused");
                note.set("refused", "upstream");
                return refused(&e.to_string());
            }
        };
        note.set("upstream", &upstream);
        let Some(url) = upstream_url(&self.blobs.blobs.registries, &upstream, &req.target) else {
            return refused("request target is not a valid URL path");
        };
        if req.method == Method::Get {
            if let Ok(ApiPath::Manifest { name, .. }) = ApiPath::parse(req.path()) {
                return forward_manifest(&self.http, url, &req, body, |body, content_type| {
                    self.blobs.warm(SeenManifest {
                        upstream: &upstream,
                        repo: &name,
                        authorization: req.header("authorization"),
                        content_type,
                        body,
                    })
                })
                .await;
            }
            if let Ok(ApiPath::Blob { name, digest }) = ApiPath::parse(req.path()) {
                return self
                    .blobs
                    .get(BlobAsk {
                        req: &req,
                        upstream: &upstream,
                        repo: name,
                        digest,
                        url,
                        note: note.clone(),
                    })
                    .await;
            }
        }
        forward(&self.http, url, &req, body).await
    }
}

fn metrics(blobs: &Blobs) -> Response {
    let m = &blobs.metrics;
    let stats = blobs.store.stats();
    let mut e = Exposition::default();
    e.counter(
        "bay_proxy_cache_hits_total",
        "Blob reads answered from the cache.",
        m.cache_hits.get(),
    )
    .counter(
        "bay_proxy_swarm_reads_total",
        "Blob reads answered from the swarm.",
        m.swarm_reads.get(),
    )
    .counter(
        "bay_proxy_registry_reads_total",
        "Blob reads that went to the registry.",
        m.registry_reads.get(),
    )
    .counter(
        "bay_proxy_bytes_to_clients_total",
        "Blob bytes sent to image clients.",
        m.bytes_to_clients.get(),
    )
    .counter(
        "bay_proxy_bytes_from_registry_total",
        "Blob bytes read from the registry.",
        m.bytes_from_registry.get(),
    )
    .counter(
        "bay_proxy_warmed_total",
        "Blobs whose origin and swarm were set up on seeing their manifest.",
        m.warmed.get(),
    )
    .counters(
        "bay_proxy_blob_bytes_total",
        "Blob bytes sent to image clients, by where they came from.",
        "source",
        &Source::ALL.map(|src| (src.as_str(), m.bytes_by_source[src as usize].get())),
    )
    .gauge(
        "bay_proxy_cache_bytes",
        "Bytes held in the cache.",
        stats.used_bytes,
    )
    .gauge(
        "bay_proxy_cache_blobs",
        "Complete blobs in the cache.",
        stats.complete as u64,
    );
    blobs.engine.counters().expose(&mut e);
    Response::new(200)
        .header("content-type", CONTENT_TYPE)
        .body(e.finish().into_bytes())
}
