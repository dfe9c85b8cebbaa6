//! A fleet simulator: the real swarm decision code (picker, choker,
//! super-seeding reveal, end-game, reader priorities, connection places)
//! and the real tracker peer selection and announce client, run for up to
//! thousands of hosts over simulated links on a virtual clock.
//!
//! Layout: [`scenario`] (what to simulate, and the unit scaling),
//! [`net`] (links and what messages cost on them), [`sim`] (the event
//! loop that drives every swarm as the engine does), [`report`] (what a
//! run measured). `bay-fleet-sim` is the command line.

pub mod net;
pub mod report;
pub mod scenario;
pub mod sim;

use std::time::Instant;

pub use report::{quantile, Report};
pub use scenario::Scenario;
pub use sim::Sim;

/// Runs one scenario to its end and sums it up.
pub fn run(sc: &Scenario) -> Result<Report, String> {
    let wall = Instant::now();
    let mut sim = Sim::new(sc.clone())?;
    sim.run();
    let outcomes = sim.outcomes();
    if std::env::var_os("BAY_FLEET_DEBUG").is_some() {
        let mut v: Vec<(f64, usize, usize)> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| Some((o.ratio?, o.sampled, i)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (r, c, i) in v.iter().take(5).chain(v.iter().rev().take(15)) {
            let slow = if outcomes[*i].slow { ", slow" } else { "" };
            eprintln!("host {i}: ratio {r:.3}, connections at half time {c}{slow}");
        }
    }
    let image = sim.image_bytes();
    let origin = sim.origin_totals();
    let mut ratios: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.alive)
        .filter_map(|o| o.ratio)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let worst = |slow: bool| {
        outcomes
            .iter()
            .filter(|o| o.alive && o.slow == slow)
            .filter_map(|o| o.ratio)
            .fold(f64::NAN, f64::max)
    };
    let live = outcomes.iter().filter(|o| o.alive).count();
    let dead = outcomes.len() - live;
    let finished = ratios.len();
    let received: u64 = outcomes
        .iter()
        .map(|o| o.totals.downloaded + o.totals.wasted)
        .sum();
    let wasted: u64 = outcomes.iter().map(|o| o.totals.wasted).sum();
    let uploaded: u64 = origin.uploaded + outcomes.iter().map(|o| o.totals.uploaded).sum::<u64>();
    let lost = sim.lost_bytes + sim.in_flight_bytes();
    let each_once = outcomes
        .iter()
        .filter(|o| o.alive && o.secs.is_some())
        .all(|o| o.totals.downloaded == image);
    let last_secs = outcomes
        .iter()
        .filter(|o| o.alive)
        .filter_map(|o| o.secs)
        .fold(0.0, f64::max);
    let secs = sim.now_secs().max(1e-9);
    Ok(Report {
        name: sc.name.clone(),
        hosts: sc.hosts,
        scenario: if sc.registry_bps.is_some() {
            "cold".into()
        } else {
            "warm".into()
        },
        layers_mib: sc
            .layers
            .iter()
            .map(|&l| l as f64 / f64::from(1 << 20))
            .collect(),
        link_mbit: sc.link_bps / 1e6,
        trackers: sc.trackers,
        scale: sc.scale,
        piece_kib: sc.piece_len.map(|l| l >> 10),
        slow_fraction: sc.slow_fraction,
        die_fraction: sc.die_fraction,
        late_fraction: sc.late_fraction,
        ideal_secs: sc.ideal_secs(),
        ratio_p50: quantile(&ratios, 0.5),
        ratio_p99: quantile(&ratios, 0.99),
        ratio_max: ratios.last().copied().unwrap_or(f64::NAN),
        ratio_max_full_rate: worst(false),
        ratio_max_slow: worst(true),
        last_secs,
        finished,
        unfinished: live - finished,
        dead,
        origin_copies: origin.uploaded as f64 / image as f64,
        registry_egress: (sim.registry_bytes + sim.fallback_bytes) as f64 / image as f64,
        fallbacks: sim.fallbacks,
        wasted_ratio: wasted as f64 / received.max(1) as f64,
        lost_ratio: lost as f64 / received.max(1) as f64,
        announces: sim.announces,
        announces_per_sec: sim.announces as f64 / secs,
        bytes_add_up: each_once && uploaded == received + lost,
        sim_secs: secs,
        wall_secs: wall.elapsed().as_secs_f64(),
        events: sim.events,
        host_ratios: if sc.hosts <= 64 { ratios } else { Vec::new() },
    })
}
