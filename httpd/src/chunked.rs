//! The chunked transfer coding (RFC 9112 §7.1), sans-IO, both directions.
//!
//! Server and client both read and write chunked bodies, and both must do it
//! without holding a body whole, so this module owns the coding alone: no
//! sockets, no buffers of its own, no clock.
//!
//! # Decoding
//!
//! [`ChunkedDecoder`] is incremental. Feed it whatever bytes have arrived
//! with [`ChunkedDecoder::decode`]; it answers in the httparse style:
//!
//! * [`Decoded::Data`]: `input[data]` is body data; the first `consumed`
//!   bytes of `input` are spent (framing before the data, plus the data).
//! * [`Decoded::Partial`]: more input is needed; the first `consumed` bytes
//!   (framing only) are spent and must not be fed again.
//! * [`Decoded::Done`]: the last chunk and the trailers are read; the first
//!   `consumed` bytes are spent and whatever follows belongs to the next
//!   message.
//!
//! "Need more bytes" is never an error. Every input byte is looked at once:
//! framing state (the partial size line, the partial trailer) lives in the
//! decoder, so the caller may drop spent bytes and feed the rest later in
//! pieces of any size. Data ranges always lie inside `input` and never
//! exceed it, so the body out is never longer than the bytes in.
//!
//! Strictness: sizes are hex digits only (no sign, no `0x`, at least one
//! digit), checked for overflow of `u64`; the whole size line, extensions
//! included, is bounded by [`ChunkedLimits::max_size_line`]; lines end in
//! CRLF (a bare LF is an error: lenient line endings are a request smuggling
//! vector). Chunk extensions are skipped. Trailer fields are read, counted
//! against [`ChunkedLimits::max_trailer_bytes`] and dropped, since nothing in
//! bay needs them.
//!
//! ```
//! use bay_httpd::chunked::{ChunkedDecoder, Decoded};
//! let mut dec = ChunkedDecoder::new();
//! let input = b"5\r\nhello\r\n0\r\n\r\n";
//! let Ok(Decoded::Data { data, consumed }) = dec.decode(input) else { panic!() };
//! assert_eq!(&input[data], b"hello");
//! let Ok(Decoded::Done { .. }) = dec.decode(&input[consumed..]) else { panic!() };
//! ```
//!
//! # Encoding
//!
//! A chunk on the wire is [`ChunkHeader`] (`<hex size>\r\n`), the data, then
//! [`CHUNK_END`]; the body ends with [`LAST_CHUNK`]. The header is a small
//! value so that the data itself can be written from wherever it lives
//! (vectored write, file, shared `Bytes`) without being copied next to it.
//! [`encode_chunk`] does all three into a `Vec` for callers that do not mind
//! the copy.

use std::num::NonZeroUsize;
use std::ops::Range;

/// Bytes that close every chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk with no trailers: ends a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Bounds on the framing the decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Longest chunk-size line, extensions included, CRLF excluded.
    pub max_size_line: usize,
    /// Most trailer bytes (all trailer lines with their CRLFs) before the
    /// final empty line.
    pub max_trailer_bytes: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        Self {
            max_size_line: 4096,
            max_trailer_bytes: 16 * 1024,
        }
    }
}

/// What was wrong with a chunked body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkedError {
    /// The size line had no hex digit before its end or extension.
    #[error("chunk size line has no hex digits")]
    EmptySize,
    /// A byte in the size line that is neither a hex digit, an extension
    /// start, nor a line end.
    #[error("invalid byte {0:#04x} in chunk size")]
    InvalidSize(u8),
    /// The size does not fit in 64 bits.
    #[error("chunk size overflows 64 bits")]
    SizeOverflow,
    /// The size line (with extensions) is longer than the limit.
    #[error("chunk size line longer than {limit} bytes")]
    SizeLineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// A control byte inside a chunk extension.
    #[error("invalid byte {0:#04x} in chunk extension")]
    InvalidExtension(u8),
    /// A CR not followed by LF, or a bare LF, in framing.
    #[error("expected CRLF {0}")]
    ExpectedCrlf(&'static str),
    /// Trailer fields longer than the limit.
    #[error("chunked trailers longer than {limit} bytes")]
    TrailersTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A control byte inside a trailer line.
    #[error("invalid byte {0:#04x} in chunked trailer")]
    InvalidTrailer(u8),
}

