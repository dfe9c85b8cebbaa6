//! bay-proxy's configuration: defaults, then a TOML file (`--config`),
//! then environment variables and flags. Unknown keys are errors;
//! `--print-config` prints the effective configuration as TOML. The
//! settings the tracker shares are in the `[node]` table
//! ([`bay_core::config::NodeConfig`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bay_core::config::{ByteSize, ConfigError, NodeArgs, NodeConfig, NodeDefaults, Switch};
use serde::{Deserialize, Serialize};

/// What differs from the tracker's node by default.
pub const NODE_DEFAULTS: NodeDefaults = NodeDefaults {
    root: "/var/lib/bay-proxy",
    peer_listen: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 6882),
};

/// Everything `bay-proxy serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where image clients connect (HTTP).
    pub listen: SocketAddr,
    /// Trackers (`http://host:port`); a blob belongs to one of them by
    /// rendezvous hashing of its digest.
    pub tracker: Vec<String>,
    /// Fixed upstream for every request on this listener (Docker Hub
    /// mirror mode), e.g. "registry-1.docker.io".
    pub upstream: Option<String>,
    /// HTTP worker threads; 0 means one per core.
    pub threads: usize,
    /// The slowest a client may send a request body (a push), in bytes a
    /// second, averaged over each `body_rate_window` seconds of waiting;
    /// slower clients get 408 and lose both their connection and the one
    /// it held to the registry. 0 turns the floor off.
    pub min_body_rate: ByteSize,
    /// Seconds of waiting over which `min_body_rate` is averaged.
    pub body_rate_window: u64,
    /// Pass clients' registry credentials to trackers reached over plain
    /// HTTP on other hosts (off: they go over https:// or loopback only,
    /// and private blobs are read from the registry instead).
    pub allow_plain_tracker_credentials: bool,
    /// One log line per request (`off` to stop them).
    pub access_log: Switch,
    /// What happens to the blobs of an image manifest passing through:
    /// `join` (their swarms are joined, fetching nothing until a client
    /// asks), `all` (they are fetched at once), or `off`.
    pub prefetch: Prefetch,
    /// Cache, peer engine and registry access.
    pub node: NodeConfig,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            tracker: Vec::new(),
            upstream: None,
            threads: 0,
            min_body_rate: ByteSize(1024),
            body_rate_window: 30,
            allow_plain_tracker_credentials: false,
            access_log: Switch::On,
            prefetch: Prefetch::Join,
            node: NodeConfig::with_defaults(NODE_DEFAULTS),
        }
    }
}

impl ProxyConfig {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<ProxyConfig, ConfigError> {
        let mut c: ProxyConfig = bay_core::config::read_toml(path)?;
        c.node.fill_defaults(NODE_DEFAULTS);
        Ok(c)
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        bay_core::config::to_toml(self)
    }

    /// The floor under request-body rates.
    pub fn body_pace(&self) -> Result<bay_httpd::BodyPace, ConfigError> {
        if self.body_rate_window == 0 {
            return Err(ConfigError::invalid(
                "body_rate_window",
                "must be at least 1 second",
            ));
        }
        Ok(bay_httpd::BodyPace {
            min_rate: self.min_body_rate.bytes(),
            window: Duration::from_secs(self.body_rate_window),
        })
    }

    /// Checks what can be checked before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.body_pace()?;
        if self.node.allow_registry.is_empty() {
            return Err(ConfigError::invalid(
                "node.allow_registry",
                "empty: bay-proxy contacts only registries you allow (--allow-registry)",
            ));
        }
        crate::blob::Trackers::parse(&self.tracker)
            .map_err(|e| ConfigError::invalid("tracker", e))?;
        Ok(())
    }
}

/// What the proxy does with the blobs a manifest names, before a client
/// asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Prefetch {
    /// Nothing until the client asks.
    Off,
    /// The tracker's origin starts fetching each blob from the registry
    /// and this proxy joins its swarm, but fetches nothing until a client
    /// reads it (it may hold the layer already).
    Join,
    /// Each blob not cached is fetched at once.
    All,
}

