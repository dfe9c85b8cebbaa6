//! End to end under faults: a pull through bay must complete whenever the
//! registry itself works, and bay must never serve a wrong byte or contact
//! an upstream it was not allowed.
//!
//! - a request naming an upstream outside the allow list: 403, and the
//!   would-be upstream sees no connection;
//! - the registry stopped after a first pull: cached layers are still
//!   served, an uncached one gets a clear 502;
//! - the proxy's root on a tiny tmpfs: the pull completes and no cache
//!   entry is corrupt;
//! - two trackers and the owner of a layer SIGKILLed mid-pull: the other
//!   tracker takes over the origin during the pull, and later pulls fail
//!   over to it; with no tracker left, pulls go straight to the registry;
//! - a proxy SIGKILLed mid-download, a verified piece on disk corrupted,
//!   and the proxy restarted on the same root: it resumes and serves the
//!   right bytes.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bay_proxy::blob::rendezvous_order;
use bay_tests::bay::{
    check_cache, get, metric, request, BinProcess, Cluster, Proxy, Tracker, Upstreams,
};
use bay_tests::clients::{skopeo, Access};
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::wait_until;
use bay_tests::registry::{Registry, RegistryOptions};
use bay_tests::tmpfs::Tmpfs;
use sha2::{Digest as _, Sha256};

const MIB: u64 = 1 << 20;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn plain() -> Access {
    Access {
        plain_http: true,
        ..Access::default()
    }
}

fn registry_with(spec: &ImageSpec, repo: &str) -> (Registry, TestImage) {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(spec).unwrap();
    image.push(&registry, repo).unwrap();
    (registry, image)
}

fn blob_url(proxy: &str, repo: &str, digest: &str) -> String {
    format!("{proxy}/v2/{repo}/blobs/{digest}")
}

/// `<root>/partial/<alg>-<hex>`, a download in progress.
fn partial_dir(root: &Path, digest: &str) -> PathBuf {
    root.join("partial").join(digest.replacen(':', "-", 1))
}

/// Pieces marked verified in a partial download's bitfield.
fn verified_pieces(root: &Path, digest: &str) -> Vec<u32> {
    let have = std::fs::read(partial_dir(root, digest).join("have")).unwrap_or_default();
    let mut out = Vec::new();
    for (i, byte) in have.iter().enumerate() {
        for bit in 0..8u32 {
            if byte & (0x80 >> bit) != 0 {
                out.push(i as u32 * 8 + bit);
            }
        }
    }
    out
}

