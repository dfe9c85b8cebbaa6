//! End to end: the real registry, two bay-trackers, three bay-proxies and real
//! skopeo pulls through them at the same time. Every layer must arrive with
//! the right digest and leave the registry once.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::path::Path;
use std::process::Command;

use bay_tests::bay::{check_cache, metric, Cluster, Upstreams};
use bay_tests::clients::skopeo::{copy_command, read_dir_layout};
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::registry::{Registry, RegistryOptions};

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
            let reference = format!("{}/{repo}:{}", p.addr(), image.tag);
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
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
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
    // Two trackers share the blobs by rendezvous hashing.
    let cluster = Cluster::start(&Upstreams::fixed(&registry), 2, 3).unwrap();
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

    // What the proxies got from peers is at least the image's layers
    // once per proxy, and the counters agree: trackers and proxies sent
    // all of it.
    let total: u64 = image.layers.iter().map(|l| l.size).sum();
    let from_peers: u64 = cluster
        .proxies
        .iter()
        .map(|p| metric(&p.url(), "bay_peer_downloaded_bytes_total").unwrap())
        .sum();
    let wasted: u64 = cluster
        .proxies
        .iter()
        .map(|p| metric(&p.url(), "bay_peer_wasted_bytes_total").unwrap())
        .sum();
    let sent: u64 = cluster
        .trackers
        .iter()
        .flatten()
        .map(|t| metric(&t.url(), "bay_peer_uploaded_bytes_total").unwrap())
        .chain(
            cluster
                .proxies
                .iter()
                .map(|p| metric(&p.url(), "bay_peer_uploaded_bytes_total").unwrap()),
        )
        .sum();
    assert!(
        from_peers >= 3 * total,
        "proxies got {from_peers} bytes from peers for 3 x {total}"
    );
    assert!(
        sent >= from_peers,
        "peers sent {sent} bytes, proxies kept {from_peers} and dropped {wasted}"
    );

    // A second round is served from the proxies' caches: the registry
    // sends no more blob bytes.
    let out2 = tempfile::tempdir().unwrap();
    pull_all_at_once(&cluster, "bay/swarm", &image, out2.path());
    assert_eq!(registry.blob_bytes_served().unwrap(), served);

    for p in &cluster.proxies {
        assert_eq!(check_cache(p.root()).unwrap(), image.layers.len() + 1);
    }
}
