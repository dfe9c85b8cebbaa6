//! Origin calls, piece hashes and the registry streams at the seed nodes.

use super::*;

impl Sim {
    pub(super) fn ask_origin(&mut self, h: HostId, b: u16) {
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

    pub(super) fn join(&mut self, h: HostId, b: u16) {
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

    pub(super) fn hash_ask(&mut self, h: HostId, b: u16) {
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

    pub(super) fn hash_answer(&mut self, h: HostId, b: u16, upto: u32) {
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
    pub(super) fn registry_step(&mut self, t: usize) {
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

    pub(super) fn registry(&mut self, t: usize) {
        if self.trackers[t].registry_due == Some(self.now) {
            self.registry_step(t);
        }
    }

    /// The origin has `piece`: its hash is published and the piece goes
    /// to its swarm, as `tracker/src/origin/fetch.rs` does.
    pub(super) fn origin_piece(&mut self, t: usize, b: u16, piece: u32) {
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
}
