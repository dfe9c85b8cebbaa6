//! End to end on the epoll driver: two bay-tracker and three bay-proxy
//! binaries run with `MONOIO_FORCE_LEGACY_DRIVER=1` (read once per process,
//! so they cannot share the test process), as in a container whose seccomp
//! profile blocks io_uring. Three skopeo pulls at once, one per proxy: every
//! layer arrives with its digest and leaves the registry once, and a
//! second round comes from the proxies' caches.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_tests::bay::{metric, BinProcess, Upstreams};
use bay_tests::clients::skopeo::{copy_command, read_dir_layout};
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::run_all_at_once;
use bay_tests::registry::{Registry, RegistryOptions};

const LEGACY: &[(&str, &str)] = &[("MONOIO_FORCE_LEGACY_DRIVER", "1")];

fn pull_through_each(proxies: &[BinProcess], image: &TestImage, out: &std::path::Path) {
    let access = Access {
        plain_http: true,
        ..Access::default()
    };
    let dests: Vec<_> = (0..proxies.len())
        .map(|i| out.join(format!("pull-{i}")))
        .collect();
    let commands = proxies
        .iter()
        .zip(&dests)
        .map(|(p, dest)| {
            let reference = format!("{}/bay/legacy:{}", p.addr(), image.tag);
            copy_command(None, &reference, &access, dest)
        })
        .collect();
    for result in run_all_at_once(commands) {
        result.unwrap();
    }
    for dest in &dests {
        image.check(&read_dir_layout(dest).unwrap()).unwrap();
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn binaries_on_the_epoll_driver_pull_at_once_and_each_layer_leaves_once() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec {
        layer_sizes: vec![6 << 20, 300 * 1024, 2 << 20],
        seed: 90,
        tag: "legacy".into(),
    })
    .unwrap();
    image.push(&registry, "bay/legacy").unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let roots: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let trackers: Vec<BinProcess> = roots[..2]
        .iter()
        .map(|r| BinProcess::tracker(&upstreams, r.path(), LEGACY).unwrap())
        .collect();
    let urls: Vec<String> = trackers.iter().map(BinProcess::url).collect();
    let proxies: Vec<BinProcess> = roots[2..]
        .iter()
        .map(|r| BinProcess::proxy(&urls, &upstreams, r.path(), LEGACY).unwrap())
        .collect();
    for p in trackers.iter().chain(&proxies) {
        assert!(p.log().contains("driver=epoll"), "{}", p.log());
        assert!(!p.log().contains("driver=io_uring"), "{}", p.log());
    }

    let out = tempfile::tempdir().unwrap();
    pull_through_each(&proxies, &image, out.path());
    let served = registry.blob_bytes_served().unwrap();
    for layer in &image.layers {
        assert_eq!(served.get(&layer.digest), Some(&layer.size), "{served:?}");
    }

    let out = tempfile::tempdir().unwrap();
    pull_through_each(&proxies, &image, out.path());
    assert_eq!(registry.blob_bytes_served().unwrap(), served);
    for p in &proxies {
        assert!(metric(&p.url(), "bay_proxy_cache_hits_total").unwrap() >= 3);
    }
}
