//! One torrent on the engine thread: its swarm, where its bytes live, and
//! the loop that carries the swarm's events out (store a block, check a
//! piece, close a connection) and wakes connections with output.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs::File;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bay_wire::merkle;
use bay_wire::oci::Digest;

use super::notify::Notify;
use super::verify::{Job, JobKind};
use super::{Added, Command, EngineError, EngineState, TorrentStatus};
use crate::bitfield::Bitfield;
use crate::picker::{PeerKey, ReaderKey};
use crate::progress::Progress;
use crate::store::{BlobRef, CheckedPiece, PartialBlob, PieceChecker, PieceError, StoreError};
use crate::swarm::{DisconnectReason, Event, Geometry, Swarm, SwarmStats};

/// Where a torrent's bytes are.
enum Storage {
    Partial(PartialBlob),
    /// Every piece is verified; a thread checks the whole blob against its
    /// digest and moves it into the store. Peers are still served from the
    /// open file meanwhile.
    Finishing,
    Complete {
        _pin: BlobRef,
    },
    /// After a failure: nothing more is written or served.
    Closed,
}

/// What the engine needs to know to share a blob.
pub(super) struct Plan {
    /// Shared by swarm name: may leave the engine when idle.
    pub(super) unloadable: bool,
    pub(super) digest: Digest,
    pub(super) swarm_id: [u8; 20],
    pub(super) total_len: u64,
    pub(super) piece_len: u64,
    /// Hashes known up front, by piece (may be fewer than the pieces).
    pub(super) hashes: Vec<merkle::Hash>,
    pub(super) torrent_bytes: Option<Vec<u8>>,
}

/// A connection as the torrent sees it.
pub(super) struct Link {
    pub(super) addr: SocketAddr,
    pub(super) wake: Notify,
    pub(super) closing: Cell<bool>,
}

impl Link {
    pub(super) fn new(addr: SocketAddr) -> Link {
        Link {
            addr,
            wake: Notify::default(),
            closing: Cell::new(false),
        }
    }

    pub(super) fn close(&self) {
        self.closing.set(true);
        self.wake.notify();
    }
}

pub(super) struct Torrent {
    pub(super) info_hash: [u8; 20],
    digest: Digest,
    torrent_bytes: RefCell<Option<Vec<u8>>>,
    pub(super) swarm: RefCell<Swarm>,
    /// The swarm's counts when last added to the engine's counters.
    counted: Cell<SwarmStats>,
    storage: RefCell<Storage>,
    /// The blob's file, open for sendfile to peers. A partial download's
    /// file is renamed into the store when complete; this descriptor keeps
    /// pointing at it.
    pub(super) file: Rc<File>,
    progress: Arc<Progress>,
    pub(super) links: RefCell<HashMap<PeerKey, Rc<Link>>>,
    timer: Notify,
    /// Hashes this download's pieces on the verifier thread.
    checker: Option<Arc<PieceChecker>>,
    unloadable: bool,
    /// Since when nothing has happened here, if nothing is happening.
    quiet_since: Cell<Option<Instant>>,
}

impl Torrent {
    pub(super) fn open(state: &EngineState, plan: Plan) -> Result<Torrent, EngineError> {
        let Plan {
            unloadable,
            digest,
            swarm_id,
            total_len,
            piece_len,
            hashes,
            torrent_bytes,
        } = plan;
        let piece_len32 = u32::try_from(piece_len)
            .map_err(|_| EngineError::Torrent("piece length over 4 GiB".into()))?;
        if total_len == 0 {
            return Err(EngineError::Torrent("empty blob".into()));
        }
        let geometry = Geometry {
            total_len,
            piece_len: piece_len32,
        };
        let pieces = u32::try_from(total_len.div_ceil(piece_len))
            .map_err(|_| EngineError::Torrent("too many pieces".into()))?;
        let mut unknown = Vec::new();
        let mut checker = None;
        let (storage, have, file) = match state.store.get(&digest)? {
            Some(blob) => {
                if blob.len() != total_len {
                    return Err(EngineError::Torrent(format!(
                        "stored blob is {} bytes, the torrent says {total_len}",
                        blob.len()
                    )));
                }
                let file = blob.file().try_clone().map_err(EngineError::Start)?;
                (
                    Storage::Complete { _pin: blob },
                    Bitfield::full(pieces),
                    file,
                )
            }
            None => {
                let mut partial = state.store.begin_partial(&digest, total_len, piece_len)?;
                for (piece, hash) in hashes.iter().enumerate() {
                    let piece = piece as u32;
                    partial
                        .set_piece_hash(piece, *hash)
                        .map_err(|e| EngineError::Torrent(e.to_string()))?;
                }
                unknown = (0..pieces).filter(|&p| !partial.hash_known(p)).collect();
                let have = partial.have().clone();
                let file = partial.data_file()?;
                checker = Some(Arc::new(partial.checker()?));
                (Storage::Partial(partial), have, file)
            }
        };
        let mut swarm = Swarm::new(
            state.config.swarm.clone(),
            geometry,
            swarm_id,
            state.config.peer_id,
            &have,
            Instant::now(),
        );
        swarm.set_hashes_unknown(unknown);
        let in_store = matches!(storage, Storage::Complete { .. });
        let progress = Progress::new(have, in_store, piece_len, total_len);
        Ok(Torrent {
            info_hash: swarm_id,
            digest,
            torrent_bytes: RefCell::new(torrent_bytes),
            swarm: RefCell::new(swarm),
            counted: Cell::new(SwarmStats::default()),
            storage: RefCell::new(storage),
            file: Rc::new(file),
            progress,
            links: RefCell::new(HashMap::new()),
            timer: Notify::default(),
            checker,
            unloadable,
            quiet_since: Cell::new(None),
        })
    }

