//! The incremental peer wire decoder: bytes in as they arrive, messages out.
//!
//! [`Decoder`] expects the handshake first and then the message stream. It
//! never blocks and never buffers on its own: the caller owns the receive
//! buffer, appends what the socket gave, and calls [`Decoder::decode`] until
//! it answers [`Status::Partial`], which also says how many more bytes the
//! next frame needs at least.
//!
//! Bounds are checked from the length prefix and id byte alone, so a peer
//! announcing a 4 GiB message is refused after 5 bytes rather than after
//! the buffer has grown to hold it. The decoder keeps no per-connection
//! meaning (which messages came before, what was requested): that is the
//! session's business.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{HashRequestProblem, PeerError};
use super::handshake::Handshake;
use super::message::{
    BlockRequest, HashRequest, Hashes, Message, MessageId, Piece, BLOCK_SIZE, HASH_LEN,
    HASH_REQUEST_FIELDS_LEN, MAX_HASH_REQUEST_LENGTH, MAX_LAYER,
};
use super::Status;

/// Size bounds the decoder enforces before buffering a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest block a piece message may carry. Default 16 KiB: bay never
    /// requests more, and peers close connections that ask for more
    /// (BEP 52).
    pub max_block: u32,
    /// Largest payload of a bitfield, extended or hashes message. Default
    /// 1 MiB: a bitfield for 8 million pieces, far above any layer.
    pub max_payload: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_block: BLOCK_SIZE,
            max_payload: 1 << 20,
        }
    }
}

impl Limits {
    /// The largest length prefix any message may have under these limits.
    pub fn max_length_prefix(&self) -> u32 {
        let piece = self.max_block.saturating_add(9);
        let payload = self.max_payload.saturating_add(1);
        piece.max(payload).max(FIXED_MAX)
    }
}

/// The longest fixed-size message: hash request and hash reject.
const FIXED_MAX: u32 = 1 + HASH_REQUEST_FIELDS_LEN as u32;

/// What the decoder produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The peer's handshake, always the first frame.
    Handshake(Handshake),
    /// A message.
    Message(Message),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Handshake,
    Messages,
}

/// The incremental decoder for one direction of one connection.
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: Limits,
    stage: Stage,
}

impl Decoder {
    /// A decoder for a fresh connection: the handshake comes first.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            stage: Stage::Handshake,
        }
    }

    /// A decoder for a connection whose handshake was already read.
    pub fn after_handshake(limits: Limits) -> Decoder {
        Decoder {
            limits,
            stage: Stage::Messages,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether the handshake has been decoded.
    pub fn handshake_done(&self) -> bool {
        self.stage == Stage::Messages
    }

    /// Decodes the next frame from the front of `buf`, removing its bytes.
    ///
    /// Payloads of the returned message share `buf`'s allocation (split off
    /// and frozen, not copied). On `Partial` and on error `buf` is left as
    /// it was; an error means the stream cannot be decoded further.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Status<Frame>, PeerError> {
        if self.stage == Stage::Handshake {
            return self.decode_handshake(buf).inspect(|status| {
                if let Status::Complete(_, used) = status {
                    buf.advance(*used);
                }
            });
        }
        let header = match frame_header(buf, &self.limits)? {
            Status::Complete(header, _) => header,
            Status::Partial { needed } => return Ok(Status::Partial { needed }),
        };
        let total = header.total();
        let message = match header.id {
            Some(id) if carries_bytes(id) => {
                if id == MessageId::Hashes {
                    // Validate before splitting so an error leaves `buf` whole.
                    let body = buf.get(5..total).unwrap_or_default();
                    let request = hash_request(id, body)?;
                    check_hash_count(
                        &request,
                        body.get(HASH_REQUEST_FIELDS_LEN..).unwrap_or_default(),
                    )?;
                }
                let mut frame = buf.split_to(total).freeze();
                frame.advance(5);
                parse_shared(id, frame)?
            }
            _ => {
                let message = parse_fixed(&header, buf.get(5..total).unwrap_or_default())?;
                buf.advance(total);
                message
            }
        };
        Ok(Status::Complete(Frame::Message(message), total))
    }

    /// Decodes the next frame from the front of `input`.
    ///
    /// The same as [`Decoder::decode`] over a borrowed slice: payloads are
    /// copied into new [`Bytes`], and the caller drops the `usize` bytes
    /// reported as used.
    pub fn decode_slice(&mut self, input: &[u8]) -> Result<Status<Frame>, PeerError> {
        if self.stage == Stage::Handshake {
            return self.decode_handshake(input);
        }
        let header = match frame_header(input, &self.limits)? {
            Status::Complete(header, _) => header,
            Status::Partial { needed } => return Ok(Status::Partial { needed }),
        };
        let total = header.total();
        let body = input.get(5..total).unwrap_or_default();
        let message = match header.id {
            Some(id) if carries_bytes(id) => parse_shared(id, Bytes::copy_from_slice(body))?,
            _ => parse_fixed(&header, body)?,
        };
        Ok(Status::Complete(Frame::Message(message), total))
    }

    fn decode_handshake(&mut self, input: &[u8]) -> Result<Status<Frame>, PeerError> {
        Ok(match Handshake::decode(input)? {
            Status::Complete(handshake, used) => {
                self.stage = Stage::Messages;
                Status::Complete(Frame::Handshake(handshake), used)
            }
            Status::Partial { needed } => Status::Partial { needed },
        })
    }
}

