//! The tracker's memory of who is in which swarm.
//!
//! Sharded by info hash so that HTTP workers on several threads rarely
//! contend; each shard is a mutex held only for map updates. Time comes in
//! as an argument, so expiry is tested without waiting. A peer that stops
//! announcing is forgotten after `peer_ttl`; a swarm with no peers left is
//! dropped with it.
//!
//! The tracker only tracks swarms it was told about ([`PeerStore::allow`]):
//! an open tracker would be a free rendezvous service for anyone.
//!
//! What an announce says is not taken on trust: a peer's address is the
//! connection's source (an `ip=` parameter counts only from the operator's
//! trusted sources, such as a reverse proxy in front of the tracker),
//! addresses nobody can connect to are refused, and one source address
//! holds at most `max_per_address` entries in a swarm, so one host cannot
//! fill the peer lists others receive.
//!
//! Entries come from regular announces (a download, or a recent one;
//! they expire after `peer_ttl`) and from held announces (every blob a
//! host holds, in one request; they last three `held_interval`s), so the
//! tracker knows who holds a blob nobody downloaded for a day while a
//! host's idle blobs cost it one request per interval.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bay_wire::tracker::held::{HeldAnnounce, HeldAnswer};
use bay_wire::tracker::Event;
use bay_wire::tracker::{AnnounceRequest, AnnounceResponse, InfoHash, ScrapeResponse, ScrapeStats};

mod swarm;

use swarm::{Peer, Swarm};

const SHARDS: usize = 16;

/// Tunables of the peer store.
#[derive(Debug, Clone)]
pub struct PeerStoreConfig {
    /// Seconds between a client's announces.
    pub interval: u32,
    /// Seconds a client must wait at least between announces.
    pub min_interval: u32,
    /// A peer not heard from for this long is forgotten.
    pub peer_ttl: Duration,
    /// Peers returned when the client does not say.
    pub default_numwant: u32,
    /// Most peers returned.
    pub max_numwant: u32,
    /// Track any info hash, not only allowed ones.
    pub open: bool,
    /// Most entries one source address holds in one swarm; a new peer id
    /// from that address replaces its least recently seen entry.
    pub max_per_address: usize,
    /// Seconds between a host's held announces (every swarm it holds, in
    /// one request); its entries last three of these.
    pub held_interval: u32,
}

impl Default for PeerStoreConfig {
    fn default() -> Self {
        PeerStoreConfig {
            interval: 60,
            min_interval: 10,
            peer_ttl: Duration::from_secs(150),
            default_numwant: 50,
            max_numwant: 200,
            open: false,
            max_per_address: 16,
            held_interval: 300,
        }
    }
}

/// Why an announce was refused (sent as the failure reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceRefused {
    #[error("unknown torrent")]
    UnknownTorrent,
    #[error("peer address {0} cannot be connected to")]
    Unroutable(SocketAddr),
}

/// One swarm as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSnapshot {
    pub swarm: InfoHash,
    pub seeders: u32,
    pub leechers: u32,
    pub completed: u32,
    /// Leechers' addresses and the bytes each still lacks.
    pub downloading: Vec<(SocketAddr, u64)>,
}

/// Where an announce came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The connection's source address.
    pub ip: IpAddr,
    /// Whether the operator trusts this source to name another address
    /// with `ip=` (a reverse proxy announcing for its clients).
    pub trusted: bool,
}

/// Whether other peers could ever connect to `addr`.
fn routable(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast() && !broadcast
}

#[derive(Debug, Default)]
struct Shard {
    swarms: HashMap<InfoHash, Swarm>,
}

/// All swarms this tracker knows.
#[derive(Debug)]
pub struct PeerStore {
    config: PeerStoreConfig,
    shards: Vec<Mutex<Shard>>,
    allowed: RwLock<HashSet<InfoHash>>,
    /// Where each peer list starts: spread, not secrecy.
    rng: Mutex<fastrand::Rng>,
}

impl PeerStore {
    pub fn new(config: PeerStoreConfig) -> PeerStore {
        PeerStore {
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            allowed: RwLock::new(HashSet::new()),
            rng: Mutex::new(fastrand::Rng::new()),
        }
    }

    pub fn config(&self) -> &PeerStoreConfig {
        &self.config
    }

    /// Lets peers announce `info_hash`.
    pub fn allow(&self, info_hash: InfoHash) {
        self.allowed
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(info_hash);
    }

    pub fn is_allowed(&self, info_hash: &InfoHash) -> bool {
        self.config.open
            || self
                .allowed
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(info_hash)
    }

