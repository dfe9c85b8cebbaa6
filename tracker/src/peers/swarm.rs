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
    /// Keys by kind, in no order: a random run of these is a peer list.
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

    /// Up to `want` peers for `asker`, from a run starting at `start` (a
    /// random number): leechers and seeders alike, or only leechers when
    /// the asker is a seeder itself.
    pub fn peer_list(
        &self,
        asker: &PeerKey,
        asker_is_seeder: bool,
        start: u64,
        want: usize,
    ) -> Vec<SocketAddr> {
        let seeders: &[PeerKey] = if asker_is_seeder { &[] } else { &self.seeders };
        let total = self.leechers.len() + seeders.len();
        if total == 0 {
            return Vec::new();
        }
        let first = (start % total as u64) as usize;
        (0..total)
            .map(|i| (first + i) % total)
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
}
