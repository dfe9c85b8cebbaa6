//! The peer handshake (BEP 3) and the reserved bits bay reads and sets.
//!
//! A handshake is exactly 68 bytes: the length-prefixed protocol string
//! `\x13BitTorrent protocol`, 8 reserved bytes, the 20-byte info hash (for
//! a v2 torrent, the SHA-256 info hash truncated to 20 bytes, BEP 52) and
//! the sender's 20-byte peer id. Decoding checks the protocol string as the
//! first bytes arrive, so an HTTP request or an encrypted stream sent to the
//! peer port fails at once instead of after 68 bytes.

use bytes::BufMut;

use super::error::PeerError;
use super::Status;

/// The protocol string, preceded on the wire by its length (19).
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";

/// Length of an encoded handshake.
pub const HANDSHAKE_LEN: usize = 1 + PROTOCOL.len() + 8 + 20 + 20;

/// The 8 reserved bytes of a handshake, with accessors for the bits bay uses.
///
/// An extension is on for a connection only when both sides set its bit
/// (BEP 6: "The extension is enabled only if both ends of the connection set
/// this bit"); [`Reserved::common`] gives that intersection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

/// BEP 10: "set the 20th bit from the right (counting starts at 0) in the
/// reserved bytes", i.e. `reserved[5] & 0x10`.
const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10);
/// BEP 6: "setting the third least significant bit of the last reserved
/// byte", i.e. `reserved[7] |= 0x04`.
const FAST_EXTENSION: (usize, u8) = (7, 0x04);
/// BEP 52, Upgrade Path: "set the 4th most significant bit in the last byte
/// of the reserved bitfield", i.e. `reserved[7] & 0x10`: the sender of a
/// hybrid torrent's v1 info hash also speaks v2.
const V2_UPGRADE: (usize, u8) = (7, 0x10);
/// bay's own: the sender proves fleet membership right after the
/// handshakes ([`super::fleet_auth`]). A bit no BEP assigns, in the first
/// byte, which the BEPs leave to clients.
const FLEET_AUTH: (usize, u8) = (0, 0x08);

impl Reserved {
    /// No bits set.
    pub const NONE: Reserved = Reserved([0; 8]);

    /// The bits bay sets on its own handshakes: fast extension and
    /// extension protocol. The v2 upgrade bit stays off because bay's
    /// torrents are v2-only and are always named by their v2 info hash.
    pub const BAY: Reserved = Reserved::NONE
        .with(FAST_EXTENSION, true)
        .with(EXTENSION_PROTOCOL, true);

    /// Whether the fast extension (BEP 6) bit is set.
    pub const fn fast_extension(self) -> bool {
        self.bit(FAST_EXTENSION)
    }

    /// Whether the extension protocol (BEP 10) bit is set.
    pub const fn extension_protocol(self) -> bool {
        self.bit(EXTENSION_PROTOCOL)
    }

    /// Whether the v2 upgrade (BEP 52) bit is set.
    pub const fn v2_upgrade(self) -> bool {
        self.bit(V2_UPGRADE)
    }

    /// These bits with the fast extension bit set to `on`.
    #[must_use]
    pub const fn with_fast_extension(self, on: bool) -> Reserved {
        self.with(FAST_EXTENSION, on)
    }

    /// These bits with the extension protocol bit set to `on`.
    #[must_use]
    pub const fn with_extension_protocol(self, on: bool) -> Reserved {
        self.with(EXTENSION_PROTOCOL, on)
    }

    /// Whether the fleet-auth bit (bay's own) is set.
    pub const fn fleet_auth(self) -> bool {
        self.bit(FLEET_AUTH)
    }

    /// These bits with the fleet-auth bit set to `on`.
    #[must_use]
    pub const fn with_fleet_auth(self, on: bool) -> Reserved {
        self.with(FLEET_AUTH, on)
    }

    /// These bits with the v2 upgrade bit set to `on`.
    #[must_use]
    pub const fn with_v2_upgrade(self, on: bool) -> Reserved {
        self.with(V2_UPGRADE, on)
    }

    /// The bits set on both sides: what a connection may actually use.
    #[must_use]
    pub const fn common(self, other: Reserved) -> Reserved {
        let mut out = [0u8; 8];
        let mut i = 0;
        while i < 8 {
            out[i] = self.0[i] & other.0[i];
            i += 1;
        }
        Reserved(out)
    }

    const fn bit(self, (byte, mask): (usize, u8)) -> bool {
        self.0[byte] & mask != 0
    }

    const fn with(mut self, (byte, mask): (usize, u8), on: bool) -> Reserved {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
        self
    }
}

