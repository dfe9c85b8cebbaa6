//! `bay-proxy doctor`: checks a host's set-up and says, in plain words,
//! what is wrong and how to fix it. The proxy and every tracker answer;
//! each installed runtime sends pulls to the proxy; the peer port can be
//! reached at the address peers are told; the cache root is writable
//! with room; which I/O driver runs. With `--image`, a pull through each
//! runtime, with the bytes the proxy served from its cache, the swarm and
//! the registry.
//!
//! It reads the proxy's `/status` for how the proxy runs, so it checks
//! the proxy that is running, not a configuration file that may differ.
//! The exit status is 0 only when nothing failed.

mod host;
mod probe;
pub mod runtimes;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::setup::files::HostFs;
use crate::setup::Runtime;
use crate::status::Facts;

/// Flags of `bay-proxy doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// bay-proxy's address (its --listen).
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub proxy: SocketAddr,
    /// Check this runtime only. Repeatable; default: every runtime
    /// installed on the host.
    #[arg(long = "runtime", value_enum, value_name = "RUNTIME")]
    pub runtimes: Vec<Runtime>,
    /// Also pull this image through each runtime and report where its
    /// bytes came from (the host's own images are left alone).
    #[arg(long, value_name = "REF")]
    pub image: Option<String>,
    /// Where the host's root is mounted here, for the runtimes' files (as
    /// for setup).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root_dir: PathBuf,
    /// containerd's socket, for --image.
    #[arg(
        long,
        default_value = "/run/containerd/containerd.sock",
        value_name = "SOCKET"
    )]
    pub containerd_address: PathBuf,
    /// dockerd's address, for --image.
    #[arg(
        long,
        default_value = "unix:///var/run/docker.sock",
        value_name = "URL"
    )]
    pub docker_host: String,
    /// Extra CA certificates (PEM) for trackers served over HTTPS.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// One check's outcome.
#[derive(Debug)]
pub struct Finding {
    pub ok: bool,
    pub what: String,
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(what: impl Into<String>) -> Finding {
        Finding {
            ok: true,
            what: what.into(),
            fix: None,
        }
    }

    pub fn fail(what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            ok: false,
            what: what.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The parts of the proxy's `/status` the doctor reads.
#[derive(Debug, Deserialize)]
struct Status {
    version: String,
    mode: String,
    #[serde(flatten)]
    facts: Facts,
    cache_bytes: u64,
    cache_budget: u64,
    bytes_from_cache: u64,
    bytes_from_swarm: u64,
    bytes_from_registry: u64,
    trackers: Vec<TrackerRow>,
}

#[derive(Debug, Deserialize)]
struct TrackerRow {
    url: String,
}

/// Runs every check, printing each finding to `out`; true when all passed.
pub fn run(args: &DoctorArgs, out: &mut dyn std::io::Write) -> bool {
    let mut report = Report { out, healthy: true };
    let host = HostFs::new(&args.root_dir);
    let status = check_proxy(args, &mut report);
    if let Some(status) = &status {
        check_trackers(args, status, &mut report);
        host::check_peer_port(&status.facts, &mut report);
        host::check_cache(status, &mut report);
        report.add(Finding::ok(format!(
            "bay-proxy runs on {} ({})",
            status.facts.driver,
            if status.facts.driver == "io_uring" {
                "the kernel's fastest I/O"
            } else {
                "io_uring is blocked by the kernel or a seccomp profile; epoll works, \
                 with a little more CPU per byte"
            }
        )));
    }
    let runtimes: Vec<Runtime> = if args.runtimes.is_empty() {
        Runtime::ALL
            .into_iter()
            .filter(|r| runtimes::installed(*r, &host))
            .collect()
    } else {
        args.runtimes.clone()
    };
    if runtimes.is_empty() {
        report.add(Finding::fail(
            "no image runtime (containerd, dockerd, podman) found on this host",
            "install one, or name it with --runtime (and --root-dir if its files are elsewhere)",
        ));
    }
    for runtime in runtimes {
        let Some(routes) = check_runtime(runtime, &host, args, status.as_ref(), &mut report) else {
            continue;
        };
        if let (Some(image), Some(_)) = (&args.image, &status) {
            pull_through(runtime, image, &routes, args, &mut report);
        }
    }
    let verdict = if report.healthy {
        "all is well"
    } else {
        "something is wrong: see FAIL above"
    };
    let _ = writeln!(report.out, "{verdict}");
    report.healthy
}

struct Report<'a> {
    out: &'a mut dyn std::io::Write,
    healthy: bool,
}

impl Report<'_> {
    fn add(&mut self, f: Finding) {
        self.healthy &= f.ok;
        let _ = writeln!(
            self.out,
            "{:<5} {}",
            if f.ok { "ok" } else { "FAIL" },
            f.what
        );
        if let Some(fix) = f.fix {
            let _ = writeln!(self.out, "      fix: {fix}");
        }
    }
}

