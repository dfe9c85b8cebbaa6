//! `bay-proxy serve`: the HTTP workers, the peer engine and the store,
//! started with an injectable listener and shutdown so tests bind port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use bay_core::allow::Upstream;
use bay_httpd::{serve, Listen, ServerConfig, ServerHandle, Shutdown};

use crate::blob::{tracker_client, BlobWorker, Blobs};
use crate::config::ProxyConfig;
use crate::service::{Routing, Worker};

/// A running proxy.
#[derive(Debug)]
pub struct Running {
    server: Option<ServerHandle>,
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
        // Tasks left on the stopped workers may still hold the blobs;
        // the engine must not outlive the proxy for them.
        self.blobs.engine.close();
    }
}

/// Starts the proxy.
pub fn start(
    config: &ProxyConfig,
    listen: Option<std::net::TcpListener>,
    shutdown: Shutdown,
) -> Result<Running, String> {
    let fixed = config
        .upstream
        .as_deref()
        .map(|u| Upstream::parse(u).map_err(|e| format!("--upstream: {e}")))
        .transpose()?;
    let node = config.node().start()?;
    let peer_addr = node.peer_addr;
    let blobs = Arc::new(Blobs::new(
        node.store,
        node.engine,
        node.registries,
        config
            .tracker
            .iter()
            .map(|t| t.trim_end_matches('/').to_string())
            .collect(),
        peer_addr,
        config.insecure_registry.clone(),
    ));
    let routing = Arc::new(Routing {
        fixed,
        allow: node.allow,
    });
    let listen = match listen {
        Some(l) => Listen::Std(l),
        None => Listen::Addr(config.listen),
    };
    let tracker_tls = bay_httpd::client::tls::client_config(config.ca_file.as_deref())
        .map_err(|e| e.to_string())?;
    let for_workers = blobs.clone();
    let server = serve(
        listen,
        move || {
            let http = for_workers.registries.http_client();
            Worker {
                routing: routing.clone(),
                blobs: BlobWorker {
                    trackers: tracker_client(&for_workers.trackers, tracker_tls.clone()),
                    blobs: for_workers.clone(),
                    http: http.clone(),
                },
                http,
            }
        },
        ServerConfig {
            threads: config.threads,
            body_pace: config.body_pace().map_err(|e| e.to_string())?,
            ..ServerConfig::default()
        },
        shutdown.clone(),
    )
    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = server.local_addr();
    tracing::info!(%addr, %peer_addr, "proxy listening");
    Ok(Running {
        server: Some(server),
        shutdown,
        addr,
        blobs,
    })
}
