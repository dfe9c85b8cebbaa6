//! The client against the real registry (Debian docker-registry, CNCF
//! distribution) on loopback: over plain HTTP and over TLS with a CA the
//! test makes. It checks the API root, a monolithic blob upload (POST, then
//! PUT with `?digest=`), HEAD and GET of that blob, keep-alive over TLS, and
//! that a server signed by a CA the client does not trust fails with an
//! error that says so. Every test runs on both monoio drivers.

// A test that unwraps fails loudly, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod client_common;

use std::path::PathBuf;
use std::time::Duration;

use bay_httpd::client::{Body, Client, ClientConfig, Error, PlainHttp, Request, Url};
use bytes::Bytes;
use client_common::{free_port, on_both_drivers, spawn, KillOnDrop};
use sha2::{Digest, Sha256};

struct Registry {
    _dir: tempfile::TempDir,
    _child: KillOnDrop,
    base: String,
    ca_file: Option<PathBuf>,
}

impl Registry {
    fn start(tls: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let (tls_block, ca_file, base) = if tls {
            let ca = client_common::make_ca(dir.path());
            let block = format!("  tls:\n    certificate: {d}/cert.pem\n    key: {d}/key.pem\n");
            // A DNS name, so SNI and name checks are exercised.
            (block, Some(ca), format!("https://localhost:{port}"))
        } else {
            (String::new(), None, format!("http://127.0.0.1:{port}"))
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: bay-test-secret\n{tls_block}"
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = spawn(
            "docker-registry",
            &["serve", &config_path.display().to_string()],
            &dir.path().join("registry.log"),
        );
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        client_common::wait_for_listener(addr, Duration::from_secs(30), "registry", &mut child.0);
        Registry {
            _dir: dir,
            _child: child,
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
    (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

fn digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Runs the registry conversation the proxy depends on.
async fn exercise(registry_url: impl Fn(&str) -> Url, client: &Client, seed: u8, driver: &str) {
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
