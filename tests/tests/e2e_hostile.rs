//! Hostile input against the real programs on loopback: each attack is
//! tried as a stranger would, and must be refused or bounded.
//!
//! - request targets that are not a path (`2/v2/`, absolute form,
//!   authority form, `*`, userinfo tricks) on all three routing modes: 400,
//!   and a listener on a port outside the allow list sees no connection;
//! - error bodies name the failure, not the address or the socket error;
//! - two Host headers: 400;
//! - request bodies sent a byte a second: cut off within the pace window,
//!   the registry connections they held released, while a real pull goes
//!   on;
//! - idle handshakes flooding a swarm's peer slots (from one address, and
//!   from many): a cold pull still comes through the swarm;
//! - announces naming another address, unroutable addresses, and
//!   thousands of peer ids from one address.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bay_tests::bay::{get, metric, Proxy, Tracker, Upstreams};
use bay_tests::clients::skopeo::{copy_command, read_dir_layout};
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::wait_until;
use bay_tests::registry::{Registry, RegistryOptions};
use bay_tests::stranger::{connect_from, handshake_from, loopback_host, raw_http, Bait};
use bay_wire::oci::Digest;
use bay_wire::tracker::{AnnounceResponse, Reply};

const WAIT: Duration = Duration::from_secs(10);

fn plain() -> Access {
    Access {
        plain_http: true,
        ..Access::default()
    }
}

/// Upstreams allowing exactly `host:port` over plain HTTP.
fn only(host_port: &str) -> Upstreams {
    Upstreams {
        allow: vec![host_port.to_owned()],
        insecure: vec![host_port.to_owned()],
        ca_file: None,
        fixed: None,
    }
}

