//! The cluster comparison run: N pulling hosts, a registry host and a
//! tracker host, all namespaces on one bridge with every link shaped to
//! the same rate ([`crate::netns`]). In each scenario every pulling host
//! runs skopeo at the same moment and the run records how many blob bytes
//! left the registry and when each host finished.
//!
//! Scenarios:
//! - **cold**: a fresh image, a fresh tracker and fresh proxies: nothing is
//!   cached anywhere.
//! - **warm**: a fresh image pulled once through one proxy first, so the
//!   tracker's origin seeder holds every blob; then every pulling host
//!   pulls through a proxy with a fresh root.
//! - **direct**: skopeo straight from the registry, no bay: the baseline.
//!
//! Each host's time is measured from the common start to the moment its
//! skopeo exited with the whole image on disk; the blobs are checked
//! against their digests afterwards. The time ratio divides the slowest
//! host's time by the time one image takes over one link
//! (`image bytes * 8 / rate`); the egress ratio divides the registry's
//! blob bytes by the image's blob bytes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bay::metric_value;
use crate::clients::{skopeo, Access};
use crate::image::{ImageSpec, TestImage};
use crate::netns::{Cluster, Rate};
use crate::process::{listening_in, run_all_at_once, run_stdout, Daemon};
use crate::registry::{blob_bytes, Registry, RegistryOptions};

/// Host index of the registry inside the cluster.
const REGISTRY_HOST: usize = 0;
/// Host index of the tracker.
const TRACKER_HOST: usize = 1;
/// Index of the first pulling host.
const FIRST_PULLER: usize = 2;
/// How long a program gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;
const GIB: f64 = (1u64 << 30) as f64;

/// One way of pulling the image on every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Through bay, nothing cached anywhere.
    Cold,
    /// Through bay, the tracker already holds every blob.
    Warm,
    /// Straight from the registry.
    Direct,
}

impl Scenario {
    /// Every scenario, in the order a full run takes them.
    pub const ALL: [Scenario; 3] = [Scenario::Cold, Scenario::Warm, Scenario::Direct];

    /// Its name in tables, JSON and flags.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::Warm => "warm",
            Scenario::Direct => "direct",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Pulling hosts.
    pub hosts: usize,
    /// Every link's rate, in Mbit/s.
    pub rate_mbit: u64,
    /// Layer file sizes of each scenario's fresh image.
    pub layer_sizes: Vec<u64>,
    /// Scenarios, run in this order.
    pub scenarios: Vec<Scenario>,
    /// Folder holding `bay-proxy` and `bay-tracker`.
    pub bin_dir: PathBuf,
    /// Where the programs' logs go (kept); a temporary folder when `None`.
    pub log_dir: Option<PathBuf>,
    /// `RUST_LOG` for bay's programs.
    pub rust_log: String,
    /// Longest a single pull may take.
    pub pull_timeout: Duration,
    /// Seed of the first scenario's image (each scenario adds one).
    pub seed: u64,
}

impl BenchOptions {
    /// `n` layers adding up to about `total_mib` MiB, the first half of
    /// the bytes in one layer and the rest in halves, like a base image
    /// with a few layers on top.
    pub fn layers_of(total_mib: u64, n: usize) -> Vec<u64> {
        let total = total_mib * MIB;
        let mut left = total;
        let mut out = Vec::new();
        for i in 0..n {
            let size = if i + 1 == n { left } else { left / 2 };
            out.push(size.max(1));
            left -= size.min(left);
        }
        out
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// Which scenario.
    pub scenario: Scenario,
    /// Pulling hosts.
    pub hosts: usize,
    /// Link rate in Mbit/s.
    pub rate_mbit: u64,
    /// Blob bytes of the image (layers and config).
    pub image_bytes: u64,
    /// Blob bytes the registry served during the measured pulls.
    pub registry_bytes: u64,
    /// Blob bytes the registry served for the warm-up pull (warm only).
    pub warmup_registry_bytes: u64,
    /// Seconds the warm-up pull took (warm only).
    pub warmup_seconds: Option<f64>,
    /// Each host's completion time in seconds, in host order.
    pub host_seconds: Vec<f64>,
    /// Link counters of every cluster host (registry, tracker, then the
    /// pulling hosts) during the measured pulls.
    pub links: Vec<LinkSample>,
    /// Each pulling host's peer traffic, from its proxy's /metrics.
    pub peer_bytes: Vec<PeerBytes>,
    /// Piece bytes the tracker's origin seeder sent to peers during the
    /// timed pulls (not the warm scenario's first pull).
    pub origin_uploaded: u64,
    /// CPU seconds each pulling host's bay-proxy spent during the timed
    /// pulls, in host order.
    pub proxy_cpu: Vec<f64>,
    /// CPU seconds the tracker spent during the timed pulls.
    pub tracker_cpu: f64,
}

/// One proxy's `bay_peer_*_bytes_total` after a scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerBytes {
    pub downloaded: u64,
    pub uploaded: u64,
    pub wasted: u64,
}

