//! HTTP announce: the request's query string (BEP 3) and the bencoded
//! response with its compact peer lists (BEP 23 for IPv4, BEP 7 for IPv6).
//!
//! The tracker parses requests and encodes responses; the announce client
//! in bay-core builds requests and decodes responses. Both directions live
//! here so that each encoder is tested against its own decoder.
//!
//! Responses are always encoded compact: IPv4 peers in `peers` (6 bytes
//! each), IPv6 peers in `peers6` (18 bytes each). A tracker that gets
//! `compact=0` may refuse it (BEP 23 allows that) rather than build the old
//! dictionary list. The decoder also reads the dictionary list of older
//! trackers, skipping entries whose `ip` is a host name: resolving it is
//! not this crate's business and one such peer should not cost the rest.

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::compact;
use super::query::{self, QueryError};
use super::response::{self, Reply, ResponseError};
use super::{Event, InfoHash, PeerId};
use crate::bencode::Node;

/// Longest announce query string accepted. A real one is a few hundred
/// bytes; this leaves room for unknown extension parameters.
pub const MAX_QUERY_LEN: usize = 4096;
/// Most `key=value` pairs accepted in one announce query.
pub const MAX_PARAMS: usize = 64;
/// Longest `key` parameter accepted, once decoded.
pub const MAX_KEY_LEN: usize = 64;
/// Longest `trackerid` parameter accepted, once decoded.
pub const MAX_TRACKER_ID_LEN: usize = 64;

/// A peer's announce, as carried in the query string of an HTTP GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The swarm (for v2 torrents, the truncated v2 info hash).
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The port the peer listens on.
    pub port: u16,
    /// Bytes uploaded since the `started` event.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` event.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Why the peer announces.
    pub event: Event,
    /// `compact=1` asks for compact peer lists, `compact=0` for the
    /// dictionary form; `None` when the client did not say.
    pub compact: Option<bool>,
    /// How many peers the client wants; `None` leaves it to the tracker.
    pub numwant: Option<u32>,
    /// An opaque value that lets the tracker recognise the client across
    /// address changes (at most [`MAX_KEY_LEN`] bytes).
    pub key: Option<Vec<u8>>,
    /// The address the peer claims. Only IP literals are accepted: a host
    /// name would need a resolver, which this crate does not have.
    pub ip: Option<IpAddr>,
    /// The client does not want peer ids in a dictionary peer list.
    pub no_peer_id: bool,
    /// The `tracker id` of an earlier response, sent back as `trackerid`
    /// (at most [`MAX_TRACKER_ID_LEN`] bytes).
    pub tracker_id: Option<Vec<u8>>,
}

impl AnnounceRequest {
    /// Parses the raw query string: the bytes after `?`, still
    /// percent-encoded.
    ///
    /// Unknown parameters are ignored; a known parameter given twice is an
    /// error, as is a missing required one (`info_hash`, `peer_id`, `port`,
    /// `uploaded`, `downloaded`, `left`).
    pub fn parse_query(query: &[u8]) -> Result<AnnounceRequest, QueryError> {
        let mut fields = Fields::default();
        query::for_each_pair(query, MAX_QUERY_LEN, MAX_PARAMS, |key, value| {
            fields.accept(key, value)
        })?;
        fields.finish()
    }

    /// Builds the query string for this announce (without the `?`).
    pub fn to_query(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_query(&mut out);
        out
    }

