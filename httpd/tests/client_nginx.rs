//! The client against a real nginx (Debian nginx-light) started on loopback
//! with its own prefix: Content-Length and chunked bodies, keep-alive reuse
//! as nginx itself counts it, redirects within and across origins. Every
//! test runs on both monoio drivers.

// A test that unwraps fails loudly, which is what a test should do.
#![allow(clippy::unwrap_used)]

mod client_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bay_httpd::client::{Body, Error, Framing, Request, Url};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::nginx::NginxRoot;
use bay_testkit::process::{free_port, wait_until};
use bay_testkit::tls::TestCa;
use bytes::Bytes;
use client_common::{plain_client, read_body};

struct Nginx {
    nginx: bay_testkit::nginx::Nginx,
    ca: PathBuf,
    main: SocketAddr,
    other: SocketAddr,
    tls: SocketAddr,
}

impl Nginx {
    fn start() -> Nginx {
        let root = NginxRoot::new().unwrap();
        let loopback = || SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
        let (main, other, tls) = (loopback(), loopback(), loopback());
        let ca = TestCa::create(root.path()).unwrap();
        let server = ca
            .issue_server("server", &[], &["localhost".to_owned()])
            .unwrap();
        root.write("www/big.bin", &big_file()).unwrap();
        root.write("www/sub/data.txt", "aXXb".repeat(50_000).as_bytes())
            .unwrap();
        let d = root.path().display();
        let (cert, key) = (server.cert.display(), server.key.display());
        let servers = format!(
            r#"
    log_format conn '$request_method $request_uri $status $connection $connection_requests';
    access_log {d}/access.log conn;
    sendfile on;
    keepalive_timeout 60;
    server {{
        listen {main};
        root {d}/www;
        location = /hello {{ return 200 "hello from nginx"; }}
        location /sub/ {{
            # Rewriting the body drops Content-Length: nginx chunks it.
            sub_filter 'XX' 'yy';
            sub_filter_once off;
            sub_filter_types *;
        }}
        location = /to-other {{ return 302 http://{other}/auth; }}
        location = /to-same {{ return 302 /auth; }}
        location = /auth {{ return 200 "auth=$http_authorization"; }}
        location = /see-other {{ return 303 /method; }}
        location = /method {{ return 200 "$request_method"; }}
        location = /loop {{ return 302 /loop; }}
    }}
    server {{
        listen {other};
        location = /auth {{ return 200 "auth=$http_authorization"; }}
    }}
    server {{
        listen {tls} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {d}/www;
    }}
"#
        );
        let nginx = root.start(&servers, &[main, other, tls]).unwrap();
        Nginx {
            nginx,
            ca: ca.cert().to_owned(),
            main,
            other,
            tls,
        }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.main)).unwrap()
    }

    /// Access-log lines whose request URI is `uri`, waiting (bounded) until
    /// there are `count` of them: nginx logs just after the response.
    fn log_lines(&self, uri: &str, count: usize) -> Vec<Vec<String>> {
        let path = self.nginx.log_path("access.log");
        // A shortfall is left to the caller's assertion, which shows the lines.
        let _ = wait_until("nginx's access log", Duration::from_secs(10), || {
            read_log(&path, uri).len() >= count
        });
        read_log(&path, uri)
    }
}

fn read_log(path: &Path, uri: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').map(String::from).collect::<Vec<_>>())
        .filter(|f| f.get(1).is_some_and(|u| u == uri))
        .collect()
}

