//! A host that lives for months: a proxy that pulls hundreds of distinct
//! blobs one after another (as a node does over days) keeps taking every
//! one from the swarm. Connections follow active transfers, so finished
//! swarms never fill the engine's connection cap (it once stopped at
//! exactly 512 blobs, after which every blob stalled 15 s and came from
//! the registry).
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_tests::bay::{get, metric, Proxy, Tracker, Upstreams};
use bay_tests::content::write_file;
use bay_tests::process::wait_until;
use bay_tests::registry::{Registry, RegistryOptions};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

const BLOBS: u64 = 600;

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry and bay's binaries: scripts/test.sh runs it"
)]
fn hundreds_of_blobs_one_after_another_all_come_from_the_swarm() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let proxy = Proxy::start(&[tracker.url()], &upstreams).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for i in 0..BLOBS {
        let len = 20_000 + i as usize * 7;
        let path = write_file(dir.path(), &format!("blob-{i}"), len, 5_000 + i).unwrap();
        digests.push(registry.push_blob("bay/many", &path).unwrap());
    }
    for (i, digest) in digests.iter().enumerate() {
        let got = get(&format!("{}/v2/bay/many/blobs/{digest}", proxy.url()), &[]).unwrap();
        assert_eq!(got.status, 200, "blob {i}");
        assert_eq!(
            &format!("sha256:{:x}", Sha256::digest(&got.body)),
            digest,
            "blob {i}"
        );
        // Not one blob may stall and finish from the registry.
        assert_eq!(
            metric(&proxy.url(), "bay_proxy_registry_reads_total").unwrap(),
            0,
            "blob {i} came from the registry"
        );
    }
    assert_eq!(
        metric(&proxy.url(), "bay_proxy_swarm_reads_total").unwrap(),
        BLOBS
    );
    // Each left the registry once, for the origin.
    let gets = registry.blob_gets().unwrap();
    for digest in &digests {
        assert_eq!(gets.get(digest), Some(&1), "{digest}");
    }
    // Finished swarms hold no connection: those of the last blobs close
    // at the swarms' next tick.
    wait_until(
        "finished swarms to close their connections",
        Duration::from_secs(10),
        || metric(&proxy.url(), "bay_peer_connections").unwrap() == 0,
    )
    .unwrap();
}
