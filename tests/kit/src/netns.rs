//! Hosts for the cluster benchmark: network namespaces joined by a bridge,
//! each host's link shaped with tc, in a test subnet that exists only inside
//! the namespaces.
//!
//! Layout: a hub namespace holds bridge `br0`; host `i` is namespace
//! `<prefix>-h<i>` with `eth0` (address `10.213.<run>.<i+1>/24`) whose peer
//! `h<i>` sits on the bridge. Both ends of every link are created directly
//! inside their namespaces, so the root namespace never sees them. An HTB
//! qdisc on each end limits the host's upload and download to the rate,
//! small TCP packets (ACKs) first.
//!
//! In the root namespace the subnet gets a blackhole route for the
//! cluster's lifetime, so a command run by mistake outside the namespaces
//! cannot send that traffic out of the machine; claiming that route also
//! reserves the subnet against other runs. Everything goes on drop: the
//! processes inside the namespaces, the namespaces (and with them their
//! links), and the route. A run that was killed outright cannot clean up:
//! namespace names and the subnet claims (files under [`CLAIMS_DIR`]) carry
//! the owning process id, and [`sweep_stale`] (run by every
//! [`Cluster::create`]) removes whatever belongs to a process that is gone.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::{HarnessError, Result};
use crate::process::{command_in, listening_in, run, run_stdout, wait_until, Daemon};

/// First two octets of every test subnet.
pub const SUBNET_PREFIX: [u8; 2] = [10, 213];
/// Where subnet claims are recorded: one file per claimed third octet,
/// holding the owning cluster's prefix.
pub const CLAIMS_DIR: &str = "/run/bay-test-netns";
static RUNS: AtomicU32 = AtomicU32::new(0);

/// A link rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

impl Rate {
    /// `n` Mbit/s.
    pub fn mbit(n: u64) -> Rate {
        Rate(n * 1_000_000)
    }

    /// Bits per second.
    pub fn bits_per_second(self) -> u64 {
        self.0
    }

    /// A token bucket of about 10 ms at this rate, at least 32 KiB so that
    /// one full-size GSO burst fits.
    fn burst_bytes(self) -> u64 {
        (self.0 / 8 / 100).max(32 * 1024)
    }
}

/// One host of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct NetHost {
    /// Its network namespace name.
    pub netns: String,
    /// Its address on the cluster subnet.
    pub ip: Ipv4Addr,
}

/// Namespaces on a bridge; all removed on drop.
#[derive(Debug)]
pub struct Cluster {
    prefix: String,
    hub: String,
    subnet: Ipv4Addr,
    hosts: Vec<NetHost>,
    rate: Option<Rate>,
    route: bool,
    created: Vec<String>,
}

impl Cluster {
    /// Creates `hosts` namespaces on a bridge, each link limited to `rate`
    /// (unshaped when `None`).
    pub fn create(hosts: usize, rate: Option<Rate>) -> Result<Cluster> {
        if hosts == 0 || hosts > 250 {
            return Err(HarnessError::parse(
                "host count",
                format!("{hosts} not in 1..=250"),
            ));
        }
        sweep_stale();
        let run_no = RUNS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("bay{}r{run_no}", std::process::id());
        let mut cluster = Cluster {
            hub: format!("{prefix}-hub"),
            prefix,
            subnet: Ipv4Addr::UNSPECIFIED,
            hosts: Vec::new(),
            rate,
            route: false,
            created: Vec::new(),
        };
        // On error the partly built cluster drops here and cleans up.
        cluster.claim_subnet()?;
        cluster.build_hub()?;
        for i in 0..hosts {
            cluster.add_host(i)?;
        }
        Ok(cluster)
    }

    /// The per-run prefix of every namespace name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The hub namespace, which holds the bridge and the hub end `h<i>`
    /// of every host's link (its counters are the hosts' traffic).
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// The hosts, in order.
    pub fn hosts(&self) -> &[NetHost] {
        &self.hosts
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> Result<&NetHost> {
        self.hosts
            .get(i)
            .ok_or_else(|| HarnessError::parse("host index", format!("{i} out of range")))
    }

    /// The subnet in CIDR notation, e.g. `10.213.7.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}/24", self.subnet)
    }

    /// The configured link rate.
    pub fn rate(&self) -> Option<Rate> {
        self.rate
    }

