//! The UDP tracker protocol (BEP 15): connect, announce, scrape and error
//! datagrams, encoded and decoded whole.
//!
//! Every field is big-endian. A client first connects (proving its source
//! address by echoing back the connection id the tracker hands out), then
//! announces or scrapes with that id; each request carries a transaction
//! id that its response echoes.
//!
//! A tracker decodes requests with [`Request::decode`]. When a request is
//! malformed, [`RequestError`] says whether an error reply can still be
//! sent: that needs the transaction id, so the datagram must at least
//! have reached it. A client decodes responses with [`Response::decode`],
//! naming the address family the datagram arrived over: BEP 15 makes the
//! peer list of an announce response IPv6 (18 bytes a peer) when the
//! exchange runs over IPv6, and IPv4 (6 bytes) otherwise, with nothing in
//! the datagram itself to tell them apart.
//!
//! Deliberate choices: BEP 41 options after an announce request's port are
//! ignored; an announce's `ip` of 0 and a negative `num_want` both mean
//! "tracker's choice" and decode to `None`; counts and intervals in
//! responses are carried as `u32` bit patterns of the protocol's `int32`.

use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};

use thiserror::Error;

use super::compact;
use super::scrape::ScrapeStats;
use super::{Event, InfoHash, PeerId};

/// The magic constant a connect request carries in place of a connection id.
pub const PROTOCOL_ID: i64 = 0x0417_2710_1980;
/// Most info hashes in one scrape, as BEP 15 bounds it.
pub const MAX_SCRAPE_HASHES: usize = 74;

const ACTION_CONNECT: i32 = 0;
const ACTION_ANNOUNCE: i32 = 1;
const ACTION_SCRAPE: i32 = 2;
const ACTION_ERROR: i32 = 3;

const CONNECT_LEN: usize = 16;
const ANNOUNCE_REQUEST_LEN: usize = 98;
const REQUEST_HEADER_LEN: usize = 16;
const RESPONSE_HEADER_LEN: usize = 8;
const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;
const SCRAPE_STATS_LEN: usize = 12;

/// The id a tracker hands out on connect and expects back on every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub i64);

/// The id a client picks for one request and its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TransactionId(pub i32);

/// The address family a datagram travelled over; it decides the peer
/// address format of an announce response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4: 6-byte peers.
    V4,
    /// IPv6: 18-byte peers.
    V6,
}

/// What was wrong with a UDP tracker datagram.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UdpError {
    /// The datagram ends before a field it must have.
    #[error("datagram of {len} bytes is too short (need {need})")]
    Truncated {
        /// Its length.
        len: usize,
        /// The length it needs at least.
        need: usize,
    },
    /// The datagram's length does not fit its action.
    #[error("datagram of {len} bytes has no valid length for its action")]
    BadLength {
        /// Its length.
        len: usize,
    },
    /// The action field names no action this side of the protocol knows.
    #[error("unknown action {0}")]
    UnknownAction(i32),
    /// A connect request without the protocol's magic constant.
    #[error("connect request with protocol id {0:#x}")]
    BadProtocolId(i64),
    /// An announce with an event number BEP 15 does not define.
    #[error("unknown announce event {0}")]
    UnknownEvent(i32),
    /// A scrape with no info hash.
    #[error("scrape without info hashes")]
    NoInfoHashes,
    /// A scrape with more info hashes than [`MAX_SCRAPE_HASHES`].
    #[error("scrape of {0} info hashes exceeds {MAX_SCRAPE_HASHES}")]
    TooManyInfoHashes(usize),
}

/// A request a tracker could not decode, and whether it can still answer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The header was readable: the tracker may send an error response to
    /// this transaction (after checking the connection id, so as not to
    /// answer spoofed datagrams).
    #[error("{error} (transaction {transaction_id:?})")]
    Sendable {
        /// The connection id the datagram carried.
        connection_id: ConnectionId,
        /// The transaction to answer.
        transaction_id: TransactionId,
        /// What was wrong.
        error: UdpError,
    },
    /// Too little was readable to address a reply: drop the datagram.
    #[error("{0}")]
    Unsendable(UdpError),
}

impl RequestError {
    /// What was wrong, whether or not a reply can be sent.
    pub fn error(&self) -> &UdpError {
        match self {
            RequestError::Sendable { error, .. } | RequestError::Unsendable(error) => error,
        }
    }
}

