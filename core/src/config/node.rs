//! The settings of a node (a host running bay-proxy or bay-tracker): its
//! cache, its peer engine, and which registries it may reach. One struct
//! for both programs, read from the `[node]` table of their TOML files and
//! from the same flags; each program adds its own defaults and
//! environment prefix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::size::ByteSize;

/// Keys of [`NodeConfig`]: in a file they belong in `[node]`.
pub const NODE_KEYS: [&str; 12] = [
    "root",
    "cache_size",
    "peer_listen",
    "public_addr",
    "upload_limit",
    "download_limit",
    "allow_registry",
    "insecure_registry",
    "ca_file",
    "peer_connections_per_address",
    "fleet_key_file",
    "encrypt_peer_links",
];

/// Node flags that can also come from the environment, as
/// `<PREFIX><FLAG_IN_CAPITALS>` (`BAY_PROXY_ROOT`, `BAY_TRACKER_CACHE_SIZE`).
const ENV_FLAGS: [&str; 9] = [
    "root",
    "cache_size",
    "peer_listen",
    "public_addr",
    "upload_limit",
    "download_limit",
    "ca_file",
    "fleet_key_file",
    "encrypt_peer_links",
];

/// A node's settings, as the `[node]` table of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Cache root: complete blobs, partial downloads, torrents. Each
    /// program has its own default.
    pub root: Option<PathBuf>,
    /// Cache budget; least recently used blobs are evicted to stay under.
    pub cache_size: ByteSize,
    /// Where BitTorrent peers connect. Each program has its own default.
    pub peer_listen: Option<SocketAddr>,
    /// The peer address other hosts are told, when it is not
    /// `peer_listen` (behind NAT, or bound to 0.0.0.0).
    pub public_addr: Option<SocketAddr>,
    /// Piece bytes sent to peers per second (unlimited when absent).
    pub upload_limit: Option<ByteSize>,
    /// Bytes received from peers per second (unlimited when absent).
    pub download_limit: Option<ByteSize>,
    /// Upstream registries this node may contact: `host`, `host:port`,
    /// `*.domain` (a pattern without a port allows any port).
    pub allow_registry: Vec<String>,
    /// Registries reached over plain HTTP (`host:port`).
    pub insecure_registry: Vec<String>,
    /// Extra CA certificates (PEM) for registries and trackers.
    pub ca_file: Option<PathBuf>,
    /// Most peer connections from or to one IP address in one swarm.
    pub peer_connections_per_address: usize,
    /// The fleet key file (`bay-tracker keygen`): with it every peer and
    /// every tracker request must prove it holds the key, and swarms are
    /// named under it. Without it the node runs open.
    pub fleet_key_file: Option<PathBuf>,
    /// Encrypt every peer link with TLS keyed by the fleet key (needs
    /// `fleet_key_file`). For networks where others can watch the
    /// traffic; it costs CPU and gives up sendfile(2).
    pub encrypt_peer_links: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            root: None,
            cache_size: ByteSize(20 << 30),
            peer_listen: None,
            public_addr: None,
            upload_limit: None,
            download_limit: None,
            allow_registry: Vec::new(),
            insecure_registry: Vec::new(),
            ca_file: None,
            peer_connections_per_address: 8,
            fleet_key_file: None,
            encrypt_peer_links: false,
        }
    }
}

/// What differs between the programs' nodes by default.
#[derive(Debug, Clone, Copy)]
pub struct NodeDefaults {
    pub root: &'static str,
    pub peer_listen: SocketAddr,
}

impl NodeConfig {
    /// A node with `defaults` filled in.
    pub fn with_defaults(defaults: NodeDefaults) -> NodeConfig {
        let mut node = NodeConfig::default();
        node.fill_defaults(defaults);
        node
    }

    /// Fills what the operator left unset with the program's defaults.
    pub fn fill_defaults(&mut self, defaults: NodeDefaults) {
        self.root
            .get_or_insert_with(|| PathBuf::from(defaults.root));
        self.peer_listen.get_or_insert(defaults.peer_listen);
    }

    /// The fleet's keys, read from `fleet_key_file`; `None` in open mode.
    pub fn fleet_keys(&self) -> Result<Option<bay_wire::fleet::FleetKeys>, super::ConfigError> {
        let Some(path) = &self.fleet_key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| super::ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        bay_wire::fleet::FleetKeys::parse(&text)
            .map(Some)
            .map_err(|e| {
                super::ConfigError::invalid(
                    "node.fleet_key_file",
                    format!("{}: {e}", path.display()),
                )
            })
    }

