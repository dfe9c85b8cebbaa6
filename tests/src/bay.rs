//! bay itself in end-to-end tests: trackers and proxies started inside the
//! test process (listeners bound to port 0, stopped through their handles),
//! or as the real binaries (`target/debug/bay-tracker`, `bay-proxy`) when a
//! test must SIGKILL one, restart it on the same root, or run it under
//! another environment (`MONOIO_FORCE_LEGACY_DRIVER=1` is read once per
//! process).
//!
//! Also small HTTP probes run with curl, so a test sees exactly what an
//! image client would: status, body, and the proxy's `/metrics`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bay_httpd::Shutdown;
use bay_proxy::config::ProxyConfig;
use bay_tracker::config::TrackerConfig;
use tempfile::TempDir;

use crate::bins::bay_binary;
use crate::error::{HarnessError, Result};
use crate::process::{free_port, run, Daemon};
use crate::registry::Registry;

/// How long a bay binary gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which upstreams bay may contact and how it reaches them.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    /// `--allow-registry` patterns.
    pub allow: Vec<String>,
    /// `--insecure-registry` (plain HTTP) hosts.
    pub insecure: Vec<String>,
    /// `--ca-file` for registries with a private CA.
    pub ca_file: Option<PathBuf>,
    /// The proxies' `--upstream`, if they have a fixed one.
    pub fixed: Option<String>,
}

impl Upstreams {
    /// `registry` allowed, reached by its scheme and CA, and fixed as the
    /// proxies' upstream.
    pub fn fixed(registry: &Registry) -> Upstreams {
        Upstreams {
            fixed: Some(registry.host()),
            ..Upstreams::routed(registry)
        }
    }

    /// `registry` allowed and reached by its scheme and CA; the proxies
    /// find it from each request (`?ns=` or the `p2p-` host prefix).
    pub fn routed(registry: &Registry) -> Upstreams {
        Upstreams::named(&registry.host(), registry)
    }

    /// Like [`Upstreams::routed`] with the registry known as `host`
    /// (`name:port`, e.g. a name in /etc/hosts).
    pub fn named(host: &str, registry: &Registry) -> Upstreams {
        Upstreams {
            allow: vec![host.to_owned()],
            insecure: match registry.tls() {
                None => vec![host.to_owned()],
                Some(_) => Vec::new(),
            },
            ca_file: registry.tls().map(|t| t.ca.cert().to_owned()),
            fixed: None,
        }
    }

    /// Puts these upstreams, a loopback peer port and `root` into a
    /// node's settings.
    fn node(&self, node: &mut bay_core::config::NodeConfig, root: &Path) {
        node.root = Some(root.to_path_buf());
        node.peer_listen = Some(loopback0());
        node.allow_registry = self.allow.clone();
        node.insecure_registry = self.insecure.clone();
        node.ca_file = self.ca_file.clone();
    }

    fn args(&self, cmd: &mut Command) {
        for a in &self.allow {
            cmd.arg("--allow-registry").arg(a);
        }
        for i in &self.insecure {
            cmd.arg("--insecure-registry").arg(i);
        }
        if let Some(ca) = &self.ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
    }
}

/// A tracker running in this process.
#[derive(Debug)]
pub struct Tracker {
    running: bay_tracker::serve::Running,
    _dir: TempDir,
}

impl Tracker {
    /// Starts a tracker with its origin seeder on loopback ports.
    pub fn start(upstreams: &Upstreams) -> Result<Tracker> {
        Tracker::start_with(upstreams, |_| {})
    }

    /// Like [`Tracker::start`], with `tweak` applied to the configuration.
    pub fn start_with(
        upstreams: &Upstreams,
        tweak: impl FnOnce(&mut TrackerConfig),
    ) -> Result<Tracker> {
        let dir = temp_dir("bay-tracker-")?;
        let listener = bind(loopback0())?;
        let mut config = TrackerConfig {
            listen: local_addr(&listener)?,
            threads: 2,
            ..TrackerConfig::default()
        };
        upstreams.node(&mut config.node, dir.path());
        tweak(&mut config);
        let running = bay_tracker::serve::start(&config, Some(listener), Shutdown::new())
            .map_err(|e| HarnessError::parse("bay-tracker start", e.to_string()))?;
        Ok(Tracker { running, _dir: dir })
    }

    /// Where its origin seeder takes peer connections.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.running.origin_peer_addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.running.local_addr())
    }

    /// Stops it.
    pub fn stop(self) {
        self.running.stop();
    }
}

