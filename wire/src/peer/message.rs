//! Peer wire messages and their encoder.
//!
//! Every message after the handshake is a 4-byte big-endian length, then
//! (unless the length is zero, a keep-alive) one id byte and the payload.
//! The ids are those of BEP 3 (0-8), BEP 5 (9, port), BEP 6 (13-17),
//! BEP 10 (20) and BEP 52 (21-23).
//!
//! Payloads that can be large (bitfield, piece block, extended payload,
//! hash list) are [`Bytes`] so a decoded message shares the receive buffer.
//! The encoder writes into any [`BufMut`] (a `Vec<u8>`, a `BytesMut`, or a
//! fixed slice, which is checked for room first). To send a block straight
//! from a file, write only [`piece_header`] and let sendfile/splice follow
//! with the block.

use std::fmt;

use bytes::{BufMut, Bytes};

use super::error::PeerError;

/// The block size every current client requests (BEP 52: "All current
/// implementations use 2^14 (16 kiB)").
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Bytes of a piece message before its block: length prefix, id, piece
/// index, begin offset.
pub const PIECE_HEADER_LEN: usize = 4 + 1 + 4 + 4;

/// Length of one SHA-256 hash in the BEP 52 hash messages.
pub const HASH_LEN: usize = 32;

/// Bytes of the fixed fields of a hash request, hashes or hash reject:
/// pieces root, base layer, index, length, proof layers.
pub(crate) const HASH_REQUEST_FIELDS_LEN: usize = HASH_LEN + 4 * 4;

/// The id byte of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageId {
    /// BEP 3.
    Choke = 0,
    /// BEP 3.
    Unchoke = 1,
    /// BEP 3.
    Interested = 2,
    /// BEP 3.
    NotInterested = 3,
    /// BEP 3.
    Have = 4,
    /// BEP 3.
    Bitfield = 5,
    /// BEP 3.
    Request = 6,
    /// BEP 3.
    Piece = 7,
    /// BEP 3.
    Cancel = 8,
    /// BEP 5: the sender's DHT port.
    Port = 9,
    /// BEP 6.
    Suggest = 13,
    /// BEP 6.
    HaveAll = 14,
    /// BEP 6.
    HaveNone = 15,
    /// BEP 6 (and BEP 52's "reject").
    Reject = 16,
    /// BEP 6.
    AllowedFast = 17,
    /// BEP 10.
    Extended = 20,
    /// BEP 52.
    HashRequest = 21,
    /// BEP 52.
    Hashes = 22,
    /// BEP 52.
    HashReject = 23,
}

impl MessageId {
    /// The id for a byte, if bay knows it.
    pub const fn from_byte(byte: u8) -> Option<MessageId> {
        Some(match byte {
            0 => MessageId::Choke,
            1 => MessageId::Unchoke,
            2 => MessageId::Interested,
            3 => MessageId::NotInterested,
            4 => MessageId::Have,
            5 => MessageId::Bitfield,
            6 => MessageId::Request,
            7 => MessageId::Piece,
            8 => MessageId::Cancel,
            9 => MessageId::Port,
            13 => MessageId::Suggest,
            14 => MessageId::HaveAll,
            15 => MessageId::HaveNone,
            16 => MessageId::Reject,
            17 => MessageId::AllowedFast,
            20 => MessageId::Extended,
            21 => MessageId::HashRequest,
            22 => MessageId::Hashes,
            23 => MessageId::HashReject,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        self as u8
    }
}

/// The fields of request, cancel and reject messages: a block of a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockRequest {
    /// Piece index.
    pub piece: u32,
    /// Byte offset of the block within the piece.
    pub begin: u32,
    /// Block length in bytes.
    pub length: u32,
}

/// A piece message: one block of piece data.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Piece {
    /// Piece index.
    pub piece: u32,
    /// Byte offset of the block within the piece.
    pub begin: u32,
    /// The block, sharing the buffer it was decoded from.
    pub block: Bytes,
}

impl fmt::Debug for Piece {
    // A 16 KiB block in a log line helps nobody: show its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Piece")
            .field("piece", &self.piece)
            .field("begin", &self.begin)
            .field("block_len", &self.block.len())
            .finish()
    }
}

/// The fields of a BEP 52 hash request (also the whole payload of a hash
/// reject, and the head of a hashes message).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// The root of the file's merkle tree.
    pub pieces_root: [u8; HASH_LEN],
    /// Layers above the leaves (16 KiB block hashes) of the first requested
    /// hashes: 0 for block hashes, log2(piece length / 16 KiB) for piece
    /// hashes.
    pub base_layer: u32,
    /// Offset, in hashes, of the first requested hash within the base layer.
    pub index: u32,
    /// Number of base-layer hashes requested.
    pub length: u32,
    /// Number of ancestor layers whose uncle hashes prove the base hashes.
    pub proof_layers: u32,
}