impl PeerBytes {
    fn parse(metrics: &str) -> PeerBytes {
        PeerBytes {
            downloaded: metric_value(metrics, "bay_peer_downloaded_bytes_total"),
            uploaded: metric_value(metrics, "bay_peer_uploaded_bytes_total"),
            wasted: metric_value(metrics, "bay_peer_wasted_bytes_total"),
        }
    }
}

impl ScenarioResult {
    /// Seconds one image takes over one link at the configured rate.
    pub fn ideal_seconds(&self) -> f64 {
        self.image_bytes as f64 * 8.0 / (self.rate_mbit as f64 * 1e6)
    }

    /// The slowest host's time.
    pub fn last_seconds(&self) -> f64 {
        self.host_seconds.iter().copied().fold(0.0, f64::max)
    }

    /// Slowest host's time over the one-link time.
    pub fn time_ratio(&self) -> f64 {
        self.last_seconds() / self.ideal_seconds()
    }

    /// Registry blob bytes (warm-up included) over the image's blob bytes.
    pub fn egress_ratio(&self) -> f64 {
        (self.registry_bytes + self.warmup_registry_bytes) as f64 / self.image_bytes as f64
    }

    /// Registry blob bytes of the measured pulls alone over the image.
    pub fn measured_egress_ratio(&self) -> f64 {
        self.registry_bytes as f64 / self.image_bytes as f64
    }

    /// Bytes a host received from peers and dropped, on average, over the
    /// image size.
    pub fn wasted_ratio(&self) -> f64 {
        let n = self.peer_bytes.len().max(1) as f64;
        let wasted: u64 = self.peer_bytes.iter().map(|p| p.wasted).sum();
        wasted as f64 / n / self.image_bytes as f64
    }

    /// Copies of the image the origin seeder uploaded.
    pub fn origin_copies(&self) -> f64 {
        self.origin_uploaded as f64 / self.image_bytes as f64
    }

    /// The median proxy's CPU seconds per GiB it delivered to its client.
    pub fn proxy_cpu_per_gib(&self) -> Option<f64> {
        let mut v = self.proxy_cpu.clone();
        v.sort_by(f64::total_cmp);
        let median = *v.get(v.len() / 2)?;
        Some(median / (self.image_bytes as f64 / GIB))
    }

    /// The tracker's CPU seconds per GiB the fleet's clients received.
    pub fn tracker_cpu_per_gib(&self) -> Option<f64> {
        if self.proxy_cpu.is_empty() {
            return None;
        }
        let delivered = self.image_bytes as f64 * self.proxy_cpu.len() as f64 / GIB;
        Some(self.tracker_cpu / delivered)
    }

