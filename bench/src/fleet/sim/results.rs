//! Results: what each host and the fleet did, and the books that must add up.

use super::*;

impl Sim {
    pub fn now_secs(&self) -> f64 {
        self.now as f64 / SEC
    }

    /// Each pulling host's outcome.
    pub fn outcomes(&self) -> Vec<HostOutcome> {
        let image = self.image_bytes() as f64;
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