/// A message frame's length prefix and id, checked against the limits.
#[derive(Clone, Copy, Debug)]
struct Header {
    length: u32,
    /// `None` for a keep-alive.
    id: Option<MessageId>,
}

impl Header {
    /// Bytes of the whole frame.
    fn total(&self) -> usize {
        (self.length as usize).saturating_add(4)
    }
}

/// Reads and checks the frame header; `Complete` only once the whole frame
/// is in `input`.
fn frame_header(input: &[u8], limits: &Limits) -> Result<Status<Header>, PeerError> {
    let Some(length) = be_u32(input, 0) else {
        return Ok(Status::Partial {
            needed: 4 - input.len(),
        });
    };
    let max = limits.max_length_prefix();
    if length > max {
        return Err(PeerError::Oversized {
            what: "any",
            length,
            max,
        });
    }
    let id = if length == 0 {
        None
    } else {
        let Some(&byte) = input.get(4) else {
            return Ok(Status::Partial { needed: 1 });
        };
        let id =
            MessageId::from_byte(byte).ok_or(PeerError::UnknownMessageId { id: byte, length })?;
        check_length(id, length, limits)?;
        Some(id)
    };
    let header = Header { length, id };
    let total = header.total();
    match total.checked_sub(input.len()) {
        Some(needed) if needed > 0 => Ok(Status::Partial { needed }),
        _ => Ok(Status::Complete(header, total)),
    }
}

/// Checks a length prefix against what message `id` can have.
fn check_length(id: MessageId, length: u32, limits: &Limits) -> Result<(), PeerError> {
    let exact = |want: u32| {
        if length == want {
            Ok(())
        } else {
            Err(PeerError::BadLength { id, length })
        }
    };
    let bounded = |min: u32, max: u32| {
        if length < min {
            Err(PeerError::BadLength { id, length })
        } else if length > max {
            Err(PeerError::Oversized {
                what: id_name(id),
                length,
                max,
            })
        } else {
            Ok(())
        }
    };
    let payload_max = limits.max_payload.saturating_add(1);
    match id {
        MessageId::Choke
        | MessageId::Unchoke
        | MessageId::Interested
        | MessageId::NotInterested
        | MessageId::HaveAll
        | MessageId::HaveNone => exact(1),
        MessageId::Have | MessageId::Suggest | MessageId::AllowedFast => exact(5),
        MessageId::Port => exact(3),
        MessageId::Request | MessageId::Cancel | MessageId::Reject => exact(13),
        MessageId::HashRequest | MessageId::HashReject => exact(FIXED_MAX),
        MessageId::Piece => bounded(9, limits.max_block.saturating_add(9)),
        MessageId::Bitfield => bounded(1, payload_max),
        MessageId::Extended => bounded(2, payload_max),
        MessageId::Hashes => bounded(FIXED_MAX, payload_max),
    }
}

fn id_name(id: MessageId) -> &'static str {
    match id {
        MessageId::Piece => "piece",
        MessageId::Bitfield => "bitfield",
        MessageId::Extended => "extended",
        MessageId::Hashes => "hashes",
        _ => "fixed-size",
    }
}

/// Whether the message keeps part of its payload as [`Bytes`].
fn carries_bytes(id: MessageId) -> bool {
    matches!(
        id,
        MessageId::Bitfield | MessageId::Piece | MessageId::Extended | MessageId::Hashes
    )
}

/// Parses a message without a shared payload from its body (the bytes after
/// the id), whose length `check_length` has already matched to the id.
fn parse_fixed(header: &Header, body: &[u8]) -> Result<Message, PeerError> {
    let Some(id) = header.id else {
        return Ok(Message::KeepAlive);
    };
    let bad = || PeerError::BadLength {
        id,
        length: header.length,
    };
    let piece = || be_u32(body, 0).ok_or_else(bad);
    let block = || {
        Ok::<_, PeerError>(BlockRequest {
            piece: be_u32(body, 0).ok_or_else(bad)?,
            begin: be_u32(body, 4).ok_or_else(bad)?,
            length: be_u32(body, 8).ok_or_else(bad)?,
        })
    };
    Ok(match id {
        MessageId::Choke => Message::Choke,
        MessageId::Unchoke => Message::Unchoke,
        MessageId::Interested => Message::Interested,
        MessageId::NotInterested => Message::NotInterested,
        MessageId::HaveAll => Message::HaveAll,
        MessageId::HaveNone => Message::HaveNone,
        MessageId::Have => Message::Have { piece: piece()? },
        MessageId::Suggest => Message::Suggest { piece: piece()? },
        MessageId::AllowedFast => Message::AllowedFast { piece: piece()? },
        MessageId::Port => {
            let bytes = body.get(..2).ok_or_else(bad)?;
            Message::Port(u16::from_be_bytes(bytes.try_into().map_err(|_| bad())?))
        }
        MessageId::Request => Message::Request(block()?),
        MessageId::Cancel => Message::Cancel(block()?),
        MessageId::Reject => Message::Reject(block()?),
        MessageId::HashRequest => Message::HashRequest(hash_request(id, body)?),
        MessageId::HashReject => Message::HashReject(hash_request(id, body)?),
        MessageId::Bitfield | MessageId::Piece | MessageId::Extended | MessageId::Hashes => {
            return parse_shared(id, Bytes::copy_from_slice(body))
        }
    })
}