    /// The result as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario.name(),
            "hosts": self.hosts,
            "rate_mbit": self.rate_mbit,
            "image_bytes": self.image_bytes,
            "registry_bytes": self.registry_bytes,
            "warmup_registry_bytes": self.warmup_registry_bytes,
            "warmup_seconds": self.warmup_seconds,
            "egress_ratio": self.egress_ratio(),
            "measured_egress_ratio": self.measured_egress_ratio(),
            "ideal_seconds": self.ideal_seconds(),
            "last_seconds": self.last_seconds(),
            "time_ratio": self.time_ratio(),
            "origin_copies": self.origin_copies(),
            "wasted_ratio": self.wasted_ratio(),
            "host_seconds": self.host_seconds,
            "origin_uploaded": self.origin_uploaded,
            "proxy_cpu_seconds": self.proxy_cpu,
            "tracker_cpu_seconds": self.tracker_cpu,
            "proxy_cpu_per_gib": self.proxy_cpu_per_gib(),
            "tracker_cpu_per_gib": self.tracker_cpu_per_gib(),
            "peer_bytes": self.peer_bytes.iter().map(|p| serde_json::json!({
                "downloaded": p.downloaded,
                "uploaded": p.uploaded,
                "wasted": p.wasted,
            })).collect::<Vec<_>>(),
            "links": self.links.iter().map(|l| serde_json::json!({
                "t": l.t,
                "down": l.hosts.iter().map(|h| h.0).collect::<Vec<_>>(),
                "up": l.hosts.iter().map(|h| h.1).collect::<Vec<_>>(),
                "cpu_busy": l.cpu_busy,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What a run left behind to check: names of what it created.
#[derive(Debug, Clone)]
pub struct RunTrace {
    /// Namespace name prefix of the cluster.
    pub prefix: String,
    /// The cluster's subnet (its blackhole route).
    pub subnet: String,
    /// Process ids of every program started inside the namespaces.
    pub pids: Vec<u32>,
}

/// Runs every scenario of `opts` on one fresh cluster and removes it.
pub fn run(opts: &BenchOptions) -> Result<(Vec<ScenarioResult>, RunTrace)> {
    if opts.hosts == 0 {
        bail!("at least one pulling host is needed");
    }
    let proxy = opts.bin_dir.join("bay-proxy");
    let tracker = opts.bin_dir.join("bay-tracker");
    for bin in [&proxy, &tracker] {
        if !bin.is_file() {
            bail!("{} does not exist: build it first", bin.display());
        }
    }
    let temp = tempfile::Builder::new()
        .prefix("bay-cluster-")
        .tempdir()
        .context("create a work folder")?;
    let logs = match &opts.log_dir {
        Some(dir) => dir.clone(),
        None => temp.path().join("logs"),
    };
    std::fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))?;
    let cluster = Cluster::create(opts.hosts + FIRST_PULLER, Some(Rate::mbit(opts.rate_mbit)))?;
    let mut trace = RunTrace {
        prefix: cluster.prefix().to_owned(),
        subnet: cluster.subnet(),
        pids: Vec::new(),
    };
    let registry_host = cluster.host(REGISTRY_HOST)?.clone();
    let registry = Registry::start(RegistryOptions::plain().on_host(&registry_host))?;
    let mut bench = Bench {
        opts,
        cluster: &cluster,
        registry: &registry,
        work: temp.path().to_path_buf(),
        logs,
        proxy,
        tracker,
        pids: &mut trace.pids,
    };
    let mut results = Vec::new();
    for (k, &scenario) in opts.scenarios.iter().enumerate() {
        let result = bench
            .scenario(k, scenario)
            .with_context(|| format!("scenario {}", scenario.name()))?;
        results.push(result);
    }
    drop(registry);
    drop(cluster);
    Ok((results, trace))
}

/// Everything one run's scenarios share.
struct Bench<'a> {
    opts: &'a BenchOptions,
    cluster: &'a Cluster,
    registry: &'a Registry,
    work: PathBuf,
    logs: PathBuf,
    proxy: PathBuf,
    tracker: PathBuf,
    pids: &'a mut Vec<u32>,
}

/// Ports of one scenario's programs; each scenario takes its own so that
/// nothing waits for the previous one's sockets to close.
#[derive(Debug, Clone, Copy)]
struct Ports {
    tracker: u16,
    tracker_peer: u16,
    proxy: u16,
    proxy_peer: u16,
}

impl Ports {
    fn of(k: usize) -> Ports {
        let step = u16::try_from(k % 100).unwrap_or(0) * 10;
        Ports {
            tracker: 6880 + step,
            tracker_peer: 6881 + step,
            proxy: 5100 + step,
            proxy_peer: 6882 + step,
        }
    }
}

impl Bench<'_> {
    fn scenario(&mut self, k: usize, scenario: Scenario) -> Result<ScenarioResult> {
        let image = TestImage::build(&ImageSpec {
            layer_sizes: self.opts.layer_sizes.clone(),
            seed: self.opts.seed.wrapping_add(k as u64),
            tag: "bench".into(),
        })?;
        let repo = format!("bench/{}{k}", scenario.name());
        let registry_ns = self.cluster.host(REGISTRY_HOST)?.netns.clone();
        // Pushed over the registry host's own loopback: unshaped and quick.
        image.push_from(Some(&registry_ns), self.registry, &repo)?;
        let image_bytes = image.layer_bytes() + image.config.size;
        let scenario_dir = self.work.join(format!("{k}-{}", scenario.name()));
        let ports = Ports::of(k);
        let mut result = ScenarioResult {
            scenario,
            hosts: self.opts.hosts,
            rate_mbit: self.opts.rate_mbit,
            image_bytes,
            registry_bytes: 0,
            warmup_registry_bytes: 0,
            warmup_seconds: None,
            host_seconds: Vec::new(),
            links: Vec::new(),
            peer_bytes: Vec::new(),
            origin_uploaded: 0,
            proxy_cpu: Vec::new(),
            tracker_cpu: 0.0,
        };
        let pullers: Vec<usize> = (FIRST_PULLER..FIRST_PULLER + self.opts.hosts).collect();
        match scenario {
            Scenario::Direct => {
                let reference = image.reference(self.registry, &repo);
                let access = Access::to_registry(self.registry);
                let (secs, bytes, links) =
                    self.pull_all(&pullers, &reference, &access, &scenario_dir, &image)?;
                result.host_seconds = secs;
                result.registry_bytes = bytes;
                result.links = links;
            }
            Scenario::Cold | Scenario::Warm => {
                let tracker = self.start_tracker(k, ports, &scenario_dir)?;
                let reference = format!("127.0.0.1:{}/{repo}:{}", ports.proxy, image.tag);
                let access = Access {
                    plain_http: true,
                    ..Access::default()
                };
                let mut origin_before = 0;
                if scenario == Scenario::Warm {
                    let first = pullers[..1].to_vec();
                    let proxies = self.start_proxies(k, "warmup", &first, ports, &scenario_dir)?;
                    let warm_dir = scenario_dir.join("warmup");
                    let (secs, bytes, _) =
                        self.pull_all(&first, &reference, &access, &warm_dir, &image)?;
                    result.warmup_seconds = secs.first().copied();
                    result.warmup_registry_bytes = bytes;
                    origin_before = self.origin_uploaded(ports)?;
                    drop(proxies);
                    let _ = std::fs::remove_dir_all(&warm_dir);
                }
                let proxies = self.start_proxies(k, "pull", &pullers, ports, &scenario_dir)?;
                let cpu_before: Vec<f64> = proxies.iter().map(|d| cpu_seconds(d.pid())).collect();
                let tracker_before = cpu_seconds(tracker.pid());
                let (secs, bytes, links) =
                    self.pull_all(&pullers, &reference, &access, &scenario_dir, &image)?;
                result.proxy_cpu = proxies
                    .iter()
                    .zip(&cpu_before)
                    .map(|(d, before)| cpu_seconds(d.pid()) - before)
                    .collect();
                result.tracker_cpu = cpu_seconds(tracker.pid()) - tracker_before;
                result.host_seconds = secs;
                result.registry_bytes = bytes;
                result.links = links;
                for &i in &pullers {
                    let url = format!("http://127.0.0.1:{}/metrics", ports.proxy);
                    result
                        .peer_bytes
                        .push(PeerBytes::parse(&self.metrics_in(i, &url)?));
                }
                result.origin_uploaded = self.origin_uploaded(ports)?.saturating_sub(origin_before);
                drop(proxies);
                drop(tracker);
            }
        }
        // Pulled images and proxy caches of a finished scenario are not
        // needed again; the next scenario's bytes must fit on the disk.
        let _ = std::fs::remove_dir_all(&scenario_dir);
        Ok(result)
    }

