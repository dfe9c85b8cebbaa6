//! The real registry as the harness runs it: plain HTTP, TLS with a test
//! CA, htpasswd; test images pushed with skopeo and pulled back by skopeo;
//! the log parser counts each layer's bytes once per pull.

use bay_tests::clients::{skopeo, Access};
use bay_tests::image::{ImageSpec, TestImage};
use bay_tests::registry::{Credentials, Registry, RegistryOptions};
use bay_tests::token::TokenServer;

fn assert_each_layer_served_once(registry: &Registry, image: &TestImage) {
    let served = registry.blob_bytes_served().expect("registry log");
    for layer in &image.layers {
        assert_eq!(
            served.get(&layer.digest),
            Some(&layer.size),
            "bytes of layer {} (size {}) in {served:?}",
            layer.digest,
            layer.size
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl and skopeo: scripts/test.sh runs it"
)]
fn plain_registry_serves_pushed_image_and_counts_layer_bytes() {
    let registry = Registry::start(RegistryOptions::plain()).expect("registry");
    let image = TestImage::build(&ImageSpec::small(1)).expect("image");
    image.push(&registry, "harness/plain").expect("push");
    let before = registry.blob_bytes_served().expect("log");
    assert!(
        image.layers.iter().all(|l| !before.contains_key(&l.digest)),
        "a push must not count as blob egress: {before:?}"
    );

    let pulled = skopeo::pull(
        &image.reference(&registry, "harness/plain"),
        &Access::to_registry(&registry),
    )
    .expect("skopeo pull");
    image.check(&pulled).expect("digests");
    assert_each_layer_served_once(&registry, &image);
    let gets = registry.blob_gets().expect("log");
    assert!(
        image.layers.iter().all(|l| gets.get(&l.digest) == Some(&1)),
        "{gets:?}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl and skopeo: scripts/test.sh runs it"
)]
fn tls_registry_with_htpasswd_needs_the_ca_and_the_password() {
    let creds = Credentials::new("alice", "s3cret-pw");
    let registry = Registry::start(RegistryOptions::tls(&["registry.test"]).with_auth(creds))
        .expect("registry");
    assert!(registry.url().starts_with("https://"));
    let image = TestImage::build(&ImageSpec::small(2)).expect("image");
    image.push(&registry, "harness/private").expect("push");
    let reference = image.reference(&registry, "harness/private");

    let access = Access::to_registry(&registry);
    assert!(!access.plain_http && access.cert_dir.is_some());
    let pulled = skopeo::pull(&reference, &access).expect("pull with CA and creds");
    image.check(&pulled).expect("digests");

    let anonymous = Access {
        creds: None,
        ..access.clone()
    };
    let err = skopeo::pull(&reference, &anonymous).expect_err("pull without creds must fail");
    assert!(
        err.to_string().contains("unauthorized") || err.to_string().contains("401"),
        "{err}"
    );

    let untrusted = Access {
        cert_dir: None,
        ..access
    };
    let err = skopeo::pull(&reference, &untrusted).expect_err("pull without the CA must fail");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(
        !err.to_string().contains("s3cret-pw"),
        "password leaked: {err}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl and skopeo: scripts/test.sh runs it"
)]
fn big_image_layers_leave_the_registry_once() {
    let registry = Registry::start(RegistryOptions::plain()).expect("registry");
    let image = TestImage::build(&ImageSpec::big(3)).expect("image");
    assert!(image.layers.iter().any(|l| l.size > 100 * 1024 * 1024));
    image.push(&registry, "harness/big").expect("push");
    let pulled = skopeo::pull(
        &image.reference(&registry, "harness/big"),
        &Access::to_registry(&registry),
    )
    .expect("skopeo pull");
    image.check(&pulled).expect("digests");
    assert_each_layer_served_once(&registry, &image);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl and skopeo: scripts/test.sh runs it"
)]
fn stopped_registry_restarts_with_its_content() {
    let mut registry = Registry::start(RegistryOptions::plain()).expect("registry");
    let image = TestImage::build(&ImageSpec {
        layer_sizes: vec![4096],
        seed: 4,
        tag: "one".into(),
    })
    .expect("image");
    image.push(&registry, "harness/restart").expect("push");
    let reference = image.reference(&registry, "harness/restart");
    registry.stop();
    skopeo::pull(&reference, &Access::to_registry(&registry)).expect_err("registry is down");
    registry.restart().expect("restart");
    let pulled = skopeo::pull(&reference, &Access::to_registry(&registry)).expect("pull");
    image.check(&pulled).expect("digests");
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl and skopeo: scripts/test.sh runs it"
)]
fn token_auth_registry_serves_clients_with_credentials_only() {
    let token = TokenServer::start(Credentials::new("erin", "token-pw")).expect("token server");
    let registry = Registry::start(RegistryOptions::plain().with_token(&token)).expect("registry");
    let image = TestImage::build(&ImageSpec::small(5)).expect("image");
    image
        .push(&registry, "harness/token")
        .expect("push with a token");
    let reference = image.reference(&registry, "harness/token");

    let access = Access::to_registry(&registry);
    assert!(access.creds.is_some());
    let pulled = skopeo::pull(&reference, &access).expect("pull with a token");
    image.check(&pulled).expect("digests");
    let requests = token.requests();
    assert!(
        requests.iter().any(|r| r.user.as_deref() == Some("erin")
            && r.scopes
                .iter()
                .any(|s| s == "repository:harness/token:pull")),
        "a pull token was issued to erin: {requests:?}"
    );

    let anonymous = Access {
        creds: None,
        ..access.clone()
    };
    let err = skopeo::pull(&reference, &anonymous).expect_err("an anonymous token grants nothing");
    let text = err.to_string();
    assert!(
        text.contains("unauthorized") || text.contains("denied"),
        "{text}"
    );
    let wrong = Access {
        creds: Some(Credentials::new("erin", "wrong")),
        ..access
    };
    let err = skopeo::pull(&reference, &wrong).expect_err("wrong password");
    assert!(
        !err.to_string().contains("token-pw"),
        "password leaked: {err}"
    );
    assert!(token.requests().iter().any(|r| r.rejected));
}
