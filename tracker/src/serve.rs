//! `bay-tracker serve`: starts the HTTP workers and the housekeeping
//! thread, and stops them on a shutdown signal. Tests start it with a
//! listener bound to port 0 and their own [`Shutdown`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bay_httpd::{serve, Listen, ServerConfig, ServerHandle, Shutdown};

use bay_core::config::ConfigError;
use bay_core::node::NodeError;

use crate::config::TrackerConfig;
use crate::origin::{Origin, OriginWorker};
use crate::peers::{PeerStore, PeerStoreConfig};
use crate::service::{Shared, TrackerMetrics, Worker};

/// A running tracker.
#[derive(Debug)]
pub struct Running {
    server: Option<ServerHandle>,
    housekeeping: Option<JoinHandle<()>>,
    shutdown: Shutdown,
    shared: Arc<Shared>,
    addr: SocketAddr,
    origin: Option<Arc<Origin>>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the origin seeder takes peer connections, when it runs.
    pub fn origin_peer_addr(&self) -> Option<SocketAddr> {
        self.origin.as_ref().map(|o| o.peer_addr)
    }

    /// What the workers share (the peer store, metrics), for embedding.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting, finishes requests in flight, and waits.
    pub fn stop(mut self) {
        self.shutdown.trigger();
        self.join_all();
    }

    /// Waits until a shutdown (e.g. SIGTERM) has stopped everything.
    pub fn wait(mut self) {
        self.join_all();
    }

    fn join_all(&mut self) {
        if let Some(h) = self.housekeeping.take() {
            let _ = h.join();
        }
        if let Some(server) = self.server.take() {
            server.join();
        }
        // Tasks left on the stopped workers may still hold the origin;
        // its engine must not outlive the tracker for them.
        if let Some(o) = &self.origin {
            o.engine.close();
        }
    }
}

/// Why the tracker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("origin seeder: {0}")]
    Node(#[from] NodeError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("tls_cert / tls_key: {0}")]
    Tls(#[source] bay_httpd::client::tls::TlsSetupError),
    #[error("cannot start the expiry thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Starts the tracker on `listen` (pre-bound, or the configured address).
pub fn start(
    config: &TrackerConfig,
    listen: Option<std::net::TcpListener>,
    shutdown: Shutdown,
) -> Result<Running, StartError> {
    config.validate()?;
    let peers = PeerStore::new(PeerStoreConfig {
        interval: config.announce_interval,
        peer_ttl: Duration::from_secs(u64::from(config.announce_interval) * 5 / 2),
        open: config.open_tracker,
        max_per_address: config.max_peers_per_address,
        held_interval: config.held_interval,
        ..PeerStoreConfig::default()
    });
    let shared = Arc::new(Shared {
        peers,
        trusted_sources: config.trusted_sources.clone(),
        guard: config
            .node
            .fleet_keys()?
            .map(crate::guard::RequestGuard::new),
        catalog: crate::catalog::Catalog::default(),
        started: Instant::now(),
        metrics: TrackerMetrics::default(),
    });
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            Some(bay_httpd::server_tls::config(cert, key).map_err(StartError::Tls)?)
        }
        _ => None,
    };
    let server_config = ServerConfig {
        threads: config.threads,
        tls,
        access_log: config.access_log.is_on(),
        ..ServerConfig::default()
    };
    let listen = match listen {
        Some(l) => Listen::Std(l),
        None => Listen::Addr(config.listen),
    };
    let origin = start_origin(config)?.map(Arc::new);
    if let Some(o) = &origin {
        // Hosts hold blobs this origin served before a restart: track them
        // again, so their held announces count.
        for (digest, _) in o.store.complete_blobs() {
            shared
                .peers
                .allow(bay_wire::tracker::InfoHash(bay_wire::origin::swarm_id(
                    &digest,
                )));
        }
    }
    let for_workers = shared.clone();
    let kept_origin = origin.clone();
    let server = serve(
        listen,
        move || Worker {
            shared: for_workers.clone(),
            origin: origin.as_ref().map(|o| OriginWorker {
                origin: o.clone(),
                shared: for_workers.clone(),
                http: o.registries.http_client(),
            }),
        },
        server_config,
        shutdown.clone(),
    )
    .map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let housekeeping = {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name("bay-tracker-expiry".into())
            .spawn(move || expire_until(&shared, &shutdown))
            .map_err(StartError::Thread)?
    };
    let addr = server.local_addr();
    tracing::info!(%addr, "tracker listening");
    Ok(Running {
        addr,
        server: Some(server),
        housekeeping: Some(housekeeping),
        shutdown,
        shared,
        origin: kept_origin,
    })
}

/// The origin seeder: only when the operator allowed some registry.
fn start_origin(config: &TrackerConfig) -> Result<Option<Origin>, NodeError> {
    if config.node.allow_registry.is_empty() {
        tracing::warn!("no --allow-registry: running as a plain tracker, no origin seeder");
        return Ok(None);
    }
    let node = bay_core::node::start(&config.node, true)?;
    let peer_addr = node.peer_addr;
    tracing::info!(%peer_addr, "origin seeder ready");
    Ok(Some(Origin::new(
        node.registries,
        node.allow,
        node.engine,
        node.store,
        peer_addr,
    )))
}

fn expire_until(shared: &Shared, shutdown: &Shutdown) {
    let every = Duration::from_secs(5);
    while !shutdown.wait_blocking(every) {
        let removed = shared.peers.expire(Instant::now());
        if removed > 0 {
            tracing::debug!(removed, "expired silent peers");
        }
    }
}
