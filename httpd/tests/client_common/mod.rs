//! Shared pieces of the client tests that are about bay-httpd itself: a
//! client with short timeouts, whole-body reads, and scripted raw servers.
//! Runtimes, ports, certificates and real servers come from bay-testkit.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use bay_httpd::client::{Client, ClientConfig, PlainHttp, Response};

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
