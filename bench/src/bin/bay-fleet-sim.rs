//! Simulates a fleet pulling an image through bay, from a few hosts to
//! ten thousand, with the real swarm, tracker and announce code (see
//! `bay_bench::fleet`).
//!
//! ```text
//! bay-fleet-sim --preset calibrate --json F   # the cluster bench's runs
//! bay-fleet-sim --preset scale --json F       # 10 .. 10,000 hosts, 1 GiB
//! bay-fleet-sim --preset churn --json F       # deaths and slow hosts
//! bay-fleet-sim --hosts 100,1000 --layers-mib 1024 --mbit 1000 --scale 32
//! bay-fleet-sim announce-bench                # a tracker's announces/s
//! ```
//!
//! Prints one table row per scenario; `--json` writes every report.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bay_bench::fleet::{self, Report, Scenario};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "bay-fleet-sim", about = "Simulate a fleet pulling through bay")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Times `PeerStore::announce` and `hold` on one core.
    AnnounceBench {
        /// Peers in the swarm announced to.
        #[arg(long, default_value_t = 10_000)]
        swarm: usize,
        /// Swarms a held announce names.
        #[arg(long, default_value_t = 200)]
        held: usize,
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Preset {
    /// The cluster bench: 2..16 hosts, 4 layers (64+32+16+16 MiB), 50 and
    /// 200 Mbit/s, cold and warm.
    Calibrate,
    /// 10, 100, 1,000, 3,000 and 10,000 hosts pulling 1 GiB over 1 Gbit/s
    /// (in coarse units, see `coarse`).
    Scale,
    /// 1,000 and 10,000 hosts, 5 % dying mid-download, 10 % at a quarter
    /// of the link rate.
    Churn,
    /// Checks the unit scaling: 100 hosts, 1 GiB, scale 4, 8 and 32.
    ScaleCheck,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Host counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    hosts: Vec<usize>,
    /// Layer sizes in MiB, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1024")]
    layers_mib: Vec<u64>,
    #[arg(long, default_value_t = 1000.0)]
    mbit: f64,
    /// The origin holds the blobs from the start.
    #[arg(long)]
    warm: bool,
    #[arg(long, default_value_t = 1)]
    trackers: usize,
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Real piece size in KiB instead of the torrent builder's choice.
    #[arg(long)]
    piece_kib: Option<u64>,
    #[arg(long, default_value_t = 0.0)]
    slow: f64,
    #[arg(long, default_value_t = 0.0)]
    die: f64,
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    #[arg(long, default_value_t = 0.0)]
    stagger_s: f64,
    /// One-way latency of each host's link.
    #[arg(long, default_value_t = 0.1)]
    latency_ms: f64,
    /// Fixed start-up before a host's origin call.
    #[arg(long, default_value_t = 300.0)]
    startup_ms: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Experiments: upload slots per swarm.
    #[arg(long)]
    slots: Option<usize>,
    /// Experiments: most peers per swarm.
    #[arg(long)]
    max_peers: Option<usize>,
    /// Experiments: the origin's reveal stale age, seconds.
    #[arg(long)]
    stale_s: Option<f64>,
    /// Experiments: how long a peer keeps an upload slot, seconds.
    #[arg(long)]
    rotate_s: Option<f64>,
    /// Experiments: how often slots are reconsidered, seconds.
    #[arg(long)]
    rechoke_s: Option<f64>,
    /// Write the reports here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

impl RunArgs {
    fn scenario(&self, hosts: usize) -> Scenario {
        let layers = self.layers_mib.iter().map(|m| m << 20).collect();
        let mut sc = Scenario::new(
            if self.warm { "warm" } else { "cold" },
            hosts,
            layers,
            self.mbit,
        );
        if self.warm {
            sc.registry_bps = None;
        }
        sc.trackers = self.trackers;
        sc.scale = self.scale;
        sc.piece_len = self.piece_kib.map(|k| k << 10);
        sc.slow_fraction = self.slow;
        sc.die_fraction = self.die;
        sc.late_fraction = self.late;
        sc.stagger = Duration::from_secs_f64(self.stagger_s);
        sc.latency = Duration::from_secs_f64(self.latency_ms / 1e3);
        sc.startup = Duration::from_secs_f64(self.startup_ms / 1e3);
        sc.seed = self.seed;
        sc.upload_slots = self.slots;
        sc.max_peers = self.max_peers;
        sc.reveal_stale_after = self.stale_s.map(Duration::from_secs_f64);
        sc.rotate_every = self.rotate_s.map(Duration::from_secs_f64);
        sc.rechoke_every = self.rechoke_s.map(Duration::from_secs_f64);
        sc
    }

    fn scenarios(&self) -> Vec<Scenario> {
        let mib = |v: &[u64]| v.iter().map(|m| m << 20).collect::<Vec<u64>>();
        let with = |sc: Scenario, f: &dyn Fn(&mut Scenario)| {
            let mut sc = sc;
            f(&mut sc);
            sc
        };
        match self.preset {
            None => self.hosts.iter().map(|&n| self.scenario(n)).collect(),
            Some(Preset::Calibrate) => {
                let mut out = Vec::new();
                for mbit in [200.0, 50.0] {
                    for n in [1, 2, 4, 8, 16] {
                        for warm in [false, true] {
                            let sc = Scenario::new(
                                if warm { "warm" } else { "cold" },
                                n,
                                mib(&[64, 32, 16, 16]),
                                mbit,
                            );
                            out.push(with(sc, &|sc| {
                                // Hosts on one bridge: tens of microseconds.
                                sc.latency = Duration::from_micros(50);
                                sc.startup = Duration::from_secs_f64(self.startup_ms / 1e3);
                                sc.seed = self.seed;
                                if warm {
                                    sc.registry_bps = None;
                                }
                            }));
                        }
                    }
                }
                out
            }
            Some(Preset::Scale) => [10, 100, 1000, 3000, 10_000]
                .into_iter()
                .map(|n| {
                    with(Scenario::new("cold", n, mib(&[1024]), 1000.0), &|sc| {
                        coarse(sc, n);
                        sc.seed = self.seed;
                    })
                })
                .collect(),
            Some(Preset::Churn) => [1000, 10_000]
                .into_iter()
                .map(|n| {
                    with(Scenario::new("churn", n, mib(&[1024]), 1000.0), &|sc| {
                        coarse(sc, n);
                        sc.die_fraction = 0.05;
                        sc.slow_fraction = 0.10;
                        sc.seed = self.seed;
                    })
                })
                .collect(),
            Some(Preset::ScaleCheck) => [4, 8, 32]
                .into_iter()
                .map(|k| {
                    with(
                        Scenario::new(&format!("cold-k{k}"), 100, mib(&[1024]), 1000.0),
                        &|sc| {
                            sc.scale = k;
                            sc.seed = self.seed;
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The units of the large runs: 1 MiB pieces (1,024 to a GiB) at scale
/// 64 up to 3,000 hosts, 2 MiB pieces at scale 128 beyond, so that 10,000
/// hosts run in under 30 minutes on two cores.
fn coarse(sc: &mut Scenario, hosts: usize) {
    let (piece_mib, scale) = if hosts > 3000 { (2, 128) } else { (1, 64) };
    sc.piece_len = Some(piece_mib << 20);
    sc.scale = scale;
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::AnnounceBench { swarm, held, secs }) = cli.command {
        return announce_bench(swarm, held, secs);
    }
    let args = cli.run;
    let mut reports: Vec<Report> = Vec::new();
    println!("{}", Report::HEADER);
    for sc in args.scenarios() {
        let report = fleet::run(&sc).map_err(anyhow::Error::msg)?;
        println!("{}", report.row());
        if !report.bytes_add_up {
            eprintln!("warning: {} x {}: bytes do not add up", sc.name, sc.hosts);
        }
        reports.push(report);
        if let Some(path) = &args.json {
            write_json(path, &reports)?;
        }
    }
    Ok(())
}

fn write_json(path: &std::path::Path, reports: &[Report]) -> Result<()> {
    let doc = serde_json::json!({
        "command": std::env::args().collect::<Vec<_>>(),
        "date": utc_now(),
        "reports": reports,
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `YYYY-MM-DD HH:MM UTC` without a date crate.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's method).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// How many announces a tracker answers per second on one core, with the
/// swarm sizes a 10,000-host fleet gives it.
fn announce_bench(swarm: usize, held: usize, secs: f64) -> Result<()> {
    use bay_tracker::peers::{PeerStore, PeerStoreConfig, Source};
    use bay_wire::tracker::held::HeldAnnounce;
    use bay_wire::tracker::{AnnounceRequest, Event, InfoHash, PeerId};
    use std::net::IpAddr;

    if swarm == 0 {
        bail!("--swarm must be at least 1");
    }
    let store = PeerStore::new(PeerStoreConfig::default());
    let hash = InfoHash([7; 20]);
    store.allow(hash);
    let ip = |i: usize| IpAddr::V4(bay_bench::fleet::sim::host_ip(i));
    let id = |i: usize| {
        let mut id = [b'-'; 20];
        id[..8].copy_from_slice(&(i as u64).to_be_bytes());
        PeerId(id)
    };
    let request = |i: usize, event| AnnounceRequest {
        info_hash: hash,
        peer_id: id(i),
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 1 << 30,
        event,
        compact: Some(true),
        numwant: Some(50),
        key: None,
        ip: None,
        no_peer_id: true,
        tracker_id: None,
    };
    let t0 = Instant::now();
    for i in 0..swarm {
        let source = Source {
            ip: ip(i),
            trusted: false,
        };
        store
            .announce(&request(i, Event::Started), source, t0)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let timed = |what: &str, f: &mut dyn FnMut(usize)| {
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed().as_secs_f64() < secs {
            for _ in 0..100 {
                f(n);
                n += 1;
            }
        }
        let rate = n as f64 / start.elapsed().as_secs_f64();
        println!("{what}: {rate:.0} per second ({n} in {secs} s)");
        rate
    };
    let regular = timed(
        &format!("announce into a swarm of {swarm} peers, numwant 50"),
        &mut |n| {
            let i = n % swarm;
            let source = Source {
                ip: ip(i),
                trusted: false,
            };
            let _ = store.announce(&request(i, Event::None), source, t0);
        },
    );
    let swarms: Vec<InfoHash> = (0..held)
        .map(|s| {
            let mut h = [0u8; 20];
            h[..8].copy_from_slice(&(s as u64).to_be_bytes());
            let h = InfoHash(h);
            store.allow(h);
            h
        })
        .collect();
    let holds = timed(&format!("held announce naming {held} swarms"), &mut |n| {
        let i = n % swarm;
        let held = HeldAnnounce {
            peer_id: id(i),
            port: 6881,
            swarms: swarms.clone(),
        };
        let source = Source {
            ip: ip(i),
            trusted: false,
        };
        let _ = store.hold(&held, source, t0);
    });
    // Each host announces each active download every 60 s and every held
    // blob in one request every 300 s.
    for active in [1.0, 4.0] {
        let need = 10_000.0 * active / 60.0;
        let need_held = 10_000.0 / 300.0;
        let busy = need / regular + need_held / holds;
        println!(
            "10,000 hosts with {active} active downloads each: {need:.0} announces/s + {need_held:.0} held/s = {:.1} % of one core",
            busy * 100.0
        );
    }
    Ok(())
}