/// One step of decoding; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decoded {
    /// `input[data]` is body data, never empty; `consumed >= data.end`.
    Data {
        /// Where the data lies in the input.
        data: Range<usize>,
        /// Input bytes spent by this step.
        consumed: usize,
    },
    /// More input is needed; `consumed` framing bytes are spent.
    Partial {
        /// Input bytes spent by this step.
        consumed: usize,
    },
    /// The body is complete; bytes after `consumed` are not part of it.
    Done {
        /// Input bytes spent by this step.
        consumed: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a size line.
    Size { value: u64, digits: bool },
    /// Whitespace after the digits: only more of it, `;` or CR may follow.
    SizeWhitespace { value: u64 },
    /// Inside chunk extensions, skipped up to CR.
    Extension { value: u64 },
    /// Saw the CR that ends the size line.
    SizeLf { value: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Saw the CR ending a trailer line.
    TrailerLf,
    /// Saw the CR of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// Incremental decoder of one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    limits: ChunkedLimits,
    /// Bytes of the current size line so far.
    line_len: usize,
    /// Trailer bytes so far.
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder with the default limits.
    pub fn new() -> Self {
        Self::with_limits(ChunkedLimits::default())
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: ChunkedLimits) -> Self {
        Self {
            state: State::Size {
                value: 0,
                digits: false,
            },
            limits,
            line_len: 0,
            trailer_len: 0,
        }
    }

    /// Whether the whole body, trailers included, has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes still due in the current chunk, if inside one. A reader
    /// may use it to size its next read.
    pub fn remaining_in_chunk(&self) -> Option<u64> {
        match self.state {
            State::Data { remaining } => Some(remaining),
            _ => None,
        }
    }

    /// Decodes from `input`: skips framing until data, the end of the body,
    /// or the end of the input. See the module documentation.
    pub fn decode(&mut self, input: &[u8]) -> Result<Decoded, ChunkedError> {
        let mut pos = 0;
        loop {
            if self.state == State::Done {
                return Ok(Decoded::Done { consumed: pos });
            }
            if let State::Data { remaining } = self.state {
                let available = input.len().saturating_sub(pos);
                if available == 0 {
                    return Ok(Decoded::Partial { consumed: pos });
                }
                let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
                let rest = remaining - take as u64;
                self.state = if rest == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining: rest }
                };
                return Ok(Decoded::Data {
                    data: pos..pos + take,
                    consumed: pos + take,
                });
            }
            let Some(&byte) = input.get(pos) else {
                return Ok(Decoded::Partial { consumed: pos });
            };
            pos += 1;
            self.framing_byte(byte)?;
        }
    }

    /// Advances the framing state by one byte (any state but `Data`/`Done`).
    fn framing_byte(&mut self, byte: u8) -> Result<(), ChunkedError> {
        self.state = match self.state {
            State::Size { value, digits } => {
                self.count_size_line(byte)?;
                self.size_byte(value, digits, byte)?
            }
            State::SizeWhitespace { value } => {
                self.count_size_line(byte)?;
                match byte {
                    b' ' | b'\t' => State::SizeWhitespace { value },
                    b';' => State::Extension { value },
                    b'\r' => State::SizeLf { value },
                    b'\n' => return Err(ChunkedError::ExpectedCrlf("after chunk size")),
                    _ => return Err(ChunkedError::InvalidSize(byte)),
                }
            }
            State::Extension { value } => {
                self.count_size_line(byte)?;
                match byte {
                    b'\r' => State::SizeLf { value },
                    b'\t' => State::Extension { value },
                    b'\n' => return Err(ChunkedError::ExpectedCrlf("after chunk size")),
                    0..=0x1f | 0x7f => return Err(ChunkedError::InvalidExtension(byte)),
                    _ => State::Extension { value },
                }
            }
            State::SizeLf { value } => {
                expect_lf(byte, "after chunk size")?;
                self.line_len = 0;
                if value == 0 {
                    State::TrailerStart
                } else {
                    State::Data { remaining: value }
                }
            }
            State::DataCr => {
                if byte != b'\r' {
                    return Err(ChunkedError::ExpectedCrlf("after chunk data"));
                }
                State::DataLf
            }
            State::DataLf => {
                expect_lf(byte, "after chunk data")?;
                State::Size {
                    value: 0,
                    digits: false,
                }
            }
            State::TrailerStart => match byte {
                b'\r' => State::EndLf,
                _ => {
                    self.count_trailer()?;
                    trailer_byte(byte)?
                }
            },
            State::Trailer => {
                self.count_trailer()?;
                trailer_byte(byte)?
            }
            State::TrailerLf => {
                self.count_trailer()?;
                expect_lf(byte, "after trailer field")?;
                State::TrailerStart
            }
            State::EndLf => {
                expect_lf(byte, "at end of chunked body")?;
                State::Done
            }
            // `decode` handles these before asking for framing.
            State::Data { .. } | State::Done => self.state,
        };
        Ok(())
    }

    fn size_byte(&self, value: u64, digits: bool, byte: u8) -> Result<State, ChunkedError> {
        if let Some(digit) = hex_value(byte) {
            let value = value
                .checked_mul(16)
                .and_then(|v| v.checked_add(u64::from(digit)))
                .ok_or(ChunkedError::SizeOverflow)?;
            return Ok(State::Size {
                value,
                digits: true,
            });
        }
        if !digits {
            return Err(match byte {
                b'\r' | b';' | b' ' | b'\t' => ChunkedError::EmptySize,
                _ => ChunkedError::InvalidSize(byte),
            });
        }
        match byte {
            b'\r' => Ok(State::SizeLf { value }),
            b';' => Ok(State::Extension { value }),
            // Whitespace before `;` is tolerated by RFC 9112 (BWS).
            b' ' | b'\t' => Ok(State::SizeWhitespace { value }),
            b'\n' => Err(ChunkedError::ExpectedCrlf("after chunk size")),
            _ => Err(ChunkedError::InvalidSize(byte)),
        }
    }

    /// Counts one size-line byte; the CR ending the line is not counted.
    fn count_size_line(&mut self, byte: u8) -> Result<(), ChunkedError> {
        if byte == b'\r' {
            return Ok(());
        }
        self.line_len += 1;
        if self.line_len > self.limits.max_size_line {
            return Err(ChunkedError::SizeLineTooLong {
                limit: self.limits.max_size_line,
            });
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > self.limits.max_trailer_bytes {
            return Err(ChunkedError::TrailersTooLarge {
                limit: self.limits.max_trailer_bytes,
            });
        }
        Ok(())
    }
}

