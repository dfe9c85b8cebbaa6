//! The piece engine: the I/O around [`crate::swarm::Swarm`].
//!
//! One thread runs a monoio runtime (io_uring or epoll) that owns every
//! torrent and every peer connection of the process. Other threads talk to
//! it through [`Engine`] (commands over a crossbeam channel) and watch
//! downloads through [`Progress`] and [`BlobReader`], which cross threads.
//!
//! Connections are driven by readiness: the socket is non-blocking, the
//! runtime says when it is readable or writable, and the engine makes the
//! system calls itself. That way a block goes to a peer by sendfile(2)
//! from the blob file under either driver, and a connection is a single
//! task with no read or write left in flight when it stops.
//!
//! Layout: [`torrent`] (one swarm with its storage, and the event loop
//! between them), [`conn`] (one peer connection), [`mailbox`] and
//! [`notify`] (wake-ups across and within threads), [`verify`] (the thread that hashes pieces).

mod conn;
mod counters;
mod mailbox;
mod notify;
mod thread;
mod torrent;
mod verify;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bay_httpd::{build_runtime, resolve_driver, Driver, RunningDriver};
use bay_wire::fleet::Naming;
use bay_wire::merkle;
use bay_wire::metainfo::Metainfo;
use bay_wire::oci::Digest;

use crate::picker::ReaderKey;
use crate::progress::{BlobReader, Progress, ReaderHooks};
use crate::rate::TokenBucket;
use crate::store::{CheckedPiece, PieceError, Store, StoreError};
use crate::swarm::{SwarmConfig, SwarmStats};
pub use counters::PeerCounters;
use mailbox::{mailbox, Inbox, Outbox};
use notify::Notify;
use thread::{run, EngineState};
use torrent::{Plan, Torrent};
use verify::Verifier;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where peers connect to us.
    pub listen: SocketAddr,
    /// Our BitTorrent peer id.
    pub peer_id: [u8; 20],
    pub swarm: SwarmConfig,
    pub driver: Driver,
    /// Most peer connections over all torrents. At the limit, a new
    /// connection takes the place of the one that has offered nothing for
    /// longest, if any.
    pub max_connections: usize,
    /// Most connections from or to one IP address in one swarm.
    pub max_peers_per_address: usize,
    /// The fleet's keys: every peer proves it holds one before any
    /// message flows. `None` is open mode (and how bay interoperates with
    /// other BitTorrent clients).
    pub fleet: Option<bay_wire::fleet::FleetKeys>,
    /// Encrypt every peer link (keyed mode only): TLS from the first
    /// byte, with the certificate derived from the fleet key. Blocks then
    /// leave through a copy instead of sendfile(2).
    pub peer_tls: Option<crate::peer_tls::PeerTls>,
    /// A complete blob shared by swarm name that has had no peer and no
    /// reader for this long leaves the engine (its timers and its pin on
    /// the store go with it); a peer asking for it loads it again.
    pub unload_after: Duration,
    pub connect_timeout: Duration,
    /// How long a new connection may take to send its handshake.
    pub handshake_timeout: Duration,
    /// Piece bytes sent to peers per second, over all connections.
    pub upload_limit: Option<u64>,
    /// Bytes received from peers per second, over all connections.
    pub download_limit: Option<u64>,
}

impl EngineConfig {
    pub fn new(listen: SocketAddr, peer_id: [u8; 20]) -> EngineConfig {
        EngineConfig {
            listen,
            peer_id,
            swarm: SwarmConfig::default(),
            driver: Driver::Auto,
            max_connections: 512,
            max_peers_per_address: 8,
            unload_after: Duration::from_secs(120),
            fleet: None,
            peer_tls: None,
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            upload_limit: None,
            download_limit: None,
        }
    }
}

/// A peer id for this process: `-BY0100-` then twelve characters from the
/// operating system's random source (letters and digits, as clients show
/// them). Peer ids must not be guessable: two hosts started in the same
/// nanosecond must not collide, and nobody should predict one.
pub fn new_peer_id() -> [u8; 20] {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = *b"-BY0100-000000000000";
    let mut random = [0u8; 12];
    if let Err(e) = getrandom::getrandom(&mut random) {
        // Without an OS random source, a seed from the clock and pid is
        // the best there is; say so.
        tracing::warn!(error = %e, "no OS randomness for the peer id");
        let mut rng = fastrand::Rng::new();
        rng.fill(&mut random);
    }
    for (b, r) in id.iter_mut().skip(8).zip(random) {
        *b = ALPHABET[usize::from(r) % ALPHABET.len()];
    }
    id
}

