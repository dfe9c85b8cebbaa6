//! What every bay program runs on its host besides HTTP: the blob store,
//! the peer engine, access to registries, and the allow list. Both
//! programs start them from the same settings, here.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::allow::{AllowList, AllowPattern};
use crate::engine::{new_peer_id, Engine, EngineConfig};
use crate::registry::{Registries, RegistryConfig};
use crate::store::Store;

/// The settings a node starts from, as the operator wrote them.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub root: PathBuf,
    pub cache_size: String,
    pub peer_listen: SocketAddr,
    pub public_addr: Option<SocketAddr>,
    pub upload_limit: Option<String>,
    pub download_limit: Option<String>,
    /// Seed each piece to one peer first (the origin): see
    /// [`crate::swarm::SwarmConfig::super_seed`].
    pub super_seed: bool,
    pub allow_registry: Vec<String>,
    pub insecure_registry: Vec<String>,
    pub ca_file: Option<PathBuf>,
}

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

impl NodeSettings {
    /// Opens the store and starts the peer engine; errors name the setting
    /// at fault.
    pub fn start(&self) -> Result<Node, String> {
        let patterns = self
            .allow_registry
            .iter()
            .map(|p| AllowPattern::parse(p).map_err(|e| format!("--allow-registry {p}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let registries = Registries::new(RegistryConfig {
            insecure: self.insecure_registry.clone(),
            extra_ca_file: self.ca_file.clone(),
            ..RegistryConfig::default()
        })
        .map_err(|e| e.to_string())?;
        let budget =
            crate::size::parse_size(&self.cache_size).map_err(|e| format!("--cache-size: {e}"))?;
        let store = Store::open(&self.root, budget).map_err(|e| e.to_string())?;
        let mut engine_config = EngineConfig::new(self.peer_listen, new_peer_id());
        engine_config.upload_limit = crate::settings::rate_limit(self.upload_limit.as_deref())?;
        engine_config.download_limit = crate::settings::rate_limit(self.download_limit.as_deref())?;
        engine_config.swarm.super_seed = self.super_seed;
        let engine = Engine::start(engine_config, store.clone()).map_err(|e| e.to_string())?;
        let peer_addr = self.public_addr.unwrap_or_else(|| engine.local_addr());
        Ok(Node {
            registries,
            store,
            engine,
            allow: AllowList::new(patterns),
            peer_addr,
        })
    }
}
