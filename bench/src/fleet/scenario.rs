//! One simulated deployment: the fleet, its links, what happens to its
//! hosts, and the units it is simulated in.
//!
//! Scaling (`scale = k`): a blob of `L` bytes in pieces of `P` over links
//! of `R` is simulated as `L/k` bytes in pieces of `P/k` over links of
//! `R/k`. Every transfer then takes as long as the real one, so the
//! swarm's time constants (ticks, rechoke, timeouts, the reveal's 5 s)
//! stay as they are, and the piece count, which sets how many HAVEs go
//! out and how rarest-first and the reveal spread pieces, is the real
//! one. What the swarm counts in bytes or blocks is scaled with it: the
//! reveal window, the request pipeline cap, the first pipeline, the
//! request queue bound and the end-game threshold. A piece then has `k`
//! times fewer 16 KiB blocks, which is where the saving is; what that
//! changes is the grain at which one piece can be split between peers.
//!
//! Coarser still (`piece_len`): pieces larger than the torrent builder
//! picks, so fewer of them. Every HAVE, interest check and rarest-first
//! scan is per piece and per peer, and at 10,000 hosts that count, not
//! the bytes, is what a run costs; with 4 MiB pieces instead of 512 KiB a
//! 1 GiB layer has 256 pieces and scale 256 keeps one block a piece. The
//! decision code is the same; what changes is the grain of trading.

use std::time::Duration;

use bay_core::swarm::SwarmConfig;
use bay_wire::metainfo::choose_piece_length;
use bay_wire::peer::BLOCK_SIZE;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Pulling hosts (the seed nodes come on top).
    pub hosts: usize,
    /// The image's layers, real bytes; every host pulls all of them at
    /// once, as a container runtime does.
    pub layers: Vec<u64>,
    /// Every host's upload and download rate, bits per second.
    pub link_bps: f64,
    /// The seed nodes' rate, bits per second.
    pub origin_link_bps: f64,
    /// Cold: the origin streams each blob from the registry at this rate
    /// (bits per second, shared by the blobs it fetches at once). Warm
    /// (`None`): the origin holds every blob from the start.
    pub registry_bps: Option<f64>,
    /// One-way latency of each host's access link; a message between two
    /// hosts takes the sum of theirs.
    pub latency: Duration,
    /// Seed nodes (tracker + origin), 1 to 5; each blob belongs to one by
    /// rendezvous hashing of its digest.
    pub trackers: usize,
    /// Hosts start at random over this long (0: all at once).
    pub stagger: Duration,
    /// This share of the hosts joins late, at `late_at` times the ideal
    /// time.
    pub late_fraction: f64,
    pub late_at: f64,
    /// This share of the hosts dies at a random moment between 0.2 and
    /// 0.8 of the ideal time.
    pub die_fraction: f64,
    /// This share of the hosts has a quarter of the link rate, both ways.
    pub slow_fraction: f64,
    /// Fixed cost before a host's first origin call: the client's
    /// manifest and config requests, process start-up.
    pub startup: Duration,
    /// Piece checks per host, real bytes a second (one thread).
    pub hash_rate: f64,
    /// Unit scale `k` (see the module docs).
    pub scale: u32,
    /// Real piece length instead of the torrent builder's choice.
    pub piece_len: Option<u64>,
    pub seed: u64,
    /// Changes to the swarm settings, for experiments: upload slots, most
    /// peers, and the reveal's stale age.
    pub upload_slots: Option<usize>,
    pub max_peers: Option<usize>,
    pub reveal_stale_after: Option<Duration>,
    pub rotate_every: Option<Duration>,
    pub rechoke_every: Option<Duration>,
    /// Virtual time after which the run gives up on the hosts not done,
    /// in multiples of the ideal time.
    pub give_up_after: f64,
}

impl Scenario {
    /// A fleet of `hosts` pulling one blob of `bytes` at `mbit` Mbit/s.
    pub fn new(name: &str, hosts: usize, layers: Vec<u64>, mbit: f64) -> Scenario {
        Scenario {
            name: name.to_string(),
            hosts,
            layers,
            link_bps: mbit * 1e6,
            origin_link_bps: mbit * 1e6,
            registry_bps: Some(mbit * 1e6),
            latency: Duration::from_micros(100),
            trackers: 1,
            stagger: Duration::ZERO,
            late_fraction: 0.0,
            late_at: 0.5,
            die_fraction: 0.0,
            slow_fraction: 0.0,
            startup: Duration::from_millis(300),
            hash_rate: 1.0e9,
            scale: 1,
            piece_len: None,
            seed: 1,
            give_up_after: 20.0,
            upload_slots: None,
            max_peers: None,
            reveal_stale_after: None,
            rotate_every: None,
            rechoke_every: None,
        }
    }

    pub fn image_bytes(&self) -> u64 {
        self.layers.iter().sum()
    }

    /// The time one image takes over one link, seconds.
    pub fn ideal_secs(&self) -> f64 {
        self.image_bytes() as f64 * 8.0 / self.link_bps
    }

    /// Each layer's simulated geometry: (total length, piece length).
    pub fn geometries(&self) -> Result<Vec<(u64, u32)>, String> {
        let k = u64::from(self.scale.max(1));
        self.layers
            .iter()
            .map(|&len| {
                let piece = self.piece_len.unwrap_or_else(|| choose_piece_length(len));
                if !piece.is_multiple_of(k) || piece / k < u64::from(BLOCK_SIZE) {
                    return Err(format!(
                        "a {len}-byte layer has {piece}-byte pieces: scale {k} leaves less than one block"
                    ));
                }
                let piece = u32::try_from(piece / k).map_err(|_| "piece over 4 GiB")?;
                Ok((len.div_ceil(k), piece))
            })
            .collect()
    }

    /// Simulated bytes a second of a link of `bps` real bits a second.
    pub fn sim_rate(&self, bps: f64) -> f64 {
        bps / 8.0 / f64::from(self.scale.max(1))
    }

    /// The swarm settings of a host (or, with `origin`, of a seed node),
    /// with every byte- or block-counted setting scaled down.
    pub fn swarm_config(&self, origin: bool) -> SwarmConfig {
        let k = self.scale.max(1) as usize;
        let d = SwarmConfig::default();
        SwarmConfig {
            super_seed: origin,
            reveal_window: (d.reveal_window / k as u64).max(u64::from(BLOCK_SIZE)),
            pipeline: (d.pipeline / k).max(4),
            initial_pipeline: (d.initial_pipeline / k).max(2),
            max_queued_requests: (d.max_queued_requests / k).max(8),
            end_game_bytes: (d.end_game_bytes / k as u64).max(u64::from(BLOCK_SIZE)),
            upload_slots: self.upload_slots.unwrap_or(d.upload_slots),
            max_peers: self.max_peers.unwrap_or(d.max_peers),
            reveal_stale_after: self.reveal_stale_after.unwrap_or(d.reveal_stale_after),
            rotate_every: self.rotate_every.unwrap_or(d.rotate_every),
            rechoke_every: self.rechoke_every.unwrap_or(d.rechoke_every),
            ..d
        }
    }
}
