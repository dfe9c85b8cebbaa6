//! The web seed against a real nginx serving a generated blob, under both
//! monoio drivers: ranges at the start, middle and end, the short last
//! piece, several pieces at once, a redirect to another port (which must
//! not carry the credentials along), a location that ignores `Range`, and
//! the errors: missing file, range past the end, a server that never
//! answers, a body cut short.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use bay_core::webseed::{PieceLayout, WebSeed, WebSeedConfig, WebSeedError};
use bay_httpd::client::{Client, ClientConfig, PlainHttp, Url};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::nginx::NginxRoot;
use bay_testkit::process::free_port;
use bay_wire::merkle;

const PIECE: u64 = 32 * 1024;
/// Seven whole pieces and a short last one.
const SIZE: usize = 7 * PIECE as usize + 5000;
const TOKEN: &str = "Bearer web-seed-test-token";

fn blob() -> Vec<u8> {
    (0..SIZE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// nginx with two servers on 127.0.0.1: the first redirects `/moved` to
/// the second and ignores `Range` under `/noranges/`; each logs the
/// `Authorization` it got.
struct Nginx {
    nginx: bay_testkit::nginx::Nginx,
    port: u16,
    other_port: u16,
}

impl Nginx {
    fn start(data: &[u8]) -> Nginx {
        let root = NginxRoot::new().expect("nginx folder");
        root.write("www/blob", data).expect("write blob");
        root.write("www/noranges/blob", data).expect("write blob");
        let (port, other_port) = (free_port().expect("port"), free_port().expect("port"));
        let d = root.path().display();
        let servers = format!(
            "log_format auth '$request_uri $http_authorization';
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
        access_log {d}/first.log auth;
        location = /moved {{ return 302 http://127.0.0.1:{other_port}/blob; }}
        location /noranges/ {{ max_ranges 0; }}
    }}
    server {{
        listen 127.0.0.1:{other_port};
        root {d}/www;
        access_log {d}/second.log auth;
    }}"
        );
        let listen = [port, other_port].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let nginx = root.start(&servers, &listen).expect("nginx starts");
        Nginx {
            nginx,
            port,
            other_port,
        }
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}{path}", self.port)).expect("url")
    }

    fn log(&self, name: &str) -> String {
        self.nginx.log(name)
    }
}

fn client() -> Client {
    Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        ..ClientConfig::default()
    })
    .expect("client")
}

fn layout() -> PieceLayout {
    PieceLayout {
        piece_length: PIECE,
        file_length: SIZE as u64,
    }
}