fn big_file() -> Vec<u8> {
    (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn content_length_body_streams_in_pieces() {
    let nginx = Nginx::start();
    on_both_drivers(|driver| {
        let url = nginx.url("/big.bin");
        async move {
            let client = plain_client();
            let mut r = client.send(Request::get(url)).await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.framing(), Framing::Length(3_000_000), "{driver}");
            let mut pieces = 0;
            let mut all = Vec::new();
            while let Some(piece) = r.chunk().await.unwrap() {
                assert!(piece.len() <= client.config().read_size, "{driver}");
                pieces += 1;
                all.extend_from_slice(&piece);
            }
            assert!(pieces > 1, "{driver}: body came in one piece");
            assert!(all == big_file(), "{driver}: body differs");
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn chunked_body_from_nginx() {
    let nginx = Nginx::start();
    on_both_drivers(|driver| {
        let url = nginx.url("/sub/data.txt");
        async move {
            let client = plain_client();
            for _ in 0..2 {
                let mut r = client.send(Request::get(url.clone())).await.unwrap();
                assert_eq!(r.framing(), Framing::Chunked, "{driver}");
                let body = read_body(&mut r).await;
                assert!(body == "ayyb".repeat(50_000).as_bytes(), "{driver}");
            }
            assert_eq!(client.idle_connections(url.origin()), 1, "{driver}");
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn keep_alive_reuses_one_connection_as_nginx_counts_it() {
    let nginx = Nginx::start();
    on_both_drivers(|driver| {
        let uri = format!("/hello?{driver}");
        let url = nginx.url(&uri);
        let head_url = nginx.url("/big.bin");
        async move {
            let client = plain_client();
            for i in 0..3 {
                let r = client.send(Request::get(url.clone())).await.unwrap();
                assert_eq!(r.connection_reused(), i > 0, "{driver} request {i}");
                assert_eq!(&r.bytes(100).await.unwrap()[..], b"hello from nginx");
            }
            // HEAD has no body on the wire; the connection stays usable.
            let r = client.send(Request::head(head_url)).await.unwrap();
            assert!(r.connection_reused());
            assert_eq!(r.header("content-length").unwrap(), "3000000");
        }
    });
    for driver in bay_testkit::drivers::available() {
        let lines = nginx.log_lines(&format!("/hello?{driver}"), 3);
        assert_eq!(lines.len(), 3, "{driver}: {lines:?}");
        let connections: Vec<&str> = lines.iter().map(|l| l[3].as_str()).collect();
        let requests: Vec<&str> = lines.iter().map(|l| l[4].as_str()).collect();
        assert!(
            connections.iter().all(|c| *c == connections[0]),
            "{driver}: {lines:?}"
        );
        assert_eq!(requests, ["1", "2", "3"], "{driver}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn redirect_across_origins_drops_authorization() {
    let nginx = Nginx::start();
    on_both_drivers(|driver| {
        let url = nginx.url("/to-other");
        let other = nginx.other;
        async move {
            let r = plain_client()
                .send(Request::get(url).header("Authorization", "Bearer secret"))
                .await
                .unwrap();
            assert_eq!(r.url().port(), other.port(), "{driver}");
            assert_eq!(&r.bytes(100).await.unwrap()[..], b"auth=", "{driver}");
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn redirect_within_origin_keeps_authorization() {
    let nginx = Nginx::start();
    on_both_drivers(|driver| {
        let url = nginx.url("/to-same");
        async move {
            let r = plain_client()
                .send(Request::get(url).header("Authorization", "Bearer secret"))
                .await
                .unwrap();
            assert_eq!(r.url().path(), "/auth", "{driver}");
            assert_eq!(
                &r.bytes(100).await.unwrap()[..],
                b"auth=Bearer secret",
                "{driver}"
            );
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn see_other_turns_post_into_get() {
    let nginx = Nginx::start();
    on_both_drivers(|driver| {
        let url = nginx.url("/see-other");
        async move {
            let request = Request::new("POST", url)
                .header("Content-Type", "text/plain")
                .body(Body::Bytes(Bytes::from_static(b"payload")));
            let r = plain_client().send(request).await.unwrap();
            assert_eq!(&r.bytes(100).await.unwrap()[..], b"GET", "{driver}");
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn redirect_limit_and_opt_out() {
    let nginx = Nginx::start();
    on_both_drivers(|driver| {
        let looping = nginx.url("/loop");
        let once = nginx.url("/to-other");
        let other = nginx.other;
        async move {
            let client = plain_client();
            let err = client.send(Request::get(looping)).await.unwrap_err();
            assert!(
                matches!(err, Error::TooManyRedirects { limit: 5, .. }),
                "{driver}: {err}"
            );
            let r = client
                .send(Request::get(once).follow_redirects(false))
                .await
                .unwrap();
            assert_eq!(r.status(), 302, "{driver}");
            let location = format!("http://{other}/auth");
            assert_eq!(r.header("location").unwrap(), location.as_str());
        }
    });
}

/// Download speed of one large body, plain and TLS, on each driver; the
/// client reads piece by piece and drops each piece, as a relay would.
/// Run: `cargo test --release -p bay-httpd --test client_nginx -- --ignored --nocapture`
#[test]
#[ignore = "measurement, not a check"]
fn throughput_of_one_large_body() {
    const SIZE: u64 = 1 << 30;
    let nginx = Nginx::start();
    // Sparse: the page cache serves zeros without touching the disk.
    let file = std::fs::File::create(nginx.nginx.root().join("www/large.bin")).unwrap();
    file.set_len(SIZE).unwrap();
    let plain = nginx.url("/large.bin");
    let tls = Url::parse(&format!("https://localhost:{}/large.bin", nginx.tls.port())).unwrap();
    let ca = nginx.ca.clone();
    for url in [&plain, &tls] {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{speed_download}",
                "--cacert",
            ])
            .arg(&ca)
            .arg(url.to_string())
            .output()
            .unwrap();
        let speed: f64 = String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0.0);
        println!(
            "curl {}: {:.0} MiB/s",
            url.scheme().as_str(),
            speed / (1 << 20) as f64
        );
    }
    on_both_drivers(|driver| {
        let (plain, tls, ca) = (plain.clone(), tls.clone(), ca.clone());
        async move {
            let client = bay_httpd::client::Client::new(bay_httpd::client::ClientConfig {
                plain_http: bay_httpd::client::PlainHttp::Any,
                extra_ca_file: Some(ca),
                ..Default::default()
            })
            .unwrap();
            for url in [plain, tls] {
                let started = Instant::now();
                let mut r = client.send(Request::get(url.clone())).await.unwrap();
                let mut total = 0u64;
                while let Some(piece) = r.chunk().await.unwrap() {
                    total += piece.len() as u64;
                }
                assert_eq!(total, SIZE);
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "{driver} {}: {} MiB in {secs:.2} s = {:.0} MiB/s",
                    url.scheme().as_str(),
                    SIZE >> 20,
                    (SIZE >> 20) as f64 / secs
                );
            }
        }
    });
}