    /// Appends the query string for this announce to `out`.
    pub fn write_query(&self, out: &mut String) {
        query::push_pair(out, "info_hash", &self.info_hash.0);
        query::push_pair(out, "peer_id", &self.peer_id.0);
        query::push_pair(out, "port", self.port.to_string().as_bytes());
        query::push_pair(out, "uploaded", self.uploaded.to_string().as_bytes());
        query::push_pair(out, "downloaded", self.downloaded.to_string().as_bytes());
        query::push_pair(out, "left", self.left.to_string().as_bytes());
        if let Some(event) = self.event.as_query_value() {
            query::push_pair(out, "event", event.as_bytes());
        }
        if let Some(compact) = self.compact {
            query::push_pair(out, "compact", if compact { b"1" } else { b"0" });
        }
        if let Some(numwant) = self.numwant {
            query::push_pair(out, "numwant", numwant.to_string().as_bytes());
        }
        if let Some(key) = &self.key {
            query::push_pair(out, "key", key);
        }
        if let Some(ip) = self.ip {
            query::push_pair(out, "ip", ip.to_string().as_bytes());
        }
        if self.no_peer_id {
            query::push_pair(out, "no_peer_id", b"1");
        }
        if let Some(id) = &self.tracker_id {
            query::push_pair(out, "trackerid", id);
        }
    }
}

/// The parameters seen so far while parsing one query.
#[derive(Default)]
struct Fields {
    info_hash: Option<[u8; 20]>,
    peer_id: Option<[u8; 20]>,
    port: Option<u16>,
    uploaded: Option<u64>,
    downloaded: Option<u64>,
    left: Option<u64>,
    event: Option<Event>,
    compact: Option<bool>,
    numwant: Option<u32>,
    key: Option<Vec<u8>>,
    ip: Option<IpAddr>,
    no_peer_id: Option<bool>,
    tracker_id: Option<Vec<u8>>,
}

impl Fields {
    fn accept(&mut self, key: &[u8], value: &[u8]) -> Result<(), QueryError> {
        match key {
            b"info_hash" => {
                let v = query::fixed("info_hash", value)?;
                query::set_once(&mut self.info_hash, "info_hash", v)
            }
            b"peer_id" => {
                let v = query::fixed("peer_id", value)?;
                query::set_once(&mut self.peer_id, "peer_id", v)
            }
            b"port" => {
                let v = query::small_number("port", value)?;
                query::set_once(&mut self.port, "port", v)
            }
            b"uploaded" => {
                let v = query::number("uploaded", value)?;
                query::set_once(&mut self.uploaded, "uploaded", v)
            }
            b"downloaded" => {
                let v = query::number("downloaded", value)?;
                query::set_once(&mut self.downloaded, "downloaded", v)
            }
            b"left" => {
                let v = query::number("left", value)?;
                query::set_once(&mut self.left, "left", v)
            }
            b"event" => {
                let decoded = query::bytes("event", value, 16)?;
                let v = Event::from_query_value(&decoded)
                    .ok_or(QueryError::InvalidValue { key: "event" })?;
                query::set_once(&mut self.event, "event", v)
            }
            b"compact" => {
                let v = query::flag("compact", value)?;
                query::set_once(&mut self.compact, "compact", v)
            }
            b"numwant" => {
                let v = query::small_number("numwant", value)?;
                query::set_once(&mut self.numwant, "numwant", v)
            }
            b"key" => {
                let v = query::bytes("key", value, MAX_KEY_LEN)?;
                query::set_once(&mut self.key, "key", v)
            }
            b"ip" => {
                let v = query::ip("ip", value)?;
                query::set_once(&mut self.ip, "ip", v)
            }
            b"no_peer_id" => {
                let v = query::flag("no_peer_id", value)?;
                query::set_once(&mut self.no_peer_id, "no_peer_id", v)
            }
            b"trackerid" => {
                let v = query::bytes("trackerid", value, MAX_TRACKER_ID_LEN)?;
                query::set_once(&mut self.tracker_id, "trackerid", v)
            }
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<AnnounceRequest, QueryError> {
        Ok(AnnounceRequest {
            info_hash: InfoHash(query::required(self.info_hash, "info_hash")?),
            peer_id: PeerId(query::required(self.peer_id, "peer_id")?),
            port: query::required(self.port, "port")?,
            uploaded: query::required(self.uploaded, "uploaded")?,
            downloaded: query::required(self.downloaded, "downloaded")?,
            left: query::required(self.left, "left")?,
            event: self.event.unwrap_or_default(),
            compact: self.compact,
            numwant: self.numwant,
            key: self.key,
            ip: self.ip,
            no_peer_id: self.no_peer_id.unwrap_or(false),
            tracker_id: self.tracker_id,
        })
    }
}

/// A tracker's successful answer to an announce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds the client should wait between regular announces.
    pub interval: u32,
    /// Seconds the client must wait at least, if the tracker says.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm, if the tracker says.
    pub complete: Option<u32>,
    /// Leechers in the swarm, if the tracker says.
    pub incomplete: Option<u32>,
    /// An id the client should send back on its next announces.
    pub tracker_id: Option<Vec<u8>>,
    /// A human-readable warning that did not stop the request.
    pub warning: Option<String>,
    /// IPv4 peers.
    pub peers: Vec<SocketAddrV4>,
    /// IPv6 peers.
    pub peers6: Vec<SocketAddrV6>,
}

impl AnnounceResponse {
    /// Appends the bencoded response body to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(128 + self.peers.len() * 6 + self.peers6.len() * 18);
        // Keys in ascending byte order, as canonical bencode requires.
        out.push(b'd');
        if let Some(v) = self.complete {
            response::push_int(out, "complete", v);
        }
        if let Some(v) = self.incomplete {
            response::push_int(out, "incomplete", v);
        }
        response::push_int(out, "interval", self.interval);
        if let Some(v) = self.min_interval {
            response::push_int(out, "min interval", v);
        }
        // Always present, even empty: clients look for it.
        let mut packed = Vec::new();
        compact::encode_v4(&self.peers, &mut packed);
        response::push_bytes(out, "peers", &packed);
        if !self.peers6.is_empty() {
            packed.clear();
            compact::encode_v6(&self.peers6, &mut packed);
            response::push_bytes(out, "peers6", &packed);
        }
        if let Some(v) = &self.tracker_id {
            response::push_bytes(out, "tracker id", v);
        }
        if let Some(v) = &self.warning {
            response::push_bytes(out, "warning message", v.as_bytes());
        }
        out.push(b'e');
    }

