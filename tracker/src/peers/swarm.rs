//! One swarm's entries, indexed so that recording an announce, answering
//! it and counting seeders cost the same however many hosts the swarm
//! has. In a fleet at rest a swarm holds every host that caches the blob
//! (thousands), and each host's held announce touches one entry in each
//! of its thousand swarms: nothing here may walk the whole swarm, except
//! expiry, which runs on a timer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub(super) type PeerKey = [u8; 20];

/// What the tracker keeps of one peer in one swarm.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub addr: SocketAddr,
    pub seeder: bool,
    /// Bytes it still lacks, as it last said.
    pub left: u64,
    pub last_seen: Instant,
    /// Forgotten from then on, unless heard from again.
    pub expires: Instant,
}

#[derive(Debug)]
struct Entry {
    peer: Peer,
    /// Where the key sits in `seeders` or `leechers`.
    slot: usize,
}

/// The keys recorded from one IP: nearly always one host, one key.
#[derive(Debug)]
enum SameIp {
    One(PeerKey),
    Many(Vec<PeerKey>),
}

impl SameIp {
    fn keys(&self) -> &[PeerKey] {
        match self {
            SameIp::One(k) => std::slice::from_ref(k),
            SameIp::Many(v) => v,
        }
    }

    fn add(&mut self, key: PeerKey) {
        match self {
            SameIp::One(k) => *self = SameIp::Many(vec![*k, key]),
            SameIp::Many(v) => v.push(key),
        }
    }

    /// Removes `key`; true when none is left.
    fn remove(&mut self, key: &PeerKey) -> bool {
        match self {
            SameIp::One(k) => k == key,
            SameIp::Many(v) => {
                v.retain(|k| k != key);
                let only = match v.as_slice() {
                    [only] => Some(*only),
                    _ => None,
                };
                let empty = v.is_empty();
                if let Some(only) = only {
                    *self = SameIp::One(only);
                }
                empty
            }
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Swarm {
    entries: HashMap<PeerKey, Entry>,
    /// Keys by kind, about in arrival order (a removal moves the last key
    /// into the gap): a peer list samples them at random.
    seeders: Vec<PeerKey>,
    leechers: Vec<PeerKey>,
    by_ip: HashMap<IpAddr, SameIp>,
    pub completed: u32,
}

impl Swarm {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (seeders, leechers)
    pub fn counts(&self) -> (u32, u32) {
        (self.seeders.len() as u32, self.leechers.len() as u32)
    }

    /// Records `peer` under `key`, keeping the later expiry of an entry it
    /// replaces (a held announce outlasts a regular one).
    pub fn record(&mut self, key: PeerKey, mut peer: Peer, max_per_address: usize) {
        if let Some(old) = self.entries.get(&key) {
            peer.expires = peer.expires.max(old.peer.expires);
            if old.peer.addr == peer.addr && old.peer.seeder == peer.seeder {
                if let Some(e) = self.entries.get_mut(&key) {
                    e.peer = peer;
                }
                return;
            }
            self.remove(&key);
        }
        self.make_room(peer.addr, max_per_address);
        self.insert(key, peer);
    }

    /// Before a new key at `addr` is recorded: another key at the same
    /// address and port is the same peer restarted, and is dropped; when
    /// `addr`'s IP already holds `max` entries, its least recently seen
    /// one gives way. A source can thus only ever displace its own
    /// entries.
    fn make_room(&mut self, addr: SocketAddr, max: usize) {
        let Some(same_ip) = self.by_ip.get(&addr.ip()) else {
            return;
        };
        let mut same_ip: Vec<(PeerKey, SocketAddr, Instant)> = same_ip
            .keys()
            .iter()
            .filter_map(|k| {
                self.entries
                    .get(k)
                    .map(|e| (*k, e.peer.addr, e.peer.last_seen))
            })
            .collect();
        for (k, _, _) in same_ip.iter().filter(|(_, a, _)| *a == addr) {
            self.remove(k);
        }
        same_ip.retain(|(_, a, _)| *a != addr);
        if same_ip.len() < max.max(1) {
            return;
        }
        same_ip.sort_by_key(|(_, _, seen)| *seen);
        let excess = same_ip.len() + 1 - max.max(1);
        for (k, _, _) in same_ip.into_iter().take(excess) {
            self.remove(&k);
        }
    }

    fn insert(&mut self, key: PeerKey, peer: Peer) {
        let list = if peer.seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        };
        let slot = list.len();
        list.push(key);
        match self.by_ip.get_mut(&peer.addr.ip()) {
            Some(same) => same.add(key),
            None => {
                self.by_ip.insert(peer.addr.ip(), SameIp::One(key));
            }
        }
        self.entries.insert(key, Entry { peer, slot });
    }

    /// Forgets `key`; true if it was there.
    pub fn remove(&mut self, key: &PeerKey) -> bool {
        let Some(entry) = self.entries.remove(key) else {
            return false;
        };
        let list = if entry.peer.seeder {
            &mut self.seeders
        } else {
            &mut self.leechers
        };
        list.swap_remove(entry.slot);
        if let Some(moved) = list.get(entry.slot) {
            if let Some(e) = self.entries.get_mut(moved) {
                e.slot = entry.slot;
            }
        }
        let ip = entry.peer.addr.ip();
        if self.by_ip.get_mut(&ip).is_some_and(|s| s.remove(key)) {
            self.by_ip.remove(&ip);
        }
        true
    }

    /// Forgets entries that expired by `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let gone: Vec<PeerKey> = self
            .entries
            .iter()
            .filter(|(_, e)| now >= e.peer.expires)
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.remove(k);
        }
        gone.len()
    }

