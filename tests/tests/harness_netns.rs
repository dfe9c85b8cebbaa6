//! Namespace hosts for the cluster benchmark: hosts reach each other across
//! the bridge, the tc rate limit holds roughly, and dropping the cluster
//! leaves no namespace, route or process behind; the registry runs on a
//! host of its own and hosts pull from it at once.

use std::process::Command;
use std::time::Duration;

use bay_tests::clients::{skopeo, Access};
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::netns::{
    namespaces_with_prefix, route_exists, sweep_stale, Cluster, Rate, CLAIMS_DIR,
};
use bay_tests::process::{run, run_all_at_once};
use bay_tests::registry::{Registry, RegistryOptions};

fn ping(cluster: &Cluster, from: usize, to: usize) {
    let target = cluster.host(to).expect("host").ip.to_string();
    let mut cmd = cluster.command(from, "ping").expect("host");
    cmd.args(["-c", "1", "-W", "2", &target]);
    run(&mut cmd).expect("ping across the bridge");
}

/// Received throughput in bits per second from iperf3's JSON report.
fn iperf3_received_bps(json: &[u8]) -> f64 {
    let value: serde_json::Value = serde_json::from_slice(json).expect("iperf3 JSON");
    value["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("end.sum_received.bits_per_second")
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, ip netns, tc, docker-registry and skopeo: scripts/test.sh runs it"
)]
fn hosts_ping_across_the_bridge_and_the_rate_limit_holds() {
    let rate = Rate::mbit(100);
    let cluster = Cluster::create(2, Some(rate)).expect("cluster");
    let prefix = cluster.prefix().to_owned();
    let subnet = cluster.subnet();
    assert!(
        route_exists(&subnet).expect("ip route"),
        "blackhole for {subnet}"
    );
    assert_eq!(
        namespaces_with_prefix(&prefix).expect("ip netns").len(),
        3,
        "two hosts and the hub"
    );
    ping(&cluster, 0, 1);
    ping(&cluster, 1, 0);

    let logs = tempfile::tempdir().expect("tempdir");
    let server_ip = cluster.host(1).expect("host").ip.to_string();
    let server = cluster
        .spawn(
            1,
            "iperf3-server",
            "iperf3",
            &["-s", "-1", "-B", &server_ip, "-p", "5201"],
            logs.path(),
        )
        .expect("iperf3 server");
    cluster
        .wait_for_listen(1, 5201, Duration::from_secs(10))
        .expect("iperf3 listening");
    let mut client = cluster.command(0, "iperf3").expect("host");
    client.args(["-c", &server_ip, "-p", "5201", "-t", "2", "-J"]);
    let report = run(&mut client).expect("iperf3 client");
    let bps = iperf3_received_bps(&report.stdout);
    let limit = rate.bits_per_second() as f64;
    eprintln!("iperf3 through a {limit} bit/s link: {bps:.0} bit/s");
    assert!(bps < 1.5 * limit, "rate limit not enforced: {bps} bit/s");
    assert!(bps > 0.3 * limit, "link far below its rate: {bps} bit/s");

    drop(server);
    drop(cluster);
    assert!(
        namespaces_with_prefix(&prefix)
            .expect("ip netns")
            .is_empty(),
        "namespaces left behind"
    );
    assert!(
        !route_exists(&subnet).expect("ip route"),
        "route left behind"
    );
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, ip netns, tc, docker-registry and skopeo: scripts/test.sh runs it"
)]
fn cleanup_kills_what_still_runs_inside() {
    let cluster = Cluster::create(1, None).expect("cluster");
    let prefix = cluster.prefix().to_owned();
    let netns = cluster.host(0).expect("host").netns.clone();
    let logs = tempfile::tempdir().expect("tempdir");
    let sleeper = cluster
        .spawn(0, "sleeper", "sleep", &["300"], logs.path())
        .expect("sleep");
    let pid = sleeper.pid().to_string();
    // The handle is forgotten, as if a test lost it: the cluster must still
    // leave nothing running.
    std::mem::forget(sleeper);
    // `ip netns exec` enters the namespace just after it starts.
    bay_tests::process::wait_until(
        "the sleeper in its namespace",
        Duration::from_secs(5),
        || {
            run(Command::new("ip").args(["netns", "pids", &netns]))
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l.trim() == pid)
                })
                .unwrap_or(false)
        },
    )
    .expect("sleeper inside the namespace");
    drop(cluster);
    assert!(namespaces_with_prefix(&prefix)
        .expect("ip netns")
        .is_empty());
    bay_tests::process::wait_until("the process to be gone", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    })
    .expect("process killed");
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, ip netns, tc, docker-registry and skopeo: scripts/test.sh runs it"
)]
fn hosts_pull_from_a_registry_on_its_own_host_at_once() {
    let cluster = Cluster::create(3, Some(Rate::mbit(200))).expect("cluster");
    let registry_host = cluster.host(0).expect("host").clone();
    let registry = Registry::start(RegistryOptions::plain().on_host(&registry_host))
        .expect("registry on host 0");
    assert_eq!(registry.addr().ip(), registry_host.ip);
    let image = TestImage::build(&ImageSpec::small(40)).expect("image");
    let pusher = cluster.host(1).expect("host").netns.clone();
    image
        .push_from(Some(&pusher), &registry, "harness/cluster")
        .expect("push from host 1");

    let reference = image.reference(&registry, "harness/cluster");
    let access = Access::to_registry(&registry);
    let dest = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = (1..3)
        .map(|i| dest.path().join(format!("host{i}")))
        .collect();
    let cmds = (1..3)
        .zip(&dirs)
        .map(|(i, dir)| {
            let netns = &cluster.host(i).expect("host").netns;
            skopeo::copy_command(Some(netns), &reference, &access, dir)
        })
        .collect();
    let results = run_all_at_once(cmds);
    for (result, dir) in results.into_iter().zip(&dirs) {
        let (took, _) = result.expect("skopeo pull in a namespace");
        eprintln!("pull into {} took {took:?}", dir.display());
        image
            .check(&skopeo::read_dir_layout(dir).expect("layout"))
            .expect("digests");
    }
    let served = registry.blob_bytes_served().expect("log");
    for layer in &image.layers {
        assert_eq!(
            served.get(&layer.digest),
            Some(&(2 * layer.size)),
            "two pulls, two copies"
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, ip netns, tc, docker-registry and skopeo: scripts/test.sh runs it"
)]
fn leftovers_of_a_killed_run_are_swept() {
    // A process id above any pid_max: this "run" is certainly gone.
    let dead = "bay4294967290r0";
    let netns = format!("{dead}-hub");
    run(Command::new("ip").args(["netns", "add", &netns])).expect("ip netns add");
    let cidr = (1..=250)
        .map(|third| format!("10.213.{third}.0/24"))
        .find(|cidr| {
            !route_exists(cidr).expect("ip route")
                && run(Command::new("ip").args(["route", "add", "blackhole", cidr])).is_ok()
        })
        .expect("a free test subnet");
    let third = cidr.split('.').nth(2).expect("octet").to_owned();
    std::fs::create_dir_all(CLAIMS_DIR).expect("claims dir");
    std::fs::write(std::path::Path::new(CLAIMS_DIR).join(&third), dead).expect("claim");

    sweep_stale();
    assert!(namespaces_with_prefix(dead).expect("ip netns").is_empty());
    assert!(
        !route_exists(&cidr).expect("ip route"),
        "{cidr} left behind"
    );
    assert!(!std::path::Path::new(CLAIMS_DIR).join(&third).exists());
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, ip netns, tc, docker-registry and skopeo: scripts/test.sh runs it"
)]
fn a_failing_test_still_removes_everything() {
    let seen = std::sync::Mutex::new(None);
    let outcome = std::panic::catch_unwind(|| {
        let cluster = Cluster::create(2, Some(Rate::mbit(50))).expect("cluster");
        let host = cluster.host(0).expect("host").clone();
        let registry = Registry::start(RegistryOptions::plain().on_host(&host)).expect("registry");
        *seen.lock().expect("lock") = Some((
            cluster.prefix().to_owned(),
            cluster.subnet(),
            registry.log_path(),
        ));
        panic!("the test fails here, with the cluster and registry running");
    });
    assert!(outcome.is_err());
    let (prefix, subnet, log) = seen
        .lock()
        .expect("lock")
        .take()
        .expect("cluster was built");
    assert!(namespaces_with_prefix(&prefix)
        .expect("ip netns")
        .is_empty());
    assert!(
        !route_exists(&subnet).expect("ip route"),
        "{subnet} left behind"
    );
    assert!(!log.exists(), "registry folder left behind");
}