    fn shard(&self, info_hash: &InfoHash) -> MutexGuard<'_, Shard> {
        let i = usize::from(info_hash.0[0]) % SHARDS;
        // The shard holds plain maps: still consistent after a panic.
        self.shards
            .get(i)
            .unwrap_or(&self.shards[0])
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records an announce from `source` and answers it. The peer's
    /// address is the connection's IP; the request's `ip=` counts only
    /// from a trusted source.
    pub fn announce(
        &self,
        req: &AnnounceRequest,
        source: Source,
        now: Instant,
    ) -> Result<AnnounceResponse, AnnounceRefused> {
        if !self.is_allowed(&req.info_hash) {
            return Err(AnnounceRefused::UnknownTorrent);
        }
        let ip = match req.ip {
            Some(claimed) if source.trusted => claimed,
            _ => source.ip,
        };
        let addr = SocketAddr::new(ip, req.port);
        if req.event != Event::Stopped && !routable(addr) {
            return Err(AnnounceRefused::Unroutable(addr));
        }
        let want = req
            .numwant
            .unwrap_or(self.config.default_numwant)
            .min(self.config.max_numwant) as usize;
        let start = self.next_random();
        let mut shard = self.shard(&req.info_hash);
        let swarm = shard.swarms.entry(req.info_hash).or_default();
        if req.event == Event::Stopped {
            swarm.remove(&req.peer_id.0);
        } else {
            if req.event == Event::Completed {
                swarm.completed = swarm.completed.saturating_add(1);
            }
            let expires = now + self.config.peer_ttl;
            swarm.record(
                req.peer_id.0,
                Peer {
                    addr,
                    seeder: req.left == 0,
                    left: req.left,
                    last_seen: now,
                    expires,
                },
                self.config.max_per_address,
            );
        }
        let (complete, incomplete) = swarm.counts();
        let mut peers = Vec::new();
        let mut peers6 = Vec::new();
        if req.event != Event::Stopped {
            for addr in swarm.peer_list(&req.peer_id.0, req.left == 0, start, want) {
                match addr {
                    SocketAddr::V4(a) => peers.push(a),
                    SocketAddr::V6(a) => peers6.push(a),
                }
            }
        }
        let empty = swarm.is_empty();
        if empty {
            shard.swarms.remove(&req.info_hash);
        }
        Ok(AnnounceResponse {
            interval: self.config.interval,
            min_interval: Some(self.config.min_interval),
            complete: Some(complete),
            incomplete: Some(incomplete),
            tracker_id: None,
            warning: None,
            peers,
            peers6,
        })
    }

    /// Counts for the swarms asked about; unknown ones are left out.
    pub fn scrape(&self, hashes: &[InfoHash]) -> ScrapeResponse {
        let mut response = ScrapeResponse::default();
        for h in hashes {
            let shard = self.shard(h);
            if let Some(swarm) = shard.swarms.get(h) {
                let (complete, incomplete) = swarm.counts();
                response.files.insert(
                    *h,
                    ScrapeStats {
                        complete,
                        downloaded: swarm.completed,
                        incomplete,
                    },
                );
            }
        }
        response
    }

    /// Records a held announce from `source`: the host seeds every swarm
    /// it names that this tracker tracks. Returns how many those were.
    pub fn hold(
        &self,
        held: &HeldAnnounce,
        source: Source,
        now: Instant,
    ) -> Result<HeldAnswer, AnnounceRefused> {
        let addr = SocketAddr::new(source.ip, held.port);
        if !routable(addr) {
            return Err(AnnounceRefused::Unroutable(addr));
        }
        let expires = now + Duration::from_secs(3 * u64::from(self.config.held_interval));
        let mut accepted = 0u32;
        for swarm in held.swarms.iter().filter(|s| self.is_allowed(s)) {
            let mut shard = self.shard(swarm);
            let entry = shard.swarms.entry(*swarm).or_default();
            let peer = Peer {
                addr,
                seeder: true,
                left: 0,
                last_seen: now,
                expires,
            };
            entry.record(held.peer_id.0, peer, self.config.max_per_address);
            accepted += 1;
        }
        Ok(HeldAnswer {
            accepted,
            interval: self.config.held_interval,
        })
    }

