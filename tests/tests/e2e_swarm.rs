//! End to end: the real registry, bay-tracker, three bay-proxies and real
//! skopeo pulls through them at the same time. Every layer must arrive with
//! the right digest and leave the registry once.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use bay_httpd::Shutdown;
use bay_proxy::config::ProxyConfig;
use bay_tests::clients::skopeo::{copy_command, read_dir_layout};
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::registry::{Registry, RegistryOptions};
use bay_tracker::config::TrackerConfig;

struct Cluster {
    tracker: bay_tracker::serve::Running,
    proxies: Vec<bay_proxy::serve::Running>,
    _dirs: Vec<tempfile::TempDir>,
}

fn cluster(registry: &Registry, proxies: usize) -> Cluster {
    let upstream = registry.host();
    let mut dirs = Vec::new();
    let tracker_dir = tempfile::tempdir().unwrap();
    let tracker = bay_tracker::serve::start(
        &TrackerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            peer_listen: "127.0.0.1:0".parse().unwrap(),
            root: tracker_dir.path().to_path_buf(),
            allow_registry: vec![upstream.clone()],
            insecure_registry: vec![upstream.clone()],
            threads: 2,
            ..TrackerConfig::default()
        },
        Some(TcpListener::bind("127.0.0.1:0").unwrap()),
        Shutdown::new(),
    )
    .unwrap();
    dirs.push(tracker_dir);
    let tracker_url = format!("http://{}", tracker.local_addr());
    let proxies = (0..proxies)
        .map(|_| {
            let dir = tempfile::tempdir().unwrap();
            let running = bay_proxy::serve::start(
                &ProxyConfig {
                    tracker: vec![tracker_url.clone()],
                    root: dir.path().to_path_buf(),
                    upstream: Some(upstream.clone()),
                    allow_registry: vec![upstream.clone()],
                    insecure_registry: vec![upstream.clone()],
                    peer_listen: "127.0.0.1:0".parse().unwrap(),
                    threads: 2,
                    ..ProxyConfig::default()
                },
                Some(TcpListener::bind("127.0.0.1:0").unwrap()),
                Shutdown::new(),
            )
            .unwrap();
            dirs.push(dir);
            running
        })
        .collect();
    Cluster {
        tracker,
        proxies,
        _dirs: dirs,
    }
}

fn plain() -> Access {
    Access {
        plain_http: true,
        ..Access::default()
    }
}

fn pull_all_at_once(cluster: &Cluster, repo: &str, image: &TestImage, out: &Path) {
    let children: Vec<_> = cluster
        .proxies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let reference = format!("{}/{repo}:{}", p.local_addr(), image.tag);
            let dest = out.join(format!("pull-{i}"));
            let mut cmd: Command = copy_command(None, &reference, &plain(), &dest);
            (cmd.spawn().unwrap(), dest)
        })
        .collect();
    for (mut child, dest) in children {
        let status = child.wait().unwrap();
        assert!(status.success(), "skopeo through bay failed: {status}");
        image.check(&read_dir_layout(&dest).unwrap()).unwrap();
    }
}

#[test]
fn three_proxies_pull_at_once_and_each_layer_leaves_the_registry_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec {
        layer_sizes: vec![6 << 20, 300 * 1024, 2 << 20],
        seed: 51,
        tag: "swarm".into(),
    })
    .unwrap();
    image.push(&registry, "bay/swarm").unwrap();
    let cluster = cluster(&registry, 3);
    let out = tempfile::tempdir().unwrap();

    pull_all_at_once(&cluster, "bay/swarm", &image, out.path());

    let served = registry.blob_bytes_served().unwrap();
    for layer in &image.layers {
        let bytes = served.get(&layer.digest).copied().unwrap_or(0);
        assert_eq!(
            bytes, layer.size,
            "layer {} left the registry {bytes} bytes for {} bytes of layer",
            layer.digest, layer.size
        );
    }

    // A second round is served from the proxies' caches: the registry
    // sends no more blob bytes.
    let out2 = tempfile::tempdir().unwrap();
    pull_all_at_once(&cluster, "bay/swarm", &image, out2.path());
    assert_eq!(registry.blob_bytes_served().unwrap(), served);

    for p in cluster.proxies {
        p.stop();
    }
    cluster.tracker.stop();
}