/// A datagram from client to tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Asks for a connection id.
    Connect(ConnectRequest),
    /// Announces a peer.
    Announce(AnnounceRequest),
    /// Asks for swarm counts.
    Scrape(ScrapeRequest),
}

/// Asks the tracker for a connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Echoed by the response.
    pub transaction_id: TransactionId,
}

/// A peer's announce (98 bytes on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// From the connect response.
    pub connection_id: ConnectionId,
    /// Echoed by the response.
    pub transaction_id: TransactionId,
    /// The swarm (for v2 torrents, the truncated v2 info hash).
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Bytes downloaded this session.
    pub downloaded: i64,
    /// Bytes still missing.
    pub left: i64,
    /// Bytes uploaded this session.
    pub uploaded: i64,
    /// Why the peer announces. [`Event::Paused`] has no BEP 15 number and
    /// is sent as a regular announce.
    pub event: Event,
    /// The IPv4 address the peer claims; `None` (0 on the wire) asks the
    /// tracker to use the datagram's source.
    pub ip: Option<Ipv4Addr>,
    /// Lets the tracker recognise the client across address changes.
    pub key: u32,
    /// Peers wanted; `None` (-1 on the wire) leaves it to the tracker.
    pub num_want: Option<u32>,
    /// The port the peer listens on.
    pub port: u16,
}

/// Asks for the counts of up to [`MAX_SCRAPE_HASHES`] swarms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// From the connect response.
    pub connection_id: ConnectionId,
    /// Echoed by the response.
    pub transaction_id: TransactionId,
    /// The swarms, in the order the response will answer them.
    pub info_hashes: Vec<InfoHash>,
}

/// A datagram from tracker to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Hands out a connection id.
    Connect(ConnectResponse),
    /// Answers an announce with peers.
    Announce(AnnounceResponse),
    /// Answers a scrape with counts.
    Scrape(ScrapeResponse),
    /// Refuses a request.
    Error(ErrorResponse),
}

/// Hands out a connection id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    /// From the request.
    pub transaction_id: TransactionId,
    /// To be sent back with the next requests.
    pub connection_id: ConnectionId,
}

/// Answers an announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// From the request.
    pub transaction_id: TransactionId,
    /// Seconds the client should wait before announcing again.
    pub interval: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Peers to connect to, in the exchange's address family.
    pub peers: PeerList,
}

/// An announce response's peers; the variant matches the address family
/// the exchange ran over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerList {
    /// 6 bytes a peer.
    V4(Vec<SocketAddrV4>),
    /// 18 bytes a peer.
    V6(Vec<SocketAddrV6>),
}

/// Answers a scrape: one entry per requested info hash, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// From the request.
    pub transaction_id: TransactionId,
    /// The counts; BEP 15 orders each as seeders, completed, leechers.
    pub stats: Vec<ScrapeStats>,
}

/// Refuses a request with a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    /// From the request.
    pub transaction_id: TransactionId,
    /// Why (bytes that are not UTF-8 are replaced on decode).
    pub message: String,
}

impl Request {
    /// Decodes one datagram a tracker received.
    pub fn decode(datagram: &[u8]) -> Result<Request, RequestError> {
        let mut r = Reader::new(datagram);
        let header = r.i64().zip(r.i32()).zip(r.i32());
        let Some(((connection_id, action), transaction_id)) = header else {
            return Err(RequestError::Unsendable(UdpError::Truncated {
                len: datagram.len(),
                need: REQUEST_HEADER_LEN,
            }));
        };
        let connection_id = ConnectionId(connection_id);
        let transaction_id = TransactionId(transaction_id);
        let sendable = |error| RequestError::Sendable {
            connection_id,
            transaction_id,
            error,
        };
        match action {
            ACTION_CONNECT => {
                if connection_id.0 != PROTOCOL_ID {
                    return Err(sendable(UdpError::BadProtocolId(connection_id.0)));
                }
                if datagram.len() != CONNECT_LEN {
                    return Err(sendable(UdpError::BadLength {
                        len: datagram.len(),
                    }));
                }
                Ok(Request::Connect(ConnectRequest { transaction_id }))
            }
            ACTION_ANNOUNCE => decode_announce(&mut r, connection_id, transaction_id)
                .map(Request::Announce)
                .map_err(sendable),
            ACTION_SCRAPE => decode_scrape(r.rest(), connection_id, transaction_id)
                .map(Request::Scrape)
                .map_err(sendable),
            other => Err(sendable(UdpError::UnknownAction(other))),
        }
    }

