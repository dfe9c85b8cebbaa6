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
use bytes::Bytes;
use client_common::{free_port, on_both_drivers, plain_client, read_body, spawn, KillOnDrop};

struct Nginx {
    _dir: tempfile::TempDir,
    _child: KillOnDrop,
    root: PathBuf,
    main: SocketAddr,
    other: SocketAddr,
    tls: SocketAddr,
}

impl Nginx {
    fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let main: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let other: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        client_common::make_ca(&root);
        std::fs::create_dir_all(root.join("www/sub")).unwrap();
        std::fs::write(root.join("www/big.bin"), big_file()).unwrap();
        std::fs::write(root.join("www/sub/data.txt"), "aXXb".repeat(50_000)).unwrap();
        let d = root.display();
        let conf = format!(
            r#"
master_process off;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    log_format conn '$request_method $request_uri $status $connection $connection_requests';
    access_log {d}/access.log conn;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
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
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        root {d}/www;
    }}
}}
"#
        );
        std::fs::write(root.join("nginx.conf"), conf).unwrap();
        let conf_path = root.join("nginx.conf");
        let args = [
            "-p",
            &*d.to_string(),
            "-e",
            &*root.join("error.log").display().to_string(),
            "-c",
            &*conf_path.display().to_string(),
        ]
        .map(String::from);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
        let program = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let mut child = spawn(program, &args, &root.join("nginx.out"));
        for addr in [main, other, tls] {
            client_common::wait_for_listener(addr, Duration::from_secs(20), "nginx", &mut child.0);
        }
        Nginx {
            _dir: dir,
            _child: child,
            root,
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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = read_log(&self.root.join("access.log"), uri);
            if lines.len() >= count || Instant::now() > deadline {
                return lines;
            }
            // Polling interval while nginx writes its log.
            std::thread::sleep(Duration::from_millis(20));
        }
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
    for driver in ["legacy", "io_uring"] {
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
    let file = std::fs::File::create(nginx.root.join("www/large.bin")).unwrap();
    file.set_len(SIZE).unwrap();
    let plain = nginx.url("/large.bin");
    let tls = Url::parse(&format!("https://localhost:{}/large.bin", nginx.tls.port())).unwrap();
    let ca = nginx.root.join("ca.pem");
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