/// Parses a message that keeps part of its body as [`Bytes`].
fn parse_shared(id: MessageId, body: Bytes) -> Result<Message, PeerError> {
    let length = u32::try_from(body.len().saturating_add(1)).unwrap_or(u32::MAX);
    let bad = || PeerError::BadLength { id, length };
    Ok(match id {
        MessageId::Bitfield => Message::Bitfield(body),
        MessageId::Piece => {
            let piece = be_u32(&body, 0).ok_or_else(bad)?;
            let begin = be_u32(&body, 4).ok_or_else(bad)?;
            Message::Piece(Piece {
                piece,
                begin,
                block: tail(body, 8).ok_or_else(bad)?,
            })
        }
        MessageId::Extended => {
            let ext = *body.first().ok_or_else(bad)?;
            Message::Extended {
                id: ext,
                payload: tail(body, 1).ok_or_else(bad)?,
            }
        }
        MessageId::Hashes => {
            let request = hash_request(id, &body)?;
            let hashes = tail(body, HASH_REQUEST_FIELDS_LEN).ok_or_else(bad)?;
            check_hash_count(&request, &hashes)?;
            Message::Hashes(Hashes { request, hashes })
        }
        _ => {
            let header = Header {
                length,
                id: Some(id),
            };
            return parse_fixed(&header, &body);
        }
    })
}

/// Reads and validates the five hash request fields at the start of `body`.
fn hash_request(id: MessageId, body: &[u8]) -> Result<HashRequest, PeerError> {
    let bad = || PeerError::BadLength {
        id,
        length: u32::try_from(body.len().saturating_add(1)).unwrap_or(u32::MAX),
    };
    let root = body.get(..HASH_LEN).ok_or_else(bad)?;
    let mut pieces_root = [0u8; HASH_LEN];
    pieces_root.copy_from_slice(root);
    let request = HashRequest {
        pieces_root,
        base_layer: be_u32(body, HASH_LEN).ok_or_else(bad)?,
        index: be_u32(body, HASH_LEN + 4).ok_or_else(bad)?,
        length: be_u32(body, HASH_LEN + 8).ok_or_else(bad)?,
        proof_layers: be_u32(body, HASH_LEN + 12).ok_or_else(bad)?,
    };
    validate_hash_request(&request)
        .map_err(|problem| PeerError::InvalidHashRequest { id, problem })?;
    Ok(request)
}

/// BEP 52: "Index MUST be a multiple of length" and length a power of two.
/// BEP 52 asks for at least two, but libtorrent asks for one block hash
/// when pieces are 16 KiB, so one is allowed.
fn validate_hash_request(request: &HashRequest) -> Result<(), HashRequestProblem> {
    let length = request.length;
    if !length.is_power_of_two() {
        return Err(HashRequestProblem::LengthNotPowerOfTwo(length));
    }
    if length > MAX_HASH_REQUEST_LENGTH {
        return Err(HashRequestProblem::LengthTooLarge(length));
    }
    // `length` is a power of two here, so this is `index % length != 0`.
    if request.index & (length - 1) != 0 {
        return Err(HashRequestProblem::MisalignedIndex {
            index: request.index,
            length,
        });
    }
    for layer in [request.base_layer, request.proof_layers] {
        if layer > MAX_LAYER {
            return Err(HashRequestProblem::LayerTooHigh(layer));
        }
    }
    Ok(())
}

fn check_hash_count(request: &HashRequest, hashes: &[u8]) -> Result<(), PeerError> {
    let expected = request.answer_hash_count();
    let fits = expected
        .checked_mul(HASH_LEN as u64)
        .is_some_and(|bytes| bytes == hashes.len() as u64);
    if fits {
        Ok(())
    } else {
        Err(PeerError::HashCountMismatch {
            expected,
            got: hashes.len(),
        })
    }
}

/// `bytes` without its first `at` bytes, or `None` if it is shorter.
fn tail(mut bytes: Bytes, at: usize) -> Option<Bytes> {
    if bytes.len() < at {
        return None;
    }
    bytes.advance(at);
    Some(bytes)
}

/// The big-endian `u32` at `at`, if `input` holds it.
fn be_u32(input: &[u8], at: usize) -> Option<u32> {
    let bytes = input.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}