/// The largest hash request length bay accepts: 8192 piece hashes, as
/// libtorrent caps it (BEP 52 itself asks for at most 512).
pub const MAX_HASH_REQUEST_LENGTH: u32 = 8192;

/// No merkle tree over 16 KiB blocks of a file below 2^64 bytes is taller
/// than 50 layers; this bound keeps the uncle arithmetic far from overflow.
pub const MAX_LAYER: u32 = 63;

impl HashRequest {
    /// Number of uncle hashes a hashes message answering this request
    /// carries after the base hashes.
    ///
    /// BEP 52: "the first log2(length)-1 proof layers are omitted", because
    /// the base hashes themselves cover them; one uncle comes from each
    /// remaining proof layer. For a single base hash that is one more uncle
    /// than proof layers (its own sibling), as libtorrent counts it:
    /// `max(0, proof_layers - log2(length) + 1)`.
    pub fn uncle_count(&self) -> u64 {
        let covered = u64::from(self.length.max(1).ilog2());
        (u64::from(self.proof_layers) + 1).saturating_sub(covered)
    }

    /// Number of hashes (base plus uncles) an answer carries.
    pub fn answer_hash_count(&self) -> u64 {
        u64::from(self.length) + self.uncle_count()
    }

    fn put<B: BufMut>(&self, out: &mut B) {
        out.put_slice(&self.pieces_root);
        out.put_u32(self.base_layer);
        out.put_u32(self.index);
        out.put_u32(self.length);
        out.put_u32(self.proof_layers);
    }
}

/// A BEP 52 hashes message: the request it answers and the hashes, base
/// layer first, then the uncle hashes from the lowest proof layer up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hashes {
    /// The request fields, echoed.
    pub request: HashRequest,
    /// The concatenated 32-byte hashes.
    pub hashes: Bytes,
}

impl Hashes {
    /// The hashes one by one. A trailing partial hash (only possible in a
    /// value built by hand) is left out.
    pub fn iter(&self) -> impl Iterator<Item = &[u8; HASH_LEN]> + '_ {
        self.hashes
            .chunks_exact(HASH_LEN)
            .filter_map(|chunk| chunk.try_into().ok())
    }

    /// The requested base-layer hashes.
    pub fn base(&self) -> impl Iterator<Item = &[u8; HASH_LEN]> + '_ {
        self.iter().take(self.request.length as usize)
    }

    /// The uncle hashes that prove the base hashes, lowest layer first.
    pub fn uncles(&self) -> impl Iterator<Item = &[u8; HASH_LEN]> + '_ {
        self.iter().skip(self.request.length as usize)
    }
}

/// One peer wire message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// A zero-length frame that only keeps the connection open.
    KeepAlive,
    /// The sender will not serve requests.
    Choke,
    /// The sender will serve requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing the receiver has.
    NotInterested,
    /// The sender has verified this piece.
    Have {
        /// Piece index.
        piece: u32,
    },
    /// The pieces the sender has, high bit of the first byte is piece 0.
    /// Usually the first message; some clients (aria2) send another later,
    /// which the session, not the decoder, decides about.
    Bitfield(Bytes),
    /// Asks for a block.
    Request(BlockRequest),
    /// A block of piece data.
    Piece(Piece),
    /// Withdraws a request.
    Cancel(BlockRequest),
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// The sender suggests downloading this piece from it (BEP 6).
    Suggest {
        /// Piece index.
        piece: u32,
    },
    /// The sender has every piece (BEP 6).
    HaveAll,
    /// The sender has no piece (BEP 6).
    HaveNone,
    /// The sender will not serve this request (BEP 6).
    Reject(BlockRequest),
    /// The receiver may request this piece even while choked (BEP 6).
    AllowedFast {
        /// Piece index.
        piece: u32,
    },
    /// A BEP 10 extension message: id 0 is the extended handshake, other
    /// ids are those the receiver assigned in its handshake's `m`.
    Extended {
        /// The extended message id.
        id: u8,
        /// The payload, undecoded.
        payload: Bytes,
    },
    /// Asks for merkle tree hashes (BEP 52).
    HashRequest(HashRequest),
    /// Answers a hash request (BEP 52).
    Hashes(Hashes),
    /// Refuses a hash request (BEP 52).
    HashReject(HashRequest),
}