    /// Piece bytes the tracker's origin seeder has sent so far.
    fn origin_uploaded(&self, ports: Ports) -> Result<u64> {
        let tracker_ip = self.cluster.host(TRACKER_HOST)?.ip;
        let url = format!("http://{tracker_ip}:{}/metrics", ports.tracker);
        Ok(PeerBytes::parse(&self.metrics_in(TRACKER_HOST, &url)?).uploaded)
    }

    /// A /metrics page fetched from inside host `i`'s namespace.
    fn metrics_in(&self, i: usize, url: &str) -> Result<String> {
        let mut cmd = self.cluster.command(i, "curl")?;
        cmd.args(["-sf", "--max-time", "10", url]);
        Ok(run_stdout(&mut cmd)?)
    }

    fn start_tracker(&mut self, k: usize, ports: Ports, dir: &Path) -> Result<Daemon> {
        let host = self.cluster.host(TRACKER_HOST)?.clone();
        let registry = self.registry.host();
        let mut cmd = self.cluster.command(TRACKER_HOST, "env")?;
        cmd.arg(format!("RUST_LOG={}", self.opts.rust_log))
            .arg(&self.tracker)
            .arg("serve")
            .arg(format!("--listen={}:{}", host.ip, ports.tracker))
            .arg(format!("--peer-listen={}:{}", host.ip, ports.tracker_peer))
            .arg(format!("--public-addr={}:{}", host.ip, ports.tracker_peer))
            .arg(format!("--root={}", dir.join("tracker").display()))
            .arg(format!("--allow-registry={registry}"))
            .arg(format!("--insecure-registry={registry}"));
        let mut daemon = Daemon::spawn(&format!("{k}-tracker"), cmd, &self.logs)?;
        self.pids.push(daemon.pid());
        let netns = host.netns;
        daemon.wait_until("bay-tracker to listen", START_TIMEOUT, || {
            listening_in(&netns, ports.tracker)
        })?;
        Ok(daemon)
    }

