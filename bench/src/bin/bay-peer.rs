//! A bay peer on the command line, for benchmarks and interop runs.
//!
//! ```text
//! bay-peer seed --torrent T --file F --listen ADDR [--root DIR]
//! bay-peer get  --torrent T --digest sha256:HEX --out F --peer ADDR... [--root DIR]
//! ```
//!
//! `seed` takes F into a store (by hard link when it can, after checking
//! F against its sha256), prints one line `seeding digest=sha256:... ...
//! listen=ADDR`, and serves until SIGINT or SIGTERM, then prints what it
//! uploaded.
//!
//! `get` needs the blob's digest up front (`--digest`, as `seed` prints
//! it): a v2 torrent names its pieces' merkle roots, not the OCI digest,
//! and the store only admits a blob once its digest checks out. It
//! downloads from the given peers into the store (resuming whatever a
//! previous run with the same `--root` left), then hard-links the blob to
//! `--out` (copying where linking is impossible) and prints one line
//! `done bytes=N seconds=S MB/s=R downloaded=D` (MB = 10^6 bytes;
//! `downloaded` counts bytes fetched in this run). Without `--root`, a
//! temporary store is used and removed at exit.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bay_core::engine::{new_peer_id, Engine, EngineConfig, TorrentSpec};
use bay_core::peer_tls::PeerTls;
use bay_core::store::Store;
use bay_httpd::Driver;
use bay_wire::fleet::FleetKeys;
use bay_wire::metainfo::Metainfo;
use bay_wire::oci::Digest;
use clap::{Args, Parser, Subcommand};
use sha2::{Digest as _, Sha256};

/// Store budget: large enough never to evict in a benchmark.
const BUDGET: u64 = u64::MAX / 2;

#[derive(Parser, Debug)]
#[command(
    name = "bay-peer",
    about = "Seed or fetch one blob over BitTorrent v2 with bay's engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Seed FILE for TORRENT until SIGINT/SIGTERM.
    ///
    /// FILE is taken into the store by hard link (a copy across file
    /// systems) after its sha256 is checked. Prints one line
    /// `seeding digest=sha256:HEX info_hash=HEX listen=ADDR` once peers
    /// can connect, and `stopped uploaded=BYTES seconds=S` at the end.
    Seed(SeedArgs),
    /// Download TORRENT's blob from the given peers into OUT.
    ///
    /// The blob's digest is required up front (--digest, as `seed` prints
    /// it): a v2 torrent carries merkle roots, not the OCI digest, and the
    /// store admits a blob only once its digest checks out. With the same
    /// --root, a killed download resumes. Prints one line
    /// `done bytes=N seconds=S MB/s=R downloaded=D` (MB = 10^6 bytes;
    /// `downloaded` counts bytes fetched in this run; seconds run from
    /// adding the torrent to the verified blob being in the store).
    Get(GetArgs),
}

#[derive(Args, Debug)]
struct Common {
    /// The v2 .torrent file.
    #[arg(long)]
    torrent: PathBuf,
    /// Store root; a temporary one (removed at exit) if not given.
    #[arg(long)]
    root: Option<PathBuf>,
    /// monoio driver: auto, uring or legacy (epoll).
    #[arg(long, default_value = "auto")]
    driver: String,
    /// Keyed mode: peers prove they hold this fleet key.
    #[arg(long)]
    fleet_key_file: Option<PathBuf>,
    /// Encrypt the peer links (TLS keyed by the fleet key).
    #[arg(long, requires = "fleet_key_file")]
    encrypt: bool,
}

#[derive(Args, Debug)]
struct SeedArgs {
    #[command(flatten)]
    common: Common,
    /// The blob's bytes.
    #[arg(long)]
    file: PathBuf,
    /// Where peers connect.
    #[arg(long)]
    listen: SocketAddr,
}

#[derive(Args, Debug)]
struct GetArgs {
    #[command(flatten)]
    common: Common,
    /// The blob's OCI digest (sha256:HEX), as `seed` prints it.
    #[arg(long)]
    digest: String,
    /// Where the verified blob is written.
    #[arg(long)]
    out: PathBuf,
    /// A peer to fetch from; repeat for several.
    #[arg(long = "peer", required = true)]
    peers: Vec<SocketAddr>,
    /// Where other peers may connect to us.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Seed(args) => seed(args),
        Cmd::Get(args) => get(args),
    }
}

/// An opened store, and the temporary folder behind it if any.
struct OpenStore {
    store: Store,
    _tmp: Option<tempfile::TempDir>,
}

