//! The BitTorrent peer wire protocol, as pure functions over bytes.
//!
//! This module owns everything that crosses a peer connection: the 68-byte
//! handshake and its reserved bits, every message bay speaks (BEP 3 and 5,
//! the BEP 6 fast extension, BEP 10 extended messages, the BEP 52 hash
//! messages), an incremental decoder that takes bytes as they arrive, and an
//! encoder that writes into the caller's buffer. It reads no socket and no
//! clock: the connection code moves bytes in and out and decides what a
//! message means for the session (a second bitfield, an unrequested piece,
//! a fast-extension message the handshake did not negotiate).
//!
//! Layout:
//! - [`handshake`]: the handshake and the [`Reserved`] bits bay uses.
//! - [`message`]: the [`Message`] type and its encoder, including the
//!   13-byte piece header written alone so the block can follow by
//!   sendfile/splice.
//! - [`decoder`]: the incremental [`Decoder`], bounded by [`Limits`].
//! - [`extended`]: the BEP 10 extended-handshake payload.
//! - [`error`]: [`PeerError`], which says whose fault each failure is.
//!
//! Zero copy: the decoder hands out piece blocks, bitfields, hash lists and
//! extended payloads as [`bytes::Bytes`] slices of the receive buffer, so a
//! 16 KiB block is never copied between the socket and the disk.
//!
//! ```
//! use bay_wire::peer::{BytesMut, Decoder, Frame, Handshake, Limits, Message, Status};
//!
//! // What one read from the socket might hold: a handshake, then the start
//! // of a have message.
//! let mut buf = BytesMut::new();
//! buf.extend_from_slice(&Handshake::new([1; 20], [2; 20]).to_bytes());
//! buf.extend_from_slice(&[0, 0, 0, 5, 4, 0]);
//!
//! let mut decoder = Decoder::new(Limits::default());
//! let Ok(Status::Complete(Frame::Handshake(theirs), _)) = decoder.decode(&mut buf) else {
//!     panic!("no handshake");
//! };
//! assert!(theirs.reserved.fast_extension());
//! // Three bytes of the have message are still on their way.
//! assert_eq!(decoder.decode(&mut buf), Ok(Status::Partial { needed: 3 }));
//! buf.extend_from_slice(&[0, 1, 2]);
//! assert_eq!(
//!     decoder.decode(&mut buf),
//!     Ok(Status::Complete(Frame::Message(Message::Have { piece: 258 }), 9))
//! );
//! ```

pub mod decoder;
pub mod error;
pub mod extended;
pub mod fleet_auth;
pub mod handshake;
pub mod message;

/// The buffer types the codec takes and hands out, re-exported so callers
/// use the same `bytes` version as the decoder.
pub use bytes::{Bytes, BytesMut};
pub use decoder::{Decoder, Frame, Limits};
pub use error::{Fault, HashRequestProblem, PeerError};
pub use extended::{ExtendedHandshake, ExtendedHandshakeProblem, EXTENDED_HANDSHAKE_ID};
pub use fleet_auth::{AuthError, AuthStep, FleetAuth, NONCE_LEN};
pub use handshake::{Handshake, Reserved, HANDSHAKE_LEN, PROTOCOL};
pub use message::{
    encode_piece_header, piece_header, BlockRequest, HashRequest, Hashes, Message, MessageId,
    Piece, BLOCK_SIZE, HASH_LEN, PIECE_HEADER_LEN,
};

/// The outcome of a decode step that did not fail.
///
/// Like httparse, "need more bytes" is a normal answer, not an error.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole value was decoded from the first `usize` bytes of the input.
    Complete(T, usize),
    /// The input ends inside a value: at least `needed` more bytes must
    /// arrive before it can be decoded.
    Partial {
        /// The least number of further bytes that can complete the value.
        needed: usize,
    },
}

impl<T> Status<T> {
    /// The decoded value, or `None` when more bytes are needed.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(value, _) => Some(value),
            Status::Partial { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests;