fn fetch_status(args: &DoctorArgs) -> Result<Status, String> {
    let base = format!("http://{}", args.proxy);
    match probe::get(&format!("{base}/healthz"), None)? {
        (200, _) => {}
        (code, _) => return Err(format!("/healthz answered {code}")),
    }
    let (code, body) = probe::get(&format!("{base}/status"), None)?;
    if code != 200 {
        return Err(format!("/status answered {code}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("/status is not what bay-proxy sends: {e}"))
}

fn check_proxy(args: &DoctorArgs, report: &mut Report) -> Option<Status> {
    match fetch_status(args) {
        Ok(s) => {
            report.add(Finding::ok(format!(
                "bay-proxy {} answers at {} ({} mode{})",
                s.version,
                args.proxy,
                s.mode,
                s.facts
                    .upstream
                    .as_deref()
                    .map(|u| format!(", every request to {u}"))
                    .unwrap_or_default()
            )));
            Some(s)
        }
        Err(e) => {
            report.add(Finding::fail(
                format!("bay-proxy does not answer at {}: {e}", args.proxy),
                "start it (systemctl start bay-proxy; on Kubernetes: kubectl -n bay get pods), \
                 or name its address with --proxy",
            ));
            None
        }
    }
}

fn check_trackers(args: &DoctorArgs, status: &Status, report: &mut Report) {
    if status.trackers.is_empty() {
        report.add(Finding::fail(
            "bay-proxy knows no tracker: every blob comes straight from the registry",
            "start it with --tracker URL for each tracker (or tracker = [...] in its file)",
        ));
    }
    for t in &status.trackers {
        let url = format!("{}/healthz", t.url.trim_end_matches('/'));
        match probe::get(&url, args.ca_file.as_deref()) {
            Ok((200, _)) => report.add(Finding::ok(format!("tracker {} answers", t.url))),
            Ok((code, _)) => report.add(Finding::fail(
                format!("tracker {} answers /healthz with {code}", t.url),
                "check that the URL names a bay-tracker (its --listen)",
            )),
            Err(e) => report.add(Finding::fail(
                format!("tracker {} does not answer: {e}", t.url),
                "start it, or open the way from this host to it (firewall, network policy); \
                 until then blobs it owns go to the next tracker",
            )),
        }
    }
}

fn check_runtime(
    runtime: Runtime,
    host: &HostFs,
    args: &DoctorArgs,
    status: Option<&Status>,
    report: &mut Report,
) -> Option<runtimes::Routes> {
    let name = runtime.name();
    let routes = match runtimes::routes(runtime, host, args.proxy) {
        Ok(r) => r,
        Err(f) => {
            report.add(f);
            return None;
        }
    };
    if routes.registries.is_empty() {
        report.add(Finding::fail(
            format!("{name} sends no registry to bay-proxy at {}", args.proxy),
            format!(
                "bay-proxy setup {name} --registry REG --proxy {}",
                args.proxy
            ),
        ));
        return None;
    }
    let upstream = status.and_then(|s| s.facts.upstream.as_deref());
    let mismatch = match (routes.named, upstream) {
        (false, None) => Some(format!(
            "{name}'s mirror requests do not name their registry, and bay-proxy has no --upstream",
        )),
        (true, Some(u)) if routes.registries.iter().any(|r| !same_registry(r, u)) => Some(format!(
            "bay-proxy sends every request to {u} (--upstream), but {name} also sends it {}",
            routes.registries.join(", ")
        )),
        _ => None,
    };
    if let Some(what) = mismatch {
        report.add(Finding::fail(
            what,
            "run one bay-proxy listener per fixed upstream (--upstream REG) for dockerd's \
             registry-mirrors and podman's mirrors, and one without --upstream for containerd \
             and p2p- names",
        ));
        return None;
    }
    report.add(Finding::ok(format!(
        "{name} pulls {} through bay-proxy at {}",
        routes.registries.join(", "),
        args.proxy
    )));
    Some(routes)
}

fn same_registry(a: &str, b: &str) -> bool {
    let hub = |r: &str| {
        matches!(r, "docker.io" | "registry-1.docker.io" | "index.docker.io").then_some("docker.io")
    };
    a == b || (hub(a).is_some() && hub(a) == hub(b))
}

fn pull_through(
    runtime: Runtime,
    image: &str,
    routes: &runtimes::Routes,
    args: &DoctorArgs,
    report: &mut Report,
) {
    let name = runtime.name();
    let before = fetch_status(args);
    let pulled = runtimes::pull(runtime, image, routes, args);
    let after = fetch_status(args);
    let (Ok(before), Ok(after)) = (before, after) else {
        report.add(Finding::fail(
            format!("{name}: bay-proxy stopped answering during the pull of {image}"),
            "read its log (journalctl -u bay-proxy, kubectl logs)",
        ));
        return;
    };
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    let cache = after
        .bytes_from_cache
        .saturating_sub(before.bytes_from_cache);
    let swarm = after
        .bytes_from_swarm
        .saturating_sub(before.bytes_from_swarm);
    let registry = after
        .bytes_from_registry
        .saturating_sub(before.bytes_from_registry);
    let bytes = format!(
        "{:.1} MiB from the cache, {:.1} MiB from the swarm, {:.1} MiB from the registry",
        mib(cache),
        mib(swarm),
        mib(registry)
    );
    match pulled {
        Err(e) => report.add(Finding::fail(
            format!("{name} could not pull {image}: {e}"),
            "check the image reference, the registry's credentials, and bay-proxy's log",
        )),
        Ok(runtimes::Pulled::Present) => report.add(Finding::ok(format!(
            "{name} holds {image} already, so it fetched nothing; name an image it has not pulled to measure"
        ))),
        Ok(runtimes::Pulled::Fetched) if cache + swarm + registry == 0 => {
            report.add(Finding::fail(
                format!("{name} pulled {image}, but no blob byte went through bay-proxy"),
                format!(
                    "{name} held the layers already, or its configuration sends {} elsewhere: \
                     check the findings above",
                    runtimes::registry_of(image)
                ),
            ))
        }
        Ok(runtimes::Pulled::Fetched) => {
            report.add(Finding::ok(format!("{name} pulled {image} through bay-proxy: {bytes}")))
        }
    }
}
