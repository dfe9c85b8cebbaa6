//! The registry client against the real registry over TLS with a test CA,
//! under both monoio drivers: trusted through the extra CA file it works;
//! with a CA that did not sign the server's certificate it fails clearly.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

mod registry_support;

use bay_core::registry::{Auth, Registries, RegistryConfig, RegistryError};
use bay_wire::oci::{Reference, RepositoryName};
use registry_support::{make_tls, on_both_drivers, push_blob, start_registry, RegistryAuth};

#[test]
fn tls_with_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls = make_tls(dir.path());
    let storage = dir.path().join("storage");
    let registry = start_registry(dir.path(), &storage, Some(&tls), &RegistryAuth::None);
    let name = format!("127.0.0.1:{}", registry.port);
    let base = format!("https://{name}");
    let data = registry_support::blob(300_000, 3);
    let digest = push_blob(
        &base,
        "bay/tls",
        &data,
        &["--cacert", tls.ca.to_str().unwrap()],
    );
    let repo = RepositoryName::parse("bay/tls").unwrap();

    on_both_drivers(|driver| {
        let (tls, name, data, digest, repo) = (&tls, name.clone(), &data, &digest, &repo);
        async move {
            let trusted = RegistryConfig {
                extra_ca_file: Some(tls.ca.clone()),
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
                extra_ca_file: Some(tls.other_ca.clone()),
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