    /// Learns the hash of a piece from the trusted source (progressive
    /// torrents): it may now be fetched from peers.
    pub(super) fn set_piece_hash(&self, piece: u32, hash: merkle::Hash) {
        let result = match &mut *self.storage.borrow_mut() {
            Storage::Partial(p) => p.set_piece_hash(piece, hash),
            _ => return,
        };
        match result {
            Ok(()) => {
                self.swarm.borrow_mut().hash_known(piece, Instant::now());
                self.wake_links();
            }
            Err(e) => tracing::warn!(piece, error = %e, "piece hash refused"),
        }
    }

    /// A piece from outside the swarm (the registry, for the origin or as
    /// a web seed): checked against its hash like any other.
    pub(super) fn supply_piece(
        &self,
        state: &EngineState,
        piece: u32,
        data: &[u8],
        hashed: Option<&merkle::Hash>,
    ) {
        let result = match &mut *self.storage.borrow_mut() {
            Storage::Partial(p) => p.write_piece_hashed(piece, data, hashed),
            _ => return,
        };
        match result {
            Ok(()) => {
                if hashed.is_some() {
                    self.fold(state, piece);
                }
                self.swarm
                    .borrow_mut()
                    .piece_verified(piece, Instant::now());
                self.progress.piece_done(piece);
                self.drive(state);
            }
            Err(e) => {
                tracing::warn!(piece, digest = %self.digest, error = %e, "supplied piece refused")
            }
        }
    }

    /// The final metainfo of a progressive torrent, kept beside the blob.
    pub(super) fn set_torrent(&self, state: &EngineState, bytes: Vec<u8>) {
        if matches!(*self.storage.borrow(), Storage::Complete { .. }) {
            if let Err(e) = state.store.put_torrent(&self.digest, &bytes) {
                tracing::warn!(error = %e, "cannot keep the torrent beside the blob");
            }
        }
        *self.torrent_bytes.borrow_mut() = Some(bytes);
    }

    pub(super) fn added(&self) -> Result<Added, EngineError> {
        Ok(Added {
            progress: self.progress.clone(),
            file: self.file.try_clone().map_err(EngineError::Start)?,
        })
    }

    pub(super) fn status(&self) -> TorrentStatus {
        let swarm = self.swarm.borrow();
        TorrentStatus {
            info_hash: self.info_hash,
            digest: self.digest.clone(),
            total_len: swarm.geometry().total_len,
            complete: swarm.is_complete(),
            stats: swarm.stats(),
        }
    }

    pub(super) fn set_reader(&self, reader: ReaderKey, offset: u64) {
        self.swarm
            .borrow_mut()
            .set_reader(reader, offset, Instant::now());
        self.wake_links();
    }

    pub(super) fn remove_reader(&self, reader: ReaderKey) {
        self.swarm.borrow_mut().remove_reader(reader);
    }

    pub(super) fn close_all(&self) {
        for link in self.links.borrow().values() {
            link.close();
        }
        self.timer.notify();
    }