    fn start_proxies(
        &mut self,
        k: usize,
        phase: &str,
        hosts: &[usize],
        ports: Ports,
        dir: &Path,
    ) -> Result<Vec<Daemon>> {
        let tracker_ip = self.cluster.host(TRACKER_HOST)?.ip;
        let registry = self.registry.host();
        let mut daemons = Vec::new();
        for &i in hosts {
            let host = self.cluster.host(i)?.clone();
            let mut cmd = self.cluster.command(i, "env")?;
            cmd.arg(format!("RUST_LOG={}", self.opts.rust_log))
                .arg(&self.proxy)
                .arg("serve")
                .arg(format!("--listen=127.0.0.1:{}", ports.proxy))
                .arg(format!("--peer-listen={}:{}", host.ip, ports.proxy_peer))
                .arg(format!("--public-addr={}:{}", host.ip, ports.proxy_peer))
                .arg(format!(
                    "--root={}",
                    dir.join(format!("{phase}-proxy{i}")).display()
                ))
                .arg(format!("--tracker=http://{tracker_ip}:{}", ports.tracker))
                .arg(format!("--upstream={registry}"))
                .arg(format!("--allow-registry={registry}"))
                .arg(format!("--insecure-registry={registry}"));
            let daemon = Daemon::spawn(&format!("{k}-{phase}-proxy-h{i}"), cmd, &self.logs)?;
            self.pids.push(daemon.pid());
            daemons.push((i, host.netns, daemon));
        }
        let mut out = Vec::new();
        for (_, netns, mut daemon) in daemons {
            daemon.wait_until("bay-proxy to listen", START_TIMEOUT, || {
                listening_in(&netns, ports.proxy)
            })?;
            out.push(daemon);
        }
        Ok(out)
    }

