//! Lowercase hexadecimal, as info hashes and OCI digests are written.
//!
//! Decoding is strict: only `0-9a-f` are accepted. Uppercase is refused
//! on purpose, because a digest or info hash has exactly one spelling and
//! a second spelling of the same value would let two names point at one
//! blob (or one cache path differ from another).

use std::fmt::Write as _;

/// Why a string is not the lowercase hex bay expects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    #[error("hex string has an odd length ({len})")]
    OddLength { len: usize },
    #[error("byte 0x{byte:02x} at {offset} is not a lowercase hex digit")]
    InvalidDigit { offset: usize, byte: u8 },
    #[error("hex string decodes to {actual} bytes, expected {expected}")]
    WrongLength { expected: usize, actual: usize },
}

/// Encodes `bytes` as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    encode_into(bytes, &mut out);
    out
}

/// Appends the lowercase hex of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

/// Decodes lowercase hex into bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    let raw = text.as_bytes();
    if raw.len() & 1 == 1 {
        return Err(HexError::OddLength { len: raw.len() });
    }
    let mut out = Vec::with_capacity(raw.len() / 2);
    for (pair_index, pair) in raw.chunks_exact(2).enumerate() {
        let offset = pair_index * 2;
        let (hi, lo) = match pair {
            [hi, lo] => (*hi, *lo),
            _ => return Err(HexError::OddLength { len: raw.len() }),
        };
        let hi = digit(hi).ok_or(HexError::InvalidDigit { offset, byte: hi })?;
        let lo = digit(lo).ok_or(HexError::InvalidDigit {
            offset: offset + 1,
            byte: lo,
        })?;
        out.push(hi << 4 | lo);
    }
    Ok(out)
}

/// Decodes lowercase hex into exactly `N` bytes (a hash of known size).
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let bytes = decode(text)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| HexError::WrongLength {
        expected: N,
        actual: bytes.len(),
    })
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_lowercase() {
        assert_eq!(encode(&[0x00, 0xab, 0xff, 0x10]), "00abff10");
        assert_eq!(encode(&[]), "");
    }

    #[test]
    fn rejects_uppercase_and_odd_input() {
        assert_eq!(
            decode("AB"),
            Err(HexError::InvalidDigit {
                offset: 0,
                byte: b'A'
            })
        );
        assert_eq!(
            decode("a g"),
            Err(HexError::OddLength { len: 3 }),
            "odd length is reported before digits"
        );
        assert_eq!(
            decode("0g"),
            Err(HexError::InvalidDigit {
                offset: 1,
                byte: b'g'
            })
        );
        assert_eq!(decode("abc"), Err(HexError::OddLength { len: 3 }));
    }

    #[test]
    fn decode_array_checks_length() {
        assert_eq!(decode_array::<2>("beef"), Ok([0xbe, 0xef]));
        assert_eq!(
            decode_array::<3>("beef"),
            Err(HexError::WrongLength {
                expected: 3,
                actual: 2
            })
        );
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = encode(&bytes);
            prop_assert_eq!(decode(&text), Ok(bytes));
        }

        #[test]
        fn never_panics(text in ".{0,40}") {
            let _ = decode(&text);
        }
    }
}
