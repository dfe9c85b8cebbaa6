//! End to end with an image whose biggest layer is over 100 MiB: two
//! trackers and three proxies, three skopeo pulls at once. Every layer
//! arrives with its digest and leaves the registry once.
//!
//! Alone in its test binary: it moves about 330 MiB through debug builds,
//! and sharing two cores with another cluster test can starve the swarm
//! past the proxy's stall timeout (it then finishes from the registry,
//! which is correct but not what this test measures).
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_tests::bay::{check_cache, Cluster, Upstreams};
use bay_tests::clients::skopeo::{copy_command, read_dir_layout};
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::run_all_at_once;
use bay_tests::registry::{Registry, RegistryOptions};

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn a_big_image_over_100_mib_leaves_the_registry_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec::big(52)).unwrap();
    assert!(image.layers.iter().any(|l| l.size > 100 << 20));
    image.push(&registry, "bay/big").unwrap();
    let cluster = Cluster::start(&Upstreams::fixed(&registry), 2, 3).unwrap();
    let out = tempfile::tempdir().unwrap();
    let access = Access {
        plain_http: true,
        ..Access::default()
    };
    let dests: Vec<_> = (0..3)
        .map(|i| out.path().join(format!("pull-{i}")))
        .collect();
    let commands = cluster
        .proxies
        .iter()
        .zip(&dests)
        .map(|(p, dest)| {
            let reference = format!("{}/bay/big:{}", p.addr(), image.tag);
            copy_command(None, &reference, &access, dest)
        })
        .collect();

    for (i, result) in run_all_at_once(commands).into_iter().enumerate() {
        let (took, _) = result.unwrap();
        eprintln!(
            "pull {i} of {} MiB took {took:?}",
            image.layer_bytes() >> 20
        );
    }
    for dest in &dests {
        image.check(&read_dir_layout(dest).unwrap()).unwrap();
    }
    let served = registry.blob_bytes_served().unwrap();
    for layer in &image.layers {
        assert_eq!(served.get(&layer.digest), Some(&layer.size), "{served:?}");
    }
    for p in &cluster.proxies {
        check_cache(p.root()).unwrap();
    }
}