    /// Every host in `hosts` pulls `reference` at the same moment; returns
    /// each host's seconds, the registry's blob bytes meanwhile and the
    /// link counters sampled during the pulls.
    fn pull_all(
        &self,
        hosts: &[usize],
        reference: &str,
        access: &Access,
        dir: &Path,
        image: &TestImage,
    ) -> Result<(Vec<f64>, u64, Vec<LinkSample>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let before = self.registry.requests()?.len();
        let dests: Vec<PathBuf> = hosts
            .iter()
            .map(|i| dir.join(format!("pulled-h{i}")))
            .collect();
        let timeout = self.opts.pull_timeout.as_secs().max(1).to_string();
        let mut cmds = Vec::new();
        for (&i, dest) in hosts.iter().zip(&dests) {
            let copy = skopeo::oci_copy_command(None, reference, access, dest);
            // `timeout` ends a pull that hangs, so a broken swarm fails the
            // run instead of stalling it.
            let mut cmd = self.cluster.command(i, "timeout")?;
            cmd.arg(&timeout)
                .arg(copy.get_program())
                .args(copy.get_args());
            cmds.push(cmd);
        }
        let started = Instant::now();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let all_hosts = self.cluster.hosts().len();
        let (outcomes, links) = std::thread::scope(|s| {
            let sampler = s.spawn(|| sample_links(self.cluster.hub(), all_hosts, &stop));
            let outcomes = run_all_at_once(cmds);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            (outcomes, sampler.join().unwrap_or_default())
        });
        let wall = started.elapsed();
        let mut secs = Vec::new();
        for ((outcome, dest), &i) in outcomes.into_iter().zip(&dests).zip(hosts) {
            let (took, _) = outcome.with_context(|| format!("pull on host {i}"))?;
            image
                .check(&skopeo::read_oci_layout(dest)?)
                .with_context(|| format!("image pulled on host {i}"))?;
            secs.push(took.as_secs_f64());
        }
        let records = self.registry.requests()?;
        let bytes = blob_bytes(records.get(before..).unwrap_or_default())
            .values()
            .sum();
        eprintln!(
            "  {} host(s) pulled in {:.2} s; registry blob bytes {bytes}",
            hosts.len(),
            wall.as_secs_f64()
        );
        Ok((secs, bytes, links))
    }
}

/// Bytes through each pulling host's link at one instant, read from the
/// hub ends of the links: `down` went to the host, `up` came from it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSample {
    /// Seconds since the pulls started.
    pub t: f64,
    /// Per host, in cluster host order: (bytes down, bytes up) since the
    /// pulls started.
    pub hosts: Vec<(u64, u64)>,
    /// Share of the machine's CPU time that was busy (by anyone) since
    /// the previous sample, 0 to 1.
    pub cpu_busy: f64,
}

