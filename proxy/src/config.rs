//! bay-proxy's configuration: defaults, then a TOML file (`--config`),
//! then environment variables and flags. Unknown keys are errors;
//! `--print-config` prints the effective configuration as TOML.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything `bay-proxy serve` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where image clients connect (HTTP).
    pub listen: SocketAddr,
    /// Trackers (`http://host:port`); a blob belongs to one of them by
    /// rendezvous hashing of its digest.
    pub tracker: Vec<String>,
    /// Cache root.
    pub root: PathBuf,
    /// Cache budget, e.g. "20GiB".
    pub cache_size: String,
    /// Fixed upstream for every request on this listener (Docker Hub
    /// mirror mode), e.g. "registry-1.docker.io".
    pub upstream: Option<String>,
    /// Upstreams this proxy may contact (`host`, `host:port`, `*.domain`).
    pub allow_registry: Vec<String>,
    /// Extra CA certificates (PEM) for registries.
    pub ca_file: Option<PathBuf>,
    /// Registries reached over plain HTTP (`host:port`).
    pub insecure_registry: Vec<String>,
    /// BitTorrent peer connections.
    pub peer_listen: SocketAddr,
    /// Piece bytes sent to peers per second, e.g. "100MB" (unlimited when
    /// absent).
    pub upload_limit: Option<String>,
    /// Bytes received from peers per second, e.g. "100MB".
    pub download_limit: Option<String>,
    /// Address other hosts reach this proxy's peer port at.
    pub public_addr: Option<SocketAddr>,
    /// HTTP worker threads; 0 means one per core.
    pub threads: usize,
    /// The slowest a client may send a request body (a push), e.g.
    /// "1KiB" a second, averaged over each `body_rate_window` seconds of
    /// waiting; slower clients get 408 and lose both their connection and
    /// the one it held to the registry. "0" turns the floor off.
    pub min_body_rate: String,
    /// Seconds of waiting over which `min_body_rate` is averaged.
    pub body_rate_window: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            tracker: Vec::new(),
            root: PathBuf::from("/var/lib/bay-proxy"),
            cache_size: "20GiB".into(),
            upstream: None,
            allow_registry: Vec::new(),
            ca_file: None,
            insecure_registry: Vec::new(),
            peer_listen: SocketAddr::from(([0, 0, 0, 0], 6882)),
            upload_limit: None,
            download_limit: None,
            public_addr: None,
            threads: 0,
            min_body_rate: "1KiB".into(),
            body_rate_window: 30,
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

impl ProxyConfig {
    /// The host-level part: store, peer engine, registries.
    pub fn node(&self) -> bay_core::node::NodeSettings {
        bay_core::node::NodeSettings {
            root: self.root.clone(),
            cache_size: self.cache_size.clone(),
            peer_listen: self.peer_listen,
            public_addr: self.public_addr,
            upload_limit: self.upload_limit.clone(),
            download_limit: self.download_limit.clone(),
            super_seed: false,
            allow_registry: self.allow_registry.clone(),
            insecure_registry: self.insecure_registry.clone(),
            ca_file: self.ca_file.clone(),
        }
    }

    pub fn from_file(path: &Path) -> Result<ProxyConfig, ConfigError> {
        Ok(bay_core::settings::read_toml(path)?)
    }

    pub fn to_toml(&self) -> String {
        bay_core::settings::to_toml(self)
    }

    pub fn cache_bytes(&self) -> Result<u64, ConfigError> {
        bay_core::size::parse_size(&self.cache_size).map_err(ConfigError::Size)
    }

    /// The floor under request-body rates.
    pub fn body_pace(&self) -> Result<bay_httpd::BodyPace, ConfigError> {
        let min_rate = bay_core::size::parse_size(&self.min_body_rate)
            .map_err(|e| ConfigError::Invalid(format!("min-body-rate: {e}")))?;
        if self.body_rate_window == 0 {
            return Err(ConfigError::Invalid(
                "body-rate-window: must be at least 1 second".into(),
            ));
        }
        Ok(bay_httpd::BodyPace {
            min_rate,
            window: std::time::Duration::from_secs(self.body_rate_window),
        })
    }
}

