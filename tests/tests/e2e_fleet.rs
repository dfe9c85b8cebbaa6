//! Keyed mode, with real programs on loopback: a fleet sharing a key pulls
//! through its swarm as before, and nobody without the key gets a byte.
//!
//! - a keyed tracker and proxies: a pull works, each layer leaves the
//!   registry once;
//! - a stranger who knows a layer's digest gets no handshake from a
//!   proxy's or the tracker's peer port;
//! - one who has the swarm name (as if sniffed), or replays a recorded
//!   exchange, or holds another key, gets no piece and is closed at once;
//! - announce, scrape and the origin API without a signature are refused
//!   and change nothing.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bay_tests::bay::{get, metric, request, Proxy, Tracker, Upstreams};
use bay_tests::clients::skopeo::{copy_command, read_dir_layout};
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::registry::{Registry, RegistryOptions};
use bay_wire::fleet::{FleetKey, FleetKeys};
use bay_wire::oci::Digest;
use bay_wire::peer::{
    AuthStep, BytesMut, FleetAuth, Handshake, Reserved, HANDSHAKE_LEN, NONCE_LEN,
};

fn write_key(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("{}\n", FleetKey::from_bytes([byte; 32]).to_hex()),
    )
    .unwrap();
    path
}

fn keys(byte: u8) -> FleetKeys {
    FleetKeys::single(FleetKey::from_bytes([byte; 32]))
}

struct Fleet {
    registry: Registry,
    tracker: Tracker,
    proxies: Vec<Proxy>,
    image: TestImage,
    _dir: tempfile::TempDir,
}

fn keyed_fleet(seed: u64) -> Fleet {
    fleet_with(seed, false)
}

/// A registry with an image, a tracker and two proxies sharing a key;
/// `encrypt` turns on encrypted peer links everywhere.
fn fleet_with(seed: u64, encrypt: bool) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let key = write_key(dir.path(), "fleet.key", 7);
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec::small(seed)).unwrap();
    image.push(&registry, "bay/fleet").unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let k = key.clone();
    let tracker = Tracker::start_with(&upstreams, move |c| {
        c.node.fleet_key_file = Some(k);
        c.node.encrypt_peer_links = encrypt;
    })
    .unwrap();
    let proxies = (0..2)
        .map(|_| {
            let k = key.clone();
            Proxy::start_with(&[tracker.url()], &upstreams, move |c| {
                c.node.fleet_key_file = Some(k);
                c.node.encrypt_peer_links = encrypt;
            })
            .unwrap()
        })
        .collect();
    Fleet {
        registry,
        tracker,
        proxies,
        image,
        _dir: dir,
    }
}

fn pull(proxy: &Proxy, image: &TestImage) {
    let out = tempfile::tempdir().unwrap();
    let reference = format!("{}/bay/fleet:{}", proxy.addr(), image.tag);
    let access = Access {
        plain_http: true,
        ..Access::default()
    };
    let status = copy_command(None, &reference, &access, out.path())
        .status()
        .unwrap();
    assert!(status.success());
    image.check(&read_dir_layout(out.path()).unwrap()).unwrap();
}

const STRANGER: [u8; 20] = *b"-XX0000-stranger0000";

/// Handshakes for `swarm` with the fleet bit; returns the connection and
/// the other side's peer id if it answered with its handshake.
fn knock(to: SocketAddr, swarm: [u8; 20]) -> (TcpStream, Option<[u8; 20]>) {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut hello = Handshake::new(swarm, STRANGER);
    hello.reserved = Reserved::BAY.with_fleet_auth(true);
    s.write_all(&hello.to_bytes()).unwrap();
    let mut answer = [0u8; HANDSHAKE_LEN];
    let id = s
        .read_exact(&mut answer)
        .ok()
        .map(|()| answer[48..68].try_into().unwrap());
    (s, id)
}