    /// Returns the bencoded response body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a response body: a success, or the tracker's failure reason.
    pub fn decode(body: &[u8]) -> Result<Reply<AnnounceResponse>, ResponseError> {
        let root = match response::decode_top(body)? {
            Ok(root) => root,
            Err(reason) => return Ok(Reply::Failure(reason)),
        };
        let mut r = AnnounceResponse {
            interval: response::req_u32(&root, "interval")?,
            min_interval: response::opt_u32(&root, "min interval")?,
            complete: response::opt_u32(&root, "complete")?,
            incomplete: response::opt_u32(&root, "incomplete")?,
            tracker_id: response::opt_bytes(&root, "tracker id")?.map(<[u8]>::to_vec),
            warning: response::opt_bytes(&root, "warning message")?
                .map(|w| String::from_utf8_lossy(w).into_owned()),
            peers: Vec::new(),
            peers6: Vec::new(),
        };
        if let Some(peers) = root.get(b"peers") {
            r.read_peers(peers)?;
        }
        if let Some(peers6) = root.get(b"peers6") {
            let bytes = peers6
                .as_bytes()
                .ok_or(ResponseError::InvalidField { key: "peers6" })?;
            r.peers6.extend(
                compact::decode_v6(bytes).ok_or(ResponseError::BadCompactLength {
                    key: "peers6",
                    len: bytes.len(),
                    entry: compact::V6_LEN,
                })?,
            );
        }
        Ok(Reply::Success(r))
    }