    /// `ip netns exec <host i> PROGRAM`: add arguments and run.
    pub fn command(&self, host: usize, program: &str) -> Result<Command> {
        Ok(command_in(Some(&self.host(host)?.netns), program))
    }

    /// Starts a long-running program inside host `host`, logging to `log_dir`.
    pub fn spawn(
        &self,
        host: usize,
        name: &str,
        program: &str,
        args: &[&str],
        log_dir: &Path,
    ) -> Result<Daemon> {
        let mut cmd = self.command(host, program)?;
        cmd.args(args);
        Daemon::spawn(name, cmd, log_dir)
    }

    /// Waits until something listens on TCP `port` inside host `host`
    /// (checked with `ss`, so no connection is made to the listener).
    pub fn wait_for_listen(&self, host: usize, port: u16, timeout: Duration) -> Result<()> {
        let netns = self.host(host)?.netns.clone();
        wait_until(
            &format!("a listener on port {port} in {netns}"),
            timeout,
            || listening_in(&netns, port),
        )
    }

    /// Takes the first free 10.213.X.0/24 by adding its blackhole route.
    fn claim_subnet(&mut self) -> Result<()> {
        let start = std::process::id().wrapping_add(RUNS.load(Ordering::Relaxed) * 37) % 250;
        let mut last = None;
        for k in 0..250u32 {
            let third = u8::try_from((start + k) % 250 + 1).unwrap_or(1);
            let subnet = Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], third, 0);
            let cidr = format!("{subnet}/24");
            if route_exists(&cidr)? {
                continue;
            }
            match run(Command::new("ip").args(["route", "add", "blackhole", &cidr])) {
                Ok(_) => {
                    self.subnet = subnet;
                    self.route = true;
                    record_claim(third, &self.prefix);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::parse("test subnets", "all 250 in use")))
    }

    fn build_hub(&mut self) -> Result<()> {
        let hub = self.hub.clone();
        self.add_netns(&hub)?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])
    }

    fn add_host(&mut self, i: usize) -> Result<()> {
        let netns = format!("{}-h{i}", self.prefix);
        let octets = self.subnet.octets();
        let last = u8::try_from(i + 1).map_err(|_| HarnessError::parse("host index", "too big"))?;
        let addr = Ipv4Addr::new(octets[0], octets[1], octets[2], last);
        self.add_netns(&netns)?;
        let hub_end = format!("h{i}");
        ip(&[
            "link", "add", &hub_end, "netns", &self.hub, "type", "veth", "peer", "name", "eth0",
            "netns", &netns,
        ])?;
        ip(&[
            "-n", &self.hub, "link", "set", &hub_end, "master", "br0", "up",
        ])?;
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ])?;
        ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        if let Some(rate) = self.rate {
            shape(&netns, "eth0", rate)?;
            shape(&self.hub, &hub_end, rate)?;
        }
        self.hosts.push(NetHost { netns, ip: addr });
        Ok(())
    }

    fn add_netns(&mut self, name: &str) -> Result<()> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_owned());
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for netns in self.created.iter().rev() {
            kill_processes_in(netns);
            let _ = run(Command::new("ip").args(["netns", "del", netns]));
        }
        if self.route {
            let _ = run(Command::new("ip").args(["route", "del", "blackhole", &self.subnet()]));
            let third = self.subnet.octets()[2];
            let _ = std::fs::remove_file(Path::new(CLAIMS_DIR).join(third.to_string()));
        }
    }
}

/// Removes namespaces, routes and processes left by harness runs whose
/// process no longer exists (killed before they could clean up).
pub fn sweep_stale() {
    if let Ok(names) = namespaces_with_prefix("bay") {
        for netns in names.iter().filter(|n| owner_is_gone(n)) {
            kill_processes_in(netns);
            let _ = run(Command::new("ip").args(["netns", "del", netns]));
        }
    }
    let Ok(claims) = std::fs::read_dir(CLAIMS_DIR) else {
        return;
    };
    for claim in claims.flatten() {
        let prefix = std::fs::read_to_string(claim.path()).unwrap_or_default();
        let third = claim.file_name().to_string_lossy().into_owned();
        if owner_is_gone(prefix.trim()) {
            let cidr = format!("{}.{}.{third}.0/24", SUBNET_PREFIX[0], SUBNET_PREFIX[1]);
            let _ = run(Command::new("ip").args(["route", "del", "blackhole", &cidr]));
            let _ = std::fs::remove_file(claim.path());
        }
    }
}

