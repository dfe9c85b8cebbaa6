//! The event loop: hosts, seed nodes and connections on a virtual clock.
//!
//! Each host holds one real [`Swarm`] per layer and is driven the way the
//! engine drives it (`core/src/engine/torrent.rs`, `conn.rs`): after any
//! input, drain `poll_event`, then `poll_transmit`, and re-arm the timer
//! from `poll_timeout`. Messages are the wire's [`Message`] values, built
//! directly (the codec is skipped); blocks carry no data. Announces go
//! through the real [`Announcer`] to the real tracker [`PeerStore`]; the
//! origin is a super-seeding swarm on its seed node, fed piece by piece
//! by a registry stream (cold) or holding the blob (warm).
//!
//! One shortcut: after a message, only the connection it came on is asked
//! for output, unless the message can make the swarm write to others
//! (interest changes rechoke every peer; at the origin a HAVE reveals
//! pieces to others); every connection is asked after a piece check, a
//! hash, a reader move or a timer. The one output this leaves for later
//! is an end-game CANCEL, which could only withdraw a block still in the
//! swarm's outbox, and the simulation empties outboxes at once.

use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use bay_core::announce::{AnnounceConfig, AnnounceError, AnnounceRequest, Announcer};
use bay_core::bitfield::Bitfield;
use bay_core::swarm::{Event, Geometry, Swarm, Transmit};
use bay_tracker::peers::{PeerStore, PeerStoreConfig, Source};
use bay_wire::peer::{Message, Piece, BLOCK_SIZE};
use bay_wire::tracker::{AnnounceResponse, InfoHash, PeerId};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::net::{ack_bytes, is_bulk, ns, per_block, wire_bytes, Dir, Links, Time, Wire};
use super::report::{HostOutcome, Totals};
use super::scenario::Scenario;

type HostId = u32;
type ConnId = u32;

/// Block payloads: the simulation moves no data.
static ZEROS: [u8; BLOCK_SIZE as usize] = [0; BLOCK_SIZE as usize];

/// The proxy dials a peer that closed before its handshake again after
/// 1, 2 and 4 s (`engine/conn.rs`).
const DIAL_ATTEMPTS: u8 = 4;
/// The proxy reads from the registry after this long without a verified
/// piece, or four times as long without the reader's next one
/// (`read_plan.rs`); counted, not simulated.
const STALL_FALLBACK: Time = 15_000_000_000;
const OWN_STALL_FALLBACK: Time = 4 * STALL_FALLBACK;
const SEC: f64 = 1e9;
const READER: u64 = 1;

#[derive(Debug, Clone, Copy)]
enum Ev {
    Start(HostId),
    /// The origin call reaches the blob's seed node.
    AskOrigin(HostId, u16),
    /// The grant is back: join the swarm.
    Granted(HostId, u16),
    Timer(HostId, u16),
    Uplink(HostId),
    Deliver(u32),
    Verified(HostId, u16, u32),
    Registry(u16),
    /// A hashes long-poll reaches the seed node.
    HashAsk(HostId, u16),
    /// Hashes up to this piece arrive.
    HashAnswer(HostId, u16, u32),
    Announce(HostId, u16),
    AnnounceAt(HostId, u16),
    AnnounceBack(HostId, u16),
    /// A dialler's handshake reaches the host it dials (attempt n).
    Dial(HostId, u16, HostId, u8),
    /// One end of a connection learns that the other closed it.
    Closed(ConnId, u8),
    Die(HostId),
    /// Records each host's connection count, for diagnostics.
    Sample,
}

