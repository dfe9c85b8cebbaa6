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
use bay_wire::oci::Digest;
use bay_wire::origin::rendezvous_score;
use bay_wire::peer::{Handshake, Message, Piece, BLOCK_SIZE, HANDSHAKE_LEN};
use bay_wire::tracker::{AnnounceResponse, InfoHash, PeerId};
use bytes::Bytes;

use super::net::{ack_bytes, is_bulk, ns, per_block, wire_bytes, Dir, Links, Time, Wire};
use super::report::{HostOutcome, Totals};
use super::scenario::Scenario;

mod announces;
mod connections;
mod duties;
mod origin;
mod results;

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
    /// What one delivery hands over, kept between deliveries.
    arrived: Vec<Wire>,
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

/// Host `i`'s address: 10.0.0.1 on.
pub fn host_ip(i: usize) -> Ipv4Addr {
    let i = i as u32 + 1;
    Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

fn peer_id(i: usize) -> [u8; 20] {
    let mut id = *b"-BY0100-000000000000";
    let digits = format!("{i:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    id
}

/// The proxies' rendezvous rule: the highest score owns the blob.
fn rendezvous_owner(names: &[String], digest: &str) -> u16 {
    names
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| rendezvous_score(n, digest))
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
                let digest = Digest::sha256_of(format!("layer {i} of run {}", sc.seed).as_bytes());
                let swarm_id = bay_wire::origin::swarm_id(&digest);
                Layer {
                    geometry: Geometry {
                        total_len,
                        piece_len,
                    },
                    swarm_id,
                    owner: rendezvous_owner(&names, digest.as_str()),
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
            arrived: Vec::new(),
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
        time_since(self.base, at)
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

/// `at` on the virtual clock that started at `base`.
fn time_since(base: Instant, at: Instant) -> Time {
    at.saturating_duration_since(base).as_nanos() as Time
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
            Wire::Hello => self.other += HANDSHAKE_LEN as u64,
            Wire::Msg(m) if per_block(m) && !is_bulk(m) => self.per_block += m.encoded_len() as u64,
            Wire::Msg(m) => self.other += m.encoded_len() as u64,
        }
    }

    fn wire(&self, scale: f64) -> f64 {
        let part = |n: u64| if n == 0 { 0 } else { wire_bytes(n) };
        part(self.per_block) as f64 + part(self.other) as f64 / scale
    }
}