fn piece_hashes(data: &[u8]) -> Vec<merkle::Hash> {
    merkle::file_hashes(data, PIECE)
        .expect("piece hashes")
        .piece_layer
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn piece_ranges_come_back_exact_and_verified() {
    let data = blob();
    let hashes = piece_hashes(&data);
    let nginx = Nginx::start(&data);
    on_both_drivers(|_| async {
        let seed = WebSeed::new(client(), nginx.url("/blob")).header("Authorization", TOKEN);
        // First, middle, last whole, the short last piece, and runs of them.
        for (first, count) in [(0, 1), (3, 1), (6, 1), (7, 1), (2, 3), (5, 3), (0, 8)] {
            let range = layout().range(first, count).expect("range");
            let bytes = seed.read(range.clone()).await.expect("read");
            assert_eq!(&bytes[..], &data[range.start as usize..range.end as usize]);
            layout()
                .verify(&hashes, first, &bytes)
                .expect("pieces verify");
        }
        // Ranges not on piece bounds too.
        let bytes = seed.read(1..2).await.expect("one byte");
        assert_eq!(&bytes[..], &data[1..2]);
        let end = SIZE as u64;
        let bytes = seed.read(end - 10..end).await.expect("tail");
        assert_eq!(&bytes[..], &data[SIZE - 10..]);
    });
    assert!(nginx.log("first.log").contains(TOKEN), "headers were sent");
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn streaming_yields_the_range_in_pieces_without_extra_bytes() {
    let data = blob();
    let nginx = Nginx::start(&data);
    on_both_drivers(|_| async {
        let seed = WebSeed::new(client(), nginx.url("/blob"));
        let range = layout().range(1, 6).expect("range");
        let mut body = seed.fetch(range.clone()).await.expect("fetch");
        assert!(body.is_partial());
        let mut got = Vec::new();
        while let Some(chunk) = body.chunk().await.expect("chunk") {
            got.extend_from_slice(&chunk);
            assert_eq!(body.remaining(), range.end - range.start - got.len() as u64);
        }
        assert_eq!(got, &data[range.start as usize..range.end as usize]);
        assert!(body.chunk().await.expect("after end").is_none());
        // The whole 206 was read, so its connection went back to the pool.
        let client = client();
        let seed = WebSeed::new(client.clone(), nginx.url("/blob"));
        seed.read(0..10).await.expect("read");
        assert_eq!(client.idle_connections(seed.url().origin()), 1);
        // A 200 cut off at the end of the range takes the pooled connection
        // and does not give it back: the rest of the blob is still on it.
        let seed = WebSeed::new(client.clone(), nginx.url("/noranges/blob"));
        seed.read(0..10).await.expect("read");
        assert_eq!(client.idle_connections(seed.url().origin()), 0);
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn a_redirect_to_another_port_is_followed_without_credentials() {
    let data = blob();
    let nginx = Nginx::start(&data);
    on_both_drivers(|_| async {
        let seed = WebSeed::new(client(), nginx.url("/moved")).header("Authorization", TOKEN);
        let range = layout().range(4, 2).expect("range");
        let bytes = seed
            .read(range.clone())
            .await
            .expect("read through redirect");
        assert_eq!(&bytes[..], &data[range.start as usize..range.end as usize]);
    });
    assert!(nginx.log("first.log").contains(&format!("/moved {TOKEN}")));
    let second = nginx.log("second.log");
    assert!(second.contains("/blob -"), "{second}");
    assert!(
        !second.contains(TOKEN),
        "credentials crossed origins: {second}"
    );
    assert_ne!(nginx.port, nginx.other_port);
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn a_server_ignoring_range_is_skipped_up_to_the_limit() {
    let data = blob();
    let nginx = Nginx::start(&data);
    on_both_drivers(|_| async {
        let config = WebSeedConfig {
            max_skip: 4 * PIECE,
            ..WebSeedConfig::default()
        };
        let seed = WebSeed::with_config(client(), nginx.url("/noranges/blob"), config);
        let range = layout().range(3, 2).expect("range");
        let mut body = seed.fetch(range.clone()).await.expect("fetch");
        assert!(!body.is_partial(), "nginx was told to ignore Range");
        let mut got = Vec::new();
        while let Some(chunk) = body.chunk().await.expect("chunk") {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, &data[range.start as usize..range.end as usize]);

        let far = layout().range(6, 1).expect("range");
        let err = seed.fetch(far).await.expect_err("too far to skip");
        assert!(
            matches!(err, WebSeedError::SkipTooFar { start, limit, .. }
                if start == 6 * PIECE && limit == 4 * PIECE),
            "{err:?}"
        );
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs nginx: scripts/test.sh runs it"
)]
fn errors_are_typed() {
    let data = blob();
    let nginx = Nginx::start(&data);
    on_both_drivers(|_| async {
        let missing = WebSeed::new(client(), nginx.url("/nothing"));
        let err = missing.read(0..10).await.expect_err("404");
        assert!(
            matches!(err, WebSeedError::Status { status: 404, .. }),
            "{err:?}"
        );

        let seed = WebSeed::new(client(), nginx.url("/blob"));
        let end = SIZE as u64;
        // nginx clips a range that runs past the end: not what was asked.
        let err = seed.read(end - 10..end + 10).await.expect_err("clipped");
        assert!(
            matches!(err, WebSeedError::WrongRange { start, last, .. }
                if start == end - 10 && last == end + 9),
            "{err:?}"
        );
        let err = seed.read(end + 10..end + 20).await.expect_err("416");
        assert!(
            matches!(err, WebSeedError::Status { status: 416, .. }),
            "{err:?}"
        );
        let err = seed.read(5..5).await.expect_err("empty");
        assert!(matches!(err, WebSeedError::InvalidRange { .. }), "{err:?}");
    });
}

#[test]
fn a_silent_server_times_out() {
    // The kernel completes the handshake; nobody ever reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    on_both_drivers(|_| async move {
        let url = Url::parse(&format!("http://127.0.0.1:{port}/blob")).expect("url");
        let config = WebSeedConfig {
            timeout: Duration::from_millis(300),
            ..WebSeedConfig::default()
        };
        let started = Instant::now();
        let err = WebSeed::with_config(client(), url, config)
            .read(0..100)
            .await
            .expect_err("timeout");
        assert!(matches!(err, WebSeedError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

/// A server on 127.0.0.1 that answers each of `connections` connections'
/// first request with `answer`, then closes it.
fn scripted_server(
    answer: &'static [u8],
    connections: usize,
) -> (u16, std::thread::JoinHandle<()>) {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let thread = std::thread::spawn(move || {
        for _ in 0..connections {
            let (mut stream, _) = server.accept().expect("accept");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).expect("read request");
                head.push(byte[0]);
            }
            stream.write_all(answer).expect("write answer");
        }
    });
    (port, thread)
}

/// Fetches bytes 0..10 from the scripted server on both drivers and
/// returns the errors.
fn read_ten(answer: &'static [u8]) -> Vec<WebSeedError> {
    let (port, thread) = scripted_server(answer, 2);
    let errors = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    on_both_drivers(|_| {
        let errors = errors.clone();
        async move {
            let url = Url::parse(&format!("http://127.0.0.1:{port}/blob")).expect("url");
            let result = WebSeed::new(client(), url).read(0..10).await;
            errors
                .borrow_mut()
                .push(result.expect_err("a broken answer"));
        }
    });
    thread.join().expect("server thread");
    errors.take()
}

#[test]
fn a_body_cut_short_is_an_error() {
    let errors = read_ten(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/1000\r\n\
          Content-Length: 10\r\n\r\n12345",
    );
    for err in errors {
        assert!(
            matches!(
                err,
                WebSeedError::ShortBody {
                    expected: 10,
                    got: 5,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn a_chunked_body_longer_than_the_range_is_an_error() {
    let errors = read_ten(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/1000\r\n\
          Transfer-Encoding: chunked\r\n\r\n14\r\n01234567890123456789\r\n0\r\n\r\n",
    );
    // The range ends on a chunk boundary; the extra chunk comes after it.
    let more = read_ten(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/1000\r\n\
          Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n5\r\nabcde\r\n0\r\n\r\n",
    );
    for err in errors.into_iter().chain(more) {
        assert!(
            matches!(err, WebSeedError::LongBody { expected: 10, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn a_range_other_than_the_one_asked_is_an_error() {
    let errors = read_ten(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-14/1000\r\n\
          Content-Length: 10\r\n\r\n0123456789",
    );
    for err in errors {
        assert!(
            matches!(&err, WebSeedError::WrongRange { start: 0, last: 9, got, .. }
                if got == "bytes 5-14/1000"),
            "{err:?}"
        );
    }
    let errors = read_ten(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\n\r\n0123456789");
    for err in errors {
        assert!(matches!(err, WebSeedError::WrongRange { .. }), "{err:?}");
    }
    let errors = read_ten(
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/1000\r\n\
          Content-Length: 12\r\n\r\n0123456789ab",
    );
    for err in errors {
        assert!(
            matches!(&err, WebSeedError::WrongRange { got, .. } if got == "Content-Length 12"),
            "{err:?}"
        );
    }
}

/// Loopback throughput of the web seed reading a 256 MiB blob from nginx in
/// 4 MiB ranges, streamed and dropped. Run with
/// `cargo test --release -p bay-core --test webseed_nginx -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn throughput() {
    const BIG: u64 = 256 << 20;
    const STEP: u64 = 4 << 20;
    let data: Vec<u8> = (0..BIG as usize).map(|i| (i % 251) as u8).collect();
    let nginx = Nginx::start(&data);
    drop(data);
    for driver in bay_testkit::drivers::available() {
        driver
            .block_on(async {
                let seed = WebSeed::new(client(), nginx.url("/blob"));
                let started = Instant::now();
                let mut total = 0u64;
                for start in (0..BIG).step_by(STEP as usize) {
                    let mut body = seed.fetch(start..start + STEP).await.expect("fetch");
                    while let Some(chunk) = body.chunk().await.expect("chunk") {
                        total += chunk.len() as u64;
                    }
                }
                let secs = started.elapsed().as_secs_f64();
                assert_eq!(total, BIG);
                println!(
                    "web seed ({driver}): {} MiB in {secs:.3} s = {:.0} MiB/s",
                    BIG >> 20,
                    (BIG >> 20) as f64 / secs
                );
            })
            .expect("runtime");
    }
}
