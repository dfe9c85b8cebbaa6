//! Blob reads: from the cache, from the swarm, or from the registry.
//!
//! 1. Cached: served by sendfile once the registry says this client may
//!    read the blob ([`access`]).
//! 2. Not cached: the tracker that owns the blob fetches it once from the
//!    registry and seeds it; this proxy joins the swarm, learns piece
//!    hashes as the origin publishes them, and streams verified bytes to
//!    the client as they arrive ([`download`], [`stream`]). Every proxy on
//!    the way keeps and seeds the blob.
//! 3. No tracker answers, the origin refuses, or the swarm stalls: the
//!    rest comes straight from the registry with the client's credentials
//!    ([`direct`]). A whole blob fetched that way is cached once its
//!    digest checks.
//!
//! 4. An image manifest passing through starts the origin and joins the
//!    swarm of each blob it names, ahead of the client ([`warm`]).
//!
//! Every answer names its source (`X-Bay-Source`: cache, swarm or
//! registry), and the access log counts the bytes from each ([`source`]).
//!
//! The decisions are two sans-IO machines, tested in a simulated setting
//! ([`sim`]): [`origin_plan`] (which tracker, whose hashes, take-over,
//! giving up) and [`read_plan`] (what to send, when to go to the
//! registry). The other modules only move bytes.
//!
//! Tables here are bounded (docs/architecture.md): grants expire after an
//! hour and are capped; a download leaves its table when it completes,
//! fails, is orphaned or outlives [`download::LIFETIME`], and at most
//! [`download::MAX_DOWNLOADS`] run at once; announce tasks end with their
//! download's seeding window.

pub mod access;
mod announce;
mod direct;
pub mod download;
mod follow;
mod origin_client;
pub mod origin_plan;
pub mod read_plan;
#[cfg(test)]
mod sim;
pub mod source;
mod stream;
pub mod trackers;
pub mod warm;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bay_core::allow::Upstream;
use bay_core::engine::Engine;
use bay_core::registry::{Auth, Registries, RegistryClient};
use bay_core::store::Store;
use bay_httpd::client::{Client, Url};
use bay_httpd::{AccessNote, FileBody, Request, Response};
use bay_wire::oci::{Digest, RepositoryName};

use crate::errors::oci_error;
use access::{Access, AccessAsk, Grants};
use download::{Downloads, Joined};
pub use source::{BlobMetrics, Source, SOURCE_HEADER};
pub use trackers::{rendezvous_order, Trackers};
pub use warm::{SeenManifest, Warming};

use crate::config::Prefetch;

/// What every worker shares.
#[derive(Debug)]
pub struct Blobs {
    pub store: Store,
    pub engine: Engine,
    pub registries: Registries,
    pub trackers: Trackers,
    /// The address peers reach this proxy's engine at.
    pub peer_addr: SocketAddr,
    pub metrics: BlobMetrics,
    pub grants: Grants,
    pub downloads: Downloads,
    /// What to do with the blobs of a manifest passing through.
    pub prefetch: Prefetch,
    pub warming: Warming,
}

impl Blobs {
    pub fn new(
        store: Store,
        engine: Engine,
        registries: Registries,
        trackers: Trackers,
        peer_addr: SocketAddr,
    ) -> Blobs {
        Blobs {
            store,
            engine,
            registries,
            trackers,
            peer_addr,
            metrics: BlobMetrics::default(),
            grants: Grants::default(),
            downloads: Downloads::default(),
            prefetch: Prefetch::Join,
            warming: Warming::default(),
        }
    }
}

/// One worker's view.
#[derive(Debug, Clone)]
pub struct BlobWorker {
    pub blobs: Arc<Blobs>,
    /// To registries (their TLS and plain-HTTP rules).
    pub http: Client,
    /// To trackers (plain HTTP allowed for those configured as http://).
    pub trackers: Client,
}

/// What a blob request is about.
#[derive(Debug)]
pub struct BlobAsk<'a> {
    pub req: &'a Request,
    pub upstream: &'a Upstream,
    pub repo: RepositoryName,
    pub digest: Digest,
    /// The blob's URL on the registry.
    pub url: Url,
    /// The request's access-log line.
    pub note: AccessNote,
}

impl BlobAsk<'_> {
    /// The client's Authorization, passed on to the registry and the
    /// origin only.
    fn authorization(&self) -> Option<&[u8]> {
        self.req.header("authorization")
    }
}

impl BlobWorker {
    fn registry(&self, upstream: &Upstream) -> Option<RegistryClient> {
        self.blobs
            .registries
            .client(upstream.as_str(), &self.http)
            .ok()
    }

    /// Asks the registry whether this client may read the blob.
    async fn access(&self, registry: &RegistryClient, ask: &BlobAsk<'_>, auth: &Auth) -> Access {
        let check = AccessAsk {
            registry_name: ask.upstream.as_str(),
            registry,
            repo: &ask.repo,
            digest: &ask.digest,
            url: &ask.url,
            auth,
        };
        access::check(&self.http, &self.blobs.grants, &check).await
    }

    /// GET of a blob.
    pub async fn get(&self, ask: BlobAsk<'_>) -> Response {
        let auth = Auth::from_header(ask.authorization());
        let Some(registry) = self.registry(ask.upstream) else {
            return oci_error(400, "NAME_INVALID", "bad upstream registry name");
        };
        if let Ok(Some(blob)) = self.blobs.store.get(&ask.digest) {
            return match self.access(&registry, &ask, &auth).await {
                Access::Granted => {
                    self.blobs.metrics.cache_hits.inc();
                    ask.note.set("source", Source::Cache.as_str());
                    self.blobs
                        .metrics
                        .delivered(Source::Cache, blob.len(), &ask.note);
                    match blob.file().try_clone() {
                        Ok(f) => blob_response(200, &ask.digest, Source::Cache)
                            .body(FileBody::range(Rc::new(f), 0, blob.len())),
                        Err(e) => oci_error(500, "UNKNOWN", &e.to_string()),
                    }
                }
                // The registry's own answer (401 with its challenge, 404)
                // is what the client should see.
                Access::Refused => self.direct(&ask).await,
                Access::Unknown(why) => {
                    tracing::warn!(digest = %ask.digest, why, "cannot confirm a client's access to a cached blob");
                    oci_error(
                        502,
                        "UNAVAILABLE",
                        "bay-proxy: cannot confirm access with the registry",
                    )
                }
            };
        }
        match self.join_or_start(&registry, &ask, &auth).await {
            Joined::Swarm(download) => {
                self.blobs.metrics.swarm_reads.inc();
                self.stream(&ask, &download)
            }
            Joined::Direct => self.direct(&ask).await,
        }
    }
}

fn blob_response(status: u16, digest: &Digest, source: Source) -> Response {
    Response::new(status)
        .header("content-type", "application/octet-stream")
        .header("docker-content-digest", digest.as_str())
        .header(SOURCE_HEADER, source.as_str())
}