fn proxy_addr(p: &Proxy) -> SocketAddr {
    p.addr()
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, ss and bay's binaries: scripts/test.sh runs it"
)]
fn request_targets_cannot_move_the_upstream_on_any_route() {
    // `127.0.0.1:P` followed by `2/v2/` would be port P2: the bait.
    let bait = Bait::bind_ending_in(2).unwrap();
    let allowed = format!("127.0.0.1:{}", bait.port() / 10);
    let b = bait.port();
    let fixed = Proxy::start(
        &[],
        &Upstreams {
            fixed: Some(allowed.clone()),
            ..only(&allowed)
        },
    )
    .unwrap();
    let routed = Proxy::start(&[], &only(&allowed)).unwrap();
    let ns = format!("ns={}", allowed.replace(':', "%3A"));

    // (proxy, extra query, Host) for: fixed upstream, ?ns=, p2p- prefix.
    let routes = [
        (&fixed, String::new(), "localhost".to_owned()),
        (&routed, format!("?{ns}"), "localhost".to_owned()),
        (&routed, String::new(), format!("p2p-{allowed}")),
    ];
    for (proxy, query, host) in &routes {
        let shapes = [
            ("GET", format!("2/v2/{query}")),
            (
                "GET",
                format!("2/v2/x/blobs/sha256:{}{query}", "a".repeat(64)),
            ),
            ("DELETE", format!("2/v2/x/manifests/latest{query}")),
            ("PUT", format!("2/v2/x/blobs/uploads/u{query}")),
            ("GET", format!("@127.0.0.1:{b}/v2/{query}")),
            ("GET", format!("http://127.0.0.1:{b}/v2/{query}")),
            ("CONNECT", format!("127.0.0.1:{b}")),
            ("OPTIONS", "*".to_owned()),
        ];
        for (method, target) in &shapes {
            let request = format!(
                "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let answer = raw_http(proxy_addr(proxy), request.as_bytes(), WAIT).unwrap();
            assert_eq!(
                answer.status, 400,
                "{method} {target} via {host}: {}",
                answer.text
            );
        }
        // A path that merely looks like an authority stays a path on the
        // allowed upstream (which is down here: 502).
        let request = format!(
            "GET //127.0.0.1:{b}/v2/{query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw_http(proxy_addr(proxy), request.as_bytes(), WAIT).unwrap();
        assert_eq!(answer.status, 502, "{}", answer.text);
    }
    assert!(
        !bait.touched(),
        "a request reached a port outside the allow list"
    );

    // The 502 says what failed, not where: no address, no socket error.
    let answer = raw_http(
        proxy_addr(&fixed),
        b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        WAIT,
    )
    .unwrap();
    assert_eq!(answer.status, 502);
    let body = answer.text.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.contains("cannot connect to the upstream"), "{body}");
    for leak in ["127.0.0.1", "refused", "Connection", "os error"] {
        assert!(!body.contains(leak), "502 body shows {leak:?}: {body}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, ss and bay's binaries: scripts/test.sh runs it"
)]
fn two_host_headers_are_refused() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let proxy = Proxy::start(&[], &Upstreams::routed(&registry)).unwrap();
    let request = format!(
        "GET /v2/ HTTP/1.1\r\nHost: p2p-{}\r\nHost: p2p-other.test\r\nConnection: close\r\n\r\n",
        registry.host()
    );
    let answer = raw_http(proxy.addr(), request.as_bytes(), WAIT).unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert!(registry.requests().unwrap().is_empty());
}

/// Established TCP connections to `port` on loopback, as `ss` counts them.
fn connections_to(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// One client sending a push body a byte a second; returns how long the
/// proxy let it go on and the status it answered with (0: just closed).
fn slow_push(proxy: SocketAddr, host: String) -> (Duration, u16) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    let head = format!(
        "PATCH /v2/slow/blobs/uploads/00000000-0000-0000-0000-000000000000 HTTP/1.1\r\n\
         Host: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(120) {
        if s.write_all(b"x").is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (started.elapsed(), status)
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, ss and bay's binaries: scripts/test.sh runs it"
)]
fn slow_request_bodies_are_cut_off_while_pulls_go_on() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec::small(161)).unwrap();
    image.push(&registry, "bay/slow").unwrap();
    let tracker = Tracker::start(&Upstreams::fixed(&registry)).unwrap();
    let proxy = Proxy::start_with(&[tracker.url()], &Upstreams::fixed(&registry), |c| {
        c.body_rate_window = 3;
    })
    .unwrap();
    let clients = 20;
    let slow: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, host) = (proxy.addr(), registry.host());
            std::thread::spawn(move || slow_push(addr, host))
        })
        .collect();
    // Meanwhile a real pull goes through the same proxy.
    let out = tempfile::tempdir().unwrap();
    let reference = format!("{}/bay/slow:{}", proxy.addr(), image.tag);
    let status = copy_command(None, &reference, &plain(), out.path())
        .status()
        .unwrap();
    assert!(status.success());
    image.check(&read_dir_layout(out.path()).unwrap()).unwrap();

    for handle in slow {
        let (lasted, status) = handle.join().unwrap();
        // Three seconds of waiting bring 3 bytes where 3 KiB were due.
        assert!(
            lasted < Duration::from_secs(20),
            "a slow body held on {lasted:?}"
        );
        assert_eq!(status, 408);
    }
    // The registry connections those pushes held are gone (the pool may
    // keep a few idle ones for later requests).
    wait_until("registry connections released", WAIT, || {
        connections_to(registry.port()) < clients
    })
    .unwrap();
}

/// Pushes a one-layer image and fetches the layer through `proxy`, so the
/// tracker's origin holds and seeds it. Returns the layer's digest.
fn seed_one_layer(registry: &Registry, proxy: &Proxy, repo: &str, seed: u64) -> TestImage {
    let image = TestImage::build(&ImageSpec {
        layer_sizes: vec![4 << 20],
        seed,
        tag: "v1".into(),
    })
    .unwrap();
    image.push(registry, repo).unwrap();
    let layer = &image.layers[0];
    let got = get(
        &format!("{}/v2/{repo}/blobs/{}", proxy.url(), layer.digest),
        &[],
    )
    .unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len() as u64, layer.size);
    image
}

