//! The engine thread: its state, its command loop, and adding torrents.

use super::*;

/// How long a peer that sent a bad piece stays banned.
const BAN_FOR: Duration = Duration::from_secs(3600);
/// Most bans remembered.
const MAX_BANS: usize = 4096;

/// State of the engine thread.
pub(super) struct EngineState {
    pub(super) config: EngineConfig,
    /// The engine's own mailbox, for threads that report back.
    pub(super) outbox: Outbox<Command>,
    pub(super) counters: Arc<PeerCounters>,
    pub(super) store: Store,
    pub(super) torrents: RefCell<HashMap<[u8; 20], Rc<Torrent>>>,
    /// Addresses that sent a bad piece, with when: a ban lasts
    /// [`BAN_FOR`], and at most [`MAX_BANS`] are kept.
    pub(super) banned: RefCell<HashMap<IpAddr, std::time::Instant>>,
    /// Complete blobs of the store by swarm name, to load on demand.
    pub(super) by_swarm: RefCell<HashMap<[u8; 20], Digest>>,
    /// The store's addition count when `by_swarm` was built.
    pub(super) indexed_at: Cell<Option<u64>>,
    pub(super) connections: Cell<usize>,
    pub(super) next_key: Cell<u32>,
    pub(super) stopping: Cell<bool>,
    pub(super) stop: Notify,
    /// Notified when the last connection closes.
    pub(super) idle: Notify,
    /// Where pieces go to be hashed off this thread.
    pub(super) verifier: Verifier,
    pub(super) upload: RefCell<TokenBucket>,
    pub(super) download: RefCell<TokenBucket>,
}

impl EngineState {
    pub(super) fn next_key(&self) -> u32 {
        let k = self.next_key.get();
        self.next_key.set(k.wrapping_add(1));
        k
    }

    pub(super) fn torrent(&self, info_hash: &[u8; 20]) -> Option<Rc<Torrent>> {
        self.torrents.borrow().get(info_hash).cloned()
    }

    pub(super) fn ban(&self, ip: IpAddr) {
        tracing::warn!(%ip, "banning peer that sent a bad piece");
        let now = std::time::Instant::now();
        let mut banned = self.banned.borrow_mut();
        if banned.len() >= MAX_BANS {
            banned.retain(|_, at| now.saturating_duration_since(*at) < BAN_FOR);
        }
        if banned.len() >= MAX_BANS {
            if let Some(oldest) = banned.iter().min_by_key(|(_, at)| **at).map(|(ip, _)| *ip) {
                banned.remove(&oldest);
            }
        }
        banned.insert(ip, now);
    }

    pub(super) fn is_banned(&self, ip: IpAddr) -> bool {
        self.banned
            .borrow()
            .get(&ip)
            .is_some_and(|at| at.elapsed() < BAN_FOR)
    }

    /// The torrent a peer names: one loaded, or a complete blob of the
    /// store shared by swarm name, loaded now.
    pub(super) fn resolve(self: &Rc<Self>, info_hash: &[u8; 20]) -> Option<Rc<Torrent>> {
        if let Some(t) = self.torrent(info_hash) {
            return Some(t);
        }
        let digest = self.stored_swarm(info_hash)?;
        let blob = self.store.get(&digest).ok()??;
        let plan = Plan {
            unloadable: true,
            swarm_id: *info_hash,
            total_len: blob.len(),
            piece_len: bay_wire::metainfo::choose_piece_length(blob.len()),
            hashes: Vec::new(),
            torrent_bytes: self.store.torrent(&digest).ok().flatten(),
            digest,
        };
        drop(blob);
        match add_torrent(self, plan) {
            Ok(_) => self.torrent(info_hash),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load a stored blob for a peer");
                None
            }
        }
    }

    /// The stored blob whose swarm is `info_hash`, from an index rebuilt
    /// when the store gained blobs since it was built.
    fn stored_swarm(&self, info_hash: &[u8; 20]) -> Option<Digest> {
        let additions = self.store.additions();
        if self.indexed_at.get() != Some(additions) {
            let naming = self.config.fleet.clone().map_or(
                bay_wire::fleet::Naming::Open,
                bay_wire::fleet::Naming::Keyed,
            );
            let index = self
                .store
                .complete_blobs()
                .into_iter()
                .flat_map(|(d, _)| {
                    naming
                        .swarm_ids(&d)
                        .into_iter()
                        .map(move |id| (id, d.clone()))
                })
                .collect();
            *self.by_swarm.borrow_mut() = index;
            self.indexed_at.set(Some(additions));
        }
        self.by_swarm.borrow().get(info_hash).cloned()
    }

    /// Takes an idle torrent out of the engine; a peer naming it loads it
    /// again.
    pub(super) fn unload(&self, torrent: &Torrent) {
        tracing::debug!(swarm = %bay_wire::hex::encode(&torrent.info_hash), "unloading an idle blob");
        self.forget(torrent);
    }

    /// Takes `torrent` out of the table (unless a newer one for the same
    /// swarm replaced it).
    pub(super) fn forget(&self, torrent: &Torrent) {
        let mut torrents = self.torrents.borrow_mut();
        if torrents
            .get(&torrent.info_hash)
            .is_some_and(|t| std::ptr::eq(Rc::as_ptr(t), torrent))
        {
            torrents.remove(&torrent.info_hash);
        }
    }

    /// Whether one more connection fits under `max_connections`; at the
    /// limit, the connection that has offered nothing for longest (over
    /// every torrent) gives its place, so the limit caps active transfers
    /// rather than the blobs a host once fetched.
    pub(super) fn room_for_one_more(&self) -> bool {
        if self.connections.get() < self.config.max_connections {
            return true;
        }
        let now = std::time::Instant::now();
        let quietest = self
            .torrents
            .borrow()
            .values()
            .filter_map(|t| {
                let quiet = t.swarm.borrow().place_to_give(now)?.1;
                Some((quiet, t.clone()))
            })
            .max_by_key(|(quiet, _)| *quiet);
        let Some((_, torrent)) = quietest else {
            return false;
        };
        let made = torrent.swarm.borrow_mut().make_room(now);
        torrent.drive(self);
        made
    }
}

