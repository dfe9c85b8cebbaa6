//! The registry client against the real registry (CNCF distribution) over
//! plain HTTP without auth, under both monoio drivers: blob HEAD and GET,
//! a ranged GET, the verified fetch, manifests with several Accept values,
//! and the statuses that are answers rather than blobs.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_core::registry::{
    Auth, ByteRange, ContentRange, Registries, RegistryConfig, RegistryError,
};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::process::free_port;
use bay_testkit::registry::{Registry, RegistryOptions, OCI_MANIFEST};
use bay_wire::oci::{Digest, Reference, RepositoryName};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry and curl: scripts/test.sh runs it"
)]
fn plain_http_blobs_and_manifests() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let name = registry.host();
    let image = registry.push_image("bay/plain", 3 << 20, 1).unwrap();
    let layer_digest = Digest::parse(&image.layer_digest).unwrap();
    let manifest_digest = Digest::parse(&image.manifest_digest).unwrap();
    let repo = RepositoryName::parse("bay/plain").unwrap();
    let config = RegistryConfig {
        insecure: vec![name.clone()],
        ..RegistryConfig::default()
    };

    on_both_drivers(|driver| {
        let (image, repo, config, name) = (&image, &repo, config.clone(), name.clone());
        let (layer_digest, manifest_digest) = (&layer_digest, &manifest_digest);
        async move {
            let registries = Registries::new(config).unwrap();
            let http = registries.http_client();
            let client = registries.client(&name, &http).unwrap();
            let anon = Auth::Anonymous;

            let head = client.head_blob(repo, layer_digest, &anon).await.unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64), "{driver}");
            assert_eq!(head.digest.as_ref(), Some(layer_digest));

            // Whole blob, streamed piece by piece.
            let mut blob = client
                .get_blob(repo, layer_digest, None, &anon)
                .await
                .unwrap();
            assert_eq!(blob.status(), 200);
            assert_eq!(blob.content_length(), Some(image.layer.len() as u64));
            let mut got = Vec::new();
            let mut pieces = 0;
            while let Some(piece) = blob.chunk().await.unwrap() {
                got.extend_from_slice(&piece);
                pieces += 1;
            }
            assert!(got == image.layer, "{driver}: blob bytes differ");
            assert!(pieces > 1, "the body came in one piece: not streamed");

            // One range.
            let range = ByteRange::inclusive(1000, 200_999).unwrap();
            let mut part = client
                .get_blob(repo, layer_digest, Some(range), &anon)
                .await
                .unwrap();
            assert_eq!(part.status(), 206, "{driver}");
            assert_eq!(
                part.content_range(),
                Some(ContentRange::Bytes {
                    first: 1000,
                    last: 200_999,
                    complete: Some(image.layer.len() as u64)
                })
            );
            let mut got = Vec::new();
            while let Some(piece) = part.chunk().await.unwrap() {
                got.extend_from_slice(&piece);
            }
            assert!(got[..] == image.layer[1000..201_000]);

            // Verified fetch into a sink.
            let mut sink = Vec::new();
            let len = client
                .fetch_blob_verified(repo, layer_digest, &anon, &mut sink)
                .await
                .unwrap();
            assert_eq!(len, image.layer.len() as u64);
            assert!(sink == image.layer);

            // A missing blob is an answer, not bytes: nothing reaches the sink.
            let missing = Digest::sha256_of(b"no such blob");
            let mut sink = Vec::new();
            let err = client
                .fetch_blob_verified(repo, &missing, &anon, &mut sink)
                .await
                .unwrap_err();
            assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
            assert!(!err.should_fall_back());
            assert!(sink.is_empty());
            let err = client
                .get_blob(repo, &missing, None, &anon)
                .await
                .unwrap_err();
            assert_eq!(err.status(), Some(404));
            assert!(err.to_string().contains(&name), "{err}");

            // A range past the end.
            let past = ByteRange::from(image.layer.len() as u64 + 10);
            let err = client
                .get_blob(repo, layer_digest, Some(past), &anon)
                .await
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::RangeNotSatisfiable { .. }),
                "{err}"
            );

            // Manifests: every Accept value is sent.
            let tag = Reference::parse("v1").unwrap();
            let accept = |types: &[&str]| types.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let m = client
                .get_manifest(
                    repo,
                    &tag,
                    &accept(&[DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST]),
                    &anon,
                )
                .await
                .unwrap();
            assert_eq!(m.media_type.as_deref(), Some(OCI_MANIFEST), "{driver}");
            assert_eq!(&m.digest, manifest_digest);
            assert_eq!(&m.body[..], &image.manifest[..]);
            let err = client
                .get_manifest(repo, &tag, &accept(&[DOCKER_MANIFEST, DOCKER_LIST]), &anon)
                .await
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::NotFound { .. }),
                "{driver}: {err}"
            );
            let by_digest = Reference::Digest(manifest_digest.clone());
            let m = client
                .get_manifest(repo, &by_digest, &accept(&[OCI_MANIFEST]), &anon)
                .await
                .unwrap();
            assert_eq!(&m.digest, manifest_digest);
            let h = client
                .head_manifest(repo, &tag, &accept(&[OCI_MANIFEST]), &anon)
                .await
                .unwrap();
            assert_eq!(h.digest.as_ref(), Some(manifest_digest));
            assert_eq!(h.length, Some(image.manifest.len() as u64));
            assert_eq!(h.media_type.as_deref(), Some(OCI_MANIFEST));

            // The pool kept the connection for the next request.
            let before = http.idle_connections(client.upstream().base().origin());
            assert!(before >= 1, "{driver}: no connection kept");

            // Access answers: yes for a blob that is there, no for one that
            // is not, without an error.
            assert!(client
                .check_access(repo, layer_digest, &anon)
                .await
                .unwrap());
            assert!(!client.check_access(repo, &missing, &anon).await.unwrap());
        }
    });
}