    /// Reads `peers` in either form: a compact string (BEP 23) or a list of
    /// dictionaries (BEP 3).
    fn read_peers(&mut self, peers: &Node<'_>) -> Result<(), ResponseError> {
        if let Some(bytes) = peers.as_bytes() {
            self.peers.extend(compact::decode_v4(bytes).ok_or(
                ResponseError::BadCompactLength {
                    key: "peers",
                    len: bytes.len(),
                    entry: compact::V4_LEN,
                },
            )?);
            return Ok(());
        }
        let list = peers
            .as_list()
            .ok_or(ResponseError::InvalidField { key: "peers" })?;
        for entry in list {
            match dictionary_peer(entry)? {
                Some(SocketAddr::V4(p)) => self.peers.push(p),
                Some(SocketAddr::V6(p)) => self.peers6.push(p),
                None => {}
            }
        }
        Ok(())
    }
}

/// Reads one `{ip, port, peer id}` entry; `None` when `ip` is a host name.
fn dictionary_peer(entry: &Node<'_>) -> Result<Option<SocketAddr>, ResponseError> {
    if entry.as_dict().is_none() {
        return Err(ResponseError::NotADict { what: "peer entry" });
    }
    let ip = response::opt_bytes(entry, "ip")?.ok_or(ResponseError::Missing { key: "ip" })?;
    let port = entry
        .get(b"port")
        .ok_or(ResponseError::Missing { key: "port" })?
        .as_int()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(ResponseError::InvalidField { key: "port" })?;
    if let Some(id) = response::opt_bytes(entry, "peer id")? {
        if id.len() != 20 {
            return Err(ResponseError::InvalidField { key: "peer id" });
        }
    }
    let ip: Option<IpAddr> = std::str::from_utf8(ip).ok().and_then(|s| s.parse().ok());
    Ok(ip.map(|ip| match ip {
        IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, 0)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::percent::PercentError;
    use proptest::prelude::*;

    const HASH: &str = "%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
    const HASH_BYTES: [u8; 20] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
        0x12, 0x34, 0x56, 0x78, 0x9a,
    ];

    fn base() -> String {
        format!(
            "info_hash={HASH}&peer_id=-BY0001-abcdefghijkl&port=6881\
             &uploaded=0&downloaded=0&left=1000"
        )
    }

    fn parse(q: &str) -> Result<AnnounceRequest, QueryError> {
        AnnounceRequest::parse_query(q.as_bytes())
    }

    #[test]
    fn parses_minimal_announce() {
        let r = parse(&base());
        assert_eq!(
            r,
            Ok(AnnounceRequest {
                info_hash: InfoHash(HASH_BYTES),
                peer_id: PeerId(*b"-BY0001-abcdefghijkl"),
                port: 6881,
                uploaded: 0,
                downloaded: 0,
                left: 1000,
                event: Event::None,
                compact: None,
                numwant: None,
                key: None,
                ip: None,
                no_peer_id: false,
                tracker_id: None,
            })
        );
    }

    #[test]
    fn parses_libtorrent_style_announce_with_extras() {
        let q = format!(
            "{}&event=started&key=1a2b3c4d&compact=1&numwant=200\
             &supportcrypto=1&redundant=0&no_peer_id=1&ip=%3A%3A1&corrupt=0",
            base()
        );
        let r = parse(&q);
        let Ok(r) = r else {
            panic!("{r:?}");
        };
        assert_eq!(r.event, Event::Started);
        assert_eq!(r.key.as_deref(), Some(&b"1a2b3c4d"[..]));
        assert_eq!(r.compact, Some(true));
        assert_eq!(r.numwant, Some(200));
        assert!(r.no_peer_id);
        assert_eq!(r.ip, Some(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn parses_a_libtorrent_2_v2_announce() {
        // The request line libtorrent 2.0 sent for a v2-only torrent whose
        // info hash is b435d982...911a60a3: it announces the first 20 bytes.
        let q = "info_hash=%b45%d9%82q%b2~h%ac%c8%a7%e2%9b%c2n%c6%cf%1agK\
                 &peer_id=-LT2080-l!*YMZMMzqow&port=40539&uploaded=0&downloaded=0\
                 &left=0&corrupt=0&key=3733B2ED&event=started&numwant=200&compact=1\
                 &no_peer_id=1&supportcrypto=1&redundant=0";
        let mut v2 = [0u8; 32];
        let hex = "b435d98271b27e68acc8a7e29bc26ec6cf1a674bc45087101fb1aae3911a60a3";
        for (i, b) in v2.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or_default();
        }
        let r = parse(q);
        let Ok(r) = r else { panic!("{r:?}") };
        assert_eq!(r.info_hash, InfoHash::from(crate::metainfo::InfoHashV2(v2)));
        assert_eq!(r.peer_id, PeerId(*b"-LT2080-l!*YMZMMzqow"));
        assert_eq!((r.port, r.uploaded, r.downloaded, r.left), (40539, 0, 0, 0));
        assert_eq!(r.event, Event::Started);
        assert_eq!(r.key.as_deref(), Some(&b"3733B2ED"[..]));
        assert_eq!(r.numwant, Some(200));
        assert_eq!(r.compact, Some(true));
        assert!(r.no_peer_id);
    }

    #[test]
    fn events() {
        for (text, event) in [
            ("", Event::None),
            ("started", Event::Started),
            ("completed", Event::Completed),
            ("stopped", Event::Stopped),
            ("paused", Event::Paused),
        ] {
            let r = parse(&format!("{}&event={text}", base()));
            assert_eq!(r.map(|r| r.event), Ok(event));
        }
        assert_eq!(
            parse(&format!("{}&event=Started", base())),
            Err(QueryError::InvalidValue { key: "event" })
        );
    }

    #[test]
    fn missing_required_keys_are_named() {
        for key in [
            "info_hash",
            "peer_id",
            "port",
            "uploaded",
            "downloaded",
            "left",
        ] {
            let full = base();
            let prefix = format!("{key}=");
            let q: Vec<&str> = full
                .split('&')
                .filter(|p| !p.starts_with(&prefix))
                .collect();
            assert_eq!(parse(&q.join("&")), Err(QueryError::Missing { key }));
        }
        assert_eq!(parse(""), Err(QueryError::Missing { key: "info_hash" }));
    }

    #[test]
    fn repeated_keys_are_rejected() {
        for extra in [
            format!("info_hash={HASH}"),
            "peer_id=-BY0001-abcdefghijkl".to_owned(),
            "port=6881".to_owned(),
            "left=0".to_owned(),
            "event=&event=started".to_owned(),
            "compact=1&compact=1".to_owned(),
            "key=a&key=b".to_owned(),
        ] {
            let r = parse(&format!("{}&{extra}", base()));
            assert!(
                matches!(r, Err(QueryError::Duplicate { .. })),
                "{extra}: {r:?}"
            );
        }
        // Unknown keys may repeat.
        assert!(parse(&format!("{}&x=1&x=2", base())).is_ok());
    }

    #[test]
    fn hostile_values_are_rejected() {
        let cases: &[(&str, &str, QueryError)] = &[
            (
                "port=6881",
                "port=-1",
                QueryError::InvalidNumber { key: "port" },
            ),
            (
                "port=6881",
                "port=65536",
                QueryError::InvalidNumber { key: "port" },
            ),
            (
                "port=6881",
                "port=",
                QueryError::InvalidNumber { key: "port" },
            ),
            (
                "left=1000",
                "left=18446744073709551616",
                QueryError::InvalidNumber { key: "left" },
            ),
            (
                "left=1000",
                "left=1000000000000000000000000000000000000000",
                QueryError::InvalidNumber { key: "left" },
            ),
            (
                "uploaded=0",
                "uploaded=-5",
                QueryError::InvalidNumber { key: "uploaded" },
            ),
            (
                "peer_id=-BY0001-abcdefghijkl",
                "peer_id=short",
                QueryError::WrongLength {
                    key: "peer_id",
                    expected: 20,
                },
            ),
            (
                "peer_id=-BY0001-abcdefghijkl",
                "peer_id=-BY0001-abcdefghijklm",
                QueryError::WrongLength {
                    key: "peer_id",
                    expected: 20,
                },
            ),
            (
                "peer_id=-BY0001-abcdefghijkl",
                "peer_id=-BY0001-abcdefghijk%g1",
                QueryError::Encoding {
                    key: "peer_id",
                    source: PercentError::BadEscape { offset: 19 },
                },
            ),
        ];
        for (from, to, err) in cases {
            let q = base().replace(from, to);
            assert_eq!(parse(&q), Err(err.clone()), "{q}");
        }
        assert!(matches!(
            parse(&format!("{}&key={}", base(), "k".repeat(65))),
            Err(QueryError::Encoding { key: "key", .. })
        ));
        assert!(matches!(
            parse(&format!("{}&numwant=4294967296", base())),
            Err(QueryError::InvalidNumber { key: "numwant" })
        ));
        assert!(matches!(
            parse(&format!("{}&ip=example.org", base())),
            Err(QueryError::InvalidValue { key: "ip" })
        ));
    }

    #[test]
    fn length_and_parameter_limits() {
        let long = format!("{}&pad={}", base(), "x".repeat(MAX_QUERY_LEN));
        assert!(matches!(parse(&long), Err(QueryError::TooLong { .. })));
        let many = format!("{}{}", base(), "&x=1".repeat(MAX_PARAMS));
        assert_eq!(
            parse(&many),
            Err(QueryError::TooManyParams { max: MAX_PARAMS })
        );
    }

    #[test]
    fn every_truncation_fails_or_parses_without_panic() {
        let q = format!("{}&event=completed&numwant=50&key=abc", base());
        for end in 0..q.len() {
            let _ = AnnounceRequest::parse_query(&q.as_bytes()[..end]);
        }
        // Cutting inside the info hash escape is a typed encoding error.
        let cut = &q.as_bytes()[..12];
        assert!(matches!(
            AnnounceRequest::parse_query(cut),
            Err(QueryError::Encoding {
                key: "info_hash",
                ..
            })
        ));
    }

    #[test]
    fn builds_the_query_it_parses() {
        let r = AnnounceRequest {
            info_hash: InfoHash(HASH_BYTES),
            peer_id: PeerId(*b"-BY0001-abcdefghijkl"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Completed,
            compact: Some(true),
            numwant: Some(50),
            key: Some(b"k+y".to_vec()),
            ip: Some(IpAddr::from([127, 0, 0, 1])),
            no_peer_id: true,
            tracker_id: Some(b"t 1".to_vec()),
        };
        let q = r.to_query();
        assert_eq!(
            q,
            "info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A\
             &peer_id=-BY0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3\
             &event=completed&compact=1&numwant=50&key=k%2By&ip=127.0.0.1&no_peer_id=1&trackerid=t%201"
        );
        assert_eq!(parse(&q), Ok(r));
    }

    pub(crate) fn arb_request() -> impl Strategy<Value = AnnounceRequest> {
        let event = prop_oneof![
            Just(Event::None),
            Just(Event::Started),
            Just(Event::Completed),
            Just(Event::Stopped),
            Just(Event::Paused),
        ];
        let ip = prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ];
        (
            (any::<[u8; 20]>(), any::<[u8; 20]>(), any::<u16>()),
            (any::<u64>(), any::<u64>(), any::<u64>(), event),
            (
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=MAX_KEY_LEN)),
                proptest::option::of(ip),
                any::<bool>(),
                proptest::option::of(proptest::collection::vec(
                    any::<u8>(),
                    0..=MAX_TRACKER_ID_LEN,
                )),
            ),
        )
            .prop_map(
                |(
                    (h, p, port),
                    (uploaded, downloaded, left, event),
                    (compact, numwant, key, ip, no_peer_id, tracker_id),
                )| AnnounceRequest {
                    info_hash: InfoHash(h),
                    peer_id: PeerId(p),
                    port,
                    uploaded,
                    downloaded,
                    left,
                    event,
                    compact,
                    numwant,
                    key,
                    ip,
                    no_peer_id,
                    tracker_id,
                },
            )
    }

    fn success(body: &[u8]) -> AnnounceResponse {
        match AnnounceResponse::decode(body) {
            Ok(Reply::Success(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn encodes_compact_response() {
        let r = AnnounceResponse {
            interval: 1800,
            min_interval: Some(60),
            complete: Some(2),
            incomplete: Some(7),
            tracker_id: Some(b"t1".to_vec()),
            warning: Some("slow down".to_owned()),
            peers: vec![SocketAddrV4::new([192, 168, 24, 52].into(), 2001)],
            peers6: vec![SocketAddrV6::new(std::net::Ipv6Addr::LOCALHOST, 6881, 0, 0)],
        };
        let body = r.to_bytes();
        let mut expected = b"d8:completei2e10:incompletei7e8:intervali1800e\
            12:min intervali60e5:peers6:\xC0\xA8\x18\x34\x07\xD1\
            6:peers618:"
            .to_vec();
        expected.extend_from_slice(&[0; 15]);
        expected.extend_from_slice(&[1, 0x1a, 0xe1]);
        expected.extend_from_slice(b"10:tracker id2:t115:warning message9:slow downe");
        assert_eq!(body, expected);
        assert_eq!(success(&body), r);
    }

    #[test]
    fn minimal_response_has_empty_peers() {
        let r = AnnounceResponse {
            interval: 5,
            ..Default::default()
        };
        assert_eq!(r.to_bytes(), b"d8:intervali5e5:peers0:e");
        assert_eq!(success(b"d8:intervali5ee"), r);
    }

    #[test]
    fn decodes_dictionary_peer_list() {
        let mut body = b"d8:intervali3600e5:peersl".to_vec();
        body.extend_from_slice(b"d2:ip13:192.168.24.527:peer id20:");
        body.extend_from_slice(&[b'A'; 20]);
        body.extend_from_slice(b"4:porti2001ee");
        body.extend_from_slice(b"d2:ip3:::14:porti6881ee");
        body.extend_from_slice(b"d2:ip16:peer.example.org4:porti1ee");
        body.extend_from_slice(b"ee");
        let r = success(&body);
        assert_eq!(
            r.peers,
            vec![SocketAddrV4::new([192, 168, 24, 52].into(), 2001)]
        );
        assert_eq!(
            r.peers6,
            vec![SocketAddrV6::new(std::net::Ipv6Addr::LOCALHOST, 6881, 0, 0)]
        );
    }

    #[test]
    fn failure_reason_wins() {
        assert_eq!(
            AnnounceResponse::decode(b"d14:failure reason9:not found8:intervali1ee"),
            Ok(Reply::Failure("not found".to_owned()))
        );
    }

    #[test]
    fn hostile_responses_are_typed_errors() {
        let cases: &[(&[u8], ResponseError)] = &[
            (b"d5:peers0:e", ResponseError::Missing { key: "interval" }),
            (
                b"d8:intervali-1ee",
                ResponseError::InvalidField { key: "interval" },
            ),
            (
                b"d8:intervali4294967296ee",
                ResponseError::InvalidField { key: "interval" },
            ),
            (
                b"d8:interval1:1e",
                ResponseError::InvalidField { key: "interval" },
            ),
            (
                b"d8:completei-5e8:intervali1ee",
                ResponseError::InvalidField { key: "complete" },
            ),
            (
                b"d8:intervali1e5:peers7:abcdefge",
                ResponseError::BadCompactLength {
                    key: "peers",
                    len: 7,
                    entry: 6,
                },
            ),
            (
                b"d8:intervali1e6:peers66:abcdefe",
                ResponseError::BadCompactLength {
                    key: "peers6",
                    len: 6,
                    entry: 18,
                },
            ),
            (
                b"d8:intervali1e6:peers6lee",
                ResponseError::InvalidField { key: "peers6" },
            ),
            (
                b"d8:intervali1e5:peersi3ee",
                ResponseError::InvalidField { key: "peers" },
            ),
            (
                b"d8:intervali1e5:peersli1eee",
                ResponseError::NotADict { what: "peer entry" },
            ),
            (
                b"d8:intervali1e5:peersld2:ip7:1.2.3.44:porti65536eeee",
                ResponseError::InvalidField { key: "port" },
            ),
            (
                b"d8:intervali1e5:peersld2:ip7:1.2.3.44:porti-1eeee",
                ResponseError::InvalidField { key: "port" },
            ),
            (
                b"d8:intervali1e5:peersld2:ip7:1.2.3.4eee",
                ResponseError::Missing { key: "port" },
            ),
            (
                b"d8:intervali1e5:peersld2:ip7:1.2.3.47:peer id1:x4:porti1eeee",
                ResponseError::InvalidField { key: "peer id" },
            ),
            (
                b"d8:intervali99999999999999999999999ee",
                ResponseError::Bencode(crate::bencode::BencodeError::IntOverflow { offset: 12 }),
            ),
            (b"i1e", ResponseError::NotADict { what: "response" }),
        ];
        for (body, err) in cases {
            assert_eq!(
                AnnounceResponse::decode(body).as_ref(),
                Err(err),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn every_truncated_response_is_an_error() {
        let body = AnnounceResponse {
            interval: 1800,
            complete: Some(1),
            peers: vec![SocketAddrV4::new([10, 0, 0, 1].into(), 1); 3],
            ..Default::default()
        }
        .to_bytes();
        for end in 0..body.len() {
            assert!(
                AnnounceResponse::decode(body.get(..end).unwrap_or_default()).is_err(),
                "{end}"
            );
        }
    }

    pub(crate) fn arb_response() -> impl Strategy<Value = AnnounceResponse> {
        (
            (
                any::<u32>(),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
            ),
            (
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
                proptest::option::of(".{0,40}"),
            ),
            proptest::collection::vec(any::<([u8; 4], u16)>(), 0..40),
            proptest::collection::vec(any::<([u8; 16], u16)>(), 0..20),
        )
            .prop_map(
                |(
                    (interval, min_interval, complete, incomplete),
                    (tracker_id, warning),
                    v4,
                    v6,
                )| {
                    AnnounceResponse {
                        interval,
                        min_interval,
                        complete,
                        incomplete,
                        tracker_id,
                        warning,
                        peers: v4
                            .into_iter()
                            .map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
                            .collect(),
                        peers6: v6
                            .into_iter()
                            .map(|(ip, port)| SocketAddrV6::new(ip.into(), port, 0, 0))
                            .collect(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn request_round_trips(r in arb_request()) {
            prop_assert_eq!(parse(&r.to_query()), Ok(r));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = AnnounceRequest::parse_query(&bytes);
            let _ = AnnounceResponse::decode(&bytes);
        }

        #[test]
        fn response_round_trips(r in arb_response()) {
            prop_assert_eq!(AnnounceResponse::decode(&r.to_bytes()), Ok(Reply::Success(r)));
        }

        #[test]
        fn failure_round_trips(reason in ".{0,80}") {
            let mut body = Vec::new();
            response::encode_failure(&reason, &mut body);
            prop_assert_eq!(AnnounceResponse::decode(&body), Ok(Reply::Failure(reason)));
        }
    }
}
