//! The registry client against the real registry over TLS with a test CA,
//! under both monoio drivers: trusted through the extra CA file it works;
//! with a CA that did not sign the server's certificate it fails clearly.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_core::registry::{Auth, Registries, RegistryConfig, RegistryError};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::registry::{Registry, RegistryOptions};
use bay_testkit::tls::TestCa;
use bay_wire::oci::{Digest, Reference, RepositoryName};

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry and curl: scripts/test.sh runs it"
)]
fn tls_with_a_test_ca() {
    let registry = Registry::start(RegistryOptions::tls(&[])).unwrap();
    let ca = registry.tls().unwrap().ca.cert().to_owned();
    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = TestCa::create_named(other_dir.path(), "other-ca").unwrap();
    let name = registry.host();
    // curl trusts the registry's CA (--cacert) for the push.
    let data = bay_testkit::content::bytes(300_000, 3);
    let digest = registry.push_blob_bytes("bay/tls", &data).unwrap();
    let digest = Digest::parse(&digest).unwrap();
    let repo = RepositoryName::parse("bay/tls").unwrap();

    on_both_drivers(|driver| {
        let (ca, other_ca, name, data, digest, repo) =
            (&ca, &other_ca, name.clone(), &data, &digest, &repo);
        async move {
            let trusted = RegistryConfig {
                extra_ca_file: Some(ca.clone()),
                ..RegistryConfig::default()
            };
            let client = bay_core::registry::RegistryClient::new(&name, trusted).unwrap();
            assert_eq!(
                client.upstream().base().to_string(),
                format!("https://{name}/v2/")
            );
            let mut sink = Vec::new();
            let len = client
                .fetch_blob_verified(repo, digest, &Auth::Anonymous, &mut sink)
                .await
                .unwrap();
            assert_eq!(len, data.len() as u64, "{driver}");
            assert!(&sink == data);
            let err = client
                .get_manifest(
                    repo,
                    &Reference::parse("none").unwrap(),
                    &[],
                    &Auth::Anonymous,
                )
                .await
                .unwrap_err();
            assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");

            // A CA that did not sign the server's certificate.
            let other = RegistryConfig {
                extra_ca_file: Some(other_ca.cert().to_owned()),
                ..RegistryConfig::default()
            };
            let registries = Registries::new(other).unwrap();
            let http = registries.http_client();
            let client = registries.client(&name, &http).unwrap();
            let err = client
                .head_blob(repo, digest, &Auth::Anonymous)
                .await
                .unwrap_err();
            assert!(matches!(err, RegistryError::Tls { .. }), "{driver}: {err}");
            let message = err.to_string();
            assert!(message.contains("unknown CA"), "{message}");
            assert!(message.contains(&name), "{message}");
            assert!(err.should_fall_back());
        }
    });
}

#[test]
fn missing_ca_file_is_a_setup_error() {
    let config = RegistryConfig {
        extra_ca_file: Some("/nonexistent/bay-ca.pem".into()),
        ..RegistryConfig::default()
    };
    let err = Registries::new(config).unwrap_err();
    assert!(matches!(err, RegistryError::TlsSetup(_)), "{err}");
    assert!(err.to_string().contains("/nonexistent/bay-ca.pem"), "{err}");
}