fn swarm_of(digest: &str) -> [u8; 20] {
    bay_wire::origin::swarm_id(&Digest::parse(digest).unwrap())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, ss and bay's binaries: scripts/test.sh runs it"
)]
fn idle_handshakes_cannot_keep_a_host_out_of_a_swarm() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let mut first = Proxy::start(&[tracker.url()], &upstreams).unwrap();
    let image = seed_one_layer(&registry, &first, "bay/flood", 171);
    let layer = image.layers[0].clone();
    let first_peer = first.peer_addr().unwrap();
    first.stop();
    assert!(
        TcpStream::connect(first_peer).is_err(),
        "a stopped proxy still takes peers"
    );
    let origin = tracker.peer_addr().unwrap();
    let swarm = swarm_of(&layer.digest);

    // 150 idle handshakes from one address: only a few are taken.
    let one = loopback_host(2);
    let mut held = Vec::new();
    for i in 0..150u32 {
        let mut id = *b"-XX0000-stranger0000";
        id[16..].copy_from_slice(&i.to_be_bytes());
        if let Some(s) = handshake_from(one, origin, swarm, id).unwrap() {
            held.push(s);
        }
    }
    assert!(
        (1..=8).contains(&held.len()),
        "{} idle connections from one address were taken",
        held.len()
    );
    // And 150 more from as many addresses, enough to fill every place.
    for i in 0..150u16 {
        let mut id = *b"-XX0000-elsewhere000";
        id[18..].copy_from_slice(&i.to_be_bytes());
        if let Some(s) = handshake_from(loopback_host(300 + i), origin, swarm, id).unwrap() {
            held.push(s);
        }
    }
    assert!(held.len() >= 56, "only {} strangers got in", held.len());
    let late = handshake_from(loopback_host(999), origin, swarm, [5; 20]).unwrap();
    assert!(late.is_none(), "the swarm still had room");

    // A real host's cold pull still comes through the swarm, from the
    // origin, without falling back to the registry.
    let second = Proxy::start(&[tracker.url()], &upstreams).unwrap();
    let got = get(
        &format!("{}/v2/bay/flood/blobs/{}", second.url(), layer.digest),
        &[],
    )
    .unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(sha256(&got.body), layer.digest);
    assert_eq!(
        metric(&second.url(), "bay_proxy_registry_reads_total").unwrap(),
        0
    );
    assert_eq!(
        metric(&second.url(), "bay_peer_downloaded_bytes_total").unwrap(),
        layer.size
    );
    assert_eq!(
        registry
            .blob_bytes_served()
            .unwrap()
            .get(&layer.digest)
            .copied(),
        Some(layer.size),
        "the layer left the registry more than once"
    );
    drop(held);
}

/// One announce from `from` for `swarm`; the peers answered.
fn announce_from(
    from: std::net::IpAddr,
    tracker: SocketAddr,
    swarm: [u8; 20],
    peer_id: [u8; 20],
    port: u16,
    extra: &str,
) -> Reply<AnnounceResponse> {
    let query = format!(
        "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=1000&compact=1&numwant=200{extra}",
        percent(&swarm),
        percent(&peer_id)
    );
    let mut s = connect_from(from, tracker, WAIT).unwrap();
    let request = format!("GET /announce?{query} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    AnnounceResponse::decode(&got[at..]).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

fn percent(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn peers_of(reply: Reply<AnnounceResponse>) -> Vec<SocketAddr> {
    match reply {
        Reply::Success(r) => r.peers.iter().map(|p| SocketAddr::V4(*p)).collect(),
        Reply::Failure(why) => panic!("announce refused: {why}"),
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo, ss and bay's binaries: scripts/test.sh runs it"
)]
fn the_tracker_does_not_believe_what_announces_claim() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let proxy = Proxy::start(&[tracker.url()], &upstreams).unwrap();
    let image = seed_one_layer(&registry, &proxy, "bay/claims", 181);
    let swarm = swarm_of(&image.layers[0].digest);
    let at: SocketAddr = tracker.url().trim_start_matches("http://").parse().unwrap();
    let liar = loopback_host(3);

    // Another address named with ip= is not taken; unroutable ones are
    // refused outright.
    let reply = announce_from(liar, at, swarm, [1; 20], 7001, "&ip=192.0.2.1");
    assert!(matches!(reply, Reply::Success(_)));
    for claimed in ["0.0.0.0", "255.255.255.255"] {
        announce_from(liar, at, swarm, [2; 20], 7002, &format!("&ip={claimed}"));
    }
    let refused = announce_from(liar, at, swarm, [3; 20], 0, "");
    assert!(matches!(refused, Reply::Failure(_)), "port 0 was taken");

    // Thousands of peer ids from one address hold a bounded share.
    for i in 0..3000u32 {
        let mut id = [9u8; 20];
        id[..4].copy_from_slice(&i.to_be_bytes());
        announce_from(liar, at, swarm, id, 10_000 + (i % 50_000) as u16, "");
    }
    let honest = loopback_host(4);
    let peers = peers_of(announce_from(honest, at, swarm, [4; 20], 6881, ""));
    for p in &peers {
        assert!(
            p.ip().is_loopback() && !p.ip().is_unspecified(),
            "peer list holds {p}"
        );
    }
    let from_liar = peers.iter().filter(|p| p.ip() == liar).count();
    assert!(
        from_liar <= 16,
        "{from_liar} of {} peers came from one address",
        peers.len()
    );
}