    /// Carries out what the swarm asked for, then wakes connections that
    /// have something to send.
    pub(super) fn drive(&self, state: &EngineState) {
        loop {
            let event = self.swarm.borrow_mut().poll_event();
            let Some(event) = event else { break };
            match event {
                Event::StoreBlock { piece, begin, data } => {
                    let result = match &mut *self.storage.borrow_mut() {
                        Storage::Partial(p) => p.write_block(piece, begin, &data),
                        _ => Ok(()),
                    };
                    if let Err(e) = result {
                        self.fail(&format!("cannot store piece {piece}: {e}"));
                    }
                }
                Event::VerifyPiece { piece } => self.verify(state, piece),
                Event::Disconnect { peer, reason } => {
                    if let Some(link) = self.links.borrow().get(&peer) {
                        tracing::debug!(addr = %link.addr, ?reason, "closing peer");
                        match reason {
                            DisconnectReason::BadPiece => state.ban(link.addr.ip()),
                            DisconnectReason::Finished
                            | DisconnectReason::Useless
                            | DisconnectReason::MadeRoom => state.counters.closed_unused.inc(),
                            _ => {}
                        }
                        link.close();
                    }
                }
                Event::Complete => self.finish(state),
            }
        }
        self.wake_links();
        self.count(state);
    }

    /// Adds the swarm's new counts to the engine's counters.
    pub(super) fn count(&self, state: &EngineState) {
        let now = self.swarm.borrow().stats();
        state.counters.add_since(&self.counted.get(), &now);
        self.counted.set(now);
    }

    fn wake_links(&self) {
        let swarm = self.swarm.borrow();
        for (key, link) in self.links.borrow().iter() {
            if swarm.has_transmit(*key) {
                link.wake.notify();
            }
        }
    }

    /// Sends the piece to the verifier thread; its answer comes back to
    /// [`Torrent::piece_checked`]. Without a job (no hash known, nothing
    /// being downloaded) or without that thread, checks here.
    fn verify(&self, state: &EngineState, piece: u32) {
        if let Some(job) = self.verify_job(piece) {
            match state.verifier.check(job) {
                Ok(()) => return,
                Err(job) => {
                    let checked = job.checker.check(piece, job.expected);
                    self.settle(piece, checked);
                    return;
                }
            }
        }
        let result = match &mut *self.storage.borrow_mut() {
            Storage::Partial(p) => p.verify_piece(piece),
            Storage::Finishing | Storage::Complete { .. } => Ok(()),
            Storage::Closed => return,
        };
        self.settled(piece, result);
    }

    fn verify_job(&self, piece: u32) -> Option<Job> {
        self.job(piece, JobKind::Check)
    }

    fn job(&self, piece: u32, kind: JobKind) -> Option<Job> {
        let Storage::Partial(p) = &*self.storage.borrow() else {
            return None;
        };
        Some(Job {
            info_hash: self.info_hash,
            piece,
            expected: p.piece_hash(piece)?,
            checker: self.checker.clone()?,
            kind,
        })
    }

    /// Has a verifier thread fold a supplied piece into the blob's digest
    /// (or leaves it to the whole-blob check at the end).
    fn fold(&self, state: &EngineState, piece: u32) {
        if let Some(job) = self.job(piece, JobKind::Fold) {
            let _ = state.verifier.check(job);
        }
    }

    /// The verifier thread's answer about `piece`.
    pub(super) fn piece_checked(
        &self,
        state: &EngineState,
        piece: u32,
        result: Result<CheckedPiece, PieceError>,
    ) {
        self.settle(piece, result);
        self.drive(state);
    }

    /// Marks a piece the checker passed.
    fn settle(&self, piece: u32, checked: Result<CheckedPiece, PieceError>) {
        let result = match &mut *self.storage.borrow_mut() {
            // Supplied whole (and checked) while this check ran.
            Storage::Partial(p) if p.have().has(piece) => Ok(()),
            Storage::Partial(p) => checked.and_then(|c| p.mark_checked(c)),
            Storage::Finishing | Storage::Complete { .. } => checked.map(|_| ()),
            Storage::Closed => return,
        };
        self.settled(piece, result);
    }

    /// Tells the swarm and the readers how the check of `piece` went.
    fn settled(&self, piece: u32, result: Result<(), PieceError>) {
        let now = Instant::now();
        match result {
            Ok(()) => {
                self.swarm.borrow_mut().piece_verified(piece, now);
                self.progress.piece_done(piece);
            }
            Err(PieceError::Mismatch { .. }) => {
                tracing::warn!(piece, digest = %self.digest, "piece failed its hash");
                self.swarm.borrow_mut().piece_failed(piece, now);
            }
            Err(e) => self.fail(&format!("cannot check piece {piece}: {e}")),
        }
    }

    /// A download that had every piece verified when it was opened (the
    /// process stopped between its last piece and the move into the
    /// store) is finished now; otherwise nothing would.
    pub(super) fn finish_if_whole(&self, state: &EngineState) {
        let whole = matches!(&*self.storage.borrow(), Storage::Partial(p) if p.have().is_full());
        if whole {
            self.finish(state);
        }
    }