/// What went wrong, for an operator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the peer engine: {0}")]
    Start(io::Error),
    #[error("the peer engine has stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("torrent not usable: {0}")]
    Torrent(String),
}

/// A blob to share: its digest and its v2 metainfo.
#[derive(Debug, Clone)]
pub struct TorrentSpec {
    pub digest: Digest,
    pub metainfo: Metainfo,
}

impl TorrentSpec {
    fn plan(self) -> Result<Plan, EngineError> {
        let info = self.metainfo.info();
        let [file] = info.files.as_slice() else {
            return Err(EngineError::Torrent(format!(
                "{} files; bay shares one blob per torrent",
                info.files.len()
            )));
        };
        let hashes = (0..info.num_pieces())
            .map(|p| {
                self.metainfo
                    .piece_hash(p)
                    .ok_or_else(|| EngineError::Torrent(format!("no hash for piece {p}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Plan {
            unloadable: false,
            swarm_id: self.metainfo.info_hash().truncated(),
            total_len: file.length,
            piece_len: info.piece_length,
            hashes,
            torrent_bytes: Some(self.metainfo.to_bytes()),
            digest: self.digest,
        })
    }
}

/// A blob whose piece hashes arrive while its origin is still fetching it
/// from the registry: the swarm starts before anyone has the whole blob.
/// Once complete and idle it is unloaded, and loaded again from the store
/// when a peer names its swarm: a host seeds every blob it holds at no
/// cost while nobody asks.
/// Its swarm is named by [`bay_wire::origin::swarm_id`] of the digest, since the v2 info
/// hash is only known at the end.
#[derive(Debug, Clone)]
pub struct ProgressiveSpec {
    pub digest: Digest,
    pub total_len: u64,
    /// A power of two, at least 16 KiB.
    pub piece_len: u64,
}

/// A torrent's state, for status pages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentStatus {
    pub info_hash: [u8; 20],
    pub digest: Digest,
    pub total_len: u64,
    pub complete: bool,
    pub stats: SwarmStats,
}

enum Command {
    AddTorrent {
        plan: Box<Plan>,
        reply: crossbeam_channel::Sender<Result<Added, EngineError>>,
    },
    PieceHash {
        info_hash: [u8; 20],
        piece: u32,
        hash: merkle::Hash,
    },
    SupplyPiece {
        info_hash: [u8; 20],
        piece: u32,
        data: bytes::Bytes,
        hashed: Option<merkle::Hash>,
    },
    SetTorrent {
        info_hash: [u8; 20],
        bytes: Vec<u8>,
    },
    Connect {
        info_hash: [u8; 20],
        addr: SocketAddr,
    },
    Status {
        info_hash: [u8; 20],
        reply: crossbeam_channel::Sender<Option<TorrentStatus>>,
    },
    List {
        reply: crossbeam_channel::Sender<Vec<TorrentStatus>>,
    },
    SetReader {
        info_hash: [u8; 20],
        reader: ReaderKey,
        offset: u64,
    },
    RemoveReader {
        info_hash: [u8; 20],
        reader: ReaderKey,
    },
    HoldUntilRead {
        info_hash: [u8; 20],
    },
    Release {
        info_hash: [u8; 20],
    },
    /// The verifier thread checked a piece.
    PieceChecked {
        info_hash: [u8; 20],
        piece: u32,
        result: Result<CheckedPiece, PieceError>,
    },
    /// A download's whole-blob check and move into the store ended.
    Finished {
        info_hash: [u8; 20],
        result: Result<crate::store::BlobRef, StoreError>,
    },
    Shutdown,
}

struct Added {
    progress: Arc<Progress>,
    file: File,
}

/// A handle on the engine thread; dropping it stops the engine.
#[derive(Debug)]
pub struct Engine {
    outbox: Outbox<Command>,
    local_addr: SocketAddr,
    peer_id: [u8; 20],
    naming: Naming,
    counters: Arc<PeerCounters>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::AddTorrent { .. } => "AddTorrent",
            Command::PieceHash { .. } => "PieceHash",
            Command::SupplyPiece { .. } => "SupplyPiece",
            Command::SetTorrent { .. } => "SetTorrent",
            Command::Connect { .. } => "Connect",
            Command::Status { .. } => "Status",
            Command::List { .. } => "List",
            Command::SetReader { .. } => "SetReader",
            Command::RemoveReader { .. } => "RemoveReader",
            Command::HoldUntilRead { .. } => "HoldUntilRead",
            Command::Release { .. } => "Release",
            Command::PieceChecked { .. } => "PieceChecked",
            Command::Finished { .. } => "Finished",
            Command::Shutdown => "Shutdown",
        })
    }
}

