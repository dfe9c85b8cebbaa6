//! bay-tracker: the BitTorrent tracker and origin seeder.
//!
//! It owns the `bay-tracker` program: today its `mktorrent` command, which
//! writes a BitTorrent v2 torrent for a file; later the tracker (announce,
//! scrape), the origin seeder that fetches each blob from the registry once,
//! and preheat.
//!
//! It must not reach into bay-proxy; what both need lives in bay-core.

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
    Serve(config::ServeArgs),
}
pub mod config;
pub mod serve;
pub mod service;

/// Structured logs on stderr; `RUST_LOG` filters (default `info`), and
/// `BAY_LOG_FORMAT=json` switches to JSON lines.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a terminal: logs sent to a file or a journal
    // stay plain text that grep and log shippers can read.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("BAY_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