    /// Every piece checked out: check the whole blob against its digest
    /// and move it into the store, on a thread of its own. That reads the
    /// whole blob (about 0.15 s per 64 MiB), during which this thread must
    /// keep serving peers: on the engine thread it stopped every upload of
    /// the process, the origin's included, once per blob.
    fn finish(&self, state: &EngineState) {
        let storage = std::mem::replace(&mut *self.storage.borrow_mut(), Storage::Finishing);
        let Storage::Partial(partial) = storage else {
            *self.storage.borrow_mut() = storage;
            return;
        };
        let (info_hash, outbox) = (self.info_hash, state.outbox.clone());
        let work = move || {
            let result = partial.finish();
            outbox.send(Command::Finished { info_hash, result });
        };
        if let Err(e) = std::thread::Builder::new()
            .name("bay-finish".into())
            .spawn(work)
        {
            self.fail(&format!("cannot start checking the whole blob: {e}"));
        }
    }

    /// The whole-blob check ended.
    pub(super) fn finished(&self, state: &EngineState, result: Result<BlobRef, StoreError>) {
        if !matches!(*self.storage.borrow(), Storage::Finishing) {
            return;
        }
        match result {
            Ok(blob) => {
                if let Some(bytes) = &*self.torrent_bytes.borrow() {
                    if let Err(e) = state.store.put_torrent(&self.digest, bytes) {
                        tracing::warn!(error = %e, "cannot keep the torrent beside the blob");
                    }
                }
                tracing::info!(digest = %self.digest, "download complete");
                *self.storage.borrow_mut() = Storage::Complete { _pin: blob };
                self.progress.set_complete();
            }
            Err(e) => self.fail(&format!("blob does not match its digest: {e}")),
        }
    }

    fn fail(&self, why: &str) {
        tracing::error!(digest = %self.digest, why, "download abandoned");
        *self.storage.borrow_mut() = Storage::Closed;
        self.progress.set_failed(why.to_string());
        self.close_all();
    }

    /// Whether one more connection with `addr`'s IP fits this swarm's
    /// per-address limit.
    pub(super) fn has_place_for(&self, addr: SocketAddr, max_per_address: usize) -> bool {
        let same_ip = self
            .links
            .borrow()
            .values()
            .filter(|l| l.addr.ip() == addr.ip())
            .count();
        same_ip < max_per_address
    }

    /// Closes an incomplete torrent nobody reads; the partial blob stays
    /// in the store. Returns whether it was closed.
    pub(super) fn release(&self) -> bool {
        let partial = matches!(*self.storage.borrow(), Storage::Partial(_));
        if !partial || self.swarm.borrow().has_readers() {
            return false;
        }
        tracing::debug!(digest = %self.digest, "releasing a blob nobody asked for");
        *self.storage.borrow_mut() = Storage::Closed;
        self.progress.set_failed("released: no reader".to_string());
        self.close_all();
        true
    }

    pub(super) fn is_closed(&self) -> bool {
        matches!(*self.storage.borrow(), Storage::Closed)
    }
}

impl Torrent {
    /// Whether the torrent has been idle (complete, stored, no peer, no
    /// reader) for `after`; starts or resets the count.
    fn idle_for(&self, after: std::time::Duration, now: Instant) -> bool {
        let idle = self.unloadable
            && matches!(*self.storage.borrow(), Storage::Complete { .. })
            && self.links.borrow().is_empty()
            && self.swarm.borrow().is_idle();
        if !idle {
            self.quiet_since.set(None);
            return false;
        }
        let since = *self.quiet_since.get().get_or_insert(now);
        self.quiet_since.set(Some(since));
        now.saturating_duration_since(since) >= after
    }
}

/// Runs the swarm's timers while the engine runs, and unloads the torrent
/// once it has been idle for [`super::EngineConfig::unload_after`].
pub(super) async fn run_timers(state: Rc<EngineState>, torrent: Rc<Torrent>) {
    while !state.stopping.get() {
        let deadline = torrent.swarm.borrow().poll_timeout();
        let wait = deadline.saturating_duration_since(Instant::now());
        let _ = monoio::time::timeout(wait, torrent.timer.notified()).await;
        let now = Instant::now();
        torrent.swarm.borrow_mut().handle_timeout(now);
        torrent.drive(&state);
        if torrent.idle_for(state.config.unload_after, now) {
            state.unload(&torrent);
            return;
        }
        // A failed or released torrent holds nothing worth keeping: the
        // next request for the blob starts afresh.
        if torrent.is_closed() {
            state.forget(&torrent);
            return;
        }
    }
}