struct Item {
    at: Time,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    // Reversed: BinaryHeap is a max-heap and the earliest comes first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// One host's part in one layer's swarm.
struct Seat {
    swarm: Swarm,
    conns: Vec<ConnId>,
    announcer: Option<Announcer>,
    announce_due: Option<Time>,
    pending: Option<AnnounceRequest>,
    answer: Option<Result<AnnounceResponse, AnnounceError>>,
    /// Piece hashes known.
    hashes: u32,
    /// Pieces verified from the start: where the stream reader stands.
    prefix: u32,
    prefix_moved: Time,
    /// When the last piece anywhere in the blob verified.
    piece_moved: Time,
    fell_back: bool,
    timer_at: Time,
    complete_at: Option<Time>,
}

struct Host {
    addr: SocketAddrV4,
    peer_id: [u8; 20],
    links: Links,
    alive: bool,
    slow: bool,
    start: Time,
    verify_free: Time,
    seats: Vec<Option<Box<Seat>>>,
    done_at: Option<Time>,
    /// Counts kept from seats that are gone (a dead host's).
    kept: Totals,
    /// Connections at the diagnostic sample.
    sampled: usize,
}

/// One layer's fetch from the registry at its seed node.
struct Fetch {
    started: bool,
    next: u32,
    into: f64,
    /// Hashes published (= pieces the origin has).
    hashes: u32,
    waiters: Vec<HostId>,
}

struct Tracker {
    host: HostId,
    name: String,
    store: PeerStore,
    fetches: HashMap<u16, Fetch>,
    registry_rate: f64,
    registry_last: Time,
    registry_due: Option<Time>,
}

struct Conn {
    blob: u16,
    /// `[dialler, acceptor]`.
    hosts: [HostId; 2],
    /// Registered in that side's swarm.
    joined: [bool; 2],
    open: bool,
    /// Whether `hosts[s]` is unchoked by the other end (diagnostics).
    unchoked: [bool; 2],
    /// `dirs[s]` carries what `hosts[s]` sends.
    dirs: [Dir; 2],
}

struct Layer {
    geometry: Geometry,
    swarm_id: [u8; 20],
    owner: u16,
    pieces: u32,
}

/// A running simulation.
pub struct Sim {
    sc: Scenario,
    base: Instant,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Item>,
    hosts: Vec<Host>,
    trackers: Vec<Tracker>,
    conns: Vec<Conn>,
    layers: Vec<Layer>,
    by_addr: HashMap<SocketAddrV4, HostId>,
    rng: fastrand::Rng,
    /// Pulling hosts still expected to finish.
    pending_hosts: usize,
    pub events: u64,
    pub announces: u64,
    pub lost_bytes: u64,
    pub registry_bytes: u64,
    pub fallbacks: u64,
    pub fallback_bytes: u64,
    scratch: Vec<Transmit>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("scenario", &self.sc.name)
            .field("now", &self.now)
            .field("hosts", &self.hosts.len())
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

fn host_ip(i: usize) -> Ipv4Addr {
    let i = i as u32 + 1;
    Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

fn peer_id(i: usize) -> [u8; 20] {
    let mut id = *b"-BY0100-000000000000";
    let digits = format!("{i:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    id
}

/// The proxies' rendezvous rule (`proxy/src/blob/trackers.rs`): the
/// tracker with the highest SHA-256 of its name, a zero byte and the
/// digest owns the blob.
fn rendezvous_owner(names: &[String], digest: &str) -> u16 {
    let score = |name: &String| -> [u8; 32] {
        Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update(b"\0")
            .chain_update(digest.as_bytes())
            .finalize()
            .into()
    };
    names
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| score(n))
        .map_or(0, |(i, _)| i as u16)
}

impl Sim {
    pub fn new(sc: Scenario) -> Result<Sim, String> {
        if sc.hosts == 0 || sc.trackers == 0 || sc.trackers > 5 {
            return Err("need at least one host and 1 to 5 seed nodes".into());
        }
        let geometries = sc.geometries()?;
        let mut rng = fastrand::Rng::with_seed(sc.seed);
        // The tracker's peer lists start at a random place drawn from the
        // thread's generator: seed it so that runs repeat as far as the
        // tracker's hash-map order allows.
        fastrand::seed(sc.seed);
        let lat = sc.latency.as_nanos() as Time;
        let link = sc.sim_rate(sc.link_bps);
        let origin_link = sc.sim_rate(sc.origin_link_bps);
        let ideal = (sc.ideal_secs() * SEC) as Time;
        let names: Vec<String> = (0..sc.trackers)
            .map(|i| format!("http://seed-{i}.bay:8080"))
            .collect();
        let layers: Vec<Layer> = geometries
            .iter()
            .enumerate()
            .map(|(i, &(total_len, piece_len))| {
                let digest = format!(
                    "sha256:{:x}",
                    Sha256::digest(format!("layer {i} of run {}", sc.seed))
                );
                let id: [u8; 32] = Sha256::new()
                    .chain_update(b"bay-swarm:")
                    .chain_update(digest.as_bytes())
                    .finalize()
                    .into();
                let mut swarm_id = [0; 20];
                swarm_id.copy_from_slice(&id[..20]);
                Layer {
                    geometry: Geometry {
                        total_len,
                        piece_len,
                    },
                    swarm_id,
                    owner: rendezvous_owner(&names, &digest),
                    pieces: total_len.div_ceil(u64::from(piece_len)) as u32,
                }
            })
            .collect();
        let mut hosts = Vec::new();
        let mut by_addr = HashMap::new();
        let total = sc.hosts + sc.trackers;
        for i in 0..total {
            let seed_node = i >= sc.hosts;
            let slow = !seed_node && rng.f64() < sc.slow_fraction;
            let rate = if seed_node {
                origin_link
            } else if slow {
                link / 4.0
            } else {
                link
            };
            let addr = SocketAddrV4::new(host_ip(i), 6881);
            by_addr.insert(addr, i as HostId);
            hosts.push(Host {
                addr,
                peer_id: peer_id(i),
                links: Links::new(rate, rate, lat),
                alive: true,
                slow,
                start: 0,
                verify_free: 0,
                seats: (0..layers.len()).map(|_| None).collect(),
                done_at: None,
                kept: Totals::default(),
                sampled: 0,
            });
        }
        let trackers = names
            .into_iter()
            .enumerate()
            .map(|(t, name)| Tracker {
                host: (sc.hosts + t) as HostId,
                name,
                store: PeerStore::new(PeerStoreConfig::default()),
                fetches: HashMap::new(),
                registry_rate: sc.registry_bps.map_or(0.0, |bps| sc.sim_rate(bps)),
                registry_last: 0,
                registry_due: None,
            })
            .collect();
        let mut sim = Sim {
            base: Instant::now(),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            hosts,
            trackers,
            conns: Vec::new(),
            layers,
            by_addr,
            rng,
            pending_hosts: sc.hosts,
            events: 0,
            announces: 0,
            lost_bytes: 0,
            registry_bytes: 0,
            fallbacks: 0,
            fallback_bytes: 0,
            scratch: Vec::new(),
            sc,
        };
        sim.set_up(ideal);
        Ok(sim)
    }

    fn set_up(&mut self, ideal: Time) {
        for layer in &self.layers {
            let t = layer.owner as usize;
            self.trackers[t].store.allow(InfoHash(layer.swarm_id));
        }
        let warm = self.sc.registry_bps.is_none();
        for b in 0..self.layers.len() {
            let t = self.layers[b].owner as usize;
            let pieces = self.layers[b].pieces;
            self.trackers[t].fetches.insert(
                b as u16,
                Fetch {
                    started: warm,
                    next: if warm { pieces } else { 0 },
                    into: 0.0,
                    hashes: if warm { pieces } else { 0 },
                    waiters: Vec::new(),
                },
            );
            self.open_origin(t, b as u16, warm);
        }
        self.at(ideal / 2, Ev::Sample);
        let stagger = self.sc.stagger.as_nanos() as f64;
        for h in 0..self.sc.hosts {
            let mut start = (self.rng.f64() * stagger) as Time;
            if self.rng.f64() < self.sc.late_fraction {
                start = (self.sc.late_at * ideal as f64) as Time;
            }
            self.hosts[h].start = start;
            self.at(start, Ev::Start(h as HostId));
            if self.rng.f64() < self.sc.die_fraction {
                let when = start + ((0.2 + 0.6 * self.rng.f64()) * ideal as f64) as Time;
                self.at(when, Ev::Die(h as HostId));
            }
        }
    }

    fn open_origin(&mut self, t: usize, b: u16, warm: bool) {
        let layer = &self.layers[b as usize];
        let have = if warm {
            Bitfield::full(layer.pieces)
        } else {
            Bitfield::new(layer.pieces)
        };
        let h = self.trackers[t].host;
        let mut swarm = Swarm::new(
            self.sc.swarm_config(true),
            layer.geometry,
            layer.swarm_id,
            self.hosts[h as usize].peer_id,
            &have,
            self.instant(),
        );
        if !warm {
            // Its pieces come from the registry, each with its hash.
            swarm.set_hashes_unknown(0..layer.pieces);
        }
        let timer_at = self.time_of(swarm.poll_timeout());
        self.hosts[h as usize].seats[b as usize] = Some(Box::new(Seat {
            swarm,
            conns: Vec::new(),
            announcer: None,
            announce_due: None,
            pending: None,
            answer: None,
            hashes: if warm { layer.pieces } else { 0 },
            prefix: 0,
            prefix_moved: 0,
            piece_moved: 0,
            fell_back: false,
            timer_at,
            complete_at: None,
        }));
        self.at(timer_at, Ev::Timer(h, b));
    }

    // ---- clock and queue

    fn instant(&self) -> Instant {
        self.base + Duration::from_nanos(self.now)
    }

    fn time_of(&self, at: Instant) -> Time {
        at.saturating_duration_since(self.base).as_nanos() as Time
    }

    fn at(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Item {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    fn lat(&self, a: HostId, b: HostId) -> Time {
        self.hosts[a as usize].links.lat + self.hosts[b as usize].links.lat
    }

    /// Runs until every live host has the image or the time is up.
    pub fn run(&mut self) {
        let limit = (self.sc.give_up_after * self.sc.ideal_secs() * SEC) as Time
            + self.hosts.iter().map(|h| h.start).max().unwrap_or(0)
            + self.sc.startup.as_nanos() as Time;
        while self.pending_hosts > 0 {
            let Some(item) = self.queue.pop() else { break };
            if item.at > limit {
                break;
            }
            self.now = item.at;
            self.events += 1;
            self.handle(item.ev);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Start(h) => {
                // Start-up takes between half and one and a half times
                // its mean: hosts that start together do not reach the
                // origin and the tracker in lockstep.
                let startup = self.sc.startup.as_nanos() as f64 * (0.5 + self.rng.f64());
                let at = self.now + startup as Time;
                for b in 0..self.layers.len() {
                    let t = self.trackers[self.layers[b].owner as usize].host;
                    self.at(at + self.lat(h, t), Ev::AskOrigin(h, b as u16));
                }
            }
            Ev::AskOrigin(h, b) => self.ask_origin(h, b),
            Ev::Granted(h, b) => self.join(h, b),
            Ev::Timer(h, b) => self.timer(h, b),
            Ev::Uplink(h) => self.uplink(h),
            Ev::Deliver(d) => self.deliver(d),
            Ev::Verified(h, b, piece) => self.verified(h, b, piece),
            Ev::Registry(t) => self.registry(t as usize),
            Ev::HashAsk(h, b) => self.hash_ask(h, b),
            Ev::HashAnswer(h, b, upto) => self.hash_answer(h, b, upto),
            Ev::Announce(h, b) => self.announce(h, b),
            Ev::AnnounceAt(h, b) => self.announce_at(h, b),
            Ev::AnnounceBack(h, b) => self.announce_back(h, b),
            Ev::Dial(from, b, to, attempt) => self.dial_arrives(from, b, to, attempt),
            Ev::Closed(c, side) => self.closed(c, side as usize),
            Ev::Die(h) => self.die(h),
            Ev::Sample => {
                for h in &mut self.hosts {
                    h.sampled = h.seats.iter().flatten().map(|s| s.conns.len()).sum();
                }
                if std::env::var_os("BAY_FLEET_DEBUG").is_some() {
                    self.progress_line();
                    self.at(self.now + 1_000_000_000, Ev::Sample);
                }
            }
        }
    }

    fn seat(&mut self, h: HostId, b: u16) -> Option<&mut Seat> {
        let host = &mut self.hosts[h as usize];
        if !host.alive {
            return None;
        }
        host.seats[b as usize].as_deref_mut()
    }

    // ---- origin calls, hashes, the registry

    fn ask_origin(&mut self, h: HostId, b: u16) {
        let t = self.layers[b as usize].owner as usize;
        let cold = self.sc.registry_bps.is_some();
        if let Some(f) = self.trackers[t].fetches.get_mut(&b) {
            if !f.started && cold {
                f.started = true;
                self.registry_step(t);
            }
        }
        let th = self.trackers[t].host;
        let back = self.now + self.lat(h, th);
        self.at(back, Ev::Granted(h, b));
    }

    fn join(&mut self, h: HostId, b: u16) {
        if !self.hosts[h as usize].alive {
            return;
        }
        let layer = &self.layers[b as usize];
        let (geometry, swarm_id, pieces, owner) =
            (layer.geometry, layer.swarm_id, layer.pieces, layer.owner);
        let now = self.instant();
        let host = &self.hosts[h as usize];
        let mut swarm = Swarm::new(
            self.sc.swarm_config(false),
            geometry,
            swarm_id,
            host.peer_id,
            &Bitfield::new(pieces),
            now,
        );
        swarm.set_hashes_unknown(0..pieces);
        swarm.set_reader(READER, 0, now);
        let tracker = &self.trackers[owner as usize];
        let mut config = AnnounceConfig::new(InfoHash(swarm_id), PeerId(host.peer_id), 6881);
        // As the proxy sets it (`proxy/src/blob/announce.rs`).
        config.min_interval = Duration::from_secs(5);
        config.seed = (u64::from(h) << 8) ^ u64::from(b) ^ self.sc.seed;
        let mut announcer = Announcer::new(
            config,
            vec![vec![format!("{}/announce", tracker.name)]],
            now,
        );
        announcer.set_progress(0, 0, geometry.total_len);
        let origin = tracker.host;
        let timer_at = self.time_of(swarm.poll_timeout());
        self.hosts[h as usize].seats[b as usize] = Some(Box::new(Seat {
            swarm,
            conns: Vec::new(),
            announcer: Some(announcer),
            announce_due: Some(self.now),
            pending: None,
            answer: None,
            hashes: 0,
            prefix: 0,
            prefix_moved: self.now,
            piece_moved: self.now,
            fell_back: false,
            timer_at,
            complete_at: None,
        }));
        self.at(timer_at, Ev::Timer(h, b));
        self.at(self.now, Ev::Announce(h, b));
        let lat = self.lat(h, origin);
        self.at(self.now + lat, Ev::HashAsk(h, b));
        // The proxy dials the origin named in the grant.
        self.at(self.now + 3 * lat, Ev::Dial(h, b, origin, 1));
    }

    fn hash_ask(&mut self, h: HostId, b: u16) {
        let known = match self.seat(h, b) {
            Some(s) => s.hashes,
            None => return,
        };
        let t = self.layers[b as usize].owner as usize;
        let th = self.trackers[t].host;
        let Some(fetch) = self.trackers[t].fetches.get_mut(&b) else {
            return;
        };
        if fetch.hashes > known {
            let upto = fetch.hashes;
            let back = self.now + self.lat(h, th);
            self.at(back, Ev::HashAnswer(h, b, upto));
        } else {
            fetch.waiters.push(h);
        }
    }

    fn hash_answer(&mut self, h: HostId, b: u16, upto: u32) {
        let now = self.instant();
        let pieces = self.layers[b as usize].pieces;
        let Some(seat) = self.seat(h, b) else { return };
        for p in seat.hashes..upto {
            seat.swarm.hash_known(p, now);
        }
        seat.hashes = seat.hashes.max(upto);
        let more = seat.hashes < pieces;
        self.drive(h, b, None);
        if more {
            let t = self.trackers[self.layers[b as usize].owner as usize].host;
            let at = self.now + self.lat(h, t);
            self.at(at, Ev::HashAsk(h, b));
        }
    }

    /// Moves the registry streams of seed node `t` to now, hands out the
    /// pieces that completed, and schedules the next completion. The
    /// streams share the registry's rate equally, as TCP flows would.
    fn registry_step(&mut self, t: usize) {
        let dt = self.now.saturating_sub(self.trackers[t].registry_last) as f64 / SEC;
        self.trackers[t].registry_last = self.now;
        let rate = self.trackers[t].registry_rate;
        let mut done: Vec<(u16, u32)> = Vec::new();
        let mut active: Vec<u16> = self.trackers[t]
            .fetches
            .iter()
            .filter(|(&b, f)| f.started && f.next < self.layers[b as usize].pieces)
            .map(|(&b, _)| b)
            .collect();
        active.sort_unstable();
        let share = if active.is_empty() {
            0.0
        } else {
            rate * dt / active.len() as f64
        };
        for &b in &active {
            let layer = &self.layers[b as usize];
            let Some(f) = self.trackers[t].fetches.get_mut(&b) else {
                continue;
            };
            f.into += share;
            while f.next < layer.pieces {
                let size = piece_size(layer, f.next) as f64;
                if f.into + 1e-6 < size {
                    break;
                }
                f.into -= size;
                done.push((b, f.next));
                f.next += 1;
            }
        }
        for (b, piece) in done {
            self.origin_piece(t, b, piece);
        }
        let active: Vec<(u16, f64)> = self.trackers[t]
            .fetches
            .iter()
            .filter(|(&b, f)| f.started && f.next < self.layers[b as usize].pieces)
            .map(|(&b, f)| {
                (
                    b,
                    piece_size(&self.layers[b as usize], f.next) as f64 - f.into,
                )
            })
            .collect();
        if active.is_empty() || rate <= 0.0 {
            self.trackers[t].registry_due = None;
            return;
        }
        let per = rate / active.len() as f64;
        let soonest = active
            .iter()
            .map(|&(_, left)| left.max(0.0))
            .fold(f64::INFINITY, f64::min);
        let at = self.now + ns(soonest, per).max(1);
        self.trackers[t].registry_due = Some(at);
        self.at(at, Ev::Registry(t as u16));
    }

    fn registry(&mut self, t: usize) {
        if self.trackers[t].registry_due == Some(self.now) {
            self.registry_step(t);
        }
    }

    /// The origin has `piece`: its hash is published and the piece goes
    /// to its swarm, as `tracker/src/origin/fetch.rs` does.
    fn origin_piece(&mut self, t: usize, b: u16, piece: u32) {
        let h = self.trackers[t].host;
        let size = piece_size(&self.layers[b as usize], piece);
        self.registry_bytes += size;
        let now = self.instant();
        if let Some(seat) = self.seat(h, b) {
            seat.swarm.hash_known(piece, now);
            seat.swarm.piece_verified(piece, now);
            seat.hashes = piece + 1;
        }
        self.drive(h, b, None);
        let Some(f) = self.trackers[t].fetches.get_mut(&b) else {
            return;
        };
        f.hashes = f.hashes.max(piece + 1);
        let upto = f.hashes;
        let waiters = std::mem::take(&mut f.waiters);
        for w in waiters {
            let at = self.now + self.lat(w, h);
            self.at(at, Ev::HashAnswer(w, b, upto));
        }
    }

    // ---- announces

    fn announce(&mut self, h: HostId, b: u16) {
        let now_i = self.instant();
        let now = self.now;
        let Some(seat) = self.seat(h, b) else { return };
        if seat.announce_due != Some(now) {
            return;
        }
        seat.announce_due = None;
        let Some(a) = seat.announcer.as_mut() else {
            return;
        };
        if let Some(req) = a.poll_announce(now_i) {
            seat.pending = Some(req);
            let t = self.trackers[self.layers[b as usize].owner as usize].host;
            let at = now + self.lat(h, t);
            self.at(at, Ev::AnnounceAt(h, b));
        } else {
            self.arm_announce(h, b);
        }
    }

    fn arm_announce(&mut self, h: HostId, b: u16) {
        let base = self.base;
        let Some(seat) = self.seat(h, b) else { return };
        let Some(due) = seat.announcer.as_ref().and_then(|a| a.poll_timeout()) else {
            return;
        };
        let at = due.saturating_duration_since(base).as_nanos() as Time;
        seat.announce_due = Some(at);
        self.at(at, Ev::Announce(h, b));
    }

    fn announce_at(&mut self, h: HostId, b: u16) {
        let t = self.layers[b as usize].owner as usize;
        let now = self.instant();
        let source = Source {
            ip: IpAddr::V4(*self.hosts[h as usize].addr.ip()),
            trusted: false,
        };
        let Some(query) = self
            .seat(h, b)
            .and_then(|s| s.pending.as_ref().map(|r| r.query.clone()))
        else {
            return;
        };
        self.announces += 1;
        let answer = self.trackers[t]
            .store
            .announce(&query, source, now)
            .map_err(|e| AnnounceError::Refused {
                reason: e.to_string(),
            });
        let th = self.trackers[t].host;
        let back = self.now + self.lat(h, th);
        if let Some(seat) = self.seat(h, b) {
            seat.answer = Some(answer);
        }
        self.at(back, Ev::AnnounceBack(h, b));
    }

    fn announce_back(&mut self, h: HostId, b: u16) {
        let now = self.instant();
        let Some(seat) = self.seat(h, b) else { return };
        let (Some(req), Some(answer), Some(a)) = (
            seat.pending.take(),
            seat.answer.take(),
            seat.announcer.as_mut(),
        ) else {
            return;
        };
        a.handle_response(&req, answer, now);
        let peers = a.poll_peers();
        // Once the blob is whole, leechers dial us; we dial nobody.
        let complete = seat.swarm.is_complete();
        self.arm_announce(h, b);
        if complete {
            return;
        }
        for p in peers {
            let SocketAddr::V4(p) = p else { continue };
            let Some(&to) = self.by_addr.get(&p) else {
                continue;
            };
            if to != h {
                let at = self.now + 3 * self.lat(h, to);
                self.at(at, Ev::Dial(h, b, to, 1));
            }
        }
    }

    // ---- connections

    fn dial_arrives(&mut self, from: HostId, b: u16, to: HostId, attempt: u8) {
        let Some(theirs) = self.seat(from, b).map(|s| s.swarm.handshake()) else {
            return;
        };
        if !self.hosts[to as usize].alive {
            // The connect times out; the proxy does not dial again.
            return;
        }
        let c = self.conns.len() as ConnId;
        let now = self.instant();
        let accepted = match self.seat(to, b) {
            Some(seat) => match seat.swarm.peer_connected(c, &theirs, false, now) {
                Ok(()) => {
                    seat.conns.push(c);
                    true
                }
                Err(_) => false,
            },
            None => false,
        };
        if !accepted {
            // Closed before its handshake: the dialler tries again after
            // 1, 2 and 4 s while it still needs pieces.
            let wanted = self.seat(from, b).is_some_and(|s| !s.swarm.is_complete());
            if wanted && attempt < DIAL_ATTEMPTS {
                let lat = self.lat(from, to);
                let pause = 1_000_000_000 << (attempt - 1);
                self.at(
                    self.now + lat + pause + 3 * lat,
                    Ev::Dial(from, b, to, attempt + 1),
                );
            }
            return;
        }
        let mut conn = Conn {
            blob: b,
            hosts: [from, to],
            joined: [false, true],
            open: true,
            unchoked: [false, false],
            dirs: [Dir::default(), Dir::default()],
        };
        conn.dirs[1].sendq.push_back(Wire::Hello);
        self.conns.push(conn);
        self.drive(to, b, Some(c));
    }

    /// Moves the swarm's output for connection `c` from `h` onto the wire.
    fn enqueue(&mut self, c: ConnId, h: HostId, out: &mut Vec<Transmit>) {
        let conn = &mut self.conns[c as usize];
        let side = usize::from(conn.hosts[1] == h);
        if !conn.open {
            for t in out.drain(..) {
                if let Transmit::Block(r) = t {
                    self.lost_bytes += u64::from(r.length);
                }
            }
            return;
        }
        let dir = &mut conn.dirs[side];
        for t in out.drain(..) {
            let m = match t {
                Transmit::Message(m) => m,
                Transmit::Block(r) => Message::Piece(Piece {
                    piece: r.piece,
                    begin: r.begin,
                    block: Bytes::from_static(&ZEROS[..r.length as usize]),
                }),
            };
            dir.sendq.push_back(Wire::Msg(m));
        }
        self.flush(c * 2 + side as u32);
    }

    /// Sends what leads the queue of direction `d` without waiting for the
    /// uplink (small messages), and puts the direction in the uplink's
    /// round robin if a block is next.
    fn flush(&mut self, d: u32) {
        let (c, side) = ((d / 2) as usize, (d % 2) as usize);
        let (from, to) = (self.conns[c].hosts[side], self.conns[c].hosts[1 - side]);
        let lat = self.lat(from, to);
        let scale = f64::from(self.sc.scale.max(1));
        let now = self.now;
        let dir = &mut self.conns[c].dirs[side];
        let mut payload = Payload::default();
        let mut sent = false;
        let arrival = (now + lat).max(dir.last_arrival);
        while dir.sendq.front().is_some_and(|w| !w.is_bulk()) {
            let Some(w) = dir.sendq.pop_front() else {
                break;
            };
            payload.add(&w);
            dir.inflight.push_back((arrival, w));
            sent = true;
        }
        let bytes = payload.wire(scale);
        let block_next = !dir.sendq.is_empty();
        let enqueue = block_next && !dir.queued;
        if sent {
            dir.last_arrival = arrival;
        }
        if enqueue {
            dir.queued = true;
        }
        if sent {
            self.hosts[from as usize].links.charge_up(now, bytes);
            self.hosts[to as usize].links.charge_down(now, bytes);
            self.at(arrival, Ev::Deliver(d));
        }
        if enqueue {
            self.hosts[from as usize].links.up_queue.push_back(d);
            self.arm_uplink(from);
        }
    }

    fn arm_uplink(&mut self, h: HostId) {
        let links = &mut self.hosts[h as usize].links;
        if links.up_armed || links.up_queue.is_empty() {
            return;
        }
        links.up_armed = true;
        let at = links.up_busy.max(self.now);
        self.at(at, Ev::Uplink(h));
    }

    /// The uplink of `h` is free: the next connection in turn sends one
    /// block (and the small messages queued behind it).
    fn uplink(&mut self, h: HostId) {
        let now = self.now;
        self.hosts[h as usize].links.up_armed = false;
        if self.hosts[h as usize].links.up_busy > now {
            self.arm_uplink(h);
            return;
        }
        if !self.hosts[h as usize].alive {
            self.hosts[h as usize].links.up_queue.clear();
            return;
        }
        let scale = f64::from(self.sc.scale.max(1));
        while let Some(d) = self.hosts[h as usize].links.up_queue.pop_front() {
            let (c, side) = ((d / 2) as usize, (d % 2) as usize);
            let to = self.conns[c].hosts[1 - side];
            let open = self.conns[c].open;
            let dead_end = !self.hosts[to as usize].alive;
            let dir = &mut self.conns[c].dirs[side];
            dir.queued = false;
            if !open {
                continue;
            }
            if dead_end {
                // A crashed host takes nothing: its sender's window stalls
                // without using the link.
                for w in dir.sendq.drain(..) {
                    if let Wire::Msg(Message::Piece(p)) = w {
                        self.lost_bytes += p.block.len() as u64;
                    }
                }
                continue;
            }
            let Some(w) = dir.sendq.pop_front() else {
                continue;
            };
            let payload = match &w {
                Wire::Msg(Message::Piece(p)) => p.block.len() as u64 + 13,
                _ => 0,
            };
            let bytes = wire_bytes(payload) as f64;
            let up = self.hosts[h as usize].links.up;
            let depart = now + ns(bytes, up);
            self.hosts[h as usize].links.up_busy = depart;
            let lat = self.lat(h, to);
            let down = &mut self.hosts[to as usize].links;
            let delivered = (depart + lat).max(down.down_free + ns(bytes, down.down));
            down.down_free = delivered;
            let dir = &mut self.conns[c].dirs[side];
            let delivered = delivered.max(dir.last_arrival);
            dir.last_arrival = delivered;
            dir.inflight.push_back((delivered, w));
            let mut payload = Payload::default();
            while dir.sendq.front().is_some_and(|w| !w.is_bulk()) {
                let Some(w) = dir.sendq.pop_front() else {
                    break;
                };
                payload.add(&w);
                dir.inflight.push_back((delivered, w));
            }
            let trailing = payload.wire(scale);
            if !dir.sendq.is_empty() {
                dir.queued = true;
                self.hosts[h as usize].links.up_queue.push_back(d);
            }
            if trailing > 0.0 {
                self.hosts[h as usize].links.charge_up(now, trailing);
            }
            self.at(delivered, Ev::Deliver(d));
            break;
        }
        self.arm_uplink(h);
    }

    fn deliver(&mut self, d: u32) {
        let (c, side) = ((d / 2) as usize, (d % 2) as usize);
        let now = self.now;
        if !self.conns[c].open {
            return;
        }
        let to = self.conns[c].hosts[1 - side];
        let from = self.conns[c].hosts[side];
        let b = self.conns[c].blob;
        let mut batch = Vec::new();
        {
            let dir = &mut self.conns[c].dirs[side];
            while dir.inflight.front().is_some_and(|(t, _)| *t <= now) {
                if let Some((_, w)) = dir.inflight.pop_front() {
                    batch.push(w);
                }
            }
        }
        if batch.is_empty() {
            return;
        }
        if !self.hosts[to as usize].alive {
            self.lost_bytes += block_bytes_in(batch.iter());
            return;
        }
        let origin = self.hosts[to as usize].seats[b as usize]
            .as_ref()
            .is_some_and(|s| s.announcer.is_none());
        let now_i = self.instant();
        let mut everyone = origin;
        let mut block_bytes = 0u64;
        for w in batch {
            match w {
                Wire::Hello => {
                    if !self.hello(c as ConnId, from, to, b) {
                        return;
                    }
                    everyone = true;
                }
                Wire::Msg(m) => {
                    if !self.conns[c].joined[1 - side] {
                        self.lost_bytes += block_bytes_in(std::iter::once(&Wire::Msg(m)));
                        continue;
                    }
                    if let Message::Piece(p) = &m {
                        block_bytes += p.block.len() as u64 + 13;
                    }
                    everyone |= matches!(m, Message::Interested | Message::NotInterested);
                    match m {
                        Message::Unchoke => self.conns[c].unchoked[1 - side] = true,
                        Message::Choke => self.conns[c].unchoked[1 - side] = false,
                        _ => {}
                    }
                    if let Some(seat) = self.seat(to, b) {
                        seat.swarm.handle_message(c as ConnId, m, now_i);
                    }
                }
            }
        }
        if block_bytes > 0 {
            // The receiver's ACKs use its uplink.
            let scale = f64::from(self.sc.scale.max(1));
            let acks = ack_bytes(block_bytes) as f64 / scale;
            self.hosts[to as usize].links.charge_up(now, acks);
        }
        let only = if everyone { None } else { Some(c as ConnId) };
        self.drive(to, b, only);
    }

    /// The accepting side's handshake reached the dialler; returns whether
    /// the connection goes on.
    fn hello(&mut self, c: ConnId, acceptor: HostId, dialler: HostId, b: u16) -> bool {
        let Some(theirs) = self.seat(acceptor, b).map(|s| s.swarm.handshake()) else {
            // The acceptor is gone; its close is on the way.
            return false;
        };
        let now = self.instant();
        let ok = match self.seat(dialler, b) {
            Some(seat) => match seat.swarm.peer_connected(c, &theirs, true, now) {
                Ok(()) => {
                    seat.conns.push(c);
                    true
                }
                Err(_) => false,
            },
            None => false,
        };
        if ok {
            self.conns[c as usize].joined[0] = true;
        } else {
            self.close(c, dialler);
        }
        ok
    }

    /// `h` closes connection `c`: its swarm forgets the peer now, the
    /// other end when the close reaches it.
    fn close(&mut self, c: ConnId, h: HostId) {
        let conn = &mut self.conns[c as usize];
        if !conn.open {
            return;
        }
        conn.open = false;
        let side = usize::from(conn.hosts[1] == h);
        let other = conn.hosts[1 - side];
        let b = conn.blob;
        let mut lost = 0;
        for dir in &mut conn.dirs {
            for w in dir
                .sendq
                .drain(..)
                .chain(dir.inflight.drain(..).map(|(_, w)| w))
            {
                if let Wire::Msg(Message::Piece(p)) = w {
                    lost += p.block.len() as u64;
                }
            }
        }
        self.lost_bytes += lost;
        let was_joined = std::mem::replace(&mut conn.joined[side], false);
        let other_joined = conn.joined[1 - side];
        if was_joined {
            if let Some(seat) = self.seat(h, b) {
                seat.swarm.peer_disconnected(c);
                seat.conns.retain(|&x| x != c);
            }
        }
        if other_joined && self.hosts[h as usize].alive {
            let at = self.now + self.lat(h, other);
            self.at(at, Ev::Closed(c, (1 - side) as u8));
        }
    }

    fn closed(&mut self, c: ConnId, side: usize) {
        let conn = &mut self.conns[c as usize];
        if !std::mem::replace(&mut conn.joined[side], false) {
            return;
        }
        let (h, b) = (conn.hosts[side], conn.blob);
        if let Some(seat) = self.seat(h, b) {
            seat.swarm.peer_disconnected(c);
            seat.conns.retain(|&x| x != c);
        }
        self.drive(h, b, None);
    }

    // ---- the engine's duties

    /// Carries out what the swarm of `h` for layer `b` asked for, then
    /// moves its output onto the wire: for connection `only`, or all.
    fn drive(&mut self, h: HostId, b: u16, only: Option<ConnId>) {
        let now = self.now;
        let Some(mut seat) = self
            .hosts
            .get_mut(h as usize)
            .filter(|host| host.alive)
            .and_then(|host| host.seats[b as usize].take())
        else {
            return;
        };
        let mut closes = Vec::new();
        let mut completed = false;
        let piece_len = self.layers[b as usize].geometry.piece_len;
        while let Some(event) = seat.swarm.poll_event() {
            match event {
                Event::StoreBlock { .. } => {}
                Event::VerifyPiece { piece } => {
                    let real = f64::from(piece_len) * f64::from(self.sc.scale.max(1));
                    let host = &mut self.hosts[h as usize];
                    let done = host.verify_free.max(now) + ns(real, self.sc.hash_rate);
                    host.verify_free = done;
                    self.at(done, Ev::Verified(h, b, piece));
                }
                Event::Disconnect { peer, .. } => closes.push(peer),
                Event::Complete => completed = true,
            }
        }
        let mut out = std::mem::take(&mut self.scratch);
        let mut poll = |sim: &mut Sim, seat: &mut Seat, c: ConnId| {
            seat.swarm.poll_transmit(c, &mut out);
            if !out.is_empty() {
                sim.enqueue(c, h, &mut out);
            }
        };
        match only {
            Some(c) => poll(self, &mut seat, c),
            None => {
                for i in 0..seat.conns.len() {
                    let c = seat.conns[i];
                    poll(self, &mut seat, c);
                }
            }
        }
        self.scratch = out;
        self.hosts[h as usize].seats[b as usize] = Some(seat);
        for c in closes {
            self.close(c, h);
        }
        if completed {
            self.completed(h, b);
        }
    }

    fn timer(&mut self, h: HostId, b: u16) {
        let now = self.now;
        let now_i = self.instant();
        let base = self.base;
        let layer_len = self.layers[b as usize].geometry.total_len;
        let piece_len = u64::from(self.layers[b as usize].geometry.piece_len);
        let Some(seat) = self.seat(h, b) else { return };
        if seat.timer_at != now {
            return;
        }
        seat.swarm.handle_timeout(now_i);
        let next = seat.swarm.poll_timeout();
        let next = next.saturating_duration_since(base).as_nanos() as Time;
        seat.timer_at = next.max(now + 1);
        let stalled = seat.announcer.is_some()
            && seat.complete_at.is_none()
            && !seat.fell_back
            && (now.saturating_sub(seat.piece_moved) >= STALL_FALLBACK
                || now.saturating_sub(seat.prefix_moved) >= OWN_STALL_FALLBACK);
        if stalled {
            seat.fell_back = true;
            let left = layer_len.saturating_sub(u64::from(seat.prefix) * piece_len);
            self.fallbacks += 1;
            self.fallback_bytes += left;
        }
        let at = self.seat(h, b).map_or(0, |s| s.timer_at);
        self.at(at, Ev::Timer(h, b));
        self.drive(h, b, None);
        if trace_host() == Some(h) {
            self.trace(h, b);
        }
    }

    fn verified(&mut self, h: HostId, b: u16, piece: u32) {
        let now = self.now;
        let now_i = self.instant();
        let piece_len = u64::from(self.layers[b as usize].geometry.piece_len);
        let Some(seat) = self.seat(h, b) else { return };
        seat.swarm.piece_verified(piece, now_i);
        seat.piece_moved = now;
        if piece == seat.prefix {
            let have = seat.swarm.have();
            let mut p = seat.prefix;
            while p < have.len() && have.has(p) {
                p += 1;
            }
            seat.prefix = p;
            seat.prefix_moved = now;
            if !seat.swarm.is_complete() {
                // The stream reader moved on (`progress.rs`).
                seat.swarm
                    .set_reader(READER, u64::from(p) * piece_len, now_i);
            }
        }
        self.drive(h, b, None);
    }

    fn completed(&mut self, h: HostId, b: u16) {
        let now = self.now;
        let now_i = self.instant();
        let len = self.layers[b as usize].geometry.total_len;
        let Some(seat) = self.seat(h, b) else { return };
        if seat.complete_at.is_some() {
            return;
        }
        seat.complete_at = Some(now);
        seat.swarm.remove_reader(READER);
        if let Some(a) = seat.announcer.as_mut() {
            a.set_progress(0, len, 0);
            a.completed(now_i);
        }
        let puller = seat.announcer.is_some();
        self.arm_announce(h, b);
        if !puller {
            return;
        }
        let host = &self.hosts[h as usize];
        let all = host
            .seats
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.complete_at.is_some()));
        if all && host.done_at.is_none() {
            self.hosts[h as usize].done_at = Some(now);
            self.pending_hosts -= 1;
        }
    }

    fn die(&mut self, h: HostId) {
        if !self.hosts[h as usize].alive || self.hosts[h as usize].done_at.is_some() {
            return;
        }
        let mut kept = Totals::default();
        for seat in self.hosts[h as usize].seats.iter().flatten() {
            kept.add(&seat.swarm.stats());
        }
        let host = &mut self.hosts[h as usize];
        host.kept = kept;
        host.alive = false;
        host.links.up_queue.clear();
        for seat in host.seats.iter_mut() {
            *seat = None;
        }
        self.pending_hosts -= 1;
        // A crash sends no FIN: peers notice by their own timeouts.
    }

    /// Diagnostics: one host's swarm counts.
    fn trace(&self, h: HostId, b: u16) {
        let Some(seat) = self.hosts[h as usize].seats[b as usize].as_deref() else {
            return;
        };
        let st = seat.swarm.stats();
        let unchokers = seat
            .conns
            .iter()
            .filter(|&&c| {
                let conn = &self.conns[c as usize];
                conn.unchoked[usize::from(conn.hosts[1] == h)]
            })
            .count();
        eprintln!(
            "t={:.2} host {h} layer {b}: have {}/{} peers {} unchoked by {unchokers} down {} up {} wasted {} hashes {}",
            self.now as f64 / SEC,
            st.have,
            st.pieces,
            st.peers,
            st.downloaded,
            st.uploaded,
            st.wasted,
            seat.hashes,
        );
    }

    /// Diagnostics: pieces held by the origin and by the hosts.
    fn progress_line(&self) {
        let mut have: Vec<u32> = self.hosts[..self.sc.hosts]
            .iter()
            .filter(|h| h.alive)
            .map(|h| {
                h.seats
                    .iter()
                    .flatten()
                    .map(|s| s.swarm.have().count())
                    .sum()
            })
            .collect();
        have.sort_unstable();
        let origin = self.origin_totals();
        let origin_have: u32 = self
            .trackers
            .iter()
            .flat_map(|t| self.hosts[t.host as usize].seats.iter().flatten())
            .map(|s| s.swarm.have().count())
            .sum();
        let q = |f: f64| {
            have.get(((have.len() as f64 - 1.0) * f) as usize)
                .copied()
                .unwrap_or(0)
        };
        eprintln!(
            "t={:.1} origin have {origin_have} sent {:.3} copies; hosts have min {} p10 {} p50 {} p90 {} max {}",
            self.now as f64 / SEC,
            origin.uploaded as f64 / self.image_bytes() as f64,
            q(0.0), q(0.1), q(0.5), q(0.9), q(1.0)
        );
    }

    // ---- results

    pub fn now_secs(&self) -> f64 {
        self.now as f64 / SEC
    }

    /// Each pulling host's outcome.
    pub fn outcomes(&self) -> Vec<HostOutcome> {
        let image = self
            .layers
            .iter()
            .map(|l| l.geometry.total_len)
            .sum::<u64>() as f64;
        (0..self.sc.hosts)
            .map(|i| {
                let host = &self.hosts[i];
                let mut totals = host.kept;
                if host.alive {
                    for seat in host.seats.iter().flatten() {
                        totals.add(&seat.swarm.stats());
                    }
                }
                let ideal = image / host.links.down;
                HostOutcome {
                    sampled: host.sampled,
                    alive: host.alive,
                    slow: host.slow,
                    secs: host.done_at.map(|t| (t - host.start) as f64 / SEC),
                    ratio: host.done_at.map(|t| (t - host.start) as f64 / SEC / ideal),
                    totals,
                }
            })
            .collect()
    }

    /// What the seed nodes uploaded.
    pub fn origin_totals(&self) -> Totals {
        let mut t = Totals::default();
        for tr in &self.trackers {
            for seat in self.hosts[tr.host as usize].seats.iter().flatten() {
                t.add(&seat.swarm.stats());
            }
        }
        t
    }

    /// Block bytes handed to the engine and not yet received when the run
    /// stopped.
    pub fn in_flight_bytes(&self) -> u64 {
        self.conns
            .iter()
            .filter(|c| c.open)
            .flat_map(|c| c.dirs.iter())
            .map(|d| block_bytes_in(d.sendq.iter().chain(d.inflight.iter().map(|(_, w)| w))))
            .sum()
    }

    pub fn image_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.geometry.total_len).sum()
    }
}

/// `BAY_FLEET_TRACE=N` prints host N's swarm counts every tick.
fn trace_host() -> Option<HostId> {
    static HOST: std::sync::OnceLock<Option<HostId>> = std::sync::OnceLock::new();
    *HOST.get_or_init(|| std::env::var("BAY_FLEET_TRACE").ok()?.parse().ok())
}

fn piece_size(layer: &Layer, piece: u32) -> u64 {
    let start = u64::from(piece) * u64::from(layer.geometry.piece_len);
    (layer.geometry.total_len - start).min(u64::from(layer.geometry.piece_len))
}

fn block_bytes_in<'a>(wires: impl Iterator<Item = &'a Wire>) -> u64 {
    wires
        .map(|w| match w {
            Wire::Msg(Message::Piece(p)) => p.block.len() as u64,
            _ => 0,
        })
        .sum()
}

/// Small messages sent together, which leave in one packet (the engine
/// coalesces them into one send).
#[derive(Default)]
struct Payload {
    /// Bytes of messages sent once per block: each simulated one stands
    /// for `scale` real ones, so they count in full.
    per_block: u64,
    /// Bytes of the others (HAVEs, interest, handshakes), which count
    /// `1/scale` so that they take their real time on a scaled link.
    other: u64,
}

impl Payload {
    fn add(&mut self, w: &Wire) {
        match w {
            Wire::Hello => self.other += 68,
            Wire::Msg(m) if per_block(m) && !is_bulk(m) => self.per_block += m.encoded_len() as u64,
            Wire::Msg(m) => self.other += m.encoded_len() as u64,
        }
    }

    fn wire(&self, scale: f64) -> f64 {
        let part = |n: u64| if n == 0 { 0 } else { wire_bytes(n) };
        part(self.per_block) as f64 + part(self.other) as f64 / scale
    }
}
