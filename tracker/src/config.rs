//! bay-tracker's configuration: one struct, filled from defaults, then a
//! TOML file (`--config`), then environment variables and flags.
//!
//! Unknown keys in the file are errors, so a typo cannot silently leave a
//! default in force. `bay-tracker serve --print-config` prints the
//! effective configuration as TOML, which loads back unchanged.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything `bay-tracker serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// HTTP: announce, scrape, origin API, metrics.
    pub listen: SocketAddr,
    /// BitTorrent peer connections of the origin seeder.
    pub peer_listen: SocketAddr,
    /// Piece bytes sent to peers per second, e.g. "100MB" (unlimited when
    /// absent).
    pub upload_limit: Option<String>,
    /// Bytes received from peers per second, e.g. "100MB".
    pub download_limit: Option<String>,
    /// Address peers should use to reach the seeder, if not `peer_listen`.
    pub public_addr: Option<SocketAddr>,
    /// Cache root: blobs, partial downloads, torrents.
    pub root: PathBuf,
    /// Cache budget, e.g. "20GiB".
    pub cache_size: String,
    /// Upstream registries the origin may fetch from (`host`, `host:port`,
    /// `*.domain`).
    pub allow_registry: Vec<String>,
    /// Extra CA certificates (PEM) for registries.
    pub ca_file: Option<PathBuf>,
    /// Registries reached over plain HTTP.
    pub insecure_registry: Vec<String>,
    /// HTTP worker threads; 0 means one per core.
    pub threads: usize,
    /// Seconds between a client's announces.
    pub announce_interval: u32,
    /// Track any info hash, not only the origin's blobs.
    pub open_tracker: bool,
    /// Addresses whose announces may name the peer's address with `ip=`
    /// (a reverse proxy in front of the tracker); from anyone else the
    /// connection's source address is the peer's address.
    pub trusted_sources: Vec<IpAddr>,
    /// Most entries one source address holds in one swarm.
    pub max_peers_per_address: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 6880)),
            peer_listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            upload_limit: None,
            download_limit: None,
            public_addr: None,
            root: PathBuf::from("/var/lib/bay-tracker"),
            cache_size: "20GiB".into(),
            allow_registry: Vec::new(),
            ca_file: None,
            insecure_registry: Vec::new(),
            threads: 0,
            announce_interval: 60,
            open_tracker: false,
            trusted_sources: Vec::new(),
            max_peers_per_address: 16,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] bay_core::settings::ConfigFileError),
    #[error("cache-size: {0}")]
    Size(String),
    #[error("{0}")]
    Invalid(String),
}

impl TrackerConfig {
    /// The host-level part: store, peer engine, registries.
    pub fn node(&self) -> bay_core::node::NodeSettings {
        bay_core::node::NodeSettings {
            root: self.root.clone(),
            cache_size: self.cache_size.clone(),
            peer_listen: self.peer_listen,
            public_addr: self.public_addr,
            upload_limit: self.upload_limit.clone(),
            download_limit: self.download_limit.clone(),
            super_seed: true,
            allow_registry: self.allow_registry.clone(),
            insecure_registry: self.insecure_registry.clone(),
            ca_file: self.ca_file.clone(),
        }
    }

    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<TrackerConfig, ConfigError> {
        Ok(bay_core::settings::read_toml(path)?)
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        bay_core::settings::to_toml(self)
    }

    /// The cache budget in bytes.
    pub fn cache_bytes(&self) -> Result<u64, ConfigError> {
        bay_core::size::parse_size(&self.cache_size).map_err(ConfigError::Size)
    }
}