    /// Up to `want` peers for `asker`, drawn at random (`seed` drives the
    /// draw): leechers and seeders alike, or only leechers when the asker
    /// is a seeder itself. A sample, not a run of neighbours in the
    /// lists: the lists keep arrival order, and hosts handed the peers
    /// that arrived beside them form cliques that pass pieces around
    /// slowly. Costs O(want) whatever the swarm's size.
    pub fn peer_list(
        &self,
        asker: &PeerKey,
        asker_is_seeder: bool,
        seed: u64,
        want: usize,
    ) -> Vec<SocketAddr> {
        let seeders: &[PeerKey] = if asker_is_seeder { &[] } else { &self.seeders };
        let total = self.leechers.len() + seeders.len();
        // One more than wanted, in case the asker is among them.
        let picks = distinct_sample(total, want.saturating_add(1), seed);
        picks
            .into_iter()
            .filter_map(|i| {
                self.leechers
                    .get(i)
                    .or_else(|| seeders.get(i - self.leechers.len()))
            })
            .filter(|k| *k != asker)
            .filter_map(|k| self.entries.get(k))
            .take(want)
            .map(|e| e.peer.addr)
            .collect()
    }

    /// Leechers' addresses and bytes left, for the status page.
    pub fn downloading(&self) -> impl Iterator<Item = (SocketAddr, u64)> + '_ {
        self.leechers
            .iter()
            .filter_map(|k| self.entries.get(k))
            .map(|e| (e.peer.addr, e.peer.left))
    }
}