    /// Appends the datagram to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Connect(c) => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&c.transaction_id.0.to_be_bytes());
            }
            Request::Announce(a) => encode_announce(a, out),
            Request::Scrape(s) => {
                out.extend_from_slice(&s.connection_id.0.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&s.transaction_id.0.to_be_bytes());
                for hash in &s.info_hashes {
                    out.extend_from_slice(&hash.0);
                }
            }
        }
    }

    /// The transaction this request opens.
    pub fn transaction_id(&self) -> TransactionId {
        match self {
            Request::Connect(c) => c.transaction_id,
            Request::Announce(a) => a.transaction_id,
            Request::Scrape(s) => s.transaction_id,
        }
    }
}

fn decode_announce(
    r: &mut Reader<'_>,
    connection_id: ConnectionId,
    transaction_id: TransactionId,
) -> Result<AnnounceRequest, UdpError> {
    let truncated = UdpError::Truncated {
        len: r.len(),
        need: ANNOUNCE_REQUEST_LEN,
    };
    let (info_hash, peer_id) = r
        .array::<20>()
        .zip(r.array::<20>())
        .ok_or(truncated.clone())?;
    let (downloaded, left, uploaded) = r
        .i64()
        .zip(r.i64())
        .zip(r.i64())
        .map(|((d, l), u)| (d, l, u))
        .ok_or(truncated.clone())?;
    let (event, ip, key) = r
        .i32()
        .zip(r.u32())
        .zip(r.u32())
        .map(|((e, i), k)| (e, i, k))
        .ok_or(truncated.clone())?;
    let (num_want, port) = r.i32().zip(r.u16()).ok_or(truncated)?;
    // Whatever follows the port is BEP 41 options, which bay does not use.
    Ok(AnnounceRequest {
        connection_id,
        transaction_id,
        info_hash: InfoHash(info_hash),
        peer_id: PeerId(peer_id),
        downloaded,
        left,
        uploaded,
        event: event_from_number(event)?,
        ip: (ip != 0).then(|| Ipv4Addr::from(ip)),
        key,
        num_want: u32::try_from(num_want).ok(),
        port,
    })
}

fn encode_announce(a: &AnnounceRequest, out: &mut Vec<u8>) {
    out.reserve(ANNOUNCE_REQUEST_LEN);
    out.extend_from_slice(&a.connection_id.0.to_be_bytes());
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&a.transaction_id.0.to_be_bytes());
    out.extend_from_slice(&a.info_hash.0);
    out.extend_from_slice(&a.peer_id.0);
    out.extend_from_slice(&a.downloaded.to_be_bytes());
    out.extend_from_slice(&a.left.to_be_bytes());
    out.extend_from_slice(&a.uploaded.to_be_bytes());
    out.extend_from_slice(&event_number(a.event).to_be_bytes());
    out.extend_from_slice(&a.ip.map_or(0, u32::from).to_be_bytes());
    out.extend_from_slice(&a.key.to_be_bytes());
    let num_want = a.num_want.and_then(|n| i32::try_from(n).ok()).unwrap_or(-1);
    out.extend_from_slice(&num_want.to_be_bytes());
    out.extend_from_slice(&a.port.to_be_bytes());
}

fn decode_scrape(
    hashes: &[u8],
    connection_id: ConnectionId,
    transaction_id: TransactionId,
) -> Result<ScrapeRequest, UdpError> {
    let chunks = compact::records::<20>(hashes).ok_or(UdpError::BadLength {
        len: REQUEST_HEADER_LEN + hashes.len(),
    })?;
    let count = hashes.len() / 20;
    if count == 0 {
        return Err(UdpError::NoInfoHashes);
    }
    if count > MAX_SCRAPE_HASHES {
        return Err(UdpError::TooManyInfoHashes(count));
    }
    Ok(ScrapeRequest {
        connection_id,
        transaction_id,
        info_hashes: chunks.copied().map(InfoHash).collect(),
    })
}

fn event_from_number(n: i32) -> Result<Event, UdpError> {
    match n {
        0 => Ok(Event::None),
        1 => Ok(Event::Completed),
        2 => Ok(Event::Started),
        3 => Ok(Event::Stopped),
        other => Err(UdpError::UnknownEvent(other)),
    }
}