fn open_store(root: Option<&Path>) -> Result<OpenStore> {
    let (root, tmp) = match root {
        Some(r) => (r.to_path_buf(), None),
        None => {
            let t = tempfile::tempdir().context("creating a temporary store")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let store =
        Store::open(&root, BUDGET).with_context(|| format!("opening store {}", root.display()))?;
    Ok(OpenStore { store, _tmp: tmp })
}

fn read_torrent(path: &Path) -> Result<Metainfo> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Metainfo::from_bytes(&bytes).with_context(|| format!("parsing {}", path.display()))
}

fn start_engine(listen: SocketAddr, common: &Common, store: Store) -> Result<Engine> {
    let mut config = EngineConfig::new(listen, new_peer_id());
    config.driver = common
        .driver
        .parse::<Driver>()
        .map_err(anyhow::Error::msg)?;
    if let Some(path) = &common.fleet_key_file {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let keys =
            FleetKeys::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
        if common.encrypt {
            config.peer_tls = Some(PeerTls::from_keys(&keys)?);
        }
        config.fleet = Some(keys);
    }
    Ok(Engine::start(config, store)?)
}

fn sha256_file(path: &Path) -> Result<Digest> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    let hash: [u8; 32] = hasher.finalize().into();
    Ok(Digest::from_sha256_bytes(&hash))
}

fn seed(args: SeedArgs) -> Result<()> {
    let metainfo = read_torrent(&args.common.torrent)?;
    let opened = open_store(args.common.root.as_deref())?;
    let digest = sha256_file(&args.file)?;
    opened
        .store
        .import_file(&digest, &args.file)
        .with_context(|| format!("importing {}", args.file.display()))?;
    let engine = start_engine(args.listen, &args.common, opened.store.clone())?;
    let info_hash = metainfo.info_hash();
    let handle = engine.add_torrent(TorrentSpec {
        digest: digest.clone(),
        metainfo,
    })?;
    if !handle.progress().is_complete() {
        bail!("the file does not match the torrent");
    }
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the signal handler")?;
    println!(
        "seeding digest={digest} info_hash={} listen={}",
        info_hash.to_hex(),
        engine.local_addr()
    );
    std::io::stdout().flush()?;
    let started = Instant::now();
    let _ = stop_rx.recv();
    let uploaded = engine
        .status(handle.info_hash())
        .map_or(0, |s| s.stats.uploaded);
    let seconds = started.elapsed().as_secs_f64();
    println!("stopped uploaded={uploaded} seconds={seconds:.3}");
    engine.shutdown();
    Ok(())
}

fn get(args: GetArgs) -> Result<()> {
    let metainfo = read_torrent(&args.common.torrent)?;
    let digest = Digest::parse(&args.digest).map_err(|e| anyhow::anyhow!("--digest: {e}"))?;
    let opened = open_store(args.common.root.as_deref())?;
    let engine = start_engine(args.listen, &args.common, opened.store.clone())?;
    let total = metainfo.info().files.first().map_or(0, |f| f.length);
    let started = Instant::now();
    let handle = engine.add_torrent(TorrentSpec {
        digest: digest.clone(),
        metainfo,
    })?;
    for peer in &args.peers {
        engine.connect(handle.info_hash(), *peer);
    }
    handle
        .progress()
        .wait_complete_blocking(Duration::from_secs(args.timeout))
        .context("download did not complete")?;
    let seconds = started.elapsed().as_secs_f64();
    let downloaded = engine
        .status(handle.info_hash())
        .map_or(0, |s| s.stats.downloaded);
    drop(handle);
    engine.shutdown();
    let blob = opened
        .store
        .get(&digest)?
        .context("the store does not hold the finished blob")?;
    let blob_path = opened
        .store
        .root()
        .join("blobs")
        .join(digest.path_component());
    write_out(&blob_path, blob.file(), &args.out)?;
    let mbps = total as f64 / seconds / 1e6;
    println!("done bytes={total} seconds={seconds:.3} MB/s={mbps:.1} downloaded={downloaded}");
    Ok(())
}

/// Puts the blob at `out`: a hard link to the store's file if possible,
/// else a copy.
fn write_out(blob_path: &Path, blob: &fs::File, out: &Path) -> Result<()> {
    match fs::remove_file(out) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("replacing {}", out.display())),
    }
    if fs::hard_link(blob_path, out).is_ok() {
        return Ok(());
    }
    let mut src = blob.try_clone()?;
    let mut dst = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    std::io::copy(&mut src, &mut dst).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
