//! Percent-encoding of URL query components, binary safe.
//!
//! Tracker requests carry raw 20-byte values (info hash, peer id) in the
//! query string, so decoding yields bytes, never text: `%XX` stands for
//! any byte, and every other allowed byte for itself.
//!
//! That includes `+`, which is *not* a space here. HTML forms use `+` for a
//! space, but BitTorrent clients never form-encode: the tracker protocol's
//! own rule lists `+` among the bytes a client may leave unescaped, so a
//! raw `+` in an info hash is the byte 0x2B, and reading it as 0x20 would
//! silently announce into another swarm. Clients that mean a space send
//! `%20`.
//!
//! Decoding is strict: a `%` not followed by two hex digits, and a byte
//! that may not appear raw in a query (controls, space, `#`, non-ASCII),
//! are errors rather than guesses, because a lenient decoder turns one
//! client's bug into another torrent's info hash.
//!
//! Encoding keeps only the RFC 3986 unreserved set (`A-Z a-z 0-9 - . _ ~`)
//! raw and escapes every other byte (`+` included) with upper-case hex,
//! which every tracker reads the same way whatever its `+` rule.

use thiserror::Error;

/// What was wrong with a percent-encoded component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PercentError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape at byte {offset}")]
    BadEscape {
        /// Offset of the `%` in the component.
        offset: usize,
    },
    /// A byte that must be escaped appeared raw.
    #[error("byte 0x{byte:02x} at {offset} must be percent-encoded")]
    UnescapedByte {
        /// Offset of the byte in the component.
        offset: usize,
        /// The byte itself.
        byte: u8,
    },
    /// The decoded value is longer than the caller allows.
    #[error("decoded value longer than {max} bytes")]
    TooLong {
        /// The limit that was exceeded.
        max: usize,
    },
}

/// Decodes `input` and appends the bytes to `out`, failing once more than
/// `max` bytes would be appended.
pub fn decode_into(input: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), PercentError> {
    for (written, byte) in Decoder::new(input).enumerate() {
        if written == max {
            return Err(PercentError::TooLong { max });
        }
        out.push(byte?);
    }
    Ok(())
}

/// Decodes `input` into a new vector of at most `max` bytes.
pub fn decode(input: &[u8], max: usize) -> Result<Vec<u8>, PercentError> {
    let mut out = Vec::with_capacity(input.len().min(max));
    decode_into(input, max, &mut out)?;
    Ok(out)
}

/// Decodes `input` into the front of `out` and returns the decoded length,
/// without allocating.
pub fn decode_to_slice(input: &[u8], out: &mut [u8]) -> Result<usize, PercentError> {
    let max = out.len();
    let mut len = 0usize;
    for byte in Decoder::new(input) {
        let byte = byte?;
        let slot = out.get_mut(len).ok_or(PercentError::TooLong { max })?;
        *slot = byte;
        len += 1;
    }
    Ok(len)
}

/// Decodes `input` into exactly `N` bytes, without allocating.
///
/// Returns `Ok(None)` when the input is valid but decodes to another length.
pub fn decode_array<const N: usize>(input: &[u8]) -> Result<Option<[u8; N]>, PercentError> {
    let mut out = [0u8; N];
    let mut len = 0usize;
    for byte in Decoder::new(input) {
        let byte = byte?;
        // Past N, keep decoding so that a later bad escape is still reported.
        if let Some(slot) = out.get_mut(len) {
            *slot = byte;
        }
        len += 1;
    }
    Ok((len == N).then_some(out))
}

/// Appends the percent-encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(bytes.len());
    for &b in bytes {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Returns the percent-encoding of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    encode_into(bytes, &mut out);
    out
}

/// Whether `b` is in the RFC 3986 unreserved set and so never escaped.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether `b` may appear unescaped inside a query component.
///
/// Looser than RFC 3986 on purpose (`[`, `]`, `|`, `"` and friends occur in
/// real clients' queries), but never whitespace, controls, `#` or non-ASCII:
/// those cannot have survived an HTTP request line intact.
fn may_appear_raw(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && b != b'#'
}