    /// Forgets peers whose entries expired; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let mut removed = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.swarms.retain(|_, swarm| {
                removed += swarm.expire(now);
                !swarm.is_empty()
            });
        }
        removed
    }

    /// The busiest swarms (most leechers, then most completions) from
    /// `offset` on, at most `limit`, each with up to `hosts` of its
    /// leechers; and how many swarms there are in all.
    pub fn snapshot(
        &self,
        offset: usize,
        limit: usize,
        hosts: usize,
    ) -> (Vec<SwarmSnapshot>, usize) {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (hash, swarm) in &shard.swarms {
                let (seeders, leechers) = swarm.counts();
                all.push((*hash, seeders, leechers, swarm.completed));
            }
        }
        let total = all.len();
        all.sort_by(|a, b| (b.2, b.3, a.0).cmp(&(a.2, a.3, b.0)));
        let page = all
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(hash, seeders, leechers, completed)| {
                let shard = self.shard(&hash);
                let mut downloading: Vec<(SocketAddr, u64)> = shard
                    .swarms
                    .get(&hash)
                    .map(|s| s.downloading().collect())
                    .unwrap_or_default();
                downloading.sort();
                downloading.truncate(hosts);
                SwarmSnapshot {
                    swarm: hash,
                    seeders,
                    leechers,
                    completed,
                    downloading,
                }
            })
            .collect();
        (page, total)
    }

    /// Swarms and peers, for /metrics.
    pub fn sizes(&self) -> (usize, usize) {
        let mut swarms = 0;
        let mut peers = 0;
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            swarms += shard.swarms.len();
            peers += shard.swarms.values().map(Swarm::len).sum::<usize>();
        }
        (swarms, peers)
    }

    fn next_random(&self) -> u64 {
        self.rng.lock().unwrap_or_else(|p| p.into_inner()).u64(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bay_wire::tracker::PeerId;
    use std::net::SocketAddrV4;

    fn req(hash: u8, peer: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([hash; 20]),
            peer_id: PeerId([peer; 20]),
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            compact: Some(true),
            numwant: None,
            key: None,
            ip: None,
            no_peer_id: false,
            tracker_id: None,
        }
    }

    fn store() -> PeerStore {
        let s = PeerStore::new(PeerStoreConfig::default());
        s.allow(InfoHash([1; 20]));
        s
    }

    fn v4(peers: &[SocketAddrV4]) -> Vec<String> {
        peers.iter().map(|p| p.to_string()).collect()
    }

    const LOCAL: Source = Source {
        ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        trusted: false,
    };

    #[test]
    fn peers_learn_of_each_other_but_not_themselves() {
        let s = store();
        let t = Instant::now();
        let a = s
            .announce(&req(1, 1, 6881, 10, Event::Started), LOCAL, t)
            .unwrap();
        assert!(a.peers.is_empty());
        let b = s
            .announce(&req(1, 2, 6882, 10, Event::Started), LOCAL, t)
            .unwrap();
        assert_eq!(v4(&b.peers), vec!["127.0.0.1:6881"]);
        assert_eq!((b.complete, b.incomplete), (Some(0), Some(2)));
        let a = s
            .announce(&req(1, 1, 6881, 10, Event::None), LOCAL, t)
            .unwrap();
        assert_eq!(v4(&a.peers), vec!["127.0.0.1:6882"]);
    }

    #[test]
    fn unknown_torrents_are_refused() {
        let s = store();
        let r = s.announce(&req(2, 1, 1, 0, Event::Started), LOCAL, Instant::now());
        assert_eq!(r, Err(AnnounceRefused::UnknownTorrent));
    }

    #[test]
    fn seeders_get_no_seeders_and_stopped_peers_leave() {
        let s = store();
        let t = Instant::now();
        s.announce(&req(1, 1, 1, 0, Event::Started), LOCAL, t)
            .unwrap();
        s.announce(&req(1, 2, 2, 5, Event::Started), LOCAL, t)
            .unwrap();
        let seed2 = s
            .announce(&req(1, 3, 3, 0, Event::Completed), LOCAL, t)
            .unwrap();
        assert_eq!(v4(&seed2.peers), vec!["127.0.0.1:2"]);
        s.announce(&req(1, 2, 2, 5, Event::Stopped), LOCAL, t)
            .unwrap();
        let stats = s.scrape(&[InfoHash([1; 20]), InfoHash([9; 20])]);
        assert_eq!(stats.files.len(), 1);
        let st = stats.files[&InfoHash([1; 20])];
        assert_eq!((st.complete, st.incomplete, st.downloaded), (2, 0, 1));
    }

    #[test]
    fn silent_peers_expire() {
        let s = store();
        let t = Instant::now();
        s.announce(&req(1, 1, 1, 5, Event::Started), LOCAL, t)
            .unwrap();
        s.announce(
            &req(1, 2, 2, 5, Event::Started),
            LOCAL,
            t + Duration::from_secs(100),
        )
        .unwrap();
        assert_eq!(s.expire(t + Duration::from_secs(160)), 1);
        assert_eq!(s.sizes(), (1, 1));
        assert_eq!(s.expire(t + Duration::from_secs(400)), 1);
        assert_eq!(s.sizes(), (0, 0));
    }

    #[test]
    fn numwant_is_capped_and_a_trusted_source_names_the_address() {
        let s = PeerStore::new(PeerStoreConfig {
            max_per_address: 1000,
            ..PeerStoreConfig::default()
        });
        s.allow(InfoHash([1; 20]));
        let t = Instant::now();
        let trusted = Source {
            trusted: true,
            ..LOCAL
        };
        for p in 0..250u8 {
            let mut r = req(1, p, 1000 + u16::from(p), 5, Event::Started);
            r.ip = Some("10.1.2.3".parse().unwrap());
            s.announce(&r, trusted, t).unwrap();
        }
        let mut r = req(1, 251, 1, 5, Event::Started);
        r.numwant = Some(10_000);
        let got = s.announce(&r, LOCAL, t).unwrap();
        assert_eq!(got.peers.len(), 200);
        assert!(got.peers.iter().all(|p| p.ip().octets() == [10, 1, 2, 3]));
    }

    #[test]
    fn an_untrusted_source_cannot_name_another_address() {
        let s = store();
        let t = Instant::now();
        for claimed in ["192.0.2.1", "0.0.0.0", "255.255.255.255"] {
            let mut r = req(1, 7, 7000, 5, Event::Started);
            r.ip = Some(claimed.parse().unwrap());
            s.announce(&r, LOCAL, t).unwrap();
        }
        let got = s
            .announce(&req(1, 8, 8000, 5, Event::Started), LOCAL, t)
            .unwrap();
        assert_eq!(v4(&got.peers), vec!["127.0.0.1:7000"]);
    }

    #[test]
    fn unroutable_addresses_are_refused() {
        let s = PeerStore::new(PeerStoreConfig::default());
        s.allow(InfoHash([1; 20]));
        let t = Instant::now();
        let trusted = Source {
            trusted: true,
            ..LOCAL
        };
        for claimed in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"] {
            let mut r = req(1, 7, 7000, 5, Event::Started);
            r.ip = Some(claimed.parse().unwrap());
            assert!(
                matches!(
                    s.announce(&r, trusted, t),
                    Err(AnnounceRefused::Unroutable(_))
                ),
                "{claimed}"
            );
        }
        assert!(matches!(
            s.announce(&req(1, 7, 0, 5, Event::Started), LOCAL, t),
            Err(AnnounceRefused::Unroutable(_))
        ));
        assert_eq!(s.sizes(), (0, 0));
    }

    #[test]
    fn one_address_holds_a_bounded_share_of_a_swarm() {
        let s = store();
        let t = Instant::now();
        for p in 0..3000u32 {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&p.to_be_bytes());
            let r = AnnounceRequest {
                peer_id: PeerId(id),
                ..req(1, 0, 10_000 + (p % 50_000) as u16, 5, Event::Started)
            };
            s.announce(&r, LOCAL, t + Duration::from_millis(u64::from(p)))
                .unwrap();
        }
        assert_eq!(s.sizes(), (1, 16));
        let other = Source {
            ip: "10.0.0.9".parse().unwrap(),
            trusted: false,
        };
        let got = s
            .announce(&req(1, 99, 6881, 5, Event::Started), other, t)
            .unwrap();
        assert_eq!(got.peers.len(), 16);
        // The newest sixteen are kept: a restarted host is never locked out.
        assert!(got.peers.iter().all(|p| p.port() >= 10_000 + 2984));
    }

    #[test]
    fn a_new_id_on_a_known_address_replaces_the_old_one() {
        let s = store();
        let t = Instant::now();
        s.announce(&req(1, 1, 7000, 5, Event::Started), LOCAL, t)
            .unwrap();
        s.announce(&req(1, 2, 7000, 5, Event::Started), LOCAL, t)
            .unwrap();
        assert_eq!(s.sizes(), (1, 1));
    }

    #[test]
    fn held_announces_keep_a_host_in_every_swarm_it_holds() {
        let s = store();
        let t = Instant::now();
        let held = HeldAnnounce {
            peer_id: PeerId([5; 20]),
            port: 7005,
            swarms: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        };
        // Swarm 2 is not tracked here: not recorded, not counted.
        assert_eq!(s.hold(&held, LOCAL, t).unwrap().accepted, 1);
        let later = t + Duration::from_secs(600);
        let got = s
            .announce(&req(1, 6, 6006, 5, Event::Started), LOCAL, later)
            .unwrap();
        assert_eq!(v4(&got.peers), vec!["127.0.0.1:7005"]);
        assert_eq!(got.complete, Some(1));
        // The regular announcer is gone after its TTL; the holder stays
        // until three intervals pass without a held announce.
        assert_eq!(s.expire(t + Duration::from_secs(899)), 1);
        assert_eq!(s.sizes(), (1, 1));
        assert_eq!(s.expire(t + Duration::from_secs(901)), 1);
    }
}
