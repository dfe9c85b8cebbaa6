//! The registry client against the real registry with htpasswd auth,
//! under both monoio drivers: a relayed Basic header works, a wrong
//! password is refused, no credentials get the registry's challenge back;
//! with Basic credentials the client answers the Basic challenge itself.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_core::registry::{Auth, BasicCredentials, Registries, RegistryConfig, RegistryError};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::registry::{Credentials, Registry, RegistryOptions};
use bay_wire::oci::{Digest, RepositoryName};

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, htpasswd and curl: scripts/test.sh runs it"
)]
fn htpasswd_auth() {
    let alice = Credentials::new("alice", "s3cret-pw");
    let registry = Registry::start(RegistryOptions::plain().with_auth(alice)).unwrap();
    // The registry's own credentials go with the push.
    let image = registry.push_image("bay/private", 100_000, 7).unwrap();
    let layer_digest = Digest::parse(&image.layer_digest).unwrap();
    let name = registry.host();
    let repo = RepositoryName::parse("bay/private").unwrap();
    let config = RegistryConfig {
        insecure: vec![name.clone()],
        ..RegistryConfig::default()
    };

    on_both_drivers(|driver| {
        let (image, repo, config, name) = (&image, &repo, config.clone(), name.clone());
        let layer_digest = &layer_digest;
        async move {
            let registries = Registries::new(config).unwrap();
            let http = registries.http_client();
            let client = registries.client(&name, &http).unwrap();
            let digest = layer_digest;

            // The proxy's case: the client's own header, verbatim.
            let good = BasicCredentials::new("alice", "s3cret-pw").header_value();
            let relayed = Auth::from_header(Some(&good));
            let head = client.head_blob(repo, digest, &relayed).await.unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64), "{driver}");
            let mut sink = Vec::new();
            client
                .fetch_blob_verified(repo, digest, &relayed, &mut sink)
                .await
                .unwrap();
            assert!(sink == image.layer);

            // A wrong password, relayed: 401 with the challenge.
            let bad = BasicCredentials::new("alice", "wrong").header_value();
            let err = client
                .head_blob(repo, digest, &Auth::from_header(Some(&bad)))
                .await
                .unwrap_err();
            assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
            assert!(!err.should_fall_back());

            // No credentials: 401 and the registry's Basic challenge.
            let err = client
                .head_blob(repo, digest, &Auth::Anonymous)
                .await
                .unwrap_err();
            let RegistryError::Unauthorized { challenge, .. } = &err else {
                panic!("{driver}: {err}");
            };
            let challenge = challenge.as_deref().unwrap_or_default();
            assert!(challenge.starts_with("Basic "), "{challenge}");
            assert!(challenge.contains("bay-test"), "{challenge}");

            // The seeder's case: the client answers the Basic challenge.
            let basic = Auth::basic("alice", "s3cret-pw");
            let got = client.get_blob(repo, digest, None, &basic).await.unwrap();
            assert_eq!(got.status(), 200);
            drop(got);
            let err = client
                .head_blob(repo, digest, &Auth::basic("alice", "nope"))
                .await
                .unwrap_err();
            assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

            // Access answers follow the credentials, and are kept.
            assert!(client.check_access(repo, digest, &relayed).await.unwrap());
            assert!(!client
                .check_access(repo, digest, &Auth::Anonymous)
                .await
                .unwrap());
            assert!(!client
                .check_access(repo, digest, &Auth::from_header(Some(&bad)))
                .await
                .unwrap());
        }
    });
}
