//! End to end with a private registry: HTTPS with a test CA (the proxy and
//! tracker trust it through `--ca-file`) and htpasswd, or bearer tokens
//! from a token server the client talks to directly.
//!
//! A client with credentials pulls through bay; a client without them, or
//! with wrong ones, asking for a layer bay has cached gets the registry's
//! own 401 and none of the layer's bytes.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_tests::bay::{get, metric, Cluster, Fetched, Upstreams};
use bay_tests::clients::skopeo;
use bay_tests::clients::Access;
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::registry::{Credentials, Registry, RegistryOptions};
use bay_tests::token::{basic_authorization, TokenServer};
use sha2::{Digest as _, Sha256};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn blob_url(proxy: &str, repo: &str, digest: &str) -> String {
    format!("{proxy}/v2/{repo}/blobs/{digest}")
}

/// The answer is a refusal carrying the registry's challenge, not the blob.
fn assert_refused(r: &Fetched, scheme: &str, layer_size: u64) {
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    let headers = r.headers.to_ascii_lowercase();
    assert!(
        headers.contains(&format!(
            "www-authenticate: {}",
            scheme.to_ascii_lowercase()
        )),
        "no {scheme} challenge: {}",
        r.headers
    );
    assert!((r.body.len() as u64) < layer_size);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn tls_and_htpasswd_credentials_pull_and_no_credentials_are_refused() {
    let creds = Credentials::new("alice", "pw-for-bay-e2e");
    let registry = Registry::start(RegistryOptions::tls(&[]).with_auth(creds.clone())).unwrap();
    let image = TestImage::build(&ImageSpec::small(70)).unwrap();
    image.push(&registry, "bay/private").unwrap();
    let upstreams = Upstreams::fixed(&registry);
    assert!(upstreams.ca_file.is_some() && upstreams.insecure.is_empty());
    let cluster = Cluster::start(&upstreams, 1, 1).unwrap();
    let proxy = cluster.proxies[0].url();

    let access = Access {
        plain_http: true,
        creds: Some(creds.clone()),
        ..Access::default()
    };
    let reference = format!("{}/bay/private:{}", cluster.proxies[0].addr(), image.tag);
    let pulled = skopeo::pull(&reference, &access).unwrap();
    image.check(&pulled).unwrap();
    let served = registry.blob_bytes_served().unwrap();
    for layer in &image.layers {
        assert_eq!(served.get(&layer.digest), Some(&layer.size), "{served:?}");
    }

    // Every layer is cached now. Without credentials, or with wrong ones,
    // the registry's 401 comes back and no byte of the layer.
    let layer = &image.layers[2];
    let url = blob_url(&proxy, "bay/private", &layer.digest);
    assert_refused(&get(&url, &[]).unwrap(), "Basic", layer.size);
    let wrong = basic_authorization(&Credentials::new("alice", "not-the-password"));
    assert_refused(
        &get(&url, &[format!("Authorization: {wrong}")]).unwrap(),
        "Basic",
        layer.size,
    );

    // With them, the cache answers.
    let hits = metric(&proxy, "bay_proxy_cache_hits_total").unwrap();
    let right = basic_authorization(&creds);
    let r = get(&url, &[format!("Authorization: {right}")]).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sha256(&r.body), layer.digest);
    assert_eq!(
        metric(&proxy, "bay_proxy_cache_hits_total").unwrap(),
        hits + 1
    );
    assert_eq!(registry.blob_bytes_served().unwrap(), served);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl, skopeo and bay's binaries: scripts/test.sh runs it"
)]
fn token_auth_works_through_the_proxy() {
    let creds = Credentials::new("tok-user", "pw-for-token-e2e");
    let tokens = TokenServer::start(creds.clone()).unwrap();
    let registry = Registry::start(RegistryOptions::plain().with_token(&tokens)).unwrap();
    let image = TestImage::build(&ImageSpec::small(71)).unwrap();
    image.push(&registry, "bay/tok").unwrap();
    let cluster = Cluster::start(&Upstreams::fixed(&registry), 1, 1).unwrap();
    let proxy = cluster.proxies[0].url();

    // skopeo gets the registry's challenge through the proxy, fetches a
    // token from the realm itself, and presents it to the proxy.
    let access = Access {
        plain_http: true,
        creds: Some(creds.clone()),
        ..Access::default()
    };
    let reference = format!("{}/bay/tok:{}", cluster.proxies[0].addr(), image.tag);
    let pulled = skopeo::pull(&reference, &access).unwrap();
    image.check(&pulled).unwrap();
    assert!(
        tokens
            .requests()
            .iter()
            .any(|t| t.user.as_deref() == Some("tok-user")),
        "the client fetched its token from the realm"
    );
    let served = registry.blob_bytes_served().unwrap();
    for layer in &image.layers {
        assert_eq!(served.get(&layer.digest), Some(&layer.size), "{served:?}");
    }
    assert!(metric(&proxy, "bay_proxy_swarm_reads_total").unwrap() >= 3);

    // A cached layer without a token: the registry's Bearer challenge.
    let layer = &image.layers[0];
    let url = blob_url(&proxy, "bay/tok", &layer.digest);
    assert_refused(&get(&url, &[]).unwrap(), "Bearer", layer.size);

    // A second pull with the token dance again is answered from the cache.
    let pulled = skopeo::pull(&reference, &access).unwrap();
    image.check(&pulled).unwrap();
    assert_eq!(registry.blob_bytes_served().unwrap(), served);
}