/// Iterator over the decoded bytes of one component.
struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<u8, PercentError>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.pos;
        let b = *self.input.get(offset)?;
        let item = match b {
            b'%' => {
                let hi = self.input.get(offset + 1).and_then(|&h| hex_value(h));
                let lo = self.input.get(offset + 2).and_then(|&l| hex_value(l));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        self.pos += 3;
                        Ok(hi << 4 | lo)
                    }
                    _ => Err(PercentError::BadEscape { offset }),
                }
            }
            b if may_appear_raw(b) => {
                self.pos += 1;
                Ok(b)
            }
            byte => Err(PercentError::UnescapedByte { offset, byte }),
        };
        if item.is_err() {
            // Stop after the first error: the rest has no defined meaning.
            self.pos = self.input.len();
        }
        Some(item)
    }
}

fn hex_value(h: u8) -> Option<u8> {
    match h {
        b'0'..=b'9' => Some(h - b'0'),
        b'a'..=b'f' => Some(h - b'a' + 10),
        b'A'..=b'F' => Some(h - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_escapes_plus_and_raw_bytes() {
        assert_eq!(decode(b"a%20b+c%7e%7E", 64), Ok(b"a b+c~~".to_vec()));
        assert_eq!(decode(b"%2B+", 64), Ok(b"++".to_vec()));
        assert_eq!(decode(b"%00%ff%FF", 64), Ok(vec![0, 0xff, 0xff]));
        assert_eq!(decode(b"", 64), Ok(Vec::new()));
    }

    #[test]
    fn decodes_bep3_style_info_hash() {
        // The example escaping of a SHA-1 value as clients send it.
        let q = b"%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A";
        let expected: [u8; 20] = [
            0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
            0xef, 0x12, 0x34, 0x56, 0x78, 0x9a,
        ];
        assert_eq!(decode_array::<20>(q), Ok(Some(expected)));
    }

    #[test]
    fn rejects_bad_escapes() {
        for (input, offset) in [
            (&b"%"[..], 0),
            (b"ab%", 2),
            (b"ab%4", 2),
            (b"%4g", 0),
            (b"%g4", 0),
            (b"x%%41", 1),
            (b"%+1", 0),
        ] {
            assert_eq!(
                decode(input, 64),
                Err(PercentError::BadEscape { offset }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn rejects_bytes_that_must_be_escaped() {
        for byte in [b' ', b'#', 0u8, 0x7f, 0x80, 0xff, b'\n'] {
            let input = [b'a', byte];
            assert_eq!(
                decode(&input, 64),
                Err(PercentError::UnescapedByte { offset: 1, byte })
            );
        }
    }

    #[test]
    fn enforces_length_limit() {
        assert_eq!(decode(b"abcd", 3), Err(PercentError::TooLong { max: 3 }));
        assert_eq!(decode(b"abc", 3), Ok(b"abc".to_vec()));
        assert_eq!(
            decode(b"%41%42%43%44", 3),
            Err(PercentError::TooLong { max: 3 })
        );
    }

    #[test]
    fn slice_decoding_is_bounded() {
        let mut buf = [0u8; 3];
        assert_eq!(decode_to_slice(b"a%42c", &mut buf), Ok(3));
        assert_eq!(&buf, b"aBc");
        assert_eq!(
            decode_to_slice(b"abcd", &mut buf),
            Err(PercentError::TooLong { max: 3 })
        );
    }

    #[test]
    fn array_reports_wrong_length_and_late_errors() {
        assert_eq!(decode_array::<4>(b"abc"), Ok(None));
        assert_eq!(decode_array::<4>(b"abcde"), Ok(None));
        assert_eq!(
            decode_array::<2>(b"abc%zz"),
            Err(PercentError::BadEscape { offset: 3 })
        );
    }

    #[test]
    fn encodes_only_unreserved_raw() {
        assert_eq!(encode(b"Az09-._~"), "Az09-._~");
        assert_eq!(encode(b" +%&=\x00\xff"), "%20%2B%25%26%3D%00%FF");
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let encoded = encode(&bytes);
            prop_assert_eq!(decode(encoded.as_bytes(), 64), Ok(bytes));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes, 16);
            let _ = decode_array::<20>(&bytes);
        }
    }
}