impl Engine {
    /// Binds the peer listener and starts the engine thread.
    pub fn start(config: EngineConfig, store: Store) -> Result<Engine, EngineError> {
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| EngineError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(EngineError::Start)?;
        let driver = resolve_driver(config.driver).map_err(EngineError::Start)?;
        let peer_id = config.peer_id;
        let naming = config.fleet.clone().map_or(Naming::Open, Naming::Keyed);
        let (outbox, inbox) = mailbox();
        let verifier = verify::start(outbox.clone()).map_err(EngineError::Start)?;
        let counters = Arc::new(PeerCounters::default());
        let engine_counters = counters.clone();
        let engine_outbox = outbox.clone();
        let thread = std::thread::Builder::new()
            .name("bay-peers".into())
            .spawn(move || {
                let mut runtime = match build_runtime(driver) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot build the peer engine runtime");
                        return;
                    }
                };
                // The epoll driver expects non-blocking descriptors; io_uring
                // takes them as they are.
                if driver == RunningDriver::Legacy {
                    if let Err(e) = listener.set_nonblocking(true) {
                        tracing::error!(error = %e, "peer listener unusable");
                        return;
                    }
                }
                runtime.block_on(run(
                    config,
                    store,
                    listener,
                    inbox,
                    engine_outbox,
                    verifier,
                    engine_counters,
                ));
            })
            .map_err(EngineError::Start)?;
        tracing::info!(%local_addr, ?driver, "peer engine listening");
        Ok(Engine {
            outbox,
            local_addr,
            peer_id,
            naming,
            counters,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Where peers reach this engine.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How this engine names swarms (openly, or under the fleet key).
    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// The name this engine gives the swarm of `digest`.
    pub fn swarm_id(&self, digest: &Digest) -> [u8; 20] {
        self.naming.swarm_id(digest)
    }

    /// The peer id this engine gives in every handshake (and its host in
    /// every announce).
    pub fn peer_id(&self) -> [u8; 20] {
        self.peer_id
    }

    /// Piece bytes moved to and from peers, over all torrents.
    pub fn counters(&self) -> &PeerCounters {
        &self.counters
    }

    /// Starts sharing a blob: seeding it if the store has it, else
    /// downloading it (resuming a partial download).
    pub fn add_torrent(&self, spec: TorrentSpec) -> Result<TorrentHandle, EngineError> {
        self.add(spec.plan()?)
    }

    /// Starts sharing a blob whose piece hashes will come later, through
    /// [`TorrentHandle::set_piece_hash`]; pieces may also be supplied
    /// directly ([`TorrentHandle::supply_piece`]), as the origin does.
    pub fn add_progressive(&self, spec: ProgressiveSpec) -> Result<TorrentHandle, EngineError> {
        let swarm_id = self.naming.swarm_id(&spec.digest);
        self.add_progressive_named(spec, swarm_id)
    }

    /// [`Engine::add_progressive`] under a name given by the blob's
    /// origin (one of this fleet's names for it: during a key rotation
    /// the origin's may be the older one).
    pub fn add_progressive_named(
        &self,
        spec: ProgressiveSpec,
        swarm_id: [u8; 20],
    ) -> Result<TorrentHandle, EngineError> {
        self.add(Plan {
            unloadable: true,
            swarm_id,
            total_len: spec.total_len,
            piece_len: spec.piece_len,
            hashes: Vec::new(),
            torrent_bytes: None,
            digest: spec.digest,
        })
    }

    fn add(&self, plan: Plan) -> Result<TorrentHandle, EngineError> {
        let info_hash = plan.swarm_id;
        let (reply, answer) = crossbeam_channel::bounded(1);
        let plan = Box::new(plan);
        if !self.outbox.send(Command::AddTorrent { plan, reply }) {
            return Err(EngineError::Stopped);
        }
        let added = answer.recv().map_err(|_| EngineError::Stopped)??;
        Ok(TorrentHandle {
            info_hash,
            progress: added.progress,
            file: added.file,
            outbox: self.outbox.clone(),
        })
    }

    /// Dials a peer for a torrent already added.
    pub fn connect(&self, info_hash: [u8; 20], addr: SocketAddr) {
        self.outbox.send(Command::Connect { info_hash, addr });
    }

    pub fn status(&self, info_hash: [u8; 20]) -> Option<TorrentStatus> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.outbox.send(Command::Status { info_hash, reply });
        answer.recv().ok().flatten()
    }

    /// Every torrent loaded now (idle blobs are not: see
    /// [`EngineConfig::unload_after`]).
    pub fn torrents(&self) -> Vec<TorrentStatus> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.outbox.send(Command::List { reply });
        answer.recv().unwrap_or_default()
    }

    /// Stops the engine: connections close, the thread ends.
    pub fn shutdown(self) {
        self.close();
    }

    /// Stops the engine and waits for its thread, through a shared handle:
    /// connections close and the peer listener with them, even while
    /// other owners of this handle (tasks that outlive their runtime)
    /// still hold it.
    pub fn close(&self) {
        self.outbox.send(Command::Shutdown);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            if t.join().is_err() {
                tracing::error!("the peer engine thread panicked");
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}

static NEXT_READER: AtomicU64 = AtomicU64::new(1);

/// A torrent added to the engine.
#[derive(Debug)]
pub struct TorrentHandle {
    info_hash: [u8; 20],
    progress: Arc<Progress>,
    file: File,
    outbox: Outbox<Command>,
}

impl TorrentHandle {
    pub fn info_hash(&self) -> [u8; 20] {
        self.info_hash
    }

    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// The hash piece `piece` must have, from the trusted source.
    pub fn set_piece_hash(&self, piece: u32, hash: merkle::Hash) {
        self.outbox.send(Command::PieceHash {
            info_hash: self.info_hash,
            piece,
            hash,
        });
    }

    /// A whole piece fetched outside the swarm; it is checked against its
    /// hash (set it first) before it counts.
    pub fn supply_piece(&self, piece: u32, data: bytes::Bytes) {
        self.outbox.send(Command::SupplyPiece {
            info_hash: self.info_hash,
            piece,
            data,
            hashed: None,
        });
    }

    /// [`TorrentHandle::supply_piece`] for a piece the caller hashed
    /// itself, from these very bytes, to get `hash` (and set it as the
    /// piece's hash): the engine compares the two instead of hashing the
    /// piece again on its own thread.
    pub fn supply_hashed_piece(&self, piece: u32, data: bytes::Bytes, hash: merkle::Hash) {
        self.outbox.send(Command::SupplyPiece {
            info_hash: self.info_hash,
            piece,
            data,
            hashed: Some(hash),
        });
    }

    /// The final metainfo, to keep beside the blob once it is complete.
    pub fn set_torrent(&self, bytes: Vec<u8>) {
        self.outbox.send(Command::SetTorrent {
            info_hash: self.info_hash,
            bytes,
        });
    }

    /// Joins the swarm without fetching anything until the first
    /// [`TorrentHandle::reader`]: for a blob a client is likely, but not
    /// sure, to ask for.
    pub fn hold_until_read(&self) {
        self.outbox.send(Command::HoldUntilRead {
            info_hash: self.info_hash,
        });
    }

    /// Lets go of an incomplete blob nobody reads any more: its
    /// connections close and it leaves the engine; the pieces fetched so
    /// far stay in the store (to resume, or to be evicted). Does nothing to
    /// a complete blob or one being read.
    pub fn release(&self) {
        self.outbox.send(Command::Release {
            info_hash: self.info_hash,
        });
    }

    /// Reads `range` of the blob as it is verified; the swarm fetches the
    /// pieces just ahead of the reader first.
    pub fn reader(&self, range: std::ops::Range<u64>) -> Result<BlobReader, EngineError> {
        let file = self.file.try_clone().map_err(EngineError::Start)?;
        let reader = NEXT_READER.fetch_add(1, Ordering::Relaxed);
        let info_hash = self.info_hash;
        self.outbox.send(Command::SetReader {
            info_hash,
            reader,
            offset: range.start,
        });
        let outbox = self.outbox.clone();
        let moved = Box::new(move |offset| {
            outbox.send(Command::SetReader {
                info_hash,
                reader,
                offset,
            });
        });
        let outbox = self.outbox.clone();
        let dropped = Box::new(move || {
            outbox.send(Command::RemoveReader { info_hash, reader });
        });
        let hooks = ReaderHooks {
            moved: Some(moved),
            dropped: Some(dropped),
        };
        Ok(BlobReader::new(self.progress.clone(), file, range, hooks))
    }
}
