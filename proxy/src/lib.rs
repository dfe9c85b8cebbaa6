//! bay-proxy: a registry to the local image client.
//!
//! It owns the request routing (host prefix, containerd `?ns=`, fixed
//! upstream), pass-through of every non-blob request, and blob reads
//! answered from the cache, the swarm or the registry.
//!
//! It must never be an open proxy, never serve an unverified byte, and
//! never let a client's credentials reach a peer, a log or the disk.
//!
//! Layout: [`route`] (which upstream), [`passthrough`] (everything but
//! blob reads), [`blob`] (cache, swarm, registry), [`service`] (the
//! handler), [`serve`] (start and stop), [`status`] (the status page),
//! [`held`] (announcing held blobs), [`config`], [`setup`] (pointing
//! the host's runtimes at the proxy), [`clientconf`] (the same files,
//! printed), [`doctor`] (what is wrong with a host's set-up), [`errors`]
//! (OCI error bodies).

pub mod blob;
pub mod clientconf;
pub mod config;
pub mod doctor;
pub mod errors;
pub mod held;
pub mod passthrough;
pub mod route;
pub mod serve;
pub mod service;
pub mod setup;
pub mod status;

/// The `bay-proxy` command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "bay-proxy",
    version,
    about = "A registry to local image clients that takes layers from a peer-to-peer swarm"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `bay-proxy` is asked to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve(Box<config::ServeArgs>),
    /// Point a runtime (containerd, docker, podman) at this proxy by
    /// merging into its configuration; --undo puts it back.
    Setup(setup::SetupArgs),
    /// Check this host's set-up and say what is wrong and how to fix it.
    Doctor(doctor::DoctorArgs),
    /// Print the files `setup` would write on a host without any of them.
    PrintConfig {
        /// The runtime to configure.
        #[arg(value_enum)]
        client: setup::Runtime,
        /// The proxy's address as clients reach it (its --listen).
        #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
        proxy: std::net::SocketAddr,
        /// The upstream registry, e.g. registry.example.com or docker.io.
        #[arg(long, default_value = "docker.io", value_name = "REG")]
        registry: String,
    },
}

impl Cli {
    /// Parses the command line, node flags also from `BAY_PROXY_*`.
    pub fn parse_args() -> Cli {
        bay_core::config::parse_node_cli("serve", "BAY_PROXY_")
    }
}

pub use bay_core::logging::init_logging;

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_argument_has_help() {
        let missing = bay_core::config::undocumented(&super::Cli::command());
        assert!(missing.is_empty(), "without help: {missing:?}");
    }
}