/// `m` distinct indices below `n` (all of them when `m >= n`), in random
/// order: Floyd's sampling, O(m) whatever `n` is.
fn distinct_sample(n: usize, m: usize, seed: u64) -> Vec<usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let m = m.min(n);
    let mut chosen = std::collections::HashSet::with_capacity(m);
    let mut order = Vec::with_capacity(m);
    for j in n - m..n {
        let t = rng.usize(..=j);
        let pick = if chosen.insert(t) { t } else { j };
        if pick == j {
            chosen.insert(j);
        }
        order.push(pick);
    }
    rng.shuffle(&mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn peer(addr: &str, seeder: bool, t: Instant) -> Peer {
        Peer {
            addr: addr.parse().unwrap(),
            seeder,
            left: u64::from(!seeder),
            last_seen: t,
            expires: t + Duration::from_secs(100),
        }
    }

    /// Every index agrees with the entries.
    fn check(s: &Swarm) {
        let (seeders, leechers) = s.counts();
        assert_eq!((seeders + leechers) as usize, s.len());
        for (list, kind) in [(&s.seeders, true), (&s.leechers, false)] {
            for (i, k) in list.iter().enumerate() {
                let e = &s.entries[k];
                assert_eq!((e.slot, e.peer.seeder), (i, kind));
            }
        }
        let by_ip: usize = s.by_ip.values().map(|v| v.keys().len()).sum();
        assert_eq!(by_ip, s.len());
    }

    #[test]
    fn records_moves_and_removals_keep_the_indexes_whole() {
        let mut s = Swarm::default();
        let t = Instant::now();
        for i in 0..50u8 {
            let addr = format!("10.0.0.{}:{}", i % 7 + 1, 6000 + u16::from(i));
            s.record([i; 20], peer(&addr, i % 3 == 0, t), 16);
            check(&s);
        }
        // A leecher completes, a seeder's address changes, some leave.
        s.record([1; 20], peer("10.0.0.2:6001", true, t), 16);
        s.record([3; 20], peer("10.0.0.9:7000", true, t), 16);
        check(&s);
        for i in (0..50u8).step_by(4) {
            s.remove(&[i; 20]);
            check(&s);
        }
        assert_eq!(s.len(), 37);
        let later = t + Duration::from_secs(200);
        s.record([5; 20], peer("10.0.0.6:6005", false, later), 16);
        assert_eq!(s.expire(t + Duration::from_secs(150)), 36);
        check(&s);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_peer_list_skips_the_asker_and_gives_a_seeder_no_seeders() {
        let mut s = Swarm::default();
        let t = Instant::now();
        s.record([1; 20], peer("10.0.0.1:1", true, t), 16);
        s.record([2; 20], peer("10.0.0.2:2", false, t), 16);
        s.record([3; 20], peer("10.0.0.3:3", false, t), 16);
        for start in 0..6 {
            let mut got = s.peer_list(&[2; 20], false, start, 10);
            got.sort();
            assert_eq!(got.len(), 2);
            assert!(!got.contains(&"10.0.0.2:2".parse().unwrap()));
            let for_seeder = s.peer_list(&[1; 20], true, start, 10);
            assert_eq!(for_seeder.len(), 2);
            assert!(!for_seeder.contains(&"10.0.0.1:1".parse().unwrap()));
            assert_eq!(s.peer_list(&[9; 20], false, start, 1).len(), 1);
        }
    }

    #[test]
    fn samples_are_distinct_and_cover_the_swarm() {
        for (n, m) in [(0, 5), (3, 5), (5, 5), (1000, 51), (10_000, 201)] {
            for seed in 0..20 {
                let got = distinct_sample(n, m, seed);
                assert_eq!(got.len(), m.min(n));
                let set: std::collections::HashSet<_> = got.iter().collect();
                assert_eq!(set.len(), got.len(), "n={n} m={m}: duplicates");
                assert!(got.iter().all(|&i| i < n));
            }
        }
        // Every index turns up across draws, not only a neighbourhood.
        let mut seen = vec![false; 1000];
        for seed in 0..400 {
            for i in distinct_sample(1000, 50, seed) {
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn a_peer_list_is_not_the_peers_that_arrived_together() {
        let mut s = Swarm::default();
        let t = Instant::now();
        for i in 0..1000u32 {
            let [a, b, c, d] = i.to_be_bytes();
            let key = [
                a, b, c, d, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
            ];
            let addr = format!("10.{}.{}.{}:1", b, c, d);
            s.record(key, peer(&addr, false, t), 16);
        }
        let list = s.peer_list(&[0; 20], false, 7, 50);
        assert_eq!(list.len(), 50);
        // A run of arrivals would span 50 consecutive hosts.
        let mut idx: Vec<u32> = list
            .iter()
            .map(|a| match a.ip() {
                IpAddr::V4(v4) => u32::from_be_bytes(v4.octets()) & 0xff_ffff,
                IpAddr::V6(_) => 0,
            })
            .collect();
        idx.sort_unstable();
        assert!(idx[49] - idx[0] > 200, "a neighbourhood: {idx:?}");
    }
}
