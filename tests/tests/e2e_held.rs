//! Held blobs: a host announces every blob it holds in one request per
//! tracker, so it stays findable for blobs nobody downloads any more, a
//! restarted host is found again at once, and a dead host's entries
//! expire.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bay_tests::bay::{get, metric, Proxy, Tracker, Upstreams};
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::wait_until;
use bay_tests::registry::{Registry, RegistryOptions};
use bay_tests::stranger::{connect_from, loopback_host};
use bay_wire::oci::Digest;
use bay_wire::tracker::{AnnounceResponse, Reply};

/// The peers the tracker names for `swarm`, asked as a leecher from
/// another loopback address.
fn peers_of(tracker: SocketAddr, swarm: [u8; 20]) -> Vec<SocketAddr> {
    let pct = |b: &[u8]| b.iter().map(|b| format!("%{b:02X}")).collect::<String>();
    let query = format!(
        "info_hash={}&peer_id={}&port=7777&uploaded=0&downloaded=0&left=1&compact=1",
        pct(&swarm),
        pct(b"-XX0000-askingpeer00")
    );
    let mut s = connect_from(loopback_host(9), tracker, Duration::from_secs(10)).unwrap();
    let req = format!("GET /announce?{query} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    match AnnounceResponse::decode(&got[at..]).unwrap() {
        Reply::Success(r) => r.peers.iter().map(|p| SocketAddr::V4(*p)).collect(),
        Reply::Failure(why) => panic!("announce refused: {why}"),
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry and bay's binaries: scripts/test.sh runs it"
)]
fn held_blobs_keep_their_host_findable_after_a_restart_and_expire_with_it() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start_with(&upstreams, |c| c.held_interval = 1).unwrap();
    let at: SocketAddr = tracker.url().trim_start_matches("http://").parse().unwrap();
    let image = TestImage::build(&ImageSpec::small(301)).unwrap();
    image.push(&registry, "bay/held").unwrap();
    let layer = &image.layers[0];
    let swarm = bay_wire::origin::swarm_id(&Digest::parse(&layer.digest).unwrap());

    let root = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut first = Proxy::start_on(&[tracker.url()], &upstreams, listener, root.path()).unwrap();
    let url = format!("{}/v2/bay/held/blobs/{}", first.url(), layer.digest);
    assert_eq!(get(&url, &[]).unwrap().status, 200);
    first.stop();

    // Restarted on the same cache, the host names its blob at once, by
    // held announce: it downloads nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let second = Proxy::start_on(&[tracker.url()], &upstreams, listener, root.path()).unwrap();
    let holder = second.peer_addr().unwrap();
    wait_until(
        "the restarted host to be named",
        Duration::from_secs(10),
        || peers_of(at, swarm).contains(&holder),
    )
    .unwrap();
    assert!(metric(&tracker.url(), "bay_tracker_held_announces_total").unwrap() >= 1);
    assert_eq!(
        metric(&second.url(), "bay_proxy_swarm_reads_total").unwrap(),
        0
    );

    // A dead host is forgotten after three held intervals.
    drop(second);
    wait_until(
        "the dead host's entry to expire",
        Duration::from_secs(15),
        || !peers_of(at, swarm).contains(&holder),
    )
    .unwrap();
}
