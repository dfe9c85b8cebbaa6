//! Preheat: the tracker fetches an image's blobs before the deploy; the
//! pulls that follow cost the registry no further blob bytes.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::time::{Duration, Instant};

use bay_tests::bay::{get, request, Cluster, Upstreams};
use bay_tests::clients::skopeo;
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::registry::{Registry, RegistryOptions};

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn preheated_image_is_pulled_without_touching_the_registry_again() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = TestImage::build(&ImageSpec::small(77)).unwrap();
    image.push(&registry, "bay/preheat").unwrap();
    let cluster = Cluster::start(&Upstreams::fixed(&registry), 1, 2).unwrap();
    let tracker = cluster.tracker_urls().remove(0);

    let reference = format!("{}/bay/preheat:{}", registry.host(), image.tag);
    let answer = request(
        "POST",
        &format!("{tracker}/origin/v1/preheat?image={reference}&platform=linux/amd64"),
        &[],
    )
    .unwrap();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let listed: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let blobs = listed["blobs"].as_array().unwrap();
    assert_eq!(
        blobs.len(),
        image.layers.len() + 1,
        "config and every layer"
    );

    // Wait (with a deadline) until the origin holds every blob.
    let deadline = Instant::now() + Duration::from_secs(60);
    for layer in &image.layers {
        loop {
            let hashes = get(
                &format!("{tracker}/origin/v1/hashes?digest={}&from=0", layer.digest),
                &[],
            )
            .unwrap();
            if hashes.status == 200 && hashes.headers.contains("x-bay-done: 1") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "preheat of {} never finished",
                layer.digest
            );
        }
    }
    let after_preheat = registry.blob_bytes_served().unwrap();
    for layer in &image.layers {
        assert_eq!(after_preheat.get(&layer.digest).copied(), Some(layer.size));
    }

    let access = Access {
        plain_http: true,
        ..Access::default()
    };
    for proxy in &cluster.proxies {
        let pulled = skopeo::pull(
            &format!("{}/bay/preheat:{}", proxy.addr(), image.tag),
            &access,
        )
        .unwrap();
        image.check(&pulled).unwrap();
    }
    assert_eq!(
        registry.blob_bytes_served().unwrap(),
        after_preheat,
        "the pulls took no blob bytes from the registry"
    );

    // Not an allowed registry: refused, nothing fetched.
    let refused = request(
        "POST",
        &format!("{tracker}/origin/v1/preheat?image=elsewhere.test/x:1"),
        &[],
    )
    .unwrap();
    assert_eq!(refused.status, 403);
}
