//! What the doctor asks over the network: HTTP GETs of the proxy's and
//! trackers' own endpoints, and a TCP connection to the peer port. Each
//! has a short deadline, so a host that drops packets makes a finding,
//! not a hang.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use bay_httpd::client::{Client, ClientConfig, PlainHttp, Request, Url};
use bay_httpd::RunningDriver;

/// Longest wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest body read (the proxy's /status with 50 downloads is far less).
const MAX_BODY: usize = 4 << 20;

/// `GET url`: the status and body, or what went wrong in plain words.
pub fn get(url: &str, ca_file: Option<&Path>) -> Result<(u16, Vec<u8>), String> {
    let parsed: Url = url
        .parse()
        .map_err(|e| format!("{url} is not a URL: {e}"))?;
    let config = ClientConfig {
        connect_timeout: TIMEOUT,
        header_timeout: TIMEOUT,
        idle_timeout: TIMEOUT,
        plain_http: PlainHttp::Any,
        extra_ca_file: ca_file.map(Path::to_path_buf),
        ..ClientConfig::default()
    };
    let client = Client::new(config).map_err(|e| format!("cannot set up TLS: {e}"))?;
    // epoll: the doctor may run where io_uring is blocked, and two
    // requests gain nothing from it.
    bay_httpd::block_on(RunningDriver::Legacy, async move {
        let response = client
            .send(Request::get(parsed))
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.bytes(MAX_BODY).await.map_err(|e| e.to_string())?;
        Ok((status, body.to_vec()))
    })
    .map_err(|e| format!("cannot start a runtime: {e}"))?
}

/// Opens and closes a TCP connection to `addr`.
pub fn connect(addr: &str) -> Result<(), String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .collect();
    let mut last = format!("{addr} resolves to no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
