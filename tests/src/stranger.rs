//! A hostile stranger on the network, for tests that try attacks with
//! real sockets: raw HTTP requests the way no well-behaved client sends
//! them, BitTorrent handshakes from chosen loopback addresses, and a
//! listener that records whether anything connected to it.
//!
//! Every address here is on loopback (127.0.0.0/8): the kernel routes all
//! of it to this host, so a test can speak from many source addresses
//! without leaving the machine.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::error::{HarnessError, Result};

/// What a raw HTTP exchange got back.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status code, 0 when the server closed without answering.
    pub status: u16,
    /// The whole response as text (head and body).
    pub text: String,
}

/// Sends `request` (a whole HTTP/1.1 request, bytes as given) to `addr`
/// and reads until the server closes or `timeout` passes.
pub fn raw_http(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<RawAnswer> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| HarnessError::io("connect to", addr.to_string(), e))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| HarnessError::io("set a timeout on", addr.to_string(), e))?;
    s.write_all(request)
        .map_err(|e| HarnessError::io("write to", addr.to_string(), e))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => return Err(HarnessError::io("read from", addr.to_string(), e)),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok(RawAnswer { status, text })
}

/// A listener standing where a request must never reach: on a port
/// outside the allow list. [`Bait::touched`] says whether anything
/// connected.
#[derive(Debug)]
pub struct Bait {
    listener: TcpListener,
}

impl Bait {
    /// Binds 127.0.0.1 on `port` (0 for any).
    pub fn bind(port: u16) -> Result<Bait> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| HarnessError::io("bind", format!("127.0.0.1:{port}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| HarnessError::io("set non-blocking", "the bait", e))?;
        Ok(Bait { listener })
    }

    /// Binds a free port whose number ends in `digit`, above 10_000, so
    /// that `port / 10` is a port too (string concatenation tricks such
    /// as `127.0.0.1:P` + `2/v2/` reach `P2`).
    pub fn bind_ending_in(digit: u16) -> Result<Bait> {
        let mut last = None;
        for tens in (1_100..6_500).step_by(37) {
            match Bait::bind(tens * 10 + digit) {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::parse("bait", "no port")))
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Whether anything connected since it was bound.
    pub fn touched(&self) -> bool {
        !matches!(self.listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }
}

/// The loopback address `127.0.x.y` for host number `n` (1..=65_000), a
/// distinct source address per stranger.
pub fn loopback_host(n: u16) -> IpAddr {
    let [x, y] = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(127, 0, x.max(1), y))
}

/// A TCP connection to `to` from source address `from`.
pub fn connect_from(from: IpAddr, to: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)
        .map_err(|e| HarnessError::io("open a socket for", to.to_string(), e))?;
    socket
        .bind(&SocketAddr::new(from, 0).into())
        .map_err(|e| HarnessError::io("bind", from.to_string(), e))?;
    socket
        .connect_timeout(&to.into(), timeout)
        .map_err(|e| HarnessError::io("connect to", to.to_string(), e))?;
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| HarnessError::io("set a timeout on", to.to_string(), e))?;
    Ok(stream)
}

/// Connects from `from` to a peer port and sends a BitTorrent handshake
/// for `swarm` with a made-up peer id. Returns the connection when the
/// peer answered with its own handshake, `None` when it closed instead.
pub fn handshake_from(
    from: IpAddr,
    to: SocketAddr,
    swarm: [u8; 20],
    peer_id: [u8; 20],
) -> Result<Option<TcpStream>> {
    let mut s = connect_from(from, to, Duration::from_secs(5))?;
    let hello = bay_wire::peer::Handshake::new(swarm, peer_id).to_bytes();
    s.write_all(&hello)
        .map_err(|e| HarnessError::io("write a handshake to", to.to_string(), e))?;
    let mut answer = [0u8; bay_wire::peer::HANDSHAKE_LEN];
    match s.read_exact(&mut answer) {
        Ok(()) => Ok(Some(s)),
        Err(_) => Ok(None),
    }
}
