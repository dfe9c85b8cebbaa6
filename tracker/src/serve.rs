//! `bay-tracker serve`: starts the HTTP workers and the housekeeping
//! thread, and stops them on a shutdown signal. Tests start it with a
//! listener bound to port 0 and their own [`Shutdown`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bay_httpd::{serve, Listen, ServerConfig, ServerHandle, Shutdown};

use crate::config::TrackerConfig;
use crate::peers::{PeerStore, PeerStoreConfig};
use crate::service::{handle, Shared, TrackerMetrics};

/// A running tracker.
#[derive(Debug)]
pub struct Running {
    server: Option<ServerHandle>,
    housekeeping: Option<JoinHandle<()>>,
    shutdown: Shutdown,
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
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
    }
}

/// Starts the tracker on `listen` (pre-bound, or the configured address).
pub fn start(
    config: &TrackerConfig,
    listen: Option<std::net::TcpListener>,
    shutdown: Shutdown,
) -> std::io::Result<Running> {
    let peers = PeerStore::new(PeerStoreConfig {
        interval: config.announce_interval,
        peer_ttl: Duration::from_secs(u64::from(config.announce_interval) * 5 / 2),
        open: config.open_tracker,
        ..PeerStoreConfig::default()
    });
    let shared = Arc::new(Shared {
        peers,
        metrics: TrackerMetrics::default(),
    });
    let server_config = ServerConfig {
        threads: config.threads,
        ..ServerConfig::default()
    };
    let listen = match listen {
        Some(l) => Listen::Std(l),
        None => Listen::Addr(config.listen),
    };
    let for_workers = shared.clone();
    let server = serve(
        listen,
        move || {
            let shared = for_workers.clone();
            move |req, body| handle(shared.clone(), req, body)
        },
        server_config,
        shutdown.clone(),
    )?;
    let housekeeping = {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        std::thread::Builder::new()
            .name("bay-tracker-expiry".into())
            .spawn(move || expire_until(&shared, &shutdown))?
    };
    let addr = server.local_addr();
    tracing::info!(%addr, "tracker listening");
    Ok(Running {
        addr,
        server: Some(server),
        housekeeping: Some(housekeeping),
        shutdown,
        shared,
    })
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