/// Reads until the peer closes; returns the bytes and how long it took.
fn drain(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (got, started.elapsed())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn a_keyed_fleet_pulls_through_its_swarm_and_strangers_get_nothing() {
    let fleet = keyed_fleet(401);
    pull(&fleet.proxies[0], &fleet.image);
    pull(&fleet.proxies[1], &fleet.image);
    let served = fleet.registry.blob_bytes_served().unwrap();
    for layer in &fleet.image.layers {
        assert_eq!(
            served.get(&layer.digest),
            Some(&layer.size),
            "{}",
            layer.digest
        );
    }
    let second = fleet.proxies[1].url();
    assert!(metric(&second, "bay_peer_downloaded_bytes_total").unwrap() > 0);

    let layer = &fleet.image.layers[0];
    let digest = Digest::parse(&layer.digest).unwrap();
    let open_name = bay_wire::origin::swarm_id(&digest);
    let keyed_name = keys(7).swarm_id(&digest);
    let origin = fleet.tracker.peer_addr().unwrap();
    let holder = fleet.proxies[0].peer_addr().unwrap();
    for port in [origin, holder] {
        // Knowing the digest is not enough: the open name is no swarm here.
        let (_, answered) = knock(port, open_name);
        assert!(
            answered.is_none(),
            "{port} answered a swarm named from the digest alone"
        );

        // The keyed name (as if sniffed) gets a handshake and a nonce,
        // then a wrong proof closes the connection at once.
        let (mut s, answered) = knock(port, keyed_name);
        assert!(answered.is_some());
        let mut nonce = [0u8; NONCE_LEN];
        s.read_exact(&mut nonce).unwrap();
        s.write_all(&[1u8; NONCE_LEN]).unwrap();
        s.write_all(&[2u8; 32]).unwrap();
        let (rest, took) = drain(&mut s);
        // At most our proof (32 bytes) came back, never a message.
        assert!(rest.len() <= 32, "{} bytes after the handshake", rest.len());
        assert!(took < Duration::from_secs(1), "closed after {took:?}");

        // A peer of another fleet (another key) fails the same way.
        let (mut s, their_id) = knock(port, keyed_name);
        let mut auth = FleetAuth::new(
            keys(8),
            keyed_name,
            STRANGER,
            their_id.unwrap(),
            [3; NONCE_LEN],
        );
        let mut their_nonce = [0u8; NONCE_LEN];
        s.read_exact(&mut their_nonce).unwrap();
        let mut input = BytesMut::from(&their_nonce[..]);
        let AuthStep::Send(proof) = auth.receive(&mut input).unwrap() else {
            panic!("no proof to send")
        };
        s.write_all(&auth.hello()).unwrap();
        s.write_all(&proof).unwrap();
        let (rest, took) = drain(&mut s);
        assert!(rest.len() <= 32, "{} bytes to another fleet", rest.len());
        assert!(took < Duration::from_secs(1));
    }

    // The tracker refuses unsigned announces, scrapes and origin calls,
    // and records nothing for them.
    let tracker = fleet.tracker.url();
    let peers_before = metric(&tracker, "bay_tracker_peers").unwrap();
    let pct: String = keyed_name.iter().map(|b| format!("%{b:02X}")).collect();
    let announce = format!(
        "{tracker}/announce?info_hash={pct}&peer_id=-XX0000-stranger0000&port=9&uploaded=0&downloaded=0&left=1&compact=1"
    );
    assert_eq!(get(&announce, &[]).unwrap().status, 401);
    assert_eq!(
        get(&format!("{tracker}/scrape?info_hash={pct}"), &[])
            .unwrap()
            .status,
        401
    );
    let origin_call = format!(
        "{tracker}/origin/v1/blobs?registry={}&repo=bay/fleet&digest={}",
        fleet.registry.host(),
        layer.digest
    );
    assert_eq!(request("POST", &origin_call, &[]).unwrap().status, 401);
    let forged =
        "x-bay-fleet: t=1,n=00000000000000000000000000000000,s=".to_string() + &"00".repeat(32);
    assert_eq!(
        request("POST", &origin_call, &[forged]).unwrap().status,
        403
    );
    assert_eq!(metric(&tracker, "bay_tracker_peers").unwrap(), peers_before);
    assert!(metric(&tracker, "bay_tracker_refused_total").unwrap() >= 4);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn an_encrypted_fleet_pulls_through_its_swarm_and_speaks_no_plain_bittorrent() {
    let fleet = fleet_with(403, true);
    pull(&fleet.proxies[0], &fleet.image);
    pull(&fleet.proxies[1], &fleet.image);
    let served = fleet.registry.blob_bytes_served().unwrap();
    for layer in &fleet.image.layers {
        assert_eq!(served.get(&layer.digest), Some(&layer.size), "{served:?}");
    }
    let second = fleet.proxies[1].url();
    assert!(metric(&second, "bay_peer_downloaded_bytes_total").unwrap() > 0);
    assert_eq!(
        metric(&second, "bay_proxy_registry_reads_total").unwrap(),
        0
    );

    // Even with the right swarm name, a plain handshake gets no
    // handshake back: the port speaks TLS first.
    let digest = Digest::parse(&fleet.image.layers[0].digest).unwrap();
    let keyed_name = keys(7).swarm_id(&digest);
    for port in [
        fleet.tracker.peer_addr().unwrap(),
        fleet.proxies[0].peer_addr().unwrap(),
    ] {
        let (mut s, answered) = knock(port, keyed_name);
        assert!(answered.is_none(), "{port} answered a plain handshake");
        let (rest, took) = drain(&mut s);
        assert!(
            !rest.windows(19).any(|w| w == b"BitTorrent protocol"),
            "{port} spoke plain BitTorrent"
        );
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn a_recorded_exchange_replayed_by_a_stranger_fails() {
    let fleet = keyed_fleet(402);
    pull(&fleet.proxies[0], &fleet.image);
    let digest = Digest::parse(&fleet.image.layers[0].digest).unwrap();
    let swarm = keys(7).swarm_id(&digest);
    let holder = fleet.proxies[0].peer_addr().unwrap();
    // An honest exchange, recorded: what the member sent after the
    // handshake (its nonce and proof).
    let member_id = *b"-XX0000-member000000";
    let mut hello = Handshake::new(swarm, member_id);
    hello.reserved = Reserved::BAY.with_fleet_auth(true);
    let mut s = TcpStream::connect(holder).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&hello.to_bytes()).unwrap();
    let mut theirs = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut theirs).unwrap();
    let their_id: [u8; 20] = theirs[48..68].try_into().unwrap();
    let mut auth = FleetAuth::new(keys(7), swarm, member_id, their_id, [5; NONCE_LEN]);
    let mut recorded = auth.hello().to_vec();
    let mut their_nonce = [0u8; NONCE_LEN];
    s.read_exact(&mut their_nonce).unwrap();
    let mut input = BytesMut::from(&their_nonce[..]);
    let AuthStep::Send(proof) = auth.receive(&mut input).unwrap() else {
        panic!("no proof to send")
    };
    recorded.extend_from_slice(&proof);
    s.write_all(&recorded).unwrap();
    drop(s);
    // Replayed on a new connection: the holder chose a new nonce.
    let mut s = TcpStream::connect(holder).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&hello.to_bytes()).unwrap();
    s.read_exact(&mut theirs).unwrap();
    s.write_all(&recorded).unwrap();
    let (rest, took) = drain(&mut s);
    assert!(rest.len() <= NONCE_LEN + 32, "{} bytes", rest.len());
    assert!(took < Duration::from_secs(1));
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn a_tracker_over_tls_is_verified_and_carries_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ca = bay_tests::tls::TestCa::create(dir.path()).unwrap();
    let server = ca
        .issue_server("tracker", &[], &["localhost".into()])
        .unwrap();
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec::small(403)).unwrap();
    image.push(&registry, "bay/fleet").unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let (cert, key) = (server.cert.clone(), server.key.clone());
    let tracker = Tracker::start_with(&upstreams, move |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .unwrap();
    let https = tracker.url().replace("http://", "https://");
    let ca_file = ca.cert().to_path_buf();
    let trusting = Proxy::start_with(std::slice::from_ref(&https), &upstreams, move |c| {
        c.node.ca_file = Some(ca_file);
    })
    .unwrap();
    pull(&trusting, &image);
    assert_eq!(
        metric(&trusting.url(), "bay_proxy_registry_reads_total").unwrap(),
        0
    );
    assert!(metric(&trusting.url(), "bay_proxy_swarm_reads_total").unwrap() > 0);

    // A proxy that does not trust the tracker's certificate cannot use
    // it, and the pull still completes straight from the registry.
    let doubting = Proxy::start(&[https], &upstreams).unwrap();
    pull(&doubting, &image);
    assert!(metric(&doubting.url(), "bay_proxy_registry_reads_total").unwrap() > 0);
    assert_eq!(
        metric(&doubting.url(), "bay_proxy_swarm_reads_total").unwrap(),
        0
    );
}