/// Flags and environment of `bay-proxy serve`; each given one overrides
/// the file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    #[arg(long, env = "BAY_PROXY_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "BAY_PROXY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Repeatable.
    #[arg(long)]
    pub tracker: Vec<String>,
    #[arg(long, env = "BAY_PROXY_ROOT")]
    pub root: Option<PathBuf>,
    #[arg(long, env = "BAY_PROXY_CACHE_SIZE")]
    pub cache_size: Option<String>,
    #[arg(long, env = "BAY_PROXY_UPSTREAM")]
    pub upstream: Option<String>,
    /// Repeatable.
    #[arg(long)]
    pub allow_registry: Vec<String>,
    #[arg(long, env = "BAY_PROXY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Repeatable.
    #[arg(long)]
    pub insecure_registry: Vec<String>,
    #[arg(long, env = "BAY_PROXY_PEER_LISTEN")]
    pub peer_listen: Option<SocketAddr>,
    /// e.g. 100MB (bytes per second to peers)
    #[arg(long, env = "BAY_PROXY_UPLOAD_LIMIT")]
    pub upload_limit: Option<String>,
    /// e.g. 100MB (bytes per second from peers)
    #[arg(long, env = "BAY_PROXY_DOWNLOAD_LIMIT")]
    pub download_limit: Option<String>,
    #[arg(long, env = "BAY_PROXY_PUBLIC_ADDR")]
    pub public_addr: Option<SocketAddr>,
    #[arg(long, env = "BAY_PROXY_THREADS")]
    pub threads: Option<usize>,
    /// Slowest request body accepted, bytes a second (e.g. 1KiB; 0 = off).
    #[arg(long, env = "BAY_PROXY_MIN_BODY_RATE")]
    pub min_body_rate: Option<String>,
    /// Seconds of waiting over which --min-body-rate is averaged.
    #[arg(long, env = "BAY_PROXY_BODY_RATE_WINDOW")]
    pub body_rate_window: Option<u64>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

impl ServeArgs {
    pub fn resolve(&self) -> Result<ProxyConfig, ConfigError> {
        let mut c = match &self.config {
            Some(p) => ProxyConfig::from_file(p)?,
            None => ProxyConfig::default(),
        };
        macro_rules! take {
            ($field:ident) => {
                if let Some(v) = &self.$field {
                    c.$field = v.clone();
                }
            };
        }
        macro_rules! take_opt {
            ($field:ident) => {
                if self.$field.is_some() {
                    c.$field = self.$field.clone();
                }
            };
        }
        macro_rules! take_list {
            ($field:ident) => {
                if !self.$field.is_empty() {
                    c.$field = self.$field.clone();
                }
            };
        }
        take!(listen);
        take!(root);
        take!(cache_size);
        take!(peer_listen);
        take!(threads);
        take!(min_body_rate);
        take!(body_rate_window);
        take_opt!(upstream);
        take_opt!(upload_limit);
        take_opt!(download_limit);
        take_opt!(ca_file);
        take_opt!(public_addr);
        take_list!(tracker);
        take_list!(allow_registry);
        take_list!(insecure_registry);
        c.cache_bytes()?;
        c.body_pace()?;
        for limit in [&c.upload_limit, &c.download_limit] {
            bay_core::settings::rate_limit(limit.as_deref()).map_err(ConfigError::Invalid)?;
        }
        if c.allow_registry.is_empty() {
            return Err(ConfigError::Invalid(
                "no --allow-registry: bay-proxy contacts only registries you allow".into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_config_loads_back_unchanged() {
        let c = ProxyConfig {
            tracker: vec!["http://10.0.0.1:6880".into()],
            allow_registry: vec!["*.corp.test".into()],
            upstream: Some("registry-1.docker.io".into()),
            ..ProxyConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, c.to_toml()).unwrap();
        assert_eq!(ProxyConfig::from_file(&path).unwrap(), c);
    }

    #[test]
    fn bandwidth_limits_must_be_sizes() {
        let args = ServeArgs {
            allow_registry: vec!["reg.test".into()],
            upload_limit: Some("fast".into()),
            ..ServeArgs::default()
        };
        assert!(matches!(args.resolve(), Err(ConfigError::Invalid(_))));
        let args = ServeArgs {
            allow_registry: vec!["reg.test".into()],
            download_limit: Some("100MB".into()),
            ..ServeArgs::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(
            bay_core::settings::rate_limit(c.download_limit.as_deref()),
            Ok(Some(100_000_000))
        );
    }

    #[test]
    fn an_allow_list_is_required() {
        assert!(matches!(
            ServeArgs::default().resolve(),
            Err(ConfigError::Invalid(_))
        ));
    }
}
