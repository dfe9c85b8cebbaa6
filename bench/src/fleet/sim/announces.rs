//! Announces: each host's real announce client against the real tracker peer store.

use super::*;

impl Sim {
    pub(super) fn announce(&mut self, h: HostId, b: u16) {
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

    pub(super) fn arm_announce(&mut self, h: HostId, b: u16) {
        let base = self.base;
        let Some(seat) = self.seat(h, b) else { return };
        let Some(due) = seat.announcer.as_ref().and_then(|a| a.poll_timeout()) else {
            return;
        };
        let at = time_since(base, due);
        seat.announce_due = Some(at);
        self.at(at, Ev::Announce(h, b));
    }

    pub(super) fn announce_at(&mut self, h: HostId, b: u16) {
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

    pub(super) fn announce_back(&mut self, h: HostId, b: u16) {
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
}