/// A bucket for a limit in bytes a second: a tenth of a second of burst,
/// so a limit is smooth yet each send can carry whole blocks.
fn bucket(limit: Option<u64>) -> TokenBucket {
    let now = std::time::Instant::now();
    match limit {
        Some(rate) => TokenBucket::new(Some(rate), rate / 10, now),
        None => TokenBucket::unlimited(now),
    }
}

pub(super) async fn run(
    config: EngineConfig,
    store: Store,
    listener: std::net::TcpListener,
    inbox: Inbox<Command>,
    outbox: Outbox<Command>,
    verifier: Verifier,
    counters: Arc<PeerCounters>,
) {
    let state = Rc::new(EngineState {
        outbox,
        counters,
        store,
        torrents: RefCell::new(HashMap::new()),
        banned: RefCell::new(HashMap::new()),
        by_swarm: RefCell::new(HashMap::new()),
        indexed_at: Cell::new(None),
        connections: Cell::new(0),
        next_key: Cell::new(0),
        stopping: Cell::new(false),
        stop: Notify::default(),
        idle: Notify::default(),
        verifier,
        upload: RefCell::new(bucket(config.upload_limit)),
        download: RefCell::new(bucket(config.download_limit)),
        config,
    });
    match monoio::net::TcpListener::from_std(listener) {
        Ok(l) => {
            monoio::spawn(conn::accept_loop(state.clone(), l));
        }
        Err(e) => tracing::error!(error = %e, "peer listener unusable"),
    }
    while let Some(command) = inbox.recv().await {
        if !handle_command(&state, command) {
            break;
        }
    }
    state.stopping.set(true);
    state.stop.notify();
    let torrents: Vec<Rc<Torrent>> = state.torrents.borrow().values().cloned().collect();
    for t in torrents {
        t.close_all();
    }
    // Let connection tasks see the flag and close their sockets.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while state.connections.get() > 0 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if monoio::time::timeout(left, state.idle.notified())
            .await
            .is_err()
        {
            break;
        }
    }
}

/// Returns false when the engine should stop.
fn handle_command(state: &Rc<EngineState>, command: Command) -> bool {
    match command {
        Command::AddTorrent { plan, reply } => {
            let _ = reply.send(add_torrent(state, *plan));
        }
        Command::PieceHash {
            info_hash,
            piece,
            hash,
        } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.set_piece_hash(piece, hash);
            }
        }
        Command::SupplyPiece {
            info_hash,
            piece,
            data,
            hashed,
        } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.supply_piece(state, piece, &data, hashed.as_ref());
            }
        }
        Command::SetTorrent { info_hash, bytes } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.set_torrent(state, bytes);
            }
        }
        Command::Connect { info_hash, addr } => {
            if let Some(t) = state.torrent(&info_hash) {
                monoio::spawn(conn::dial(state.clone(), t, addr));
            }
        }
        Command::Status { info_hash, reply } => {
            let status = state.torrent(&info_hash).map(|t| t.status());
            let _ = reply.send(status);
        }
        Command::List { reply } => {
            let all = state
                .torrents
                .borrow()
                .values()
                .map(|t| t.status())
                .collect();
            let _ = reply.send(all);
        }
        Command::SetReader {
            info_hash,
            reader,
            offset,
        } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.set_reader(reader, offset);
            }
        }
        Command::RemoveReader { info_hash, reader } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.remove_reader(reader);
            }
        }
        Command::HoldUntilRead { info_hash } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.swarm.borrow_mut().hold_until_read();
            }
        }
        Command::Release { info_hash } => {
            if let Some(t) = state.torrent(&info_hash) {
                if t.release() {
                    state.forget(&t);
                }
            }
        }
        Command::PieceChecked {
            info_hash,
            piece,
            result,
        } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.piece_checked(state, piece, result);
            }
        }
        Command::Finished { info_hash, result } => {
            if let Some(t) = state.torrent(&info_hash) {
                t.finished(state, result);
            }
        }
        Command::Shutdown => return false,
    }
    true
}

fn add_torrent(state: &Rc<EngineState>, plan: Plan) -> Result<Added, EngineError> {
    let info_hash = plan.swarm_id;
    if let Some(t) = state.torrent(&info_hash) {
        return t.added();
    }
    let torrent = Rc::new(Torrent::open(state, plan)?);
    let added = torrent.added()?;
    state
        .torrents
        .borrow_mut()
        .insert(info_hash, torrent.clone());
    torrent.finish_if_whole(state);
    monoio::spawn(torrent::run_timers(state.clone(), torrent));
    Ok(added)
}