/// Flags and environment variables of `bay-tracker serve`; each set one
/// overrides the file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "BAY_TRACKER_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "BAY_TRACKER_LISTEN")]
    pub listen: Option<SocketAddr>,
    #[arg(long, env = "BAY_TRACKER_PEER_LISTEN")]
    pub peer_listen: Option<SocketAddr>,
    /// e.g. 100MB (bytes per second to peers)
    #[arg(long, env = "BAY_TRACKER_UPLOAD_LIMIT")]
    pub upload_limit: Option<String>,
    /// e.g. 100MB (bytes per second from peers)
    #[arg(long, env = "BAY_TRACKER_DOWNLOAD_LIMIT")]
    pub download_limit: Option<String>,
    #[arg(long, env = "BAY_TRACKER_PUBLIC_ADDR")]
    pub public_addr: Option<SocketAddr>,
    #[arg(long, env = "BAY_TRACKER_ROOT")]
    pub root: Option<PathBuf>,
    /// e.g. 20GiB
    #[arg(long, env = "BAY_TRACKER_CACHE_SIZE")]
    pub cache_size: Option<String>,
    /// Repeatable; replaces the file's list when given.
    #[arg(long)]
    pub allow_registry: Vec<String>,
    #[arg(long, env = "BAY_TRACKER_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Repeatable; replaces the file's list when given.
    #[arg(long)]
    pub insecure_registry: Vec<String>,
    #[arg(long, env = "BAY_TRACKER_THREADS")]
    pub threads: Option<usize>,
    /// An address whose announces may name the peer's address with ip=
    /// (a reverse proxy in front of the tracker). Repeatable; replaces the
    /// file's list when given.
    #[arg(long)]
    pub trusted_source: Vec<IpAddr>,
    /// Most peer entries one source address holds in one swarm.
    #[arg(long, env = "BAY_TRACKER_MAX_PEERS_PER_ADDRESS")]
    pub max_peers_per_address: Option<usize>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

impl ServeArgs {
    /// Defaults, then the file, then these flags.
    pub fn resolve(&self) -> Result<TrackerConfig, ConfigError> {
        let mut c = match &self.config {
            Some(path) => TrackerConfig::from_file(path)?,
            None => TrackerConfig::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.peer_listen {
            c.peer_listen = v;
        }
        if self.upload_limit.is_some() {
            c.upload_limit = self.upload_limit.clone();
        }
        if self.download_limit.is_some() {
            c.download_limit = self.download_limit.clone();
        }
        if self.public_addr.is_some() {
            c.public_addr = self.public_addr;
        }
        if let Some(v) = &self.root {
            c.root = v.clone();
        }
        if let Some(v) = &self.cache_size {
            c.cache_size = v.clone();
        }
        if !self.allow_registry.is_empty() {
            c.allow_registry = self.allow_registry.clone();
        }
        if self.ca_file.is_some() {
            c.ca_file = self.ca_file.clone();
        }
        if !self.insecure_registry.is_empty() {
            c.insecure_registry = self.insecure_registry.clone();
        }
        if let Some(v) = self.threads {
            c.threads = v;
        }
        if !self.trusted_source.is_empty() {
            c.trusted_sources = self.trusted_source.clone();
        }
        if let Some(v) = self.max_peers_per_address {
            c.max_peers_per_address = v;
        }
        c.cache_bytes()?;
        for limit in [&c.upload_limit, &c.download_limit] {
            bay_core::settings::rate_limit(limit.as_deref()).map_err(ConfigError::Invalid)?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_config_loads_back_unchanged() {
        let c = TrackerConfig {
            allow_registry: vec!["*.corp.test".into(), "reg.test:5000".into()],
            public_addr: Some("10.0.0.1:6881".parse().unwrap()),
            ..TrackerConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, c.to_toml()).unwrap();
        assert_eq!(TrackerConfig::from_file(&path).unwrap(), c);
    }

    #[test]
    fn unknown_keys_and_bad_sizes_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
        assert!(matches!(
            TrackerConfig::from_file(&path),
            Err(ConfigError::File(_))
        ));
        let args = ServeArgs {
            cache_size: Some("lots".into()),
            ..ServeArgs::default()
        };
        assert!(matches!(args.resolve(), Err(ConfigError::Size(_))));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nthreads = 3\n").unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:2".parse().unwrap()),
            ..ServeArgs::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.threads, 3);
    }
}
