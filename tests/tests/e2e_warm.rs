//! A manifest passing through the proxy gets its blobs ready before the
//! client asks: by default the origin fetches each blob and the proxy
//! joins its swarm but fetches nothing until a client reads it; with
//! `prefetch = "all"` the blobs land in the cache at once.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::time::Duration;

use bay_proxy::config::Prefetch;
use bay_tests::bay::{check_cache, get, metric, Proxy, Tracker, Upstreams};
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::process::wait_until;
use bay_tests::registry::{Registry, RegistryOptions};
use bay_wire::oci::Digest;

const ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

fn manifest_url(proxy: &Proxy, image: &TestImage, repo: &str) -> String {
    format!("{}/v2/{repo}/manifests/{}", proxy.url(), image.tag)
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, curl and bay's binaries: scripts/test.sh runs it"
)]
fn a_manifest_starts_the_origin_and_the_blob_comes_from_the_swarm_later() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let image = TestImage::build(&ImageSpec::small(431)).unwrap();
    image.push(&registry, "bay/warm").unwrap();
    let blobs = 1 + image.layers.len() as u64;
    let proxy = Proxy::start(&[tracker.url()], &upstreams).unwrap();

    let manifest = get(&manifest_url(&proxy, &image, "bay/warm"), &[ACCEPT.into()]).unwrap();
    assert_eq!(manifest.status, 200);
    assert_eq!(
        Digest::sha256_of(&manifest.body).as_str(),
        image.manifest.digest,
        "the manifest changed on its way through"
    );
    wait_until(
        "every blob of the manifest to be warmed",
        Duration::from_secs(20),
        || metric(&proxy.url(), "bay_proxy_warmed_total").unwrap() >= blobs,
    )
    .unwrap();
    // Once the origin holds every blob and the proxy is connected to it,
    // a swarm that fetched would be done in milliseconds.
    let image_bytes = image.layer_bytes() + image.config.size;
    wait_until(
        "the origin to hold the image and the proxy to connect",
        Duration::from_secs(20),
        || {
            metric(&tracker.url(), "bay_tracker_origin_fetched_bytes_total").unwrap() >= image_bytes
                && metric(&proxy.url(), "bay_peer_connections").unwrap() >= 1
        },
    )
    .unwrap();
    // The origin has read each blob once; the proxy fetched nothing.
    let gets = registry.blob_gets().unwrap();
    for layer in &image.layers {
        assert_eq!(gets.get(&layer.digest), Some(&1), "{gets:?}");
    }
    assert_eq!(
        metric(&proxy.url(), "bay_peer_downloaded_bytes_total").unwrap(),
        0,
        "a blob joined ahead of the client was fetched"
    );
    assert_eq!(check_cache(proxy.root()).unwrap(), 0);

    let layer = &image.layers[0];
    let blob = get(
        &format!("{}/v2/bay/warm/blobs/{}", proxy.url(), layer.digest),
        &[],
    )
    .unwrap();
    assert_eq!(blob.status, 200);
    assert_eq!(Digest::sha256_of(&blob.body).as_str(), layer.digest);
    assert!(
        blob.headers
            .to_ascii_lowercase()
            .contains("x-bay-source: swarm"),
        "{}",
        blob.headers
    );
    assert_eq!(registry.blob_gets().unwrap().get(&layer.digest), Some(&1));
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, curl and bay's binaries: scripts/test.sh runs it"
)]
fn with_prefetch_all_a_manifest_fills_the_cache() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let upstreams = Upstreams::fixed(&registry);
    let tracker = Tracker::start(&upstreams).unwrap();
    let image = TestImage::build(&ImageSpec::small(432)).unwrap();
    image.push(&registry, "bay/prefetch").unwrap();
    let blobs = 1 + image.layers.len();
    let proxy = Proxy::start_with(&[tracker.url()], &upstreams, |c| {
        c.prefetch = Prefetch::All;
    })
    .unwrap();

    let manifest = get(
        &manifest_url(&proxy, &image, "bay/prefetch"),
        &[ACCEPT.into()],
    )
    .unwrap();
    assert_eq!(manifest.status, 200);
    wait_until(
        "the image's blobs to reach the cache",
        Duration::from_secs(30),
        || check_cache(proxy.root()).unwrap() == blobs,
    )
    .unwrap();
    let layer = &image.layers[0];
    let blob = get(
        &format!("{}/v2/bay/prefetch/blobs/{}", proxy.url(), layer.digest),
        &[],
    )
    .unwrap();
    assert_eq!(Digest::sha256_of(&blob.body).as_str(), layer.digest);
    assert!(
        blob.headers
            .to_ascii_lowercase()
            .contains("x-bay-source: cache"),
        "{}",
        blob.headers
    );
    let gets = registry.blob_gets().unwrap();
    assert!(gets.values().all(|n| *n == 1), "{gets:?}");
}