    /// The cache root (empty before defaults are filled in).
    pub fn root(&self) -> &Path {
        self.root.as_deref().unwrap_or(Path::new(""))
    }
}

/// The node flags of `serve`, flattened into each program's flags; each
/// one given replaces the file's value (lists replace the whole list).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct NodeArgs {
    /// Cache root: complete blobs, partial downloads and torrents.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Cache budget, e.g. 20GiB; least recently used blobs are evicted.
    #[arg(long, value_name = "SIZE")]
    pub cache_size: Option<ByteSize>,
    /// Where BitTorrent peers connect, e.g. 0.0.0.0:6882.
    #[arg(long, value_name = "ADDR")]
    pub peer_listen: Option<std::net::SocketAddr>,
    /// The peer address other hosts are told, when it is not --peer-listen
    /// (behind NAT, or bound to 0.0.0.0).
    #[arg(long, value_name = "ADDR")]
    pub public_addr: Option<std::net::SocketAddr>,
    /// Piece bytes sent to peers per second, e.g. 100MB (unlimited when
    /// absent).
    #[arg(long, value_name = "SIZE")]
    pub upload_limit: Option<ByteSize>,
    /// Bytes received from peers per second, e.g. 100MB.
    #[arg(long, value_name = "SIZE")]
    pub download_limit: Option<ByteSize>,
    /// An upstream registry this node may contact: host, host:port or
    /// *.domain. Repeatable.
    #[arg(long, value_name = "PATTERN")]
    pub allow_registry: Vec<String>,
    /// A registry reached over plain HTTP (host:port). Repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub insecure_registry: Vec<String>,
    /// Extra CA certificates (PEM) for registries and trackers.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// The fleet key file (bay-tracker keygen): peers and tracker requests
    /// must prove they hold it. Without it bay runs open.
    #[arg(long, value_name = "FILE")]
    pub fleet_key_file: Option<PathBuf>,
    /// Encrypt every peer link with TLS keyed by the fleet key (needs
    /// --fleet-key-file): for networks where others can watch the traffic.
    #[arg(long)]
    pub encrypt_peer_links: bool,
}

impl NodeArgs {
    /// Puts the flags given over `node`.
    pub fn apply(&self, node: &mut NodeConfig) {
        if let Some(v) = &self.root {
            node.root = Some(v.clone());
        }
        if let Some(v) = self.cache_size {
            node.cache_size = v;
        }
        if let Some(v) = self.peer_listen {
            node.peer_listen = Some(v);
        }
        if let Some(v) = self.public_addr {
            node.public_addr = Some(v);
        }
        if let Some(v) = self.upload_limit {
            node.upload_limit = Some(v);
        }
        if let Some(v) = self.download_limit {
            node.download_limit = Some(v);
        }
        if !self.allow_registry.is_empty() {
            node.allow_registry = self.allow_registry.clone();
        }
        if !self.insecure_registry.is_empty() {
            node.insecure_registry = self.insecure_registry.clone();
        }
        if let Some(v) = &self.ca_file {
            node.ca_file = Some(v.clone());
        }
        if let Some(v) = &self.fleet_key_file {
            node.fleet_key_file = Some(v.clone());
        }
        if self.encrypt_peer_links {
            node.encrypt_peer_links = true;
        }
    }
}

/// Lets the node flags of `subcommand` come from the environment as
/// `<prefix><FLAG>` (`BAY_PROXY_ROOT`), as each program's other flags do.
pub fn node_env(cmd: clap::Command, subcommand: &str, prefix: &str) -> clap::Command {
    cmd.mut_subcommand(subcommand, |sub| {
        ENV_FLAGS.iter().fold(sub, |sub, id| {
            let name = format!("{prefix}{}", id.to_ascii_uppercase());
            sub.mut_arg(*id, |a| a.env(name))
        })
    })
}

/// Parses a program's command line, with the node flags of `subcommand`
/// also from the environment (see [`node_env`]); exits with clap's
/// message on a bad one.
pub fn parse_node_cli<C: clap::CommandFactory + clap::FromArgMatches>(
    subcommand: &str,
    prefix: &str,
) -> C {
    let matches = node_env(C::command(), subcommand, prefix).get_matches();
    C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_a_node_key() {
        let text = super::super::file::to_toml(&NodeConfig::with_defaults(NodeDefaults {
            root: "/r",
            peer_listen: "0.0.0.0:1".parse().unwrap(),
        }));
        let table: toml::Table = toml::from_str(&text).unwrap();
        for key in table.keys() {
            assert!(NODE_KEYS.contains(&key.as_str()), "{key}");
        }
    }
}
