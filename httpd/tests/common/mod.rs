//! A test server with a small router, and a raw TCP client, shared by the
//! server tests. Every test runs once per driver.

// Helpers of tests: a failed set-up should stop the test loudly.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bay_httpd::{
    Body, Driver, FileBody, Handler, Method, Request, RequestBody, Response, ServerConfig,
    ServerHandle, Shutdown,
};
use bytes::Bytes;

/// The drivers every test runs under; io_uring only where the kernel has it.
pub fn drivers() -> Vec<Driver> {
    bay_testkit::drivers::available_as().unwrap()
}

/// Deterministic, non-repeating test content.
pub fn content(len: usize) -> Vec<u8> {
    bay_testkit::content::bytes(len, 1)
}

pub const FILE_LEN: usize = 3 * 1024 * 1024 + 17;
pub const SMALL_LIMIT: u64 = 1024;
pub const BIG_LEN: u64 = 256 << 20;
/// The part of the test file `/stream-file` sends between its bytes.
pub const STREAM_FILE_RANGE: (u64, u64) = (1000, 700_001);

pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub file: Vec<u8>,
    pub started: crossbeam_channel::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start(driver: Driver, tune: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file.bin");
        let file = content(FILE_LEN);
        std::fs::write(&path, &file).unwrap();
        // Larger than any socket buffers: sparse, so it costs no disk.
        let big = dir.path().join("big.bin");
        File::create(&big).unwrap().set_len(BIG_LEN).unwrap();
        let mut config = ServerConfig {
            threads: 2,
            driver,
            ..ServerConfig::default()
        };
        tune(&mut config);
        let (started_tx, started) = crossbeam_channel::unbounded();
        let factory = move || Router {
            file: Rc::new(File::open(&path).unwrap()),
            big: Rc::new(File::open(&big).unwrap()),
            started: started_tx.clone(),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let handle = bay_httpd::serve(listener, factory, config, Shutdown::new()).unwrap();
        let addr = handle.local_addr();
        Self {
            handle: Some(handle),
            addr,
            file,
            started,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Router {
    file: Rc<File>,
    big: Rc<File>,
    started: crossbeam_channel::Sender<String>,
}

impl Handler for Router {
    async fn handle(&self, req: Request, mut body: RequestBody) -> Response {
        let _ = self.started.send(req.path().to_owned());
        match (req.method.clone(), req.path()) {
            (Method::Get | Method::Head, "/file") => {
                Response::new(200).body(FileBody::whole(Rc::clone(&self.file)).unwrap())
            }
            (Method::Get, "/big") => {
                Response::new(200).body(FileBody::range(Rc::clone(&self.big), 0, BIG_LEN))
            }
            (_, "/hello") => Response::text(200, "hello\n"),
            (_, "/echo" | "/small") => {
                // Echo as a stream while reading: nothing is held whole.
                let (mut tx, out) = Body::channel(None);
                let mut total = 0usize;
                let mut chunks = Vec::new();
                loop {
                    match body.chunk().await {
                        Ok(Some(c)) => {
                            total += c.len();
                            chunks.push(c);
                        }
                        Ok(None) => break,
                        Err(e) => return Response::text(400, e.to_string()),
                    }
                }
                monoio::spawn(async move {
                    for c in chunks {
                        if tx.send(c).await.is_err() {
                            return;
                        }
                    }
                });
                Response::new(200)
                    .header("X-Received", total.to_string())
                    .body(out)
            }
            (_, "/stream") => {
                let (mut tx, out) = Body::channel(None);
                monoio::spawn(async move {
                    for i in 0..100u32 {
                        if tx.send(Bytes::from(format!("{i}\n"))).await.is_err() {
                            return;
                        }
                    }
                });
                Response::new(200).body(out)
            }
            (_, "/stream-len") => {
                let (mut tx, out) = Body::channel(Some(1000));
                monoio::spawn(async move {
                    for _ in 0..10 {
                        if tx.send(Bytes::from(vec![b'x'; 100])).await.is_err() {
                            return;
                        }
                    }
                });
                Response::new(200).body(out)
            }
            (_, "/stream-file" | "/stream-file-len") => {
                // Bytes and file ranges (sent by sendfile) in one body.
                let (start, len) = STREAM_FILE_RANGE;
                let length = (req.path() == "/stream-file-len").then_some(len + 10);
                let (mut tx, out) = Body::channel(length);
                let file = Rc::clone(&self.file);
                monoio::spawn(async move {
                    let _ = tx.send(Bytes::from_static(b"head:")).await;
                    let half = len / 2;
                    let _ = tx
                        .send_file(FileBody::range(Rc::clone(&file), start, half))
                        .await;
                    let _ = tx
                        .send_file(FileBody::range(file, start + half, len - half))
                        .await;
                    let _ = tx.send(Bytes::from_static(b":tail")).await;
                });
                Response::new(200).body(out)
            }
            (_, "/stream-abort") => {
                let (mut tx, out) = Body::channel(None);
                monoio::spawn(async move {
                    if tx.send(Bytes::from_static(b"partial")).await.is_ok() {
                        tx.abort();
                    }
                });
                Response::new(200).body(out)
            }
            (_, "/panic") => panic!("handler bug"),
            (_, "/slow") => {
                monoio::time::sleep(Duration::from_millis(300)).await;
                Response::text(200, "slow done\n")
            }
            (_, "/ignore-body") => Response::text(200, "ignored\n"),
            _ => Response::text(404, "not found\n"),
        }
    }

    fn body_limit(&self, req: &Request) -> Option<u64> {
        (req.path() == "/small").then_some(SMALL_LIMIT)
    }
}

/// Sends `bytes` on a fresh connection and reads until the server closes
/// it (or `limit` passes).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    read_to_close(&mut s, limit)
}

pub fn read_to_close(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "server did not close within {limit:?}");
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// The status code of the first response in `raw`.
pub fn status_of(raw: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(raw);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

/// Runs curl with `args`; returns stdout, panicking with stderr on failure.
pub fn curl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
