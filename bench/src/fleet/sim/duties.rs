//! The engine's duties: driving each swarm after its inputs, timers, piece checks and completion.

use super::*;

impl Sim {
    /// Carries out what the swarm of `h` for layer `b` asked for, then
    /// moves its output onto the wire: for connection `only`, or all.
    pub(super) fn drive(&mut self, h: HostId, b: u16, only: Option<ConnId>) {
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

    pub(super) fn timer(&mut self, h: HostId, b: u16) {
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
        let next = time_since(base, next);
        seat.timer_at = next.max(now + 1);
        let timer_at = seat.timer_at;
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
        self.at(timer_at, Ev::Timer(h, b));
        self.drive(h, b, None);
        if trace_host() == Some(h) {
            self.trace(h, b);
        }
    }

    pub(super) fn verified(&mut self, h: HostId, b: u16, piece: u32) {
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

    pub(super) fn completed(&mut self, h: HostId, b: u16) {
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

    pub(super) fn die(&mut self, h: HostId) {
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
    pub(super) fn trace(&self, h: HostId, b: u16) {
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
    pub(super) fn progress_line(&self) {
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
}
