//! The client against the real registry (Debian docker-registry, CNCF
//! distribution) on loopback: over plain HTTP and over TLS with a CA the
//! test makes. It checks the API root, a monolithic blob upload (POST, then
//! PUT with `?digest=`), HEAD and GET of that blob, keep-alive over TLS, and
//! that a server signed by a CA the client does not trust fails with an
//! error that says so. Every test runs on both monoio drivers.

// A test that unwraps fails loudly, which is what a test should do.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use bay_httpd::client::{Body, Client, ClientConfig, Error, PlainHttp, Request, Url};
use bay_testkit::content::digest_of as digest;
use bay_testkit::drivers::{on_both_drivers, Driver};
use bay_testkit::registry::RegistryOptions;
use bytes::Bytes;

struct Registry {
    _registry: bay_testkit::registry::Registry,
    base: String,
    ca_file: Option<PathBuf>,
}

impl Registry {
    fn start(tls: bool) -> Registry {
        let options = match tls {
            // A DNS name, so SNI and name checks are exercised.
            true => RegistryOptions::tls(&["localhost"]),
            false => RegistryOptions::plain(),
        };
        let registry = bay_testkit::registry::Registry::start(options).unwrap();
        let port = registry.port();
        let (ca_file, base) = match registry.tls() {
            Some(tls) => (
                Some(tls.ca.cert().to_owned()),
                format!("https://localhost:{port}"),
            ),
            None => (None, format!("http://127.0.0.1:{port}")),
        };
        Registry {
            _registry: registry,
            base,
            ca_file,
        }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base)).unwrap()
    }

    fn client(&self) -> Client {
        Client::new(ClientConfig {
            plain_http: PlainHttp::Any,
            extra_ca_file: self.ca_file.clone(),
            connect_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        })
        .unwrap()
    }
}

fn blob(seed: u8) -> Bytes {
    bay_testkit::content::bytes(1_500_000, seed.into()).into()
}

/// Runs the registry conversation the proxy depends on.
async fn exercise(registry_url: impl Fn(&str) -> Url, client: &Client, seed: u8, driver: Driver) {
    let r = client
        .send(Request::get(registry_url("/v2/")))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{driver}");
    assert_eq!(
        r.header("docker-distribution-api-version").unwrap(),
        "registry/2.0"
    );
    assert_eq!(&r.bytes(1000).await.unwrap()[..], b"{}");

    let data = blob(seed);
    let digest = digest(&data);
    let start = client
        .send(Request::new(
            "POST",
            registry_url("/v2/bay/test/blobs/uploads/"),
        ))
        .await
        .unwrap();
    assert_eq!(start.status(), 202, "{driver}");
    assert!(start.connection_reused(), "{driver}: keep-alive");
    let location = std::str::from_utf8(start.header("location").unwrap())
        .unwrap()
        .to_owned();
    start.bytes(10_000).await.unwrap();
    let upload = start_url(&registry_url("/"), &location, &digest);
    let put = Request::new("PUT", upload)
        .header("Content-Type", "application/octet-stream")
        .body(Body::Bytes(data.clone()));
    let done = client.send(put).await.unwrap();
    assert_eq!(done.status(), 201, "{driver}");
    assert_eq!(
        done.header("docker-content-digest").unwrap(),
        digest.as_str()
    );
    done.bytes(10_000).await.unwrap();

    let blob_url = registry_url(&format!("/v2/bay/test/blobs/{digest}"));
    let head = client.send(Request::head(blob_url.clone())).await.unwrap();
    assert_eq!(head.status(), 200, "{driver}");
    assert_eq!(
        head.header("content-length").unwrap(),
        data.len().to_string().as_str()
    );
    assert_eq!(head.content_length(), Some(0), "HEAD has no body");
    let mut get = client.send(Request::get(blob_url)).await.unwrap();
    assert_eq!(get.status(), 200, "{driver}");
    assert!(get.connection_reused(), "{driver}: keep-alive");
    let mut got = Vec::new();
    while let Some(piece) = get.chunk().await.unwrap() {
        got.extend_from_slice(&piece);
    }
    assert!(got == data, "{driver}: blob differs");
}

/// The upload URL from a Location, with the digest added to its query.
fn start_url(base: &Url, location: &str, digest: &str) -> Url {
    let upload = base.join(location).unwrap();
    let sep = if upload.target().contains('?') {
        '&'
    } else {
        '?'
    };
    base.join(&format!("{}{sep}digest={digest}", upload.target()))
        .unwrap()
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry: scripts/test.sh runs it"
)]
fn registry_over_plain_http() {
    let registry = Registry::start(false);
    on_both_drivers(|driver| {
        let client = registry.client();
        let base = registry.base.clone();
        async move {
            let url = |p: &str| Url::parse(&format!("{base}{p}")).unwrap();
            exercise(url, &client, 1, driver).await;
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry: scripts/test.sh runs it"
)]
fn registry_over_tls_with_a_test_ca() {
    let registry = Registry::start(true);
    on_both_drivers(|driver| {
        let client = registry.client();
        let base = registry.base.clone();
        async move {
            let url = |p: &str| Url::parse(&format!("{base}{p}")).unwrap();
            exercise(url, &client, 2, driver).await;
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry: scripts/test.sh runs it"
)]
fn tls_with_an_unknown_ca_fails_clearly() {
    let registry = Registry::start(true);
    on_both_drivers(|driver| {
        let url = registry.url("/v2/");
        async move {
            // System roots only: the test CA is unknown.
            let client = Client::new(ClientConfig::default()).unwrap();
            let err = client.send(Request::get(url)).await.unwrap_err();
            assert!(matches!(err, Error::Tls { .. }), "{driver}: {err:?}");
            assert!(err.is_connect());
            let text = err.to_string();
            assert!(
                text.contains("TLS handshake with https://localhost:"),
                "{text}"
            );
            assert!(text.contains("unknown CA"), "{text}");
        }
    });
}

#[test]
fn tls_ca_file_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let err = Client::new(ClientConfig {
        extra_ca_file: Some(missing),
        ..ClientConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = Client::new(ClientConfig {
        extra_ca_file: Some(empty),
        ..ClientConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}