/// Starts `curl` reading `url` into `out` in the background.
fn start_download(url: &str, out: &Path) -> std::process::Child {
    Command::new("curl")
        .args(["-sS", "--max-time", "120", "-o"])
        .arg(out)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, mount, docker-registry, skopeo, curl and bay's binaries: scripts/test.sh runs it"
)]
fn a_host_that_is_not_allowed_gets_403_and_nothing_is_contacted() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let cluster = Cluster::start(&Upstreams::routed(&registry), 1, 1).unwrap();
    let proxy = cluster.proxies[0].url();
    // The would-be upstream: a listener that records every connection.
    let bait = TcpListener::bind("127.0.0.1:0").unwrap();
    bait.set_nonblocking(true).unwrap();
    let bait_host = bait.local_addr().unwrap().to_string();
    let digest = format!("sha256:{}", "ab".repeat(32));

    let asks = [
        (format!("{proxy}/v2/?ns={bait_host}"), vec![]),
        (
            format!(
                "{proxy}/v2/x/blobs/{digest}?ns={}",
                bait_host.replace(':', "%3A")
            ),
            vec![],
        ),
        (
            format!("{proxy}/v2/x/manifests/latest"),
            vec![format!("Host: p2p-{bait_host}")],
        ),
        (
            format!("{proxy}/v2/x/blobs/{digest}"),
            vec![format!("Host: p2p-{bait_host}")],
        ),
    ];
    for (url, headers) in &asks {
        let r = get(url, headers).unwrap();
        assert_eq!(r.status, 403, "{url} {headers:?}");
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("DENIED"), "{body}");
    }
    // The tracker's origin refuses such a registry as well.
    let tracker = cluster.tracker_urls()[0].clone();
    let r = request(
        "POST",
        &format!("{tracker}/origin/v1/blobs?registry={bait_host}&repo=x&digest={digest}"),
        &[],
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    match bait.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the disallowed upstream was contacted: {other:?}"),
    }
    // The registry it does allow was not asked anything either.
    assert!(registry.requests().unwrap().is_empty());
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, mount, docker-registry, skopeo, curl and bay's binaries: scripts/test.sh runs it"
)]
fn registry_stopped_cached_layers_still_served_uncached_get_502() {
    let (mut registry, image) = registry_with(&ImageSpec::small(80), "bay/outage");
    let other = TestImage::build(&ImageSpec {
        tag: "other".into(),
        ..ImageSpec::small(81)
    })
    .unwrap();
    other.push(&registry, "bay/outage").unwrap();
    let cluster = Cluster::start(&Upstreams::fixed(&registry), 1, 1).unwrap();
    let proxy = cluster.proxies[0].url();
    let reference = format!("{}/bay/outage:{}", cluster.proxies[0].addr(), image.tag);
    image
        .check(&skopeo::pull(&reference, &plain()).unwrap())
        .unwrap();

    registry.stop();
    for layer in &image.layers {
        let r = get(&blob_url(&proxy, "bay/outage", &layer.digest), &[]).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(sha256(&r.body), layer.digest);
    }
    let uncached = &other.layers[0];
    let r = get(&blob_url(&proxy, "bay/outage", &uncached.digest), &[]).unwrap();
    assert_eq!(r.status, 502);
    let body = String::from_utf8_lossy(&r.body);
    assert!(
        body.contains("UNAVAILABLE") && body.contains("registry"),
        "the 502 says the registry is the problem: {body}"
    );
    assert_eq!(check_cache(cluster.proxies[0].root()).unwrap(), 4);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, mount, docker-registry, skopeo, curl and bay's binaries: scripts/test.sh runs it"
)]
fn a_root_on_a_tiny_tmpfs_still_pulls_and_caches_nothing_corrupt() {
    let spec = ImageSpec {
        layer_sizes: vec![3 * MIB, 5 * MIB, 200 * 1024],
        seed: 82,
        tag: "tiny".into(),
    };
    let (registry, image) = registry_with(&spec, "bay/tiny");
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let fs = Tmpfs::mount(4 * MIB).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut proxy = Proxy::start_on(&[tracker.url()], &upstreams, listener, fs.path()).unwrap();
    let reference = format!("{}/bay/tiny:{}", proxy.addr(), image.tag);

    for _ in 0..2 {
        image
            .check(&skopeo::pull(&reference, &plain()).unwrap())
            .unwrap();
        check_cache(fs.path()).unwrap();
    }
    proxy.stop();
    tracker.stop();
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, mount, docker-registry, skopeo, curl and bay's binaries: scripts/test.sh runs it"
)]
fn the_owner_tracker_killed_mid_pull_and_later_pulls_fail_over() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let spec = ImageSpec {
        layer_sizes: vec![48 * MIB, 512 * 1024],
        seed: 83,
        tag: "failover".into(),
    };
    let (registry, image) = registry_with(&spec, "bay/failover");
    let t0 = Instant::now();
    let second = TestImage::build(&ImageSpec {
        tag: "second".into(),
        ..ImageSpec::small(84)
    })
    .unwrap();
    second.push(&registry, "bay/failover").unwrap();
    let third = TestImage::build(&ImageSpec {
        tag: "third".into(),
        ..ImageSpec::small(87)
    })
    .unwrap();
    third.push(&registry, "bay/failover").unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let roots = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut trackers: Vec<BinProcess> = roots
        .iter()
        .map(|r| BinProcess::tracker(&upstreams, r.path(), &[]).unwrap())
        .collect();
    let urls: Vec<String> = trackers.iter().map(BinProcess::url).collect();
    let proxies = [
        Proxy::start(&urls, &upstreams).unwrap(),
        Proxy::start(&urls, &upstreams).unwrap(),
    ];
    let big = &image.layers[0];
    let owner = rendezvous_order(&urls, &big.digest)[0].clone();
    let owner_index = urls.iter().position(|u| *u == owner).unwrap();

    let out = tempfile::tempdir().unwrap();
    let reference = format!("{}/bay/failover:{}", proxies[0].addr(), image.tag);
    let mut pull = skopeo::copy_command(None, &reference, &plain(), &out.path().join("a"))
        .spawn()
        .unwrap();
    // Mid-pull: the proxy has verified some of the big layer, not all.
    wait_until(
        "the big layer to be part-way",
        Duration::from_secs(60),
        || !verified_pieces(proxies[0].root(), &big.digest).is_empty(),
    )
    .unwrap();
    trackers[owner_index].kill();
    eprintln!("owner killed at {:?}", t0.elapsed());
    let cached = proxies[0]
        .root()
        .join("blobs")
        .join(big.digest.replacen(':', "-", 1));
    assert!(!cached.exists(), "killed too late to test a fail-over");
    let status = pull.wait().unwrap();
    eprintln!("pull done at {:?}", t0.elapsed());
    assert!(status.success(), "skopeo through bay failed: {status}");
    image
        .check(&skopeo::read_dir_layout(&out.path().join("a")).unwrap())
        .unwrap();
    // Usually the other tracker takes over the origin while the pull runs:
    // the proxy never goes to the registry for the big layer and it
    // completes in the cache. A blob whose dead origin had already
    // published every piece hash has no fetch left to take over: the proxy
    // finishes that one from the registry once its swarm has no peer,
    // which is also correct (the pull above succeeded with the right
    // digests). The proxy warms every blob of the manifest at once, so
    // this can happen to each blob the dead tracker owned, and only to
    // those; each leaves the registry at most twice, and nothing corrupt
    // is cached.
    let blobs: Vec<&str> = image
        .layers
        .iter()
        .map(|l| l.digest.as_str())
        .chain([image.config.digest.as_str()])
        .collect();
    let owned_by_dead = blobs
        .iter()
        .filter(|d| rendezvous_order(&urls, d)[0] == owner)
        .count() as u64;
    let direct = metric(&proxies[0].url(), "bay_proxy_registry_reads_total").unwrap();
    assert!(
        direct <= owned_by_dead,
        "{direct} registry reads, the dead tracker owned {owned_by_dead} blobs"
    );
    let direct_bytes = metric(&proxies[0].url(), "bay_proxy_bytes_from_registry_total").unwrap();
    if direct_bytes < big.size {
        wait_until(
            "the big layer in the cache",
            Duration::from_secs(30),
            || cached.exists(),
        )
        .unwrap();
    } else {
        eprintln!("the origin died after publishing every hash: finished from the registry");
    }
    check_cache(proxies[0].root()).unwrap();
    let served = registry.blob_bytes_served().unwrap();
    let big_served = served.get(&big.digest).copied().unwrap_or(0);
    assert!(
        (big.size..=2 * big.size).contains(&big_served),
        "{big_served} bytes of a {} byte layer",
        big.size
    );

    // With the owner gone, another proxy's pull of layers it owned goes
    // to the next tracker: each still leaves the registry once.
    let reference = format!("{}/bay/failover:{}", proxies[1].addr(), second.tag);
    second
        .check(&skopeo::pull(&reference, &plain()).unwrap())
        .unwrap();
    let served = registry.blob_bytes_served().unwrap();
    for layer in &second.layers {
        assert_eq!(served.get(&layer.digest), Some(&layer.size), "{served:?}");
    }
    assert!(metric(&proxies[1].url(), "bay_proxy_swarm_reads_total").unwrap() >= 3);

    // No tracker left: the pull goes straight to the registry.
    trackers[1 - owner_index].kill();
    let reference = format!("{}/bay/failover:{}", proxies[1].addr(), third.tag);
    third
        .check(&skopeo::pull(&reference, &plain()).unwrap())
        .unwrap();
    assert!(metric(&proxies[1].url(), "bay_proxy_registry_reads_total").unwrap() >= 3);
    check_cache(proxies[1].root()).unwrap();
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, mount, docker-registry, skopeo, curl and bay's binaries: scripts/test.sh runs it"
)]
fn the_only_tracker_killed_mid_pull_finishes_from_the_registry_without_the_stall() {
    let spec = ImageSpec {
        layer_sizes: vec![32 * MIB],
        seed: 88,
        tag: "orphan".into(),
    };
    let (registry, image) = registry_with(&spec, "bay/orphan");
    let upstreams = Upstreams::fixed(&registry);
    let root = tempfile::tempdir().unwrap();
    let mut tracker = BinProcess::tracker(&upstreams, root.path(), &[]).unwrap();
    let proxy = Proxy::start(&[tracker.url()], &upstreams).unwrap();
    let layer = &image.layers[0];
    let out = tempfile::tempdir().unwrap();
    let reference = format!("{}/bay/orphan:{}", proxy.addr(), image.tag);
    let mut pull = skopeo::copy_command(None, &reference, &plain(), out.path())
        .spawn()
        .unwrap();
    wait_until("the layer to be part-way", Duration::from_secs(60), || {
        !verified_pieces(proxy.root(), &layer.digest).is_empty()
    })
    .unwrap();
    tracker.kill();
    let killed = Instant::now();
    let status = pull.wait().unwrap();
    let took = killed.elapsed();
    assert!(status.success(), "skopeo through bay failed: {status}");
    image
        .check(&skopeo::read_dir_layout(out.path()).unwrap())
        .unwrap();
    // The proxy knew no origin was left and went to the registry for the
    // rest at once, not after its 15 s stall timeout.
    assert!(metric(&proxy.url(), "bay_proxy_registry_reads_total").unwrap() >= 1);
    assert!(
        took < Duration::from_secs(12),
        "the pull waited {took:?} after the kill"
    );
}