/// Flags and environment of `bay-proxy serve`; each given one overrides
/// the file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "BAY_PROXY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where image clients connect (HTTP), e.g. 127.0.0.1:5000.
    #[arg(long, env = "BAY_PROXY_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// A tracker's base URL, e.g. http://10.0.0.5:6880. Repeatable.
    #[arg(long, value_name = "URL")]
    pub tracker: Vec<String>,
    /// Send every request on this listener to this registry (Docker Hub
    /// mirror mode: registry-1.docker.io).
    #[arg(long, env = "BAY_PROXY_UPSTREAM", value_name = "HOST[:PORT]")]
    pub upstream: Option<String>,
    /// HTTP worker threads; 0 means one per core.
    #[arg(long, env = "BAY_PROXY_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// Slowest request body accepted, bytes a second (e.g. 1KiB; 0 = off).
    #[arg(long, env = "BAY_PROXY_MIN_BODY_RATE", value_name = "SIZE")]
    pub min_body_rate: Option<ByteSize>,
    /// Seconds of waiting over which --min-body-rate is averaged.
    #[arg(long, env = "BAY_PROXY_BODY_RATE_WINDOW", value_name = "SECONDS")]
    pub body_rate_window: Option<u64>,
    /// Pass clients' registry credentials to trackers reached over plain
    /// HTTP on other hosts (otherwise only over https:// or loopback).
    #[arg(long)]
    pub allow_plain_tracker_credentials: bool,
    /// One log line per request: on or off.
    #[arg(long, env = "BAY_PROXY_ACCESS_LOG", value_name = "on|off")]
    pub access_log: Option<Switch>,
    /// On seeing an image manifest, join its blobs' swarms (join), fetch
    /// them (all), or wait for the client (off).
    #[arg(long, env = "BAY_PROXY_PREFETCH", value_name = "MODE")]
    pub prefetch: Option<Prefetch>,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

impl ServeArgs {
    /// Defaults, then the file, then these flags.
    pub fn resolve(&self) -> Result<ProxyConfig, ConfigError> {
        let mut c = match &self.config {
            Some(p) => ProxyConfig::from_file(p)?,
            None => ProxyConfig::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if !self.tracker.is_empty() {
            c.tracker = self.tracker.clone();
        }
        if self.upstream.is_some() {
            c.upstream = self.upstream.clone();
        }
        if let Some(v) = self.threads {
            c.threads = v;
        }
        if let Some(v) = self.min_body_rate {
            c.min_body_rate = v;
        }
        if let Some(v) = self.body_rate_window {
            c.body_rate_window = v;
        }
        c.allow_plain_tracker_credentials |= self.allow_plain_tracker_credentials;
        if let Some(v) = self.access_log {
            c.access_log = v;
        }
        if let Some(v) = self.prefetch {
            c.prefetch = v;
        }
        self.node.apply(&mut c.node);
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> NodeArgs {
        NodeArgs {
            allow_registry: vec!["reg.test".into()],
            ..NodeArgs::default()
        }
    }

    #[test]
    fn printed_config_loads_back_unchanged() {
        let mut c = ProxyConfig {
            tracker: vec!["http://10.0.0.1:6880".into()],
            upstream: Some("registry-1.docker.io".into()),
            ..ProxyConfig::default()
        };
        c.node.allow_registry = vec!["*.corp.test".into()];
        c.node.upload_limit = Some(ByteSize(100_000_000));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, c.to_toml()).unwrap();
        assert_eq!(ProxyConfig::from_file(&path).unwrap(), c);
    }

    #[test]
    fn files_from_before_the_node_table_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let old = "listen = \"127.0.0.1:5001\"\nroot = \"/srv/bay\"\ncache_size = \"5GiB\"\n\
                   allow_registry = [\"reg.test\"]\n";
        std::fs::write(&path, old).unwrap();
        let c = ProxyConfig::from_file(&path).unwrap();
        assert_eq!(c.node.root(), Path::new("/srv/bay"));
        assert_eq!(c.node.cache_size, ByteSize(5 << 30));
        assert_eq!(c.node.allow_registry, vec!["reg.test".to_string()]);
        assert_eq!(c.node.peer_listen, NODE_DEFAULTS.peer_listen.into());
        std::fs::write(&path, "root = \"/a\"\n[node]\nroot = \"/b\"\n").unwrap();
        let err = ProxyConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("node.root"), "{err}");
    }

    #[test]
    fn bad_values_name_their_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[node]\nupload_limit = \"fast\"\n").unwrap();
        let err = ProxyConfig::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("upload_limit"), "{err}");
        let args = ServeArgs {
            body_rate_window: Some(0),
            node: allowed(),
            ..ServeArgs::default()
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.starts_with("body_rate_window"), "{err}");
    }

    #[test]
    fn an_allow_list_is_required() {
        let err = ServeArgs::default().resolve().unwrap_err().to_string();
        assert!(err.contains("node.allow_registry"), "{err}");
        assert!(ServeArgs {
            node: allowed(),
            ..ServeArgs::default()
        }
        .resolve()
        .is_ok());
    }
}
