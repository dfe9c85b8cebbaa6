//! Errors of the peer wire codec, each saying whose fault it is.
//!
//! A connection that fails to decode is closed either way, but the session
//! treats the causes differently: a peer that breaks the protocol is banned,
//! a peer that merely exceeds one of bay's limits is dropped, and a local
//! misuse of the encoder is a bug to log. [`PeerError::fault`] tells them
//! apart so callers need not match every variant.

use thiserror::Error;

use super::extended::ExtendedHandshakeProblem;
use super::message::MessageId;

/// Who caused a [`PeerError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The remote peer sent bytes the protocol does not allow.
    Peer,
    /// The bytes are valid protocol but exceed a limit bay sets (see
    /// [`super::Limits`]): an incompatibility, not misbehaviour.
    Limit,
    /// The local caller asked for something that cannot be encoded.
    Local,
}

/// What is wrong with the fields of a BEP 52 hash request, hashes or hash
/// reject message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum HashRequestProblem {
    /// Length is zero or not a power of two.
    #[error("length {0} is not a power of two")]
    LengthNotPowerOfTwo(u32),
    /// Length is above the largest request bay answers or sends.
    #[error("length {0} is above the limit")]
    LengthTooLarge(u32),
    /// Index is not a multiple of length (BEP 52: "Index MUST be a multiple
    /// of length").
    #[error("index {index} is not a multiple of length {length}")]
    MisalignedIndex {
        /// The first requested hash.
        index: u32,
        /// The number of hashes requested.
        length: u32,
    },
    /// Base layer or proof layers name a layer no SHA-256 tree over 16 KiB
    /// blocks of a 64-bit file can have.
    #[error("layer {0} is beyond any possible tree height")]
    LayerTooHigh(u32),
}

/// A failure to decode or encode peer wire bytes.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PeerError {
    /// The handshake does not start with `\x13BitTorrent protocol`.
    #[error("not a BitTorrent handshake (protocol string differs at byte {offset})")]
    NotBitTorrent {
        /// The first byte that differs.
        offset: usize,
    },
    /// The message id is not one bay knows.
    #[error("unknown message id {id} (length {length})")]
    UnknownMessageId {
        /// The id byte.
        id: u8,
        /// The length prefix of the frame.
        length: u32,
    },
    /// The length prefix does not fit the message: wrong for a fixed-size
    /// message, or too short for the fixed part of a variable one.
    #[error("{id:?} message with impossible length {length}")]
    BadLength {
        /// The message id.
        id: MessageId,
        /// The length prefix of the frame.
        length: u32,
    },
    /// The length prefix is above the configured maximum for this message;
    /// rejected before any of the payload is buffered.
    #[error("{what} message of length {length} is above the limit {max}")]
    Oversized {
        /// Which message: its id name, or "any" when only the prefix is known.
        what: &'static str,
        /// The length prefix of the frame.
        length: u32,
        /// The largest length prefix allowed for it.
        max: u32,
    },
    /// A hash request, hashes or hash reject message has invalid fields.
    #[error("{id:?} message: {problem}")]
    InvalidHashRequest {
        /// Which of the three hash messages.
        id: MessageId,
        /// What is wrong.
        problem: HashRequestProblem,
    },
    /// A hashes message does not carry the number of hashes its request
    /// fields call for (length plus the uncle hashes of the proof layers).
    #[error("hashes message carries {got} bytes of hashes, expected {expected} hashes")]
    HashCountMismatch {
        /// The number of hashes the fields call for.
        expected: u64,
        /// The number of hash bytes present.
        got: usize,
    },
    /// A BEP 10 extended handshake payload is not the dictionary BEP 10
    /// describes.
    #[error("extended handshake: {0}")]
    BadExtendedHandshake(ExtendedHandshakeProblem),
    /// A payload is too long for a 32-bit length prefix.
    #[error("payload of {len} bytes does not fit a length prefix")]
    PayloadTooLong {
        /// The payload length.
        len: usize,
    },
    /// The output buffer cannot grow to hold the encoded bytes.
    #[error("output buffer has room for {available} bytes, {needed} needed")]
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes the buffer can still take.
        available: usize,
    },
}

impl PeerError {
    /// Who caused this error.
    pub fn fault(&self) -> Fault {
        match self {
            PeerError::NotBitTorrent { .. }
            | PeerError::UnknownMessageId { .. }
            | PeerError::BadLength { .. }
            | PeerError::InvalidHashRequest { .. }
            | PeerError::HashCountMismatch { .. }
            | PeerError::BadExtendedHandshake(_) => Fault::Peer,
            PeerError::Oversized { .. } => Fault::Limit,
            PeerError::PayloadTooLong { .. } | PeerError::BufferTooSmall { .. } => Fault::Local,
        }
    }

    /// Whether the remote peer broke the protocol (and may be banned).
    pub fn is_peer_fault(&self) -> bool {
        self.fault() == Fault::Peer
    }
}