/// A proxy running in this process.
#[derive(Debug)]
pub struct Proxy {
    running: Option<bay_proxy::serve::Running>,
    root: PathBuf,
    _dir: Option<TempDir>,
}

impl Proxy {
    /// Starts a proxy on a free 127.0.0.1 port with a fresh root.
    pub fn start(trackers: &[String], upstreams: &Upstreams) -> Result<Proxy> {
        Proxy::start_with(trackers, upstreams, |_| {})
    }

    /// Like [`Proxy::start`], with `tweak` applied to the configuration.
    pub fn start_with(
        trackers: &[String],
        upstreams: &Upstreams,
        tweak: impl FnOnce(&mut ProxyConfig),
    ) -> Result<Proxy> {
        let dir = temp_dir("bay-proxy-")?;
        let root = dir.path().to_path_buf();
        let mut p = Proxy::start_tweaked(trackers, upstreams, bind(loopback0())?, &root, tweak)?;
        p._dir = Some(dir);
        Ok(p)
    }

    /// Starts a proxy on `listener` with its cache at `root`.
    pub fn start_on(
        trackers: &[String],
        upstreams: &Upstreams,
        listener: TcpListener,
        root: &Path,
    ) -> Result<Proxy> {
        Proxy::start_tweaked(trackers, upstreams, listener, root, |_| {})
    }

    fn start_tweaked(
        trackers: &[String],
        upstreams: &Upstreams,
        listener: TcpListener,
        root: &Path,
        tweak: impl FnOnce(&mut ProxyConfig),
    ) -> Result<Proxy> {
        let mut config = ProxyConfig {
            listen: local_addr(&listener)?,
            tracker: trackers.to_vec(),
            upstream: upstreams.fixed.clone(),
            threads: 2,
            ..ProxyConfig::default()
        };
        upstreams.node(&mut config.node, root);
        tweak(&mut config);
        let running = bay_proxy::serve::start(&config, Some(listener), Shutdown::new())
            .map_err(|e| HarnessError::parse("bay-proxy start", e.to_string()))?;
        Ok(Proxy {
            running: Some(running),
            root: root.to_path_buf(),
            _dir: None,
        })
    }

    /// Where clients reach it.
    pub fn addr(&self) -> SocketAddr {
        self.running
            .as_ref()
            .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)), |r| r.local_addr())
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Where its peer engine takes connections.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().map(|r| r.peer_addr())
    }

    /// Its cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops it (also on drop).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Trackers and proxies in this process, every proxy knowing every tracker.
#[derive(Debug)]
pub struct Cluster {
    /// The trackers, `None` once stopped.
    pub trackers: Vec<Option<Tracker>>,
    /// The proxies.
    pub proxies: Vec<Proxy>,
}

impl Cluster {
    /// Starts `trackers` trackers and `proxies` proxies.
    pub fn start(upstreams: &Upstreams, trackers: usize, proxies: usize) -> Result<Cluster> {
        let trackers = (0..trackers)
            .map(|_| Tracker::start(upstreams).map(Some))
            .collect::<Result<Vec<_>>>()?;
        let urls: Vec<String> = trackers.iter().flatten().map(Tracker::url).collect();
        let proxies = (0..proxies)
            .map(|_| Proxy::start(&urls, upstreams))
            .collect::<Result<Vec<_>>>()?;
        Ok(Cluster { trackers, proxies })
    }

    /// The tracker URLs, as the proxies were given them.
    pub fn tracker_urls(&self) -> Vec<String> {
        self.trackers.iter().flatten().map(Tracker::url).collect()
    }
}

/// A bay binary running as a child process (killable, restartable).
#[derive(Debug)]
pub struct BinProcess {
    daemon: Option<Daemon>,
    program: &'static str,
    args: Vec<std::ffi::OsString>,
    env: Vec<(String, String)>,
    addr: SocketAddr,
    starts: u32,
    logs: TempDir,
}

