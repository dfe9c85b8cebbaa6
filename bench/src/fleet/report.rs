//! What a run measured, per host and for the whole fleet, as a table row
//! and as JSON.

use serde::Serialize;

use bay_core::swarm::SwarmStats;

/// Piece bytes a party moved, in simulated units.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub downloaded: u64,
    pub uploaded: u64,
    pub wasted: u64,
}

impl Totals {
    pub fn add(&mut self, s: &SwarmStats) {
        self.downloaded += s.downloaded;
        self.uploaded += s.uploaded;
        self.wasted += s.wasted;
    }
}

/// One pulling host.
#[derive(Debug, Clone)]
pub struct HostOutcome {
    /// Connections half-way through the ideal time.
    pub sampled: usize,
    pub alive: bool,
    pub slow: bool,
    /// Seconds from its start to having every layer.
    pub secs: Option<f64>,
    /// `secs` over the time the image takes over its own link.
    pub ratio: Option<f64>,
    pub totals: Totals,
}

/// One scenario's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub name: String,
    pub hosts: usize,
    pub scenario: String,
    pub layers_mib: Vec<f64>,
    pub link_mbit: f64,
    pub trackers: usize,
    pub scale: u32,
    /// Real piece size, KiB, when not the torrent builder's choice.
    pub piece_kib: Option<u64>,
    pub slow_fraction: f64,
    pub die_fraction: f64,
    pub late_fraction: f64,
    /// Image bytes over one link, seconds.
    pub ideal_secs: f64,
    /// Hosts' finish time over the ideal (over their own link's ideal for
    /// slow hosts); live hosts only.
    pub ratio_p50: f64,
    pub ratio_p99: f64,
    pub ratio_max: f64,
    /// The worst ratio among hosts at the full link rate, and among the
    /// slow ones (NaN when there are none).
    pub ratio_max_full_rate: f64,
    pub ratio_max_slow: f64,
    pub last_secs: f64,
    pub finished: usize,
    pub unfinished: usize,
    pub dead: usize,
    /// Origin upload bytes over the image size.
    pub origin_copies: f64,
    /// Registry bytes (origin fetches, plus what stalled readers would
    /// have fetched) over the image size.
    pub registry_egress: f64,
    /// Readers that would fall back to the registry: no piece verified for
    /// 15 s, or not their own next one for 60 s.
    pub fallbacks: u64,
    /// Bytes received and dropped (late end-game copies), over the bytes
    /// the hosts received in all.
    pub wasted_ratio: f64,
    /// Block bytes sent on connections that closed before they arrived,
    /// over the bytes received.
    pub lost_ratio: f64,
    pub announces: u64,
    pub announces_per_sec: f64,
    /// Every live host got every byte once plus its waste, and what was
    /// sent was received or lost.
    pub bytes_add_up: bool,
    pub sim_secs: f64,
    pub wall_secs: f64,
    pub events: u64,
    /// Per-host finish ratios, live finished hosts, sorted (only for runs
    /// of at most 64 hosts).
    pub host_ratios: Vec<f64>,
}

/// The `q` quantile (0..=1) of sorted `v`, nearest rank.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

impl Report {
    pub const HEADER: &'static str = "| scenario | hosts | Mbit/s | image MiB | p50 | p99 | max | max slow | origin copies | registry | waste | lost | announces/s | unfinished | dead | fallbacks | wall s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} % | {:.2} % | {:.1} | {} | {} | {} | {:.1} |",
            self.name,
            self.hosts,
            self.link_mbit,
            self.layers_mib.iter().sum::<f64>(),
            self.ratio_p50,
            self.ratio_p99,
            self.ratio_max,
            self.ratio_max_slow,
            self.origin_copies,
            self.registry_egress,
            self.wasted_ratio * 100.0,
            self.lost_ratio * 100.0,
            self.announces_per_sec,
            self.unfinished,
            self.dead,
            self.fallbacks,
            self.wall_secs,
        )
    }
}
