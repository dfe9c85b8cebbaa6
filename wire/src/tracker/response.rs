//! What the bencoded announce and scrape responses share: the failure
//! reply, the decoding error, and strict readers for their fields.
//!
//! A tracker answers a refused request with a dictionary holding only
//! `failure reason` (BEP 3, BEP 48), whatever was asked; [`Reply`] keeps
//! that apart from a successful response so a caller cannot mistake a
//! refusal for an empty peer list.

use thiserror::Error;

use crate::bencode::{self, BencodeError, Node};

/// A tracker's answer to an announce or scrape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<T> {
    /// The request was served.
    Success(T),
    /// The request was refused, with a human-readable reason (bytes that
    /// are not UTF-8 are replaced on decode).
    Failure(String),
}

/// What was wrong with a bencoded tracker response body.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The body is not valid bencode.
    #[error("response is not valid bencode: {0}")]
    Bencode(#[from] BencodeError),
    /// The body, or a part that must be one, is not a dictionary.
    #[error("{what} is not a dictionary")]
    NotADict {
        /// Which part.
        what: &'static str,
    },
    /// A required key is absent.
    #[error("response lacks {key}")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// A value has the wrong type or is out of range.
    #[error("response field {key} has an invalid value")]
    InvalidField {
        /// The key.
        key: &'static str,
    },
    /// A compact list whose length is not a whole number of entries.
    #[error("{key} is {len} bytes, not a multiple of {entry}")]
    BadCompactLength {
        /// The key.
        key: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The size of one entry.
        entry: usize,
    },
}

/// Appends the failure response for `reason`.
pub fn encode_failure(reason: &str, out: &mut Vec<u8>) {
    out.push(b'd');
    bencode::encode_bytes(out, b"failure reason");
    bencode::encode_bytes(out, reason.as_bytes());
    out.push(b'e');
}

/// Decodes `body` as a dictionary; returns the failure reason when it is
/// a failure response.
pub(crate) fn decode_top(body: &[u8]) -> Result<Result<Node<'_>, String>, ResponseError> {
    let root = bencode::decode(body)?;
    if root.as_dict().is_none() {
        return Err(ResponseError::NotADict { what: "response" });
    }
    match root.get(b"failure reason") {
        Some(reason) => {
            let reason = reason.as_bytes().ok_or(ResponseError::InvalidField {
                key: "failure reason",
            })?;
            Ok(Err(String::from_utf8_lossy(reason).into_owned()))
        }
        None => Ok(Ok(root)),
    }
}

/// Reads an optional count or interval: a non-negative integer of `u32`.
pub(crate) fn opt_u32(dict: &Node<'_>, key: &'static str) -> Result<Option<u32>, ResponseError> {
    dict.get(key.as_bytes())
        .map(|v| {
            v.as_int()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(ResponseError::InvalidField { key })
        })
        .transpose()
}

/// Reads a required count or interval.
pub(crate) fn req_u32(dict: &Node<'_>, key: &'static str) -> Result<u32, ResponseError> {
    opt_u32(dict, key)?.ok_or(ResponseError::Missing { key })
}

/// Reads an optional byte string.
pub(crate) fn opt_bytes<'a>(
    dict: &Node<'a>,
    key: &'static str,
) -> Result<Option<&'a [u8]>, ResponseError> {
    dict.get(key.as_bytes())
        .map(|v| v.as_bytes().ok_or(ResponseError::InvalidField { key }))
        .transpose()
}

/// Appends `key` then the integer `value`.
pub(crate) fn push_int(out: &mut Vec<u8>, key: &str, value: u32) {
    bencode::encode_bytes(out, key.as_bytes());
    bencode::encode_int(out, i64::from(value));
}

/// Appends `key` then the byte string `value`.
pub(crate) fn push_bytes(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    bencode::encode_bytes(out, key.as_bytes());
    bencode::encode_bytes(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_round_trips() {
        let mut out = Vec::new();
        encode_failure("unregistered torrent", &mut out);
        assert_eq!(out, b"d14:failure reason20:unregistered torrente");
        assert_eq!(decode_top(&out), Ok(Err("unregistered torrent".to_owned())));
    }

    #[test]
    fn top_level_must_be_a_dict() {
        assert_eq!(
            decode_top(b"le"),
            Err(ResponseError::NotADict { what: "response" })
        );
        assert!(matches!(
            decode_top(b"d8:intervali1e"),
            Err(ResponseError::Bencode(_))
        ));
        assert_eq!(
            decode_top(b"d14:failure reasoni1ee"),
            Err(ResponseError::InvalidField {
                key: "failure reason"
            })
        );
    }
}
