//! The cluster comparison run in small: three pulling hosts, a registry
//! host and a tracker host, a small image, every scenario. Proves the run
//! measures what it claims (direct pulls take one copy per host from the
//! registry, bay pulls fewer) and leaves no namespace, route or process.

use std::time::Duration;

use bay_tests::bins::target_debug_dir;
use bay_tests::cluster_bench::{run, table, BenchOptions, Scenario};
use bay_tests::netns::{namespaces_with_prefix, route_exists};

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, ip netns, tc, docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn a_small_cluster_run_measures_every_scenario_and_cleans_up() {
    let opts = BenchOptions {
        hosts: 3,
        rate_mbit: 200,
        layer_sizes: BenchOptions::layers_of(8, 3),
        scenarios: Scenario::ALL.to_vec(),
        bin_dir: target_debug_dir(),
        log_dir: None,
        rust_log: "warn".into(),
        pull_timeout: Duration::from_secs(60),
        seed: 600,
    };
    let (results, trace) = run(&opts).expect("cluster run");
    eprint!("{}", table(&results));

    let names: Vec<_> = results.iter().map(|r| r.scenario).collect();
    assert_eq!(names, Scenario::ALL.to_vec());
    for r in &results {
        assert_eq!(
            r.host_seconds.len(),
            3,
            "{:?}: one time per host",
            r.scenario
        );
        assert!(r.host_seconds.iter().all(|&s| s > 0.0));
        assert!(r.image_bytes > 8 * 1024 * 1024);
    }
    let by = |s: Scenario| results.iter().find(|r| r.scenario == s).expect("scenario");
    let direct = by(Scenario::Direct);
    assert_eq!(
        direct.registry_bytes,
        3 * direct.image_bytes,
        "direct: every host takes its own copy from the registry"
    );
    let cold = by(Scenario::Cold);
    assert!(
        cold.registry_bytes < 2 * cold.image_bytes,
        "cold through bay: {} bytes from the registry for a {}-byte image",
        cold.registry_bytes,
        cold.image_bytes
    );
    let warm = by(Scenario::Warm);
    assert!(warm.warmup_seconds.is_some());
    assert!(
        warm.registry_bytes < warm.image_bytes,
        "warm: the tracker already holds the blobs, yet the registry served {}",
        warm.registry_bytes
    );

    assert!(
        namespaces_with_prefix(&trace.prefix)
            .expect("ip netns")
            .is_empty(),
        "namespaces left behind"
    );
    assert!(
        !route_exists(&trace.subnet).expect("ip route"),
        "route left behind"
    );
    assert!(trace.pids.len() >= 1 + 3 + 1 + 1 + 3, "{:?}", trace.pids);
    for pid in &trace.pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} left running"
        );
    }
}
