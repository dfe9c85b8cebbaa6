//! Splitting a raw HTTP query string into key/value pairs, and decoding the
//! typed values the tracker parameters use.
//!
//! The announce and scrape parsers share this so that both apply the same
//! bounds (total length, number of pairs) and the same value rules before
//! any allocation happens. Keys are compared raw: every key a tracker
//! understands is plain ASCII that clients never escape, and a key that
//! arrives escaped is simply not one of them.

use std::net::IpAddr;

use thiserror::Error;

use crate::percent::{self, PercentError};

/// What was wrong with an announce or scrape query string.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The whole query string is longer than allowed.
    #[error("query string of {len} bytes exceeds {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More `key=value` pairs than allowed.
    #[error("query string has more than {max} parameters")]
    TooManyParams {
        /// The limit.
        max: usize,
    },
    /// A required parameter is absent.
    #[error("missing parameter {key}")]
    Missing {
        /// The parameter.
        key: &'static str,
    },
    /// A parameter that may appear once appeared again.
    #[error("parameter {key} given more than once")]
    Duplicate {
        /// The parameter.
        key: &'static str,
    },
    /// A value is not valid percent-encoding, or too long once decoded.
    #[error("parameter {key}: {source}")]
    Encoding {
        /// The parameter.
        key: &'static str,
        /// What was wrong with the encoding.
        source: PercentError,
    },
    /// A value has the wrong decoded length.
    #[error("parameter {key} must be {expected} bytes")]
    WrongLength {
        /// The parameter.
        key: &'static str,
        /// The length it must have.
        expected: usize,
    },
    /// A value is not a decimal number of the parameter's range.
    #[error("parameter {key} is not a number in range")]
    InvalidNumber {
        /// The parameter.
        key: &'static str,
    },
    /// A value is not one the parameter allows.
    #[error("parameter {key} has an invalid value")]
    InvalidValue {
        /// The parameter.
        key: &'static str,
    },
}

/// Calls `visit` with each raw (still percent-encoded) key and value of
/// `query`, after checking its length, and stops at the first error.
///
/// Empty segments (`a=1&&b=2`, a trailing `&`) are skipped; a segment with
/// no `=` is a key with an empty value.
pub fn for_each_pair<'a>(
    query: &'a [u8],
    max_len: usize,
    max_pairs: usize,
    mut visit: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), QueryError>,
) -> Result<(), QueryError> {
    if query.len() > max_len {
        return Err(QueryError::TooLong {
            len: query.len(),
            max: max_len,
        });
    }
    let mut count = 0usize;
    for segment in query.split(|&b| b == b'&').filter(|s| !s.is_empty()) {
        count += 1;
        if count > max_pairs {
            return Err(QueryError::TooManyParams { max: max_pairs });
        }
        let (key, value) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (
                segment.get(..eq).unwrap_or_default(),
                segment.get(eq + 1..).unwrap_or_default(),
            ),
            None => (segment, &b""[..]),
        };
        visit(key, value)?;
    }
    Ok(())
}

/// Stores `value` in `slot`, rejecting a second occurrence of `key`.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    key: &'static str,
    value: T,
) -> Result<(), QueryError> {
    if slot.is_some() {
        return Err(QueryError::Duplicate { key });
    }
    *slot = Some(value);
    Ok(())
}

/// Returns `slot`'s value or the typed error for a missing `key`.
pub(crate) fn required<T>(slot: Option<T>, key: &'static str) -> Result<T, QueryError> {
    slot.ok_or(QueryError::Missing { key })
}

/// Decodes a value that must be exactly `N` bytes (info hash, peer id).
pub(crate) fn fixed<const N: usize>(key: &'static str, raw: &[u8]) -> Result<[u8; N], QueryError> {
    percent::decode_array::<N>(raw)
        .map_err(|source| QueryError::Encoding { key, source })?
        .ok_or(QueryError::WrongLength { key, expected: N })
}

/// Decodes a value of at most `max` bytes.
pub(crate) fn bytes(key: &'static str, raw: &[u8], max: usize) -> Result<Vec<u8>, QueryError> {
    percent::decode(raw, max).map_err(|source| QueryError::Encoding { key, source })
}