fn event_number(event: Event) -> i32 {
    match event {
        Event::None | Event::Paused => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    }
}

impl Response {
    /// Decodes one datagram a client received over `family`.
    pub fn decode(datagram: &[u8], family: AddressFamily) -> Result<Response, UdpError> {
        let mut r = Reader::new(datagram);
        let Some((action, transaction_id)) = r.i32().zip(r.i32()) else {
            return Err(UdpError::Truncated {
                len: datagram.len(),
                need: RESPONSE_HEADER_LEN,
            });
        };
        let transaction_id = TransactionId(transaction_id);
        match action {
            ACTION_CONNECT => {
                let bad_length = UdpError::BadLength {
                    len: datagram.len(),
                };
                let connection_id = r.i64().ok_or(bad_length.clone())?;
                if !r.rest().is_empty() {
                    return Err(bad_length);
                }
                Ok(Response::Connect(ConnectResponse {
                    transaction_id,
                    connection_id: ConnectionId(connection_id),
                }))
            }
            ACTION_ANNOUNCE => decode_announce_response(&mut r, transaction_id, family),
            ACTION_SCRAPE => {
                let chunks =
                    compact::records::<SCRAPE_STATS_LEN>(r.rest()).ok_or(UdpError::BadLength {
                        len: datagram.len(),
                    })?;
                let stats = chunks.map(scrape_stats_from_bytes).collect();
                Ok(Response::Scrape(ScrapeResponse {
                    transaction_id,
                    stats,
                }))
            }
            ACTION_ERROR => Ok(Response::Error(ErrorResponse {
                transaction_id,
                message: String::from_utf8_lossy(r.rest()).into_owned(),
            })),
            other => Err(UdpError::UnknownAction(other)),
        }
    }

    /// Appends the datagram to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Connect(c) => {
                push_header(out, ACTION_CONNECT, c.transaction_id);
                out.extend_from_slice(&c.connection_id.0.to_be_bytes());
            }
            Response::Announce(a) => {
                push_header(out, ACTION_ANNOUNCE, a.transaction_id);
                out.extend_from_slice(&a.interval.to_be_bytes());
                out.extend_from_slice(&a.leechers.to_be_bytes());
                out.extend_from_slice(&a.seeders.to_be_bytes());
                match &a.peers {
                    PeerList::V4(peers) => compact::encode_v4(peers, out),
                    PeerList::V6(peers) => compact::encode_v6(peers, out),
                }
            }
            Response::Scrape(s) => {
                push_header(out, ACTION_SCRAPE, s.transaction_id);
                out.reserve(s.stats.len() * SCRAPE_STATS_LEN);
                for stats in &s.stats {
                    out.extend_from_slice(&stats.complete.to_be_bytes());
                    out.extend_from_slice(&stats.downloaded.to_be_bytes());
                    out.extend_from_slice(&stats.incomplete.to_be_bytes());
                }
            }
            Response::Error(e) => {
                push_header(out, ACTION_ERROR, e.transaction_id);
                out.extend_from_slice(e.message.as_bytes());
            }
        }
    }

    /// The transaction this response answers.
    pub fn transaction_id(&self) -> TransactionId {
        match self {
            Response::Connect(c) => c.transaction_id,
            Response::Announce(a) => a.transaction_id,
            Response::Scrape(s) => s.transaction_id,
            Response::Error(e) => e.transaction_id,
        }
    }
}

fn push_header(out: &mut Vec<u8>, action: i32, transaction_id: TransactionId) {
    out.extend_from_slice(&action.to_be_bytes());
    out.extend_from_slice(&transaction_id.0.to_be_bytes());
}

fn decode_announce_response(
    r: &mut Reader<'_>,
    transaction_id: TransactionId,
    family: AddressFamily,
) -> Result<Response, UdpError> {
    let len = r.len();
    let Some(((interval, leechers), seeders)) = r.u32().zip(r.u32()).zip(r.u32()) else {
        return Err(UdpError::Truncated {
            len,
            need: ANNOUNCE_RESPONSE_HEADER_LEN,
        });
    };
    let peers = match family {
        AddressFamily::V4 => compact::decode_v4(r.rest()).map(PeerList::V4),
        AddressFamily::V6 => compact::decode_v6(r.rest()).map(PeerList::V6),
    }
    .ok_or(UdpError::BadLength { len })?;
    Ok(Response::Announce(AnnounceResponse {
        transaction_id,
        interval,
        leechers,
        seeders,
        peers,
    }))
}

