//! Shared pieces of the client tests: runtimes for both monoio drivers,
//! free ports, waiting for servers, and child processes that die with the
//! test.
#![allow(dead_code)]

use std::future::Future;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bay_httpd::client::{Client, ClientConfig, PlainHttp, Response};

/// Runs `test` once on each monoio driver, with timers enabled.
pub fn on_both_drivers<F, Fut>(test: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("legacy runtime")
        .block_on(test("legacy"));
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("io_uring runtime (is io_uring allowed here?)")
        .block_on(test("io_uring"));
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls until something accepts on `addr`, or panics after `limit`.
pub fn wait_for_listener(addr: SocketAddr, limit: Duration, what: &str, child: &mut Child) {
    let deadline = Instant::now() + limit;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {addr} within {limit:?}"
        );
        // Polling interval, not a synchronisation: the loop ends on accept.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when the test ends, passing or not.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program args` with output to `log` in the same folder.
pub fn spawn(program: &str, args: &[&str], log: &Path) -> KillOnDrop {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    KillOnDrop(child)
}

/// A client allowed plain HTTP everywhere, with short timeouts.
pub fn plain_client() -> Client {
    Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        connect_timeout: Duration::from_secs(5),
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    })
    .expect("client")
}

/// Reads a whole body piece by piece, as a relay would.
pub async fn read_body(response: &mut Response) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(piece) = response.chunk().await.expect("body piece") {
        assert!(!piece.is_empty(), "pieces are never empty");
        all.extend_from_slice(&piece);
    }
    all
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 it signed,
/// written as PEM files; returns the CA file.
pub fn make_ca(dir: &std::path::Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("test certificate");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("test certificate");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "bay test CA");
    let ca = ca_params.self_signed(&ca_key).expect("test certificate");
    let leaf_key = KeyPair::generate().expect("test certificate");
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("test certificate");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("test certificate");
    std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("test certificate");
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).expect("test certificate");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("test certificate");
    ca_file
}

/// Serves `conns` connections in turn, each with `script`.
pub fn raw_server<F>(conns: usize, script: F) -> SocketAddr
where
    F: Fn(usize, &mut TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for i in 0..conns {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            script(i, &mut stream);
        }
    });
    addr
}

/// Reads one request head; returns it as text ("" if the client closed).
pub fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Blocks until the client closes its side.
pub fn wait_for_close(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}