impl BinProcess {
    /// Starts `bay-tracker serve` on a free port with its root in `root`.
    pub fn tracker(upstreams: &Upstreams, root: &Path, env: &[(&str, &str)]) -> Result<BinProcess> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut cmd = Command::new("x");
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--peer-listen", "127.0.0.1:0", "--threads", "2"])
            .arg("--root")
            .arg(root);
        upstreams.args(&mut cmd);
        BinProcess::start("bay-tracker", &cmd, addr, env)
    }

    /// Starts `bay-proxy serve` on a free port with its cache in `root`.
    pub fn proxy(
        trackers: &[String],
        upstreams: &Upstreams,
        root: &Path,
        env: &[(&str, &str)],
    ) -> Result<BinProcess> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut cmd = Command::new("x");
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--peer-listen", "127.0.0.1:0", "--threads", "2"])
            .arg("--root")
            .arg(root);
        for t in trackers {
            cmd.arg("--tracker").arg(t);
        }
        if let Some(u) = &upstreams.fixed {
            cmd.arg("--upstream").arg(u);
        }
        upstreams.args(&mut cmd);
        BinProcess::start("bay-proxy", &cmd, addr, env)
    }

    fn start(
        program: &'static str,
        template: &Command,
        addr: SocketAddr,
        env: &[(&str, &str)],
    ) -> Result<BinProcess> {
        let mut p = BinProcess {
            daemon: None,
            program,
            args: template.get_args().map(ToOwned::to_owned).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            addr,
            starts: 0,
            logs: temp_dir("bay-bin-logs-")?,
        };
        p.restart()?;
        Ok(p)
    }

    /// Starts the program again with the same arguments, port and root.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let path = bay_binary(self.program)
            .map_err(|e| HarnessError::parse("bay binary", e.to_string()))?;
        let mut cmd = Command::new(path);
        cmd.args(&self.args).env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or("info".into()),
        );
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.starts += 1;
        let name = format!("{}-{}", self.program, self.starts);
        let mut daemon = Daemon::spawn(&name, cmd, self.logs.path())?;
        daemon.wait_for_port(self.addr, START_TIMEOUT)?;
        self.daemon = Some(daemon);
        Ok(())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    /// The HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the program logged so far (all starts).
    pub fn log(&self) -> String {
        let mut text = String::new();
        for i in 1..=self.starts {
            let path = self.logs.path().join(format!("{}-{i}.log", self.program));
            text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        text
    }
}

/// What an HTTP probe got back.
#[derive(Debug)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// Response body.
    pub body: Vec<u8>,
    /// Response header block as curl printed it.
    pub headers: String,
}

/// `GET url` with extra `headers` (`Name: value`), through curl. Headers
/// go through a file, so credentials never appear on a command line.
pub fn get(url: &str, headers: &[String]) -> Result<Fetched> {
    request("GET", url, headers)
}

/// `METHOD url` (no body) with extra `headers`, as [`get`] does.
pub fn request(method: &str, url: &str, headers: &[String]) -> Result<Fetched> {
    let dir = temp_dir("bay-get-")?;
    let body_path = dir.path().join("body");
    let head_path = dir.path().join("head");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "120", "-X", method, "-o"])
        .arg(&body_path)
        .arg("-D")
        .arg(&head_path)
        .args(["-w", "%{http_code}"]);
    if !headers.is_empty() {
        let path = dir.path().join("request-headers");
        std::fs::write(&path, headers.join("\n") + "\n")
            .map_err(|e| HarnessError::io("write", &path, e))?;
        cmd.arg("-H").arg(format!("@{}", path.display()));
    }
    cmd.arg(url);
    let out = run(&mut cmd)?;
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| HarnessError::parse("curl status", "not a number"))?;
    Ok(Fetched {
        status,
        body: std::fs::read(&body_path).unwrap_or_default(),
        headers: std::fs::read_to_string(&head_path).unwrap_or_default(),
    })
}

/// The value of counter or gauge `name` in the Prometheus text at
/// `base/metrics` (0 when absent).
pub fn metric(base: &str, name: &str) -> Result<u64> {
    let text = get(&format!("{base}/metrics"), &[])?.body;
    Ok(metric_value(&String::from_utf8_lossy(&text), name))
}

/// The value of metric `name` in a Prometheus text exposition (0 when
/// absent).
pub fn metric_value(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter_map(|rest| rest.strip_prefix(' '))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .next()
        .unwrap_or(0)
}

/// Every file in `root/blobs` hashes to its name: no corrupt cache entry.
/// Returns how many there are.
pub fn check_cache(root: &Path) -> Result<usize> {
    let blobs = root.join("blobs");
    let Ok(entries) = std::fs::read_dir(&blobs) else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry.map_err(|e| HarnessError::io("list", &blobs, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let want = name.replacen('-', ":", 1);
        let got = crate::image::file_digest(&entry.path())?;
        if got != want {
            return Err(HarnessError::Mismatch(format!(
                "cache entry {name} holds {got}"
            )));
        }
        n += 1;
    }
    Ok(n)
}

fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| HarnessError::io("create temp dir", std::env::temp_dir(), e))
}

fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| HarnessError::io("bind", addr.to_string(), e))
}

/// 127.0.0.1 port 0: any free port.
fn loopback0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| HarnessError::io("read the address of", "a listener", e))
}