/// How often the link counters are read during a pull.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Reads the hub's link counters every [`SAMPLE_EVERY`] until `stop`.
fn sample_links(hub: &str, hosts: usize, stop: &std::sync::atomic::AtomicBool) -> Vec<LinkSample> {
    let start = Instant::now();
    let base = link_counters(hub, hosts).unwrap_or_else(|| vec![(0, 0); hosts]);
    let mut cpu = cpu_times();
    let mut out = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let next = Instant::now() + SAMPLE_EVERY;
        if let Some(now) = link_counters(hub, hosts) {
            let hosts = now
                .iter()
                .zip(&base)
                .map(|(n, b)| (n.0.saturating_sub(b.0), n.1.saturating_sub(b.1)))
                .collect();
            let now_cpu = cpu_times();
            let (busy, total) = (now_cpu.0 - cpu.0, now_cpu.1 - cpu.1);
            cpu = now_cpu;
            out.push(LinkSample {
                t: start.elapsed().as_secs_f64(),
                hosts,
                cpu_busy: if total > 0.0 { busy / total } else { 0.0 },
            });
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    out
}

/// CPU seconds every thread of process `pid` has run
/// (`/proc/PID/task/*/schedstat`, in ns); what cannot be read counts 0.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// (busy, total) CPU time of the whole machine from `/proc/stat`, in ticks.
fn cpu_times() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    // Fields 4 and 5 are idle and iowait.
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// (bytes sent to host i, bytes received from host i) for every host,
/// from `ip -j -s link` in the hub.
fn link_counters(hub: &str, hosts: usize) -> Option<Vec<(u64, u64)>> {
    let out = std::process::Command::new("ip")
        .args(["-n", hub, "-j", "-s", "link", "show"])
        .output()
        .ok()?;
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut counters = vec![(0, 0); hosts];
    for link in links.as_array()? {
        let name = link.get("ifname")?.as_str().unwrap_or_default();
        let Some(i) = name.strip_prefix('h').and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let stats = link.get("stats64")?;
        let tx = stats.get("tx")?.get("bytes")?.as_u64()?;
        let rx = stats.get("rx")?.get("bytes")?.as_u64()?;
        if let Some(slot) = counters.get_mut(i) {
            *slot = (tx, rx);
        }
    }
    Some(counters)
}

/// The results as an aligned text table: proxy/G is the median proxy's CPU seconds per GiB it
/// delivered, trk/G the tracker's per GiB the fleet received.
pub fn table(results: &[ScenarioResult]) -> String {
    let cpu = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let mut out = format!(
        "{:<8} {:>5} {:>6} {:>10} {:>8} {:>10} {:>8} {:>8} {:>7} {:>6} {:>8} {:>8}  per-host seconds\n",
        "scenario",
        "hosts",
        "Mbit",
        "image MiB",
        "egress",
        "last s",
        "ideal s",
        "time",
        "origin",
        "waste",
        "proxy/G",
        "trk/G"
    );
    for r in results {
        let hosts: Vec<String> = r.host_seconds.iter().map(|s| format!("{s:.1}")).collect();
        out.push_str(&format!(
            "{:<8} {:>5} {:>6} {:>10.1} {:>7.2}x {:>10.2} {:>8.2} {:>7.2}x {:>6.2}x {:>5.1}% {:>8} {:>8}  {}\n",
            r.scenario.name(),
            r.hosts,
            r.rate_mbit,
            r.image_bytes as f64 / MIB as f64,
            r.egress_ratio(),
            r.last_seconds(),
            r.ideal_seconds(),
            r.time_ratio(),
            r.origin_copies(),
            100.0 * r.wasted_ratio(),
            cpu(r.proxy_cpu_per_gib()),
            cpu(r.tracker_cpu_per_gib()),
            hosts.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_add_up_to_the_total() {
        let sizes = BenchOptions::layers_of(128, 4);
        assert_eq!(sizes.iter().sum::<u64>(), 128 * MIB);
        assert_eq!(sizes, vec![64 * MIB, 32 * MIB, 16 * MIB, 16 * MIB]);
    }

    #[test]
    fn ratios_follow_the_definitions() {
        let r = ScenarioResult {
            scenario: Scenario::Warm,
            hosts: 2,
            rate_mbit: 8,
            image_bytes: 1_000_000,
            registry_bytes: 0,
            warmup_registry_bytes: 1_000_000,
            warmup_seconds: Some(1.0),
            host_seconds: vec![1.5, 2.0],
            links: Vec::new(),
            peer_bytes: vec![
                PeerBytes {
                    downloaded: 1_000_000,
                    uploaded: 0,
                    wasted: 20_000,
                },
                PeerBytes {
                    downloaded: 1_000_000,
                    uploaded: 500_000,
                    wasted: 0,
                },
            ],
            origin_uploaded: 1_500_000,
            proxy_cpu: vec![0.4, 0.2, 0.3],
            tracker_cpu: 0.6,
        };
        assert!((r.wasted_ratio() - 0.01).abs() < 1e-9);
        let gib = 1_000_000.0 / GIB;
        assert!((r.proxy_cpu_per_gib().unwrap() - 0.3 / gib).abs() < 1e-6);
        assert!((r.tracker_cpu_per_gib().unwrap() - 0.2 / gib).abs() < 1e-6);
        assert!((r.origin_copies() - 1.5).abs() < 1e-9);
        assert!((r.ideal_seconds() - 1.0).abs() < 1e-9);
        assert!((r.time_ratio() - 2.0).abs() < 1e-9);
        assert!((r.egress_ratio() - 1.0).abs() < 1e-9);
        assert!(r.measured_egress_ratio().abs() < 1e-9);
        assert_eq!(Scenario::parse("warm"), Some(Scenario::Warm));
        assert_eq!(Scenario::parse("hot"), None);
    }
}
