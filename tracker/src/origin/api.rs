//! The origin API's handlers: `POST /origin/v1/blobs` and the hash long
//! poll, reading and writing the types of [`bay_wire::origin`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bay_core::allow::Upstream;
use bay_core::engine::ProgressiveSpec;
use bay_core::registry::{Auth, RegistryClient, RegistryError};
use bay_httpd::{Request, Response};
use bay_wire::metainfo::choose_piece_length;
use bay_wire::oci::{Digest, RepositoryName};
use bay_wire::origin::{
    BlobAsk, BlobGrant, ErrorBody, HashBatch, HashesAsk, OriginApiError, DONE_HEADER, PIECES_HEADER,
};

use super::fetch::{publish_from_store, run_fetch};
use super::{Fetch, FetchState, OriginWorker, LONG_POLL};

/// An error answer: `{"error": message}` with `status`.
pub(crate) fn json_error(status: u16, message: &str) -> Response {
    let body = ErrorBody {
        error: message.to_owned(),
    };
    Response::new(status)
        .header("content-type", "application/json")
        .body(body.to_json())
}

/// A registry's refusal passed on (401, 403, 404), anything else as 502.
pub(crate) fn registry_error(e: &RegistryError) -> Response {
    let status = e
        .status()
        .filter(|s| matches!(s, 401 | 403 | 404))
        .unwrap_or(502);
    json_error(status, &e.to_string())
}

fn bad_request(e: &OriginApiError) -> Response {
    json_error(400, &e.to_string())
}

/// The raw query string of a request (after `?`).
pub(crate) fn query(req: &Request) -> &[u8] {
    req.target
        .split_once('?')
        .map_or(&b""[..], |(_, q)| q.as_bytes())
}

/// A blob a client asked for, with the registry and credentials to fetch
/// it with.
pub(crate) struct Asked {
    pub(crate) registry: RegistryClient,
    pub(crate) repo: RepositoryName,
    pub(crate) digest: Digest,
    pub(crate) auth: Auth,
}

impl OriginWorker {
    fn asked(&self, req: &Request) -> Result<Asked, Response> {
        let ask = BlobAsk::parse_query(query(req)).map_err(|e| bad_request(&e))?;
        let upstream = Upstream::parse(&ask.registry)
            .map_err(|_| bad_request(&OriginApiError::Invalid("registry")))?;
        if !self.origin.allow.allows(&upstream) {
            return Err(json_error(
                403,
                &format!("registry {upstream} is not allowed (--allow-registry)"),
            ));
        }
        let registry = self
            .origin
            .registries
            .client(upstream.as_str(), &self.http)
            .map_err(|e| json_error(400, &e.to_string()))?;
        Ok(Asked {
            registry,
            repo: ask.repo,
            digest: ask.digest,
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
        let grant = BlobGrant::new(
            asked.digest.clone(),
            fetch.length,
            fetch.piece_len,
            self.origin.peer_addr,
            fetch.handle.info_hash(),
        );
        Response::new(200)
            .header("content-type", "application/json")
            .body(grant.to_json())
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
        self.shared.catalog.record(
            swarm,
            crate::catalog::BlobInfo {
                digest: asked.digest.clone(),
                repo: Some(asked.repo.to_string()),
                length,
            },
        );
        let fetch = Arc::new(Fetch {
            length,
            piece_len,
            state: Mutex::new(FetchState::default()),
            handle,
        });
        // Two requests may have raced past the first look: the first to
        // be remembered wins and only it fetches.
        let kept = self
            .origin
            .remember(&asked.digest, fetch.clone(), Instant::now());
        if !Arc::ptr_eq(&kept, &fetch) {
            return Ok(kept);
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
                self.shared.clone(),
            ));
        }
        Ok(fetch)
    }

    /// `GET /origin/v1/hashes?digest=D&from=N`.
    pub async fn hashes(&self, req: &Request) -> Response {
        let ask = match HashesAsk::parse_query(query(req)) {
            Ok(a) => a,
            Err(e) => return bad_request(&e),
        };
        let Some(fetch) = self.origin.fetches().get(&ask.digest).cloned() else {
            return json_error(404, "no fetch of this blob: POST /origin/v1/blobs first");
        };
        let from = ask.from as usize;
        let _ = monoio::time::timeout(LONG_POLL, fetch.wait_past(from)).await;
        let s = fetch.lock();
        if let Some(Err(why)) = &s.outcome {
            return json_error(502, why);
        }
        let pieces = fetch.pieces();
        let hashes: Vec<_> = s.hashes.iter().skip(from).copied().collect();
        let batch = HashBatch {
            from: ask.from,
            pieces,
            done: s.outcome.is_some() && s.hashes.len() as u64 == u64::from(pieces),
            hashes,
        };
        Response::new(200)
            .header("content-type", "application/octet-stream")
            .header(PIECES_HEADER, batch.pieces_header())
            .header(DONE_HEADER, batch.done_header())
            .body(batch.body())
    }
}