/// Whether `name` (`bay<pid>r<n>…`) belongs to a process that has exited.
fn owner_is_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("bay") else {
        return false;
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let well_formed = rest[digits.len()..].starts_with('r');
    match digits.parse::<u32>() {
        Ok(pid) if well_formed => !Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}

fn record_claim(third: u8, prefix: &str) {
    let dir = Path::new(CLAIMS_DIR);
    if std::fs::create_dir_all(dir).is_ok() {
        let _ = std::fs::write(dir.join(third.to_string()), prefix);
    }
}

/// Names of namespaces that start with `prefix` (to check cleanup).
pub fn namespaces_with_prefix(prefix: &str) -> Result<Vec<String>> {
    let out = run_stdout(Command::new("ip").args(["netns", "list"]))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect())
}

/// Whether the root namespace has a route for exactly `cidr`.
pub fn route_exists(cidr: &str) -> Result<bool> {
    let out = run_stdout(Command::new("ip").args(["route", "show", "table", "all"]))?;
    let bare = cidr.trim_end_matches("/32");
    Ok(out.lines().any(|l| {
        let mut words = l.split_whitespace();
        let first = words.next();
        let dest = if first == Some("blackhole") || first == Some("unreachable") {
            words.next()
        } else {
            first
        };
        dest == Some(cidr) || dest == Some(bare)
    }))
}

/// Kills what runs inside a namespace the harness made (only processes
/// the tests started can be there).
fn kill_processes_in(netns: &str) {
    let Ok(out) = run_stdout(Command::new("ip").args(["netns", "pids", netns])) else {
        return;
    };
    for pid in out.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill(2) on a pid listed as living in our namespace.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Limits `dev` to `rate` with an HTB tree of two classes that share the
/// rate: small TCP packets (ACKs, SYNs: under 128 bytes) go first, bulk
/// data waits in its own queue. A single FIFO under the limit would hold a
/// host's ACKs behind up to 50 ms of its upload, so a host busy uploading
/// would download at a fraction of its rate; real hosts queue per flow
/// (fq_codel, Linux's default), which this kernel lacks.
fn shape(netns: &str, dev: &str, rate: Rate) -> Result<()> {
    let bits = rate.bits_per_second();
    let burst = format!("{}b", rate.burst_bytes());
    let tc = |args: &[&str]| {
        let mut all = vec!["-n", netns];
        all.extend_from_slice(args);
        ip_tc(&all)
    };
    let total = format!("{bits}bit");
    let small = format!("{}bit", bits / 10);
    let bulk = format!("{}bit", bits - bits / 10);
    tc(&[
        "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "20",
    ])?;
    tc(&[
        "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", &total,
        "burst", &burst,
    ])?;
    tc(&[
        "class", "add", "dev", dev, "parent", "1:1", "classid", "1:10", "htb", "rate", &small,
        "ceil", &total, "burst", &burst, "prio", "0",
    ])?;
    tc(&[
        "class", "add", "dev", dev, "parent", "1:1", "classid", "1:20", "htb", "rate", &bulk,
        "ceil", &total, "burst", &burst, "prio", "1",
    ])?;
    // IPv4, protocol TCP, total length below 128.
    tc(&[
        "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match",
        "ip", "protocol", "6", "0xff", "match", "u16", "0x0000", "0xff80", "at", "2", "flowid",
        "1:10",
    ])
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args)).map(drop)
}

fn ip_tc(args: &[&str]) -> Result<()> {
    run(Command::new("tc").args(args)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_of_a_name_is_its_pid() {
        let me = format!("bay{}r3-h0", std::process::id());
        assert!(!owner_is_gone(&me));
        assert!(owner_is_gone("bay4294967290r0-hub"));
        assert!(!owner_is_gone("bayfoo"), "not ours: leave alone");
        assert!(!owner_is_gone("other123r0"));
    }

    #[test]
    fn burst_holds_ten_milliseconds_or_32_kib() {
        assert_eq!(Rate::mbit(1000).burst_bytes(), 1_250_000);
        assert_eq!(Rate::mbit(1).burst_bytes(), 32 * 1024);
    }
}