#[test]
fn https_is_the_default_and_unreachable_registries_fall_back() {
    let port = free_port().unwrap();
    on_both_drivers(|_| async move {
        let name = format!("127.0.0.1:{port}");
        // Not listed as insecure: the client speaks TLS to it.
        let registries = Registries::new(RegistryConfig::default()).unwrap();
        let http = registries.http_client();
        let client = registries.client(&name, &http).unwrap();
        assert_eq!(
            client.upstream().base().to_string(),
            format!("https://{name}/v2/")
        );
        let repo = RepositoryName::parse("a/b").unwrap();
        let err = client
            .head_blob(&repo, &Digest::sha256_of(b"x"), &Auth::Anonymous)
            .await
            .unwrap_err();
        assert!(err.should_fall_back(), "{err}");
        assert!(err.to_string().contains(&name), "{err}");
    });
}

/// An access answer is kept: once the registry said yes, the same
/// credential gets yes while the registry is down; another credential
/// gets an error that says to fall back, not a cached answer.
#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry and curl: scripts/test.sh runs it"
)]
fn access_answers_are_kept_while_the_registry_is_down() {
    on_both_drivers(|driver| async move {
        let registry = Registry::start(RegistryOptions::plain()).unwrap();
        let name = registry.host();
        let image = registry.push_image("bay/kept", 10_000, 2).unwrap();
        let layer_digest = Digest::parse(&image.layer_digest).unwrap();
        let repo = RepositoryName::parse("bay/kept").unwrap();
        let config = RegistryConfig {
            insecure: vec![name.clone()],
            ..RegistryConfig::default()
        };
        let registries = Registries::new(config).unwrap();
        let http = registries.http_client();
        let client = registries.client(&name, &http).unwrap();
        let someone = Auth::from_header(Some(b"Bearer someone"));
        assert!(client
            .check_access(&repo, &layer_digest, &someone)
            .await
            .unwrap());
        drop(registry);
        assert!(
            client
                .check_access(&repo, &layer_digest, &someone)
                .await
                .unwrap(),
            "{driver}: answer not kept"
        );
        let err = client
            .check_access(&repo, &layer_digest, &Auth::Anonymous)
            .await
            .unwrap_err();
        assert!(err.should_fall_back(), "{driver}: {err}");
    });
}

/// A registry that accepts the connection and never answers: the response
/// timeout ends the wait with an error that says to fall back.
#[test]
fn silent_registry_times_out() {
    // Connections queue in the backlog; nothing ever reads them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let name = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    on_both_drivers(|driver| {
        let name = name.clone();
        async move {
            let config = RegistryConfig {
                insecure: vec![name.clone()],
                timeouts: bay_core::registry::Timeouts {
                    response: std::time::Duration::from_millis(300),
                    ..Default::default()
                },
                ..RegistryConfig::default()
            };
            let client = bay_core::registry::RegistryClient::new(&name, config).unwrap();
            let repo = RepositoryName::parse("a/b").unwrap();
            let started = std::time::Instant::now();
            let err = client
                .get_blob(&repo, &Digest::sha256_of(b"x"), None, &Auth::Anonymous)
                .await
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::Timeout { .. }),
                "{driver}: {err}"
            );
            assert!(err.should_fall_back());
            assert!(err.to_string().contains(&name), "{err}");
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
    });
}
