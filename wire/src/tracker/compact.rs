//! Compact peer addresses: 6 bytes for IPv4 (BEP 23), 18 for IPv6 (BEP 7,
//! BEP 15), each an address then a big-endian port.
//!
//! The HTTP `peers`/`peers6` strings and the UDP announce response carry
//! the same records, so both read and write them here.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// Bytes of one compact IPv4 peer.
pub const V4_LEN: usize = 6;
/// Bytes of one compact IPv6 peer.
pub const V6_LEN: usize = 18;

/// Decodes a run of compact IPv4 peers; `None` if a partial record is
/// left over.
pub fn decode_v4(bytes: &[u8]) -> Option<Vec<SocketAddrV4>> {
    Some(records::<V4_LEN>(bytes)?.map(peer_v4).collect())
}

/// Decodes a run of compact IPv6 peers; `None` if a partial record is
/// left over.
pub fn decode_v6(bytes: &[u8]) -> Option<Vec<SocketAddrV6>> {
    Some(records::<V6_LEN>(bytes)?.map(peer_v6).collect())
}

/// Appends the compact form of each IPv4 peer.
pub fn encode_v4(peers: &[SocketAddrV4], out: &mut Vec<u8>) {
    out.reserve(peers.len() * V4_LEN);
    for p in peers {
        out.extend_from_slice(&p.ip().octets());
        out.extend_from_slice(&p.port().to_be_bytes());
    }
}

/// Appends the compact form of each IPv6 peer (flow info and scope id are
/// not carried).
pub fn encode_v6(peers: &[SocketAddrV6], out: &mut Vec<u8>) {
    out.reserve(peers.len() * V6_LEN);
    for p in peers {
        out.extend_from_slice(&p.ip().octets());
        out.extend_from_slice(&p.port().to_be_bytes());
    }
}

/// Splits `bytes` into `N`-byte records, or `None` if a partial record is
/// left over.
pub(crate) fn records<const N: usize>(bytes: &[u8]) -> Option<impl Iterator<Item = &[u8; N]>> {
    if !bytes.len().is_multiple_of(N) {
        return None;
    }
    // chunks_exact yields only N-byte slices, so the conversion never fails.
    Some(bytes.chunks_exact(N).filter_map(|c| c.try_into().ok()))
}

fn peer_v4(b: &[u8; V4_LEN]) -> SocketAddrV4 {
    let [a, b2, c, d, p0, p1] = *b;
    SocketAddrV4::new(Ipv4Addr::new(a, b2, c, d), u16::from_be_bytes([p0, p1]))
}

fn peer_v6(b: &[u8; V6_LEN]) -> SocketAddrV6 {
    // Constant indexes into a fixed-size array: checked at compile time.
    let mut ip = [0u8; 16];
    ip.copy_from_slice(&b[..16]);
    let port = u16::from_be_bytes([b[16], b[17]]);
    SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep23_example() {
        // 192.168.24.52:2001, as the compact format spells it.
        let bytes = [0xC0, 0xA8, 0x18, 0x34, 0x07, 0xD1];
        let peers = decode_v4(&bytes);
        assert_eq!(
            peers,
            Some(vec![SocketAddrV4::new(
                Ipv4Addr::new(192, 168, 24, 52),
                2001
            )])
        );
        let mut out = Vec::new();
        encode_v4(&peers.unwrap_or_default(), &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn v6_layout_and_partial_records() {
        let peer = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0x1ae1, 0, 0);
        let mut out = Vec::new();
        encode_v6(&[peer], &mut out);
        let mut expected = [0u8; 18];
        expected[15] = 1;
        expected[16] = 0x1a;
        expected[17] = 0xe1;
        assert_eq!(out, expected);
        assert_eq!(decode_v6(&out), Some(vec![peer]));
        assert_eq!(decode_v6(&out[..17]), None);
        assert_eq!(decode_v4(&out[..17]), None);
        assert_eq!(decode_v4(&[]), Some(vec![]));
    }
}