/// Decodes an unsigned decimal number: ASCII digits only, no sign, no
/// spaces, in range of `u64`.
pub(crate) fn number(key: &'static str, raw: &[u8]) -> Result<u64, QueryError> {
    // u64::MAX has 20 digits; allow a few leading zeros beyond that.
    let mut buf = [0u8; 24];
    let len = percent::decode_to_slice(raw, &mut buf).map_err(|source| match source {
        PercentError::TooLong { .. } => QueryError::InvalidNumber { key },
        source => QueryError::Encoding { key, source },
    })?;
    let digits = buf.get(..len).unwrap_or_default();
    if digits.is_empty() {
        return Err(QueryError::InvalidNumber { key });
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return Err(QueryError::InvalidNumber { key });
        }
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(d - b'0')))
            .ok_or(QueryError::InvalidNumber { key })
    })
}

/// Decodes a number that must fit in `T` (a port, a count).
pub(crate) fn small_number<T: TryFrom<u64>>(
    key: &'static str,
    raw: &[u8],
) -> Result<T, QueryError> {
    T::try_from(number(key, raw)?).map_err(|_| QueryError::InvalidNumber { key })
}

/// Decodes a `0`/`1` flag.
pub(crate) fn flag(key: &'static str, raw: &[u8]) -> Result<bool, QueryError> {
    match small_number::<u8>(key, raw) {
        Ok(0) => Ok(false),
        Ok(1) => Ok(true),
        _ => Err(QueryError::InvalidValue { key }),
    }
}

/// Decodes an IP address literal (IPv4 dotted quad or IPv6 text).
pub(crate) fn ip(key: &'static str, raw: &[u8]) -> Result<IpAddr, QueryError> {
    // The longest IPv6 text form is 45 bytes.
    let mut buf = [0u8; 48];
    let len =
        percent::decode_to_slice(raw, &mut buf).map_err(|_| QueryError::InvalidValue { key })?;
    std::str::from_utf8(buf.get(..len).unwrap_or_default())
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(QueryError::InvalidValue { key })
}

/// Appends `&key=value` (or `key=value` first) with `value` escaped.
pub(crate) fn push_pair(out: &mut String, key: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(key);
    out.push('=');
    percent::encode_into(value, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn collect(query: &[u8], max_pairs: usize) -> Result<Pairs, QueryError> {
        let mut pairs = Vec::new();
        for_each_pair(query, 100, max_pairs, |k, v| {
            pairs.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(pairs)
    }

    #[test]
    fn splits_pairs_and_skips_empty_segments() {
        let pairs = collect(b"&a=1&&b=&c&d=x=y&", 10).unwrap_or_default();
        let expected: Pairs = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"".to_vec()),
            (b"c".to_vec(), b"".to_vec()),
            (b"d".to_vec(), b"x=y".to_vec()),
        ];
        assert_eq!(pairs, expected);
    }

    #[test]
    fn bounds_length_and_pairs() {
        assert_eq!(
            collect(&[b'a'; 101], 10),
            Err(QueryError::TooLong { len: 101, max: 100 })
        );
        assert_eq!(
            collect(b"a&b&c", 2),
            Err(QueryError::TooManyParams { max: 2 })
        );
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(number("n", b"0"), Ok(0));
        assert_eq!(number("n", b"%31%32"), Ok(12));
        assert_eq!(number("n", b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(number("n", b"00018446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1+",
            b"%201",
            b"0x10",
            b"1e3",
            b"18446744073709551616",
            b"99999999999999999999999999999999",
        ] {
            assert_eq!(
                number("n", bad),
                Err(QueryError::InvalidNumber { key: "n" }),
                "{bad:?}"
            );
        }
        assert!(matches!(
            number("n", b"1%zz"),
            Err(QueryError::Encoding { key: "n", .. })
        ));
        assert_eq!(
            small_number::<u16>("port", b"65536"),
            Err(QueryError::InvalidNumber { key: "port" })
        );
        assert_eq!(small_number::<u16>("port", b"65535"), Ok(65535));
    }

    #[test]
    fn flags_and_ips() {
        assert_eq!(flag("compact", b"1"), Ok(true));
        assert_eq!(flag("compact", b"0"), Ok(false));
        assert_eq!(
            flag("compact", b"2"),
            Err(QueryError::InvalidValue { key: "compact" })
        );
        assert_eq!(ip("ip", b"10.0.0.1"), Ok(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(
            ip("ip", b"%3A%3A1"),
            Ok(IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            ip("ip", b"tracker.example"),
            Err(QueryError::InvalidValue { key: "ip" })
        );
        assert_eq!(
            ip("ip", &[b'1'; 60]),
            Err(QueryError::InvalidValue { key: "ip" })
        );
    }
}
