//! bay-tracker: the BitTorrent tracker and origin seeder.
//!
//! It owns the `bay-tracker` program: the tracker (announce, held
//! announces, scrape), the origin seeder that fetches each blob from the
//! registry once and seeds it (the origin API, preheat), and the `keygen`
//! and `mktorrent` commands.
//!
//! It must not reach into bay-proxy; what both need lives in bay-core.
//!
//! Layout: [`config`] (settings), [`serve`] (start and stop), [`service`]
//! (the HTTP endpoints), [`peers`] (who is in which swarm), [`origin`]
//! (the origin seeder and its API), [`guard`] (fleet-signed requests),
//! [`keygen`], [`mktorrent`].

pub mod catalog;
pub mod guard;
pub mod keygen;
pub mod mktorrent;
pub mod origin;
pub mod peers;

/// The `bay-tracker` command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "bay-tracker",
    version,
    about = "BitTorrent tracker and origin seeder for container image layers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `bay-tracker` is asked to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the BitTorrent v2 torrent of a file and print its info hash.
    Mktorrent(mktorrent::Args),
    /// Run the tracker and origin seeder.
    Serve(Box<config::ServeArgs>),
    /// Write a new fleet key (for fleet_key_file on every tracker and proxy).
    Keygen(keygen::Args),
}
pub mod config;
pub mod serve;
pub mod service;
pub mod status;

impl Cli {
    /// Parses the command line, node flags also from `BAY_TRACKER_*`.
    pub fn parse_args() -> Cli {
        bay_core::config::parse_node_cli("serve", "BAY_TRACKER_")
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