/// A peer handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Extension bits.
    pub reserved: Reserved,
    /// The torrent's info hash; for v2 torrents the first 20 bytes of the
    /// SHA-256 info hash.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// A handshake with bay's reserved bits ([`Reserved::BAY`]).
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        Handshake {
            reserved: Reserved::BAY,
            info_hash,
            peer_id,
        }
    }

    /// The 68 encoded bytes.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        let mut cursor = &mut out[..];
        self.put(&mut cursor);
        out
    }

    /// Appends the 68 encoded bytes to `out`.
    pub fn encode<B: BufMut>(&self, out: &mut B) -> Result<(), PeerError> {
        let available = out.remaining_mut();
        if available < HANDSHAKE_LEN {
            return Err(PeerError::BufferTooSmall {
                needed: HANDSHAKE_LEN,
                available,
            });
        }
        self.put(out);
        Ok(())
    }

    fn put<B: BufMut>(&self, out: &mut B) {
        out.put_u8(PROTOCOL.len() as u8);
        out.put_slice(PROTOCOL);
        out.put_slice(&self.reserved.0);
        out.put_slice(&self.info_hash);
        out.put_slice(&self.peer_id);
    }

    /// Decodes a handshake from the start of `input`.
    ///
    /// Bytes after the first 68 are not looked at: they are the first
    /// messages. The protocol string is checked as far as it has arrived.
    pub fn decode(input: &[u8]) -> Result<Status<Handshake>, PeerError> {
        check_prefix(input)?;
        let Some(bytes) = input.get(..HANDSHAKE_LEN) else {
            return Ok(Status::Partial {
                needed: HANDSHAKE_LEN - input.len(),
            });
        };
        let (_, rest) = bytes.split_at(1 + PROTOCOL.len());
        let (reserved, rest) = split_array::<8>(rest);
        let (info_hash, rest) = split_array::<20>(rest);
        let (peer_id, _) = split_array::<20>(rest);
        Ok(Status::Complete(
            Handshake {
                reserved: Reserved(reserved),
                info_hash,
                peer_id,
            },
            HANDSHAKE_LEN,
        ))
    }
}

/// Checks whatever part of `\x13BitTorrent protocol` `input` holds.
fn check_prefix(input: &[u8]) -> Result<(), PeerError> {
    const LEN: [u8; 1] = [PROTOCOL.len() as u8];
    let expected = LEN.iter().chain(PROTOCOL.iter());
    match input
        .iter()
        .zip(expected)
        .position(|(got, want)| got != want)
    {
        Some(offset) => Err(PeerError::NotBitTorrent { offset }),
        None => Ok(()),
    }
}

/// Splits `N` bytes off the front, zero-filling if `input` is shorter (the
/// caller has already checked the length, so that never happens).
fn split_array<const N: usize>(input: &[u8]) -> ([u8; N], &[u8]) {
    let mut out = [0u8; N];
    let n = N.min(input.len());
    let (head, rest) = input.split_at(n);
    out[..n].copy_from_slice(head);
    (out, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: Reserved::BAY,
            info_hash: [0xaa; 20],
            peer_id: *b"-BY0001-abcdefghijkl",
        }
    }

    #[test]
    fn reserved_bits_sit_where_the_beps_put_them() {
        assert_eq!(
            Reserved::NONE.with_fast_extension(true).0,
            [0, 0, 0, 0, 0, 0, 0, 0x04]
        );
        assert_eq!(
            Reserved::NONE.with_extension_protocol(true).0,
            [0, 0, 0, 0, 0, 0x10, 0, 0]
        );
        assert_eq!(
            Reserved::NONE.with_v2_upgrade(true).0,
            [0, 0, 0, 0, 0, 0, 0, 0x10]
        );
        assert!(Reserved::BAY.fast_extension());
        assert!(Reserved::BAY.extension_protocol());
        assert!(!Reserved::BAY.v2_upgrade());
        // libtorrent 2.0 sets DHT (reserved[7] & 0x01) too; reading must
        // not be confused by bits bay does not use.
        let libtorrent = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert!(libtorrent.fast_extension() && libtorrent.extension_protocol());
        assert!(!libtorrent.v2_upgrade());
    }

    #[test]
    fn with_clears_as_well_as_sets() {
        let r = Reserved([0xff; 8]).with_fast_extension(false);
        assert!(!r.fast_extension());
        assert_eq!(r.0[7], 0xfb);
        assert!(r.v2_upgrade());
    }

    #[test]
    fn common_keeps_only_bits_both_sides_set() {
        let ours = Reserved::BAY;
        let theirs = Reserved::NONE
            .with_fast_extension(true)
            .with_v2_upgrade(true);
        let both = ours.common(theirs);
        assert!(both.fast_extension());
        assert!(!both.extension_protocol());
        assert!(!both.v2_upgrade());
    }

    #[test]
    fn encodes_to_the_bep3_layout() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], b"BitTorrent protocol");
        assert_eq!(&bytes[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        assert_eq!(&bytes[28..48], &[0xaa; 20]);
        assert_eq!(&bytes[48..68], b"-BY0001-abcdefghijkl");
        let mut vec = Vec::new();
        sample().encode(&mut vec).expect("a Vec grows");
        assert_eq!(vec, bytes);
    }

    #[test]
    fn decodes_what_it_encodes_and_ignores_what_follows() {
        let mut bytes = sample().to_bytes().to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 1, 2]);
        assert_eq!(
            Handshake::decode(&bytes),
            Ok(Status::Complete(sample(), HANDSHAKE_LEN))
        );
    }

    #[test]
    fn every_truncation_is_partial_with_the_exact_shortfall() {
        let bytes = sample().to_bytes();
        for cut in 0..HANDSHAKE_LEN {
            assert_eq!(
                Handshake::decode(&bytes[..cut]),
                Ok(Status::Partial {
                    needed: HANDSHAKE_LEN - cut
                }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn garbage_fails_on_the_first_wrong_byte() {
        assert_eq!(
            Handshake::decode(b"GET / HTTP/1.1\r\n"),
            Err(PeerError::NotBitTorrent { offset: 0 })
        );
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent pro"),
            Ok(Status::Partial {
                needed: HANDSHAKE_LEN - 15
            })
        );
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent Protocol"),
            Err(PeerError::NotBitTorrent { offset: 12 })
        );
    }

    #[test]
    fn a_full_fixed_buffer_is_reported_not_overrun() {
        let mut small = [0u8; 10];
        let mut cursor = &mut small[..];
        assert_eq!(
            sample().encode(&mut cursor),
            Err(PeerError::BufferTooSmall {
                needed: 68,
                available: 10
            })
        );
    }
}
