//! `bay-proxy serve`: the HTTP workers, the peer engine and the store,
//! started with an injectable listener and shutdown so tests bind port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use bay_core::allow::Upstream;
use bay_core::config::ConfigError;
use bay_core::node::NodeError;
use bay_httpd::{serve, Listen, ServerConfig, ServerHandle, Shutdown};

use crate::blob::{BlobWorker, Blobs, Trackers};
use crate::config::ProxyConfig;
use crate::service::{Routing, Worker};

/// A running proxy.
#[derive(Debug)]
pub struct Running {
    server: Option<ServerHandle>,
    held: Option<std::thread::JoinHandle<()>>,
    shutdown: Shutdown,
    addr: SocketAddr,
    blobs: Arc<Blobs>,
}

impl Running {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where peers reach this proxy's engine.
    pub fn peer_addr(&self) -> SocketAddr {
        self.blobs.peer_addr
    }

    pub fn stop(mut self) {
        self.shutdown.trigger();
        self.join();
    }

    pub fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(s) = self.server.take() {
            s.join();
        }
        if let Some(h) = self.held.take() {
            let _ = h.join();
        }
        // Tasks left on the stopped workers may still hold the blobs;
        // the engine must not outlive the proxy for them.
        self.blobs.engine.close();
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("ca_file: {0}")]
    TrackerTls(#[source] bay_httpd::client::tls::TlsSetupError),
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Starts the proxy.
pub fn start(
    config: &ProxyConfig,
    listen: Option<std::net::TcpListener>,
    shutdown: Shutdown,
) -> Result<Running, StartError> {
    config.validate()?;
    let fixed = config
        .upstream
        .as_deref()
        .map(|u| Upstream::parse(u).map_err(|e| ConfigError::invalid("upstream", e)))
        .transpose()?;
    let trackers =
        Trackers::parse(&config.tracker).map_err(|e| ConfigError::invalid("tracker", e))?;
    let node = bay_core::node::start(&config.node, false)?;
    let signer = node
        .engine
        .naming()
        .keys()
        .cloned()
        .map(bay_core::fleet::Signer::new);
    let trackers = trackers
        .signed_by(signer)
        .credentials_over_plain_http(config.allow_plain_tracker_credentials);
    let peer_addr = node.peer_addr;
    let mut blobs = Blobs::new(
        node.store,
        node.engine,
        node.registries,
        trackers,
        peer_addr,
    );
    blobs.prefetch = config.prefetch;
    let blobs = Arc::new(blobs);
    let server_config = ServerConfig {
        threads: config.threads,
        body_pace: config.body_pace()?,
        access_log: config.access_log.is_on(),
        ..ServerConfig::default()
    };
    let driver =
        bay_httpd::resolve_driver(server_config.driver).map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let facts = crate::status::Facts {
        driver: driver.to_string(),
        upstream: fixed.as_ref().map(|u| u.as_str().to_owned()),
        root: config.node.root().display().to_string(),
        peer_addr: peer_addr.to_string(),
    };
    let routing = Arc::new(Routing {
        fixed,
        allow: node.allow,
        started: std::time::Instant::now(),
        facts,
    });
    let listen = match listen {
        Some(l) => Listen::Std(l),
        None => Listen::Addr(config.listen),
    };
    let tracker_tls = bay_httpd::client::tls::client_config(config.node.ca_file.as_deref())
        .map_err(StartError::TrackerTls)?;
    let tracker_tls_held = tracker_tls.clone();
    let for_workers = blobs.clone();
    let server = serve(
        listen,
        move || {
            let http = for_workers.registries.http_client();
            Worker {
                routing: routing.clone(),
                blobs: BlobWorker {
                    trackers: for_workers.trackers.client(tracker_tls.clone()),
                    blobs: for_workers.clone(),
                    http: http.clone(),
                },
                http,
            }
        },
        server_config,
        shutdown.clone(),
    )
    .map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let held = crate::held::start(blobs.clone(), tracker_tls_held, shutdown.clone())
        .map_err(StartError::Thread)?;
    let addr = server.local_addr();
    tracing::info!(%addr, %peer_addr, "proxy listening");
    Ok(Running {
        server: Some(server),
        held: Some(held),
        shutdown,
        addr,
        blobs,
    })
}