impl Message {
    /// The id byte, or `None` for a keep-alive.
    pub fn id(&self) -> Option<MessageId> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => MessageId::Choke,
            Message::Unchoke => MessageId::Unchoke,
            Message::Interested => MessageId::Interested,
            Message::NotInterested => MessageId::NotInterested,
            Message::Have { .. } => MessageId::Have,
            Message::Bitfield(_) => MessageId::Bitfield,
            Message::Request(_) => MessageId::Request,
            Message::Piece(_) => MessageId::Piece,
            Message::Cancel(_) => MessageId::Cancel,
            Message::Port(_) => MessageId::Port,
            Message::Suggest { .. } => MessageId::Suggest,
            Message::HaveAll => MessageId::HaveAll,
            Message::HaveNone => MessageId::HaveNone,
            Message::Reject(_) => MessageId::Reject,
            Message::AllowedFast { .. } => MessageId::AllowedFast,
            Message::Extended { .. } => MessageId::Extended,
            Message::HashRequest(_) => MessageId::HashRequest,
            Message::Hashes(_) => MessageId::Hashes,
            Message::HashReject(_) => MessageId::HashReject,
        })
    }

    /// Bytes after the id byte.
    fn payload_len(&self) -> usize {
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have { .. } | Message::Suggest { .. } | Message::AllowedFast { .. } => 4,
            Message::Port(_) => 2,
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 12,
            Message::Bitfield(bits) => bits.len(),
            Message::Piece(p) => 8usize.saturating_add(p.block.len()),
            Message::Extended { payload, .. } => 1usize.saturating_add(payload.len()),
            Message::HashRequest(_) | Message::HashReject(_) => HASH_REQUEST_FIELDS_LEN,
            Message::Hashes(h) => HASH_REQUEST_FIELDS_LEN.saturating_add(h.hashes.len()),
        }
    }

    /// The value of the length prefix.
    fn length_prefix(&self) -> Result<u32, PeerError> {
        let len = match self {
            Message::KeepAlive => 0,
            _ => self.payload_len().saturating_add(1),
        };
        u32::try_from(len).map_err(|_| PeerError::PayloadTooLong { len })
    }

    /// Bytes the encoded message takes, length prefix included.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::KeepAlive => 4,
            _ => self.payload_len().saturating_add(5),
        }
    }

    /// Appends the encoded message to `out`.
    ///
    /// Fails, writing nothing, if a payload is too long for the 32-bit
    /// length prefix or `out` cannot take the whole message.
    pub fn encode<B: BufMut>(&self, out: &mut B) -> Result<(), PeerError> {
        let length = self.length_prefix()?;
        let needed = self.encoded_len();
        let available = out.remaining_mut();
        if available < needed {
            return Err(PeerError::BufferTooSmall { needed, available });
        }
        out.put_u32(length);
        if let Some(id) = self.id() {
            out.put_u8(id.byte());
        }
        self.put_payload(out);
        Ok(())
    }

    /// The encoded message in a new `Vec`.
    pub fn to_vec(&self) -> Result<Vec<u8>, PeerError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }

    fn put_payload<B: BufMut>(&self, out: &mut B) {
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have { piece }
            | Message::Suggest { piece }
            | Message::AllowedFast { piece } => out.put_u32(*piece),
            Message::Port(port) => out.put_u16(*port),
            Message::Request(r) | Message::Cancel(r) | Message::Reject(r) => {
                out.put_u32(r.piece);
                out.put_u32(r.begin);
                out.put_u32(r.length);
            }
            Message::Bitfield(bits) => out.put_slice(bits),
            Message::Piece(p) => {
                out.put_u32(p.piece);
                out.put_u32(p.begin);
                out.put_slice(&p.block);
            }
            Message::Extended { id, payload } => {
                out.put_u8(*id);
                out.put_slice(payload);
            }
            Message::HashRequest(r) | Message::HashReject(r) => r.put(out),
            Message::Hashes(h) => {
                h.request.put(out);
                out.put_slice(&h.hashes);
            }
        }
    }
}

/// The 13 bytes that precede a block of `block_len` bytes in a piece
/// message, for sending the block itself from a file.
pub fn piece_header(
    piece: u32,
    begin: u32,
    block_len: u32,
) -> Result<[u8; PIECE_HEADER_LEN], PeerError> {
    let mut out = [0u8; PIECE_HEADER_LEN];
    encode_piece_header(&mut &mut out[..], piece, begin, block_len)?;
    Ok(out)
}

/// Appends the 13-byte piece message header for a block of `block_len`
/// bytes to `out`; the caller sends exactly `block_len` bytes next.
pub fn encode_piece_header<B: BufMut>(
    out: &mut B,
    piece: u32,
    begin: u32,
    block_len: u32,
) -> Result<(), PeerError> {
    let length = block_len.checked_add(9).ok_or(PeerError::PayloadTooLong {
        len: block_len as usize,
    })?;
    let available = out.remaining_mut();
    if available < PIECE_HEADER_LEN {
        return Err(PeerError::BufferTooSmall {
            needed: PIECE_HEADER_LEN,
            available,
        });
    }
    out.put_u32(length);
    out.put_u8(MessageId::Piece.byte());
    out.put_u32(piece);
    out.put_u32(begin);
    Ok(())
}
