//! Connections: dials, handshakes, and moving messages over the simulated links.

use super::*;

impl Sim {
    pub(super) fn dial_arrives(&mut self, from: HostId, b: u16, to: HostId, attempt: u8) {
        let Some(theirs) = self.seat(from, b).map(|s| s.swarm.handshake()) else {
            return;
        };
        if !self.hosts[to as usize].alive {
            // The connect times out; the proxy does not dial again.
            return;
        }
        let c = self.conns.len() as ConnId;
        if !self.take_conn(to, b, c, &theirs, false) {
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
    pub(super) fn enqueue(&mut self, c: ConnId, h: HostId, out: &mut Vec<Transmit>) {
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
    pub(super) fn flush(&mut self, d: u32) {
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

    pub(super) fn arm_uplink(&mut self, h: HostId) {
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
    pub(super) fn uplink(&mut self, h: HostId) {
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
                self.lost_bytes += block_bytes_in(dir.sendq.iter());
                dir.sendq.clear();
                continue;
            }
            let Some(w) = dir.sendq.pop_front() else {
                continue;
            };
            let payload = match &w {
                Wire::Msg(m @ Message::Piece(_)) => m.encoded_len() as u64,
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

    pub(super) fn deliver(&mut self, d: u32) {
        let (c, side) = ((d / 2) as usize, (d % 2) as usize);
        let now = self.now;
        if !self.conns[c].open {
            return;
        }
        let to = self.conns[c].hosts[1 - side];
        let from = self.conns[c].hosts[side];
        let b = self.conns[c].blob;
        let mut batch = std::mem::take(&mut self.arrived);
        batch.clear();
        {
            let dir = &mut self.conns[c].dirs[side];
            while dir.inflight.front().is_some_and(|(t, _)| *t <= now) {
                if let Some((_, w)) = dir.inflight.pop_front() {
                    batch.push(w);
                }
            }
        }
        if batch.is_empty() {
            self.arrived = batch;
            return;
        }
        if !self.hosts[to as usize].alive {
            self.lost_bytes += block_bytes_in(batch.iter());
            self.arrived = batch;
            return;
        }
        let origin = self.hosts[to as usize].seats[b as usize]
            .as_ref()
            .is_some_and(|s| s.announcer.is_none());
        let now_i = self.instant();
        let mut everyone = origin;
        let mut block_bytes = 0u64;
        for w in batch.drain(..) {
            match w {
                Wire::Hello => {
                    if !self.hello(c as ConnId, from, to, b) {
                        return;
                    }
                    everyone = true;
                }
                Wire::Msg(m) => {
                    if !self.conns[c].joined[1 - side] {
                        if let Message::Piece(p) = &m {
                            self.lost_bytes += p.block.len() as u64;
                        }
                        continue;
                    }
                    if let Message::Piece(_) = &m {
                        block_bytes += m.encoded_len() as u64;
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
        self.arrived = batch;
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
    pub(super) fn hello(&mut self, c: ConnId, acceptor: HostId, dialler: HostId, b: u16) -> bool {
        let Some(theirs) = self.seat(acceptor, b).map(|s| s.swarm.handshake()) else {
            // The acceptor is gone; its close is on the way.
            return false;
        };
        let ok = self.take_conn(dialler, b, c, &theirs, true);
        if ok {
            self.conns[c as usize].joined[0] = true;
        } else {
            self.close(c, dialler);
        }
        ok
    }

    /// `h` closes connection `c`: its swarm forgets the peer now, the
    /// other end when the close reaches it.
    pub(super) fn close(&mut self, c: ConnId, h: HostId) {
        let conn = &mut self.conns[c as usize];
        if !conn.open {
            return;
        }
        conn.open = false;
        let side = usize::from(conn.hosts[1] == h);
        let other = conn.hosts[1 - side];
        let b = conn.blob;
        for dir in &mut conn.dirs {
            self.lost_bytes +=
                block_bytes_in(dir.sendq.iter().chain(dir.inflight.iter().map(|(_, w)| w)));
            dir.sendq.clear();
            dir.inflight.clear();
        }
        let was_joined = std::mem::replace(&mut conn.joined[side], false);
        let other_joined = conn.joined[1 - side];
        if was_joined {
            self.drop_conn(h, b, c);
        }
        if other_joined && self.hosts[h as usize].alive {
            let at = self.now + self.lat(h, other);
            self.at(at, Ev::Closed(c, (1 - side) as u8));
        }
    }

    pub(super) fn closed(&mut self, c: ConnId, side: usize) {
        let conn = &mut self.conns[c as usize];
        if !std::mem::replace(&mut conn.joined[side], false) {
            return;
        }
        let (h, b) = (conn.hosts[side], conn.blob);
        self.drop_conn(h, b, c);
        self.drive(h, b, None);
    }

    /// Host `h`'s swarm for blob `b` takes connection `c` to the peer
    /// that sent `theirs`; false if it refuses it (or holds no seat).
    fn take_conn(
        &mut self,
        h: HostId,
        b: u16,
        c: ConnId,
        theirs: &Handshake,
        outbound: bool,
    ) -> bool {
        let now = self.instant();
        let Some(seat) = self.seat(h, b) else {
            return false;
        };
        let joined = seat.swarm.peer_connected(c, theirs, outbound, now).is_ok();
        if joined {
            seat.conns.push(c);
        }
        joined
    }

    /// Host `h`'s swarm for blob `b` forgets connection `c`.
    fn drop_conn(&mut self, h: HostId, b: u16, c: ConnId) {
        if let Some(seat) = self.seat(h, b) {
            seat.swarm.peer_disconnected(c);
            seat.conns.retain(|&x| x != c);
        }
    }
}