/// A proxy binary SIGKILLed part-way through a download, one verified
/// piece on its disk corrupted, restarted on the same root: the download
/// resumes and the client gets exactly the blob.
fn sigkilled_proxy_resumes(env: &[(&str, &str)], driver: &str, seed: u64) {
    let spec = ImageSpec {
        layer_sizes: vec![24 * MIB],
        seed,
        tag: "resume".into(),
    };
    let (registry, image) = registry_with(&spec, "bay/resume");
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut proxy = BinProcess::proxy(&[tracker.url()], &upstreams, root.path(), env).unwrap();
    let layer = &image.layers[0];
    let url = blob_url(&proxy.url(), "bay/resume", &layer.digest);

    let out = tempfile::tempdir().unwrap();
    let mut first = start_download(&url, &out.path().join("first"));
    let started = Instant::now();
    wait_until(
        "the download to be part-way",
        Duration::from_secs(60),
        || verified_pieces(root.path(), &layer.digest).len() >= 2,
    )
    .unwrap();
    proxy.kill();
    eprintln!("killed after {:?}", started.elapsed());
    let _ = first.wait();
    let done = verified_pieces(root.path(), &layer.digest);
    assert!(
        !root
            .path()
            .join("blobs")
            .join(layer.digest.replacen(':', "-", 1))
            .exists(),
        "killed too late to test a resume ({:?} in)",
        started.elapsed()
    );
    assert!(!done.is_empty());

    // A verified piece damaged while the proxy was down (a torn write the
    // bitfield claims): the restart must check it again.
    let dir = partial_dir(root.path(), &layer.digest);
    let meta = std::fs::read_to_string(dir.join("meta")).unwrap();
    let piece_len: u64 = meta
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    let data = dir.join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let at = (u64::from(done[0]) * piece_len) as usize;
    bytes[at] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    proxy.restart().unwrap();
    let restarted = Instant::now();
    let r = get(&url, &[]).unwrap();
    eprintln!("resumed download took {:?}", restarted.elapsed());
    assert_eq!(r.status, 200);
    assert_eq!(sha256(&r.body), layer.digest, "the resumed blob is wrong");
    // The origin fetched the layer once; the proxy never went around it.
    let served = registry.blob_bytes_served().unwrap();
    assert_eq!(
        served.get(&layer.digest),
        Some(&layer.size),
        "{served:?}\nproxy log:\n{}",
        proxy.log()
    );
    wait_until(
        "the blob to enter the cache",
        Duration::from_secs(30),
        || check_cache(root.path()).unwrap() == 1,
    )
    .unwrap();
    // The store renames the blob into place first and removes the partial
    // folder right after, so the folder may outlive the entry by a moment.
    wait_until(
        "the partial download to be removed",
        Duration::from_secs(10),
        || !dir.exists(),
    )
    .expect("the partial download is left behind");
    assert!(
        proxy.log().contains(&format!("driver={driver}")),
        "the proxy runs on {driver}: {}",
        proxy
            .log()
            .lines()
            .filter(|l| l.contains("listening"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(proxy);
    tracker.stop();
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, mount, docker-registry, skopeo, curl and bay's binaries: scripts/test.sh runs it"
)]
fn a_sigkilled_proxy_resumes_after_restart() {
    sigkilled_proxy_resumes(&[], "io_uring", 85);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs root, mount, docker-registry, skopeo, curl and bay's binaries: scripts/test.sh runs it"
)]
fn a_sigkilled_proxy_resumes_after_restart_on_the_legacy_driver() {
    sigkilled_proxy_resumes(&[("MONOIO_FORCE_LEGACY_DRIVER", "1")], "epoll", 86);
}