fn scrape_stats_from_bytes(b: &[u8; SCRAPE_STATS_LEN]) -> ScrapeStats {
    let mut r = Reader::new(b);
    ScrapeStats {
        complete: r.u32().unwrap_or(0),
        downloaded: r.u32().unwrap_or(0),
        incomplete: r.u32().unwrap_or(0),
    }
}

/// Bounds-checked big-endian reads over one datagram.
struct Reader<'a> {
    buf: &'a [u8],
    total: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            total: buf.len(),
        }
    }

    /// The whole datagram's length, for error messages.
    fn len(&self) -> usize {
        self.total
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.buf.split_first_chunk::<N>()?;
        self.buf = tail;
        Some(*head)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    fn announce_request() -> AnnounceRequest {
        AnnounceRequest {
            connection_id: ConnectionId(0x0102_0304_0506_0708),
            transaction_id: TransactionId(0x0a0b_0c0d),
            info_hash: InfoHash([0x11; 20]),
            peer_id: PeerId(*b"-BY0001-abcdefghijkl"),
            downloaded: 100,
            left: 200,
            uploaded: 300,
            event: Event::Started,
            ip: None,
            key: 0xdead_beef,
            num_want: None,
            port: 6881,
        }
    }

    fn encoded(r: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out);
        out
    }

    fn encoded_response(r: &Response) -> Vec<u8> {
        let mut out = Vec::new();
        r.encode(&mut out);
        out
    }

    #[test]
    fn connect_request_matches_bep15_layout() {
        let bytes = encoded(&Request::Connect(ConnectRequest {
            transaction_id: TransactionId(0x1234_5678),
        }));
        assert_eq!(
            bytes,
            [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]
        );
        assert_eq!(
            Request::decode(&bytes),
            Ok(Request::Connect(ConnectRequest {
                transaction_id: TransactionId(0x1234_5678)
            }))
        );
    }

    #[test]
    fn announce_request_matches_bep15_layout() {
        let bytes = encoded(&Request::Announce(announce_request()));
        assert_eq!(bytes.len(), 98);
        assert_eq!(bytes.get(8..12), Some(&[0, 0, 0, 1][..]));
        assert_eq!(bytes.get(16..36), Some(&[0x11; 20][..]));
        // downloaded, left, uploaded, in that order.
        assert_eq!(bytes.get(56..64), Some(&100i64.to_be_bytes()[..]));
        assert_eq!(bytes.get(64..72), Some(&200i64.to_be_bytes()[..]));
        assert_eq!(bytes.get(72..80), Some(&300i64.to_be_bytes()[..]));
        assert_eq!(bytes.get(80..84), Some(&[0, 0, 0, 2][..])); // started
        assert_eq!(bytes.get(84..88), Some(&[0, 0, 0, 0][..])); // ip: default
        assert_eq!(bytes.get(92..96), Some(&[0xff; 4][..])); // num_want -1
        assert_eq!(bytes.get(96..98), Some(&6881u16.to_be_bytes()[..]));
        assert_eq!(
            Request::decode(&bytes),
            Ok(Request::Announce(announce_request()))
        );
    }

    #[test]
    fn announce_request_ignores_bep41_options() {
        let mut bytes = encoded(&Request::Announce(announce_request()));
        bytes.extend_from_slice(&[2, 5, b'/', b'a', b'n', b'n', b'o', 1, 0]);
        assert_eq!(
            Request::decode(&bytes),
            Ok(Request::Announce(announce_request()))
        );
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2).unwrap_or("zz"), 16))
            .collect::<Result<_, _>>()
            .unwrap_or_default()
    }

    #[test]
    fn decodes_libtorrent_2_datagrams() {
        // What libtorrent 2.0 sent to a UDP tracker for a v2-only torrent.
        let connect = from_hex("000004172710198000000000876f3142");
        assert_eq!(
            Request::decode(&connect),
            Ok(Request::Connect(ConnectRequest {
                transaction_id: TransactionId(i32::from_be_bytes([0x87, 0x6f, 0x31, 0x42]))
            }))
        );
        // 98 bytes of announce, then the BEP 41 URLData option "/announce".
        let announce = from_hex(
            "1122334455667788000000014b780645b435d98271b27e68acc8a7e29bc26ec6cf1a674b\
             2d4c54323038302d764c61336576513758783229000000000000000000000000000000000000\
             0000000000000000000200000000e205c738000000c89d5302092f616e6e6f756e6365",
        );
        assert_eq!(announce.len(), 109);
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&from_hex("b435d98271b27e68acc8a7e29bc26ec6cf1a674b"));
        assert_eq!(
            Request::decode(&announce),
            Ok(Request::Announce(AnnounceRequest {
                connection_id: ConnectionId(0x1122_3344_5566_7788),
                transaction_id: TransactionId(0x4b78_0645),
                info_hash: InfoHash(hash),
                peer_id: PeerId(*b"-LT2080-vLa3evQ7Xx2)"),
                downloaded: 0,
                left: 0,
                uploaded: 0,
                event: Event::Started,
                ip: None,
                key: 0xe205_c738,
                num_want: Some(200),
                port: 40275,
            }))
        );
    }

    #[test]
    fn every_truncated_request_is_a_typed_error() {
        let requests = [
            Request::Connect(ConnectRequest {
                transaction_id: TransactionId(7),
            }),
            Request::Announce(announce_request()),
            Request::Scrape(ScrapeRequest {
                connection_id: ConnectionId(9),
                transaction_id: TransactionId(7),
                info_hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
            }),
        ];
        for request in &requests {
            let bytes = encoded(request);
            for end in 0..bytes.len() {
                let cut = bytes.get(..end).unwrap_or_default();
                let r = Request::decode(cut);
                if end < REQUEST_HEADER_LEN {
                    assert!(
                        matches!(r, Err(RequestError::Unsendable(UdpError::Truncated { .. }))),
                        "{end}: {r:?}"
                    );
                } else if matches!(request, Request::Scrape(_)) && end == 36 {
                    // A whole first info hash is a valid, shorter scrape.
                    assert!(r.is_ok());
                } else {
                    assert!(
                        matches!(
                            r,
                            Err(RequestError::Sendable {
                                transaction_id: TransactionId(7) | TransactionId(0x0a0b_0c0d),
                                ..
                            })
                        ),
                        "{end}: {r:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn hostile_requests() {
        let mut connect = encoded(&Request::Connect(ConnectRequest {
            transaction_id: TransactionId(1),
        }));
        connect.push(0);
        assert!(matches!(
            Request::decode(&connect),
            Err(RequestError::Sendable {
                error: UdpError::BadLength { len: 17 },
                ..
            })
        ));
        let mut wrong_magic = connect.clone();
        wrong_magic.truncate(16);
        if let Some(b) = wrong_magic.get_mut(7) {
            *b = 0x81;
        }
        assert!(matches!(
            Request::decode(&wrong_magic),
            Err(RequestError::Sendable {
                error: UdpError::BadProtocolId(_),
                ..
            })
        ));
        let mut unknown = wrong_magic.clone();
        if let Some(b) = unknown.get_mut(11) {
            *b = 3; // error is a response-only action
        }
        assert!(matches!(
            Request::decode(&unknown),
            Err(RequestError::Sendable {
                error: UdpError::UnknownAction(3),
                ..
            })
        ));

        let mut announce = encoded(&Request::Announce(announce_request()));
        if let Some(b) = announce.get_mut(83) {
            *b = 9;
        }
        let r = Request::decode(&announce);
        assert_eq!(
            r.as_ref().map_err(|e| e.error()),
            Err(&UdpError::UnknownEvent(9))
        );

        let scrape = |n: usize, extra: usize| {
            let mut b = encoded(&Request::Scrape(ScrapeRequest {
                connection_id: ConnectionId(1),
                transaction_id: TransactionId(2),
                info_hashes: vec![InfoHash([0; 20]); n],
            }));
            b.extend(std::iter::repeat_n(0, extra));
            Request::decode(&b).map_err(|e| e.error().clone())
        };
        assert_eq!(scrape(0, 0), Err(UdpError::NoInfoHashes));
        assert_eq!(scrape(75, 0), Err(UdpError::TooManyInfoHashes(75)));
        assert_eq!(scrape(1, 5), Err(UdpError::BadLength { len: 41 }));
        assert!(scrape(74, 0).is_ok());
    }

    #[test]
    fn announce_request_negative_num_want_and_huge_numbers() {
        let mut bytes = encoded(&Request::Announce(announce_request()));
        if let Some(w) = bytes.get_mut(92..96) {
            w.copy_from_slice(&(-7i32).to_be_bytes());
        }
        if let Some(w) = bytes.get_mut(64..72) {
            w.copy_from_slice(&i64::MIN.to_be_bytes());
        }
        let Ok(Request::Announce(a)) = Request::decode(&bytes) else {
            panic!("decode failed");
        };
        assert_eq!(a.num_want, None);
        assert_eq!(a.left, i64::MIN);
        // An over-large num_want is sent as "tracker's choice".
        let mut big = announce_request();
        big.num_want = Some(u32::MAX);
        let bytes = encoded(&Request::Announce(big));
        assert_eq!(bytes.get(92..96), Some(&[0xff; 4][..]));
    }

    #[test]
    fn announce_response_by_address_family() {
        let v4 = Response::Announce(AnnounceResponse {
            transaction_id: TransactionId(5),
            interval: 1800,
            leechers: 3,
            seeders: 4,
            peers: PeerList::V4(vec![SocketAddrV4::new(
                Ipv4Addr::new(192, 168, 24, 52),
                2001,
            )]),
        });
        let bytes = encoded_response(&v4);
        assert_eq!(
            bytes.get(20..),
            Some(&[0xC0, 0xA8, 0x18, 0x34, 0x07, 0xD1][..])
        );
        assert_eq!(Response::decode(&bytes, AddressFamily::V4), Ok(v4));
        // Six bytes of peers are not a whole IPv6 peer.
        assert_eq!(
            Response::decode(&bytes, AddressFamily::V6),
            Err(UdpError::BadLength { len: 26 })
        );

        let v6 = Response::Announce(AnnounceResponse {
            transaction_id: TransactionId(5),
            interval: 1800,
            leechers: 3,
            seeders: 4,
            peers: PeerList::V6(vec![SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6881, 0, 0)]),
        });
        let bytes = encoded_response(&v6);
        assert_eq!(bytes.len(), 38);
        assert_eq!(Response::decode(&bytes, AddressFamily::V6), Ok(v6));
        // 18 bytes are also three IPv4 peers: only the family can tell.
        assert!(matches!(
            Response::decode(&bytes, AddressFamily::V4),
            Ok(Response::Announce(AnnounceResponse { peers: PeerList::V4(p), .. })) if p.len() == 3
        ));
    }

    #[test]
    fn every_truncated_response_is_a_typed_error_or_shorter_list() {
        let responses = [
            Response::Connect(ConnectResponse {
                transaction_id: TransactionId(1),
                connection_id: ConnectionId(-2),
            }),
            Response::Scrape(ScrapeResponse {
                transaction_id: TransactionId(1),
                stats: vec![ScrapeStats {
                    complete: 1,
                    downloaded: 2,
                    incomplete: 3,
                }],
            }),
            Response::Announce(AnnounceResponse {
                transaction_id: TransactionId(1),
                interval: 60,
                leechers: 0,
                seeders: 1,
                peers: PeerList::V4(vec![SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1)]),
            }),
        ];
        for response in &responses {
            let bytes = encoded_response(response);
            for end in 0..bytes.len() {
                let cut = bytes.get(..end).unwrap_or_default();
                let r = Response::decode(cut, AddressFamily::V4);
                let shorter_list = matches!(
                    (&r, end),
                    (Ok(Response::Scrape(_)), 8) | (Ok(Response::Announce(_)), 20)
                );
                assert!(r.is_err() || shorter_list, "{end}: {r:?}");
            }
        }
    }

    #[test]
    fn error_response() {
        let e = Response::Error(ErrorResponse {
            transaction_id: TransactionId(3),
            message: "unknown connection id".to_owned(),
        });
        let bytes = encoded_response(&e);
        assert_eq!(bytes.get(..8), Some(&[0, 0, 0, 3, 0, 0, 0, 3][..]));
        assert_eq!(Response::decode(&bytes, AddressFamily::V4), Ok(e));
        let bad_utf8 = [0, 0, 0, 3, 0, 0, 0, 3, 0xff, b'x'];
        assert!(matches!(
            Response::decode(&bad_utf8, AddressFamily::V4),
            Ok(Response::Error(ErrorResponse { message, .. })) if message == "\u{fffd}x"
        ));
        assert_eq!(
            Response::decode(&[0, 0, 0, 9, 0, 0, 0, 0], AddressFamily::V4),
            Err(UdpError::UnknownAction(9))
        );
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::None),
            Just(Event::Completed),
            Just(Event::Started),
            Just(Event::Stopped),
        ]
    }

    pub(crate) fn arb_request() -> impl Strategy<Value = Request> {
        let announce = (
            (
                any::<i64>(),
                any::<i32>(),
                any::<[u8; 20]>(),
                any::<[u8; 20]>(),
            ),
            (any::<i64>(), any::<i64>(), any::<i64>(), arb_event()),
            (
                proptest::option::of(any::<u32>().prop_filter("0 means none", |ip| *ip != 0)),
                any::<u32>(),
                proptest::option::of(0..=i32::MAX as u32),
                any::<u16>(),
            ),
        )
            .prop_map(
                |((c, t, h, p), (d, l, u, event), (ip, key, num_want, port))| {
                    Request::Announce(AnnounceRequest {
                        connection_id: ConnectionId(c),
                        transaction_id: TransactionId(t),
                        info_hash: InfoHash(h),
                        peer_id: PeerId(p),
                        downloaded: d,
                        left: l,
                        uploaded: u,
                        event,
                        ip: ip.map(Ipv4Addr::from),
                        key,
                        num_want,
                        port,
                    })
                },
            );
        let scrape = (
            any::<i64>(),
            any::<i32>(),
            proptest::collection::vec(any::<[u8; 20]>(), 1..=MAX_SCRAPE_HASHES),
        )
            .prop_map(|(c, t, hashes)| {
                Request::Scrape(ScrapeRequest {
                    connection_id: ConnectionId(c),
                    transaction_id: TransactionId(t),
                    info_hashes: hashes.into_iter().map(InfoHash).collect(),
                })
            });
        prop_oneof![
            any::<i32>().prop_map(|t| Request::Connect(ConnectRequest {
                transaction_id: TransactionId(t)
            })),
            announce,
            scrape,
        ]
    }

    fn arb_response(family: AddressFamily) -> impl Strategy<Value = Response> {
        let peers = match family {
            AddressFamily::V4 => proptest::collection::vec(any::<([u8; 4], u16)>(), 0..50)
                .prop_map(|ps| {
                    PeerList::V4(
                        ps.into_iter()
                            .map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
                            .collect(),
                    )
                })
                .boxed(),
            AddressFamily::V6 => proptest::collection::vec(any::<([u8; 16], u16)>(), 0..50)
                .prop_map(|ps| {
                    PeerList::V6(
                        ps.into_iter()
                            .map(|(ip, port)| SocketAddrV6::new(ip.into(), port, 0, 0))
                            .collect(),
                    )
                })
                .boxed(),
        };
        let stats = proptest::collection::vec(any::<(u32, u32, u32)>(), 0..80).prop_map(|v| {
            v.into_iter()
                .map(|(complete, downloaded, incomplete)| ScrapeStats {
                    complete,
                    downloaded,
                    incomplete,
                })
                .collect()
        });
        prop_oneof![
            (any::<i32>(), any::<i64>()).prop_map(|(t, c)| Response::Connect(ConnectResponse {
                transaction_id: TransactionId(t),
                connection_id: ConnectionId(c),
            })),
            (any::<i32>(), any::<(u32, u32, u32)>(), peers).prop_map(
                |(t, (interval, leechers, seeders), peers)| Response::Announce(AnnounceResponse {
                    transaction_id: TransactionId(t),
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            ),
            (any::<i32>(), stats).prop_map(|(t, stats)| Response::Scrape(ScrapeResponse {
                transaction_id: TransactionId(t),
                stats,
            })),
            (any::<i32>(), ".{0,100}").prop_map(|(t, message)| Response::Error(ErrorResponse {
                transaction_id: TransactionId(t),
                message,
            })),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(r in arb_request()) {
            prop_assert_eq!(Request::decode(&encoded(&r)), Ok(r));
        }

        #[test]
        fn v4_responses_round_trip(r in arb_response(AddressFamily::V4)) {
            prop_assert_eq!(Response::decode(&encoded_response(&r), AddressFamily::V4), Ok(r));
        }

        #[test]
        fn v6_responses_round_trip(r in arb_response(AddressFamily::V6)) {
            prop_assert_eq!(Response::decode(&encoded_response(&r), AddressFamily::V6), Ok(r));
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes, AddressFamily::V4);
            let _ = Response::decode(&bytes, AddressFamily::V6);
        }
    }
}
