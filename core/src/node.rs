//! What every bay program runs on its host besides HTTP: the blob store,
//! the peer engine, access to registries, and the allow list, started
//! from a [`NodeConfig`]. Errors name the setting at fault.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::allow::{AllowList, AllowPattern, RouteError};
use crate::config::NodeConfig;
use crate::engine::{new_peer_id, Engine, EngineConfig, EngineError};
use crate::registry::{Registries, RegistryConfig, RegistryError};
use crate::store::{Store, StoreError};

/// A started node.
#[derive(Debug)]
pub struct Node {
    pub registries: Registries,
    pub store: Store,
    pub engine: Engine,
    pub allow: AllowList,
    /// Where other hosts reach this node's peer engine.
    pub peer_addr: SocketAddr,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("allow_registry {pattern:?}: {source}")]
    AllowPattern { pattern: String, source: RouteError },
    #[error("registry access (ca_file, insecure_registry): {0}")]
    Registries(#[source] RegistryError),
    #[error("root {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("peer_listen: {0}")]
    Engine(#[source] EngineError),
    #[error("peer_listen is not set")]
    NoPeerListen,
    #[error(transparent)]
    FleetKey(#[from] crate::config::ConfigError),
    #[error("encrypt_peer_links needs fleet_key_file: peer links are keyed by the fleet key (bay-tracker keygen writes one)")]
    EncryptionWithoutKey,
    #[error(transparent)]
    PeerTls(#[from] crate::peer_tls::PeerTlsError),
}

/// Open mode on an address other hosts can reach lets anyone who learns a
/// blob's digest fetch it from this host: say so at start.
fn warn_if_open(keyed: bool, listen: SocketAddr, public: Option<SocketAddr>) {
    let exposed = !listen.ip().is_loopback() || public.is_some_and(|p| !p.ip().is_loopback());
    if !keyed && exposed {
        tracing::warn!(
            %listen,
            "open mode on a reachable peer address: anyone who knows a blob's digest can fetch it from here; set fleet_key_file (docs/security.md)"
        );
    }
}

/// Starts a node. `super_seed` makes the engine seed each piece to one
/// peer first (the origin: see [`crate::swarm::SwarmConfig::super_seed`]).
pub fn start(config: &NodeConfig, super_seed: bool) -> Result<Node, NodeError> {
    let patterns = config
        .allow_registry
        .iter()
        .map(|p| {
            AllowPattern::parse(p).map_err(|source| NodeError::AllowPattern {
                pattern: p.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let registries = Registries::new(RegistryConfig {
        insecure: config.insecure_registry.clone(),
        extra_ca_file: config.ca_file.clone(),
        ..RegistryConfig::default()
    })
    .map_err(NodeError::Registries)?;
    let root = config.root().to_path_buf();
    let store = Store::open(&root, config.cache_size.bytes())
        .map_err(|source| NodeError::Store { path: root, source })?;
    let listen = config.peer_listen.ok_or(NodeError::NoPeerListen)?;
    let fleet = config.fleet_keys()?;
    warn_if_open(fleet.is_some(), listen, config.public_addr);
    let mut engine_config = EngineConfig::new(listen, new_peer_id());
    engine_config.peer_tls = match (&fleet, config.encrypt_peer_links) {
        (_, false) => None,
        (None, true) => return Err(NodeError::EncryptionWithoutKey),
        (Some(keys), true) => Some(crate::peer_tls::PeerTls::from_keys(keys)?),
    };
    engine_config.fleet = fleet;
    engine_config.upload_limit = config.upload_limit.map(|s| s.bytes());
    engine_config.download_limit = config.download_limit.map(|s| s.bytes());
    engine_config.max_peers_per_address = config.peer_connections_per_address.max(1);
    engine_config.swarm.super_seed = super_seed;
    let engine = Engine::start(engine_config, store.clone()).map_err(NodeError::Engine)?;
    let peer_addr = config.public_addr.unwrap_or_else(|| engine.local_addr());
    Ok(Node {
        registries,
        store,
        engine,
        allow: AllowList::new(patterns),
        peer_addr,
    })
}
