//! The host's own checks: the peer port answers at the address peers are
//! told, and the cache root is writable with room.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{probe, Finding, Report, Status};
use crate::status::Facts;

/// Free space below which the cache root fails the check.
const MIN_FREE: u64 = 1 << 30;

pub(super) fn check_peer_port(facts: &Facts, report: &mut Report) {
    let told: Option<SocketAddr> = facts.peer_addr.parse().ok();
    if told.is_some_and(|a| a.ip().is_unspecified()) {
        report.add(Finding::fail(
            format!(
                "peers are told to connect to {}, which no host can reach",
                facts.peer_addr
            ),
            "set --public-addr to this host's address and the peer port (e.g. 10.0.1.17:6882)",
        ));
        return;
    }
    match probe::connect(&facts.peer_addr) {
        Ok(()) => report.add(Finding::ok(format!(
            "the peer port answers at {}, the address peers are told",
            facts.peer_addr
        ))),
        Err(e) => report.add(Finding::fail(
            format!(
                "cannot connect to the peer port at {}: {e}",
                facts.peer_addr
            ),
            "check --public-addr and --peer-listen, and let the fleet's hosts through the \
             firewall to that port",
        )),
    }
}

/// The cache root as the proxy names it: the doctor runs where the proxy
/// does (a pod mounts the cache's hostPath at the same path).
pub(super) fn check_cache(status: &Status, report: &mut Report) {
    let root = PathBuf::from(&status.facts.root);
    let probe = root.join(format!(".bay-doctor-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"probe") {
        report.add(Finding::fail(
            format!("cannot write to the cache root {}: {e}", root.display()),
            "give bay-proxy's user a writable folder there (systemd: StateDirectory; \
             Kubernetes: the hostPath volume), or move it with --root",
        ));
        return;
    }
    let _ = std::fs::remove_file(&probe);
    let free = bay_httpd::sys::free_space(&root).unwrap_or(0);
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    let room = format!(
        "{:.1} GiB free on its file system, {:.1} GiB of the {:.1} GiB budget used",
        gib(free),
        gib(status.cache_bytes),
        gib(status.cache_budget)
    );
    if free < MIN_FREE {
        report.add(Finding::fail(
            format!(
                "the cache root {} is writable but nearly full: {room}",
                root.display()
            ),
            "free space there or move the cache (--root) to a larger disk; while the disk is \
             full the proxy streams without caching",
        ));
    } else {
        report.add(Finding::ok(format!(
            "the cache root {} is writable: {room}",
            root.display()
        )));
    }
}
