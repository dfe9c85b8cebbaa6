//! bay-tracker's configuration: one struct, filled from defaults, then a
//! TOML file (`--config`), then environment variables and flags. The
//! settings the proxy shares are in the `[node]` table
//! ([`bay_core::config::NodeConfig`]).
//!
//! Unknown keys in the file are errors, so a typo cannot silently leave a
//! default in force. `bay-tracker serve --print-config` prints the
//! effective configuration as TOML, which loads back unchanged.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use bay_core::config::{ConfigError, NodeArgs, NodeConfig, NodeDefaults, Switch};
use serde::{Deserialize, Serialize};

/// What differs from the proxy's node by default.
pub const NODE_DEFAULTS: NodeDefaults = NodeDefaults {
    root: "/var/lib/bay-tracker",
    peer_listen: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 6881),
};

/// Everything `bay-tracker serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// HTTP: announce, scrape, origin API, metrics.
    pub listen: SocketAddr,
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
    /// Seconds between a host's held announces (every blob it holds, in
    /// one request); its entries last three of these.
    pub held_interval: u32,
    /// Serve HTTPS with this PEM certificate chain (with `tls_key`):
    /// the origin API carries clients' registry credentials.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// One log line per request (`off` to stop them).
    pub access_log: Switch,
    /// The origin seeder's cache, peer engine and registry access (it
    /// runs when `allow_registry` names a registry).
    pub node: NodeConfig,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 6880)),
            threads: 0,
            announce_interval: 60,
            open_tracker: false,
            trusted_sources: Vec::new(),
            max_peers_per_address: 16,
            held_interval: 300,
            tls_cert: None,
            tls_key: None,
            access_log: Switch::On,
            node: NodeConfig::with_defaults(NODE_DEFAULTS),
        }
    }
}

impl TrackerConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<TrackerConfig, ConfigError> {
        let mut c: TrackerConfig = bay_core::config::read_toml(path)?;
        c.node.fill_defaults(NODE_DEFAULTS);
        Ok(c)
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        bay_core::config::to_toml(self)
    }

    /// Checks what can be checked before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.announce_interval == 0 {
            return Err(ConfigError::invalid(
                "announce_interval",
                "must be at least 1 second",
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::invalid(
                "tls_cert",
                "tls_cert and tls_key go together",
            ));
        }
        if self.held_interval == 0 {
            return Err(ConfigError::invalid(
                "held_interval",
                "must be at least 1 second",
            ));
        }
        if self.max_peers_per_address == 0 {
            return Err(ConfigError::invalid(
                "max_peers_per_address",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Flags and environment variables of `bay-tracker serve`; each set one
/// overrides the file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "BAY_TRACKER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP address (announce, scrape, origin API, metrics), e.g.
    /// 0.0.0.0:6880.
    #[arg(long, env = "BAY_TRACKER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// HTTP worker threads; 0 means one per core.
    #[arg(long, env = "BAY_TRACKER_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// Seconds between a client's announces.
    #[arg(long, env = "BAY_TRACKER_ANNOUNCE_INTERVAL", value_name = "SECONDS")]
    pub announce_interval: Option<u32>,
    /// An address whose announces may name the peer's address with ip=
    /// (a reverse proxy in front of the tracker). Repeatable; replaces the
    /// file's list when given.
    #[arg(long, value_name = "IP")]
    pub trusted_source: Vec<IpAddr>,
    /// Most peer entries one source address holds in one swarm.
    #[arg(long, env = "BAY_TRACKER_MAX_PEERS_PER_ADDRESS", value_name = "N")]
    pub max_peers_per_address: Option<usize>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "BAY_TRACKER_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "BAY_TRACKER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// One log line per request: on or off.
    #[arg(long, env = "BAY_TRACKER_ACCESS_LOG", value_name = "on|off")]
    pub access_log: Option<Switch>,
    #[command(flatten)]
    pub node: NodeArgs,
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
        if let Some(v) = self.threads {
            c.threads = v;
        }
        if let Some(v) = self.announce_interval {
            c.announce_interval = v;
        }
        if !self.trusted_source.is_empty() {
            c.trusted_sources = self.trusted_source.clone();
        }
        if let Some(v) = self.max_peers_per_address {
            c.max_peers_per_address = v;
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert.clone();
        }
        if self.tls_key.is_some() {
            c.tls_key = self.tls_key.clone();
        }
        if let Some(v) = self.access_log {
            c.access_log = v;
        }
        self.node.apply(&mut c.node);
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bay_core::config::ByteSize;

    #[test]
    fn printed_config_loads_back_unchanged() {
        let mut c = TrackerConfig {
            trusted_sources: vec!["10.0.0.2".parse().unwrap()],
            ..TrackerConfig::default()
        };
        c.node.allow_registry = vec!["*.corp.test".into(), "reg.test:5000".into()];
        c.node.public_addr = Some("10.0.0.1:6881".parse().unwrap());
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
        let err = TrackerConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        std::fs::write(&path, "[node]\ncache_size = \"lots\"\n").unwrap();
        let err = TrackerConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("lots"), "{err}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\nthreads = 3\n[node]\ncache_size = \"1GiB\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:2".parse().unwrap()),
            node: NodeArgs {
                cache_size: Some(ByteSize(2 << 30)),
                ..NodeArgs::default()
            },
            ..ServeArgs::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.threads, 3);
        assert_eq!(c.node.cache_size, ByteSize(2 << 30));
        assert_eq!(c.node.root(), Path::new("/var/lib/bay-tracker"));
    }
}