fn trailer_byte(byte: u8) -> Result<State, ChunkedError> {
    match byte {
        b'\r' => Ok(State::TrailerLf),
        b'\n' => Err(ChunkedError::ExpectedCrlf("after trailer field")),
        b'\t' => Ok(State::Trailer),
        0..=0x1f | 0x7f => Err(ChunkedError::InvalidTrailer(byte)),
        _ => Ok(State::Trailer),
    }
}

fn expect_lf(byte: u8, place: &'static str) -> Result<(), ChunkedError> {
    if byte == b'\n' {
        Ok(())
    } else {
        Err(ChunkedError::ExpectedCrlf(place))
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The size line that starts a chunk of `len` data bytes: lowercase hex and
/// CRLF. Zero is excluded by type, because a zero-size chunk ends the body
/// (that is [`LAST_CHUNK`]).
#[derive(Debug, Clone, Copy)]
pub struct ChunkHeader {
    buf: [u8; 18],
    start: usize,
}

impl ChunkHeader {
    /// The header for a chunk of `len` bytes.
    pub fn new(len: NonZeroUsize) -> Self {
        let mut buf = [0u8; 18];
        buf[16] = b'\r';
        buf[17] = b'\n';
        let mut n = len.get();
        let mut start = 16;
        while n != 0 {
            start -= 1;
            buf[start] = b"0123456789abcdef"[n & 0xf];
            n >>= 4;
        }
        Self { buf, start }
    }

    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Appends `data` as one chunk to `out`; appends nothing for empty `data`,
/// which would otherwise end the body.
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if let Some(len) = NonZeroUsize::new(data.len()) {
        out.extend_from_slice(ChunkHeader::new(len).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(CHUNK_END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `input` in pieces of `step` bytes, keeping unspent bytes like a
    /// socket reader would; returns the body or the first error, and the
    /// bytes left after the body.
    fn decode_in_steps(
        input: &[u8],
        step: usize,
        limits: ChunkedLimits,
    ) -> Result<(Vec<u8>, Vec<u8>, bool), ChunkedError> {
        let mut dec = ChunkedDecoder::with_limits(limits);
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            match dec.decode(&pending)? {
                Decoded::Data { data, consumed } => {
                    out.extend_from_slice(&pending[data]);
                    pending.drain(..consumed);
                }
                Decoded::Partial { consumed } => {
                    pending.drain(..consumed);
                    if fed >= input.len() {
                        return Ok((out, pending, false));
                    }
                    let end = (fed + step.max(1)).min(input.len());
                    pending.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                Decoded::Done { consumed } => {
                    pending.drain(..consumed);
                    pending.extend_from_slice(&input[fed..]);
                    return Ok((out, pending, true));
                }
            }
        }
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>, bool), ChunkedError> {
        decode_in_steps(input, input.len(), ChunkedLimits::default())
    }

    #[test]
    fn decodes_simple_body_and_leaves_next_message() {
        let (body, rest, done) =
            decode_all(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1").unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(rest, b"GET / HTTP/1.1");
        assert!(done);
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let input = b"A;name=value\r\n0123456789\r\n1 ; x\r\n!\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n";
        let whole = decode_all(input).unwrap();
        let stepped = decode_in_steps(input, 1, ChunkedLimits::default()).unwrap();
        assert_eq!(whole, stepped);
        assert_eq!(whole.0, b"0123456789!");
        assert!(whole.2);
    }

    #[test]
    fn uppercase_and_leading_zero_sizes() {
        let (body, _, done) = decode_all(b"00B\r\nhello world\r\n000\r\n\r\n").unwrap();
        assert_eq!(body, b"hello world");
        assert!(done);
    }

    #[test]
    fn partial_reports_framing_consumed() {
        let mut dec = ChunkedDecoder::new();
        assert_eq!(dec.decode(b"1f").unwrap(), Decoded::Partial { consumed: 2 });
        assert_eq!(dec.decode(b"\r").unwrap(), Decoded::Partial { consumed: 1 });
        assert_eq!(dec.remaining_in_chunk(), None);
        assert_eq!(dec.decode(b"\n").unwrap(), Decoded::Partial { consumed: 1 });
        assert_eq!(dec.remaining_in_chunk(), Some(31));
        assert_eq!(
            dec.decode(b"abc").unwrap(),
            Decoded::Data {
                data: 0..3,
                consumed: 3
            }
        );
        assert_eq!(dec.remaining_in_chunk(), Some(28));
        assert!(!dec.is_done());
    }

    #[test]
    fn done_is_sticky() {
        let mut dec = ChunkedDecoder::new();
        assert_eq!(
            dec.decode(b"0\r\n\r\n").unwrap(),
            Decoded::Done { consumed: 5 }
        );
        assert!(dec.is_done());
        assert_eq!(dec.decode(b"junk").unwrap(), Decoded::Done { consumed: 0 });
    }

    #[test]
    fn rejects_bad_sizes() {
        assert_eq!(decode_all(b"\r\n").unwrap_err(), ChunkedError::EmptySize);
        assert_eq!(decode_all(b";x\r\n").unwrap_err(), ChunkedError::EmptySize);
        assert_eq!(
            decode_all(b"0x5\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'x')
        );
        assert_eq!(
            decode_all(b"-1\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'-')
        );
        assert_eq!(
            decode_all(b"+1\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'+')
        );
        assert_eq!(
            decode_all(b"1g\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'g')
        );
        assert_eq!(
            decode_all(b"1 2\r\n").unwrap_err(),
            ChunkedError::InvalidSize(b'2')
        );
    }

    #[test]
    fn rejects_overflowing_size() {
        assert_eq!(
            decode_all(b"10000000000000000\r\n").unwrap_err(),
            ChunkedError::SizeOverflow
        );
        // Sixteen digits fit; leading zeros do not count against the width.
        let mut dec = ChunkedDecoder::new();
        assert!(dec.decode(b"0ffffffffffffffff\r\n").is_ok());
        assert_eq!(dec.remaining_in_chunk(), Some(u64::MAX));
    }

    #[test]
    fn rejects_long_size_line() {
        let limits = ChunkedLimits {
            max_size_line: 8,
            ..ChunkedLimits::default()
        };
        let err = decode_in_steps(b"1;abcdefgh\r\nx\r\n0\r\n\r\n", 3, limits).unwrap_err();
        assert_eq!(err, ChunkedError::SizeLineTooLong { limit: 8 });
        assert!(decode_in_steps(b"1;abcdef\r\nx\r\n0\r\n\r\n", 3, limits).is_ok());
    }

    #[test]
    fn rejects_bare_lf_and_missing_crlf() {
        assert!(matches!(
            decode_all(b"1\nx\r\n0\r\n\r\n").unwrap_err(),
            ChunkedError::ExpectedCrlf(_)
        ));
        assert!(matches!(
            decode_all(b"1\r\nxy\r\n0\r\n\r\n").unwrap_err(),
            ChunkedError::ExpectedCrlf("after chunk data")
        ));
        assert!(matches!(
            decode_all(b"1\r\nx\r\n0\r\n\n").unwrap_err(),
            ChunkedError::ExpectedCrlf(_)
        ));
        assert!(matches!(
            decode_all(b"1\rx").unwrap_err(),
            ChunkedError::ExpectedCrlf(_)
        ));
    }

    #[test]
    fn rejects_control_bytes_in_extension_and_trailer() {
        assert_eq!(
            decode_all(b"1;a\0\r\n").unwrap_err(),
            ChunkedError::InvalidExtension(0)
        );
        assert_eq!(
            decode_all(b"0\r\nX: \x01\r\n\r\n").unwrap_err(),
            ChunkedError::InvalidTrailer(1)
        );
    }

    #[test]
    fn bounds_trailers() {
        let limits = ChunkedLimits {
            max_trailer_bytes: 10,
            ..ChunkedLimits::default()
        };
        assert!(decode_in_steps(b"0\r\nA: 12345\r\n\r\n", 2, limits).is_ok());
        assert_eq!(
            decode_in_steps(b"0\r\nA: 123456\r\n\r\n", 2, limits).unwrap_err(),
            ChunkedError::TrailersTooLarge { limit: 10 }
        );
    }

    #[test]
    fn truncated_body_is_partial_not_error() {
        let (body, _, done) = decode_all(b"5\r\nhel").unwrap();
        assert_eq!(body, b"hel");
        assert!(!done);
    }

    #[test]
    fn headers_are_lowercase_hex() {
        let h = |n| ChunkHeader::new(NonZeroUsize::new(n).unwrap());
        assert_eq!(h(1).as_bytes(), b"1\r\n");
        assert_eq!(h(255).as_bytes(), b"ff\r\n");
        assert_eq!(h(4096).as_bytes(), b"1000\r\n");
        assert_eq!(h(usize::MAX).as_bytes(), b"ffffffffffffffff\r\n");
    }

    #[test]
    fn encode_chunk_skips_empty() {
        let mut out = Vec::new();
        encode_chunk(b"", &mut out);
        assert!(out.is_empty());
        encode_chunk(b"abc", &mut out);
        assert_eq!(out, b"3\r\nabc\r\n");
    }

    proptest! {
        #[test]
        fn encoder_round_trips(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            step in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for c in &chunks {
                encode_chunk(c, &mut wire);
            }
            wire.extend_from_slice(LAST_CHUNK);
            wire.extend_from_slice(b"next");
            let (body, rest, done) =
                decode_in_steps(&wire, step, ChunkedLimits::default()).unwrap();
            prop_assert_eq!(body, chunks.concat());
            prop_assert_eq!(rest, b"next".to_vec());
            prop_assert!(done);
        }

        #[test]
        fn arbitrary_input_never_yields_more_than_fed(
            input in proptest::collection::vec(any::<u8>(), 0..200),
            step in 1usize..16,
        ) {
            if let Ok((body, _, _)) = decode_in_steps(&input, step, ChunkedLimits::default()) {
                prop_assert!(body.len() <= input.len());
            }
        }
    }
}
