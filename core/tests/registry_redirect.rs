//! Redirects, end to end under both monoio drivers: a front server (nginx)
//! answers blob reads with 307 to another port, where a second nginx
//! server refuses any request carrying `Authorization` and proxies the rest
//! to the real registry. The client's credentials reach the first host and
//! never the second; a same-origin hop keeps them. Also: a redirect loop,
//! an error page and wrong content, none of which is taken for the blob.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::net::SocketAddr;
use std::time::Duration;

use bay_core::registry::{Auth, BasicCredentials, Registries, RegistryConfig, RegistryError};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::nginx::NginxRoot;
use bay_testkit::process::{free_port, wait_until};
use bay_testkit::registry::{Registry, RegistryOptions};
use bay_wire::oci::{Digest, RepositoryName};

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, nginx and curl: scripts/test.sh runs it"
)]
fn redirects_drop_credentials_across_hosts() {
    let registry = Registry::start(RegistryOptions::plain()).unwrap();
    let image = registry.push_image("bay/redir", 1 << 20, 5).unwrap();
    let layer_digest = Digest::parse(&image.layer_digest).unwrap();
    let (front, store) = (free_port().unwrap(), free_port().unwrap());
    let root = NginxRoot::new().unwrap();
    let dir = root.path().display();
    let servers = format!(
        "log_format auth '$server_port $request_method $request_uri auth=\"$http_authorization\"';\n\
         server {{\n  listen 127.0.0.1:{front};\n  access_log {dir}/front.log auth;\n\
         location ~ ^/v2/same/(.*)$ {{ return 307 /v2/bay/redir/$1; }}\n\
         location ~ ^/v2/loop/ {{ return 307 $request_uri; }}\n\
         location ~ ^/v2/bad/blobs/ {{ return 200 'not the blob you asked for'; }}\n\
         location ~ ^/v2/err/blobs/ {{ return 500 'registry error page'; }}\n\
         location ~ /blobs/ {{ return 307 http://127.0.0.1:{store}$request_uri; }}\n\
         location / {{ proxy_pass http://127.0.0.1:{reg}; }}\n}}\n\
         server {{\n  listen 127.0.0.1:{store};\n  access_log {dir}/store.log auth;\n\
         location / {{\n    if ($http_authorization) {{ return 403; }}\n\
         proxy_pass http://127.0.0.1:{reg};\n    proxy_buffering off;\n  }}\n}}\n",
        reg = registry.port()
    );
    let listen = [front, store].map(|port| SocketAddr::from(([127, 0, 0, 1], port)));
    let nginx = root.start(&servers, &listen).unwrap();
    let front_log = nginx.log_path("front.log");
    let store_log = nginx.log_path("store.log");
    let name = format!("127.0.0.1:{front}");
    let config = RegistryConfig {
        insecure: vec![name.clone(), format!("127.0.0.1:{store}")],
        ..RegistryConfig::default()
    };
    let creds = BasicCredentials::new("carol", "redirect-pw").header_value();
    let relayed = Auth::from_header(Some(&creds));
    let creds_text = String::from_utf8(creds.clone()).unwrap();

    on_both_drivers(|driver| {
        let (image, config, name, relayed) = (&image, config.clone(), name.clone(), &relayed);
        let layer_digest = &layer_digest;
        let (front_log, store_log, creds_text) = (&front_log, &store_log, &creds_text);
        async move {
            let registries = Registries::new(config).unwrap();
            let http = registries.http_client();
            let client = registries.client(&name, &http).unwrap();
            let repo = RepositoryName::parse("bay/redir").unwrap();
            let digest = layer_digest;

            let mut blob = client.get_blob(&repo, digest, None, relayed).await.unwrap();
            assert_eq!(blob.status(), 200, "{driver}");
            let mut got = Vec::new();
            while let Some(piece) = blob.chunk().await.unwrap() {
                got.extend_from_slice(&piece);
            }
            assert!(got == image.layer, "{driver}: redirected blob differs");

            let mut sink = Vec::new();
            client
                .fetch_blob_verified(&repo, digest, relayed, &mut sink)
                .await
                .unwrap();
            assert!(sink == image.layer);

            // A same-origin hop first (credentials kept), then the cross-host one.
            let same = RepositoryName::parse("same").unwrap();
            let mut sink = Vec::new();
            client
                .fetch_blob_verified(&same, digest, relayed, &mut sink)
                .await
                .unwrap();
            assert!(sink == image.layer);

            let path = format!("/v2/bay/redir/blobs/{digest}");
            wait_until("nginx logs", Duration::from_secs(10), || {
                let front = std::fs::read_to_string(front_log).unwrap_or_default();
                let store = std::fs::read_to_string(store_log).unwrap_or_default();
                front.lines().filter(|l| l.contains(&path)).count() >= 3
                    && store.lines().filter(|l| l.contains(&path)).count() >= 3
            })
            .unwrap();
            let front = std::fs::read_to_string(front_log).unwrap();
            let store = std::fs::read_to_string(store_log).unwrap();
            // The first host saw the credentials on every blob request,
            // including the one after the same-origin hop.
            for line in front.lines().filter(|l| l.contains("/blobs/")) {
                assert!(line.contains(&format!("auth=\"{creds_text}\"")), "{line}");
            }
            // The second host never did.
            assert!(store.lines().any(|l| l.contains(&path)), "{store}");
            for line in store.lines() {
                // nginx writes an empty variable as "-".
                assert!(
                    line.ends_with("auth=\"-\""),
                    "{driver}: credentials leaked: {line}"
                );
                assert!(!line.contains("redirect-pw"));
            }

            // A redirect loop ends with a clear error.
            let looping = RepositoryName::parse("loop").unwrap();
            let err = client
                .get_blob(&looping, digest, None, relayed)
                .await
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::RedirectLoop { .. }),
                "{driver}: {err}"
            );
            assert!(err.to_string().contains(&name), "{err}");

            // An error page is never a blob, and says to fall back.
            let broken = RepositoryName::parse("err").unwrap();
            let mut sink = Vec::new();
            let err = client
                .fetch_blob_verified(&broken, digest, relayed, &mut sink)
                .await
                .unwrap_err();
            assert_eq!(err.status(), Some(500), "{err}");
            assert!(err.should_fall_back());
            assert!(sink.is_empty());

            // Content that does not match its digest fails after streaming.
            let bad = RepositoryName::parse("bad").unwrap();
            let mut sink = Vec::new();
            let err = client
                .fetch_blob_verified(&bad, digest, relayed, &mut sink)
                .await
                .unwrap_err();
            let RegistryError::DigestMismatch { source, .. } = &err else {
                panic!("{driver}: {err}");
            };
            assert_eq!(
                source.actual,
                Digest::sha256_of(b"not the blob you asked for")
            );
            assert!(err.should_fall_back());
        }
    });
    drop(nginx);
}
