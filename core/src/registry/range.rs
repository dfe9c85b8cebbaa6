//! Byte ranges of a blob: the `Range` a caller asks for and the
//! `Content-Range` a registry answers with (RFC 9110 §14). No I/O.
//!
//! A caller resuming a download or serving a client's 206 asks for one
//! range; the answer's `Content-Range` says which bytes came, and must be
//! checked rather than assumed: a registry (or the object store behind it)
//! may ignore the range and send the whole blob with 200.

use std::fmt;

/// Longest `Content-Range` value read.
const MAX_CONTENT_RANGE_LEN: usize = 128;

/// One range of bytes to ask for: `start` to `end` inclusive, or to the
/// end of the blob when `end` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive; `None` for "to the end".
    pub end: Option<u64>,
}

impl ByteRange {
    /// Bytes `start..=end`; `None` when `end < start`.
    pub fn inclusive(start: u64, end: u64) -> Option<ByteRange> {
        (start <= end).then_some(ByteRange {
            start,
            end: Some(end),
        })
    }

    /// From `start` to the end of the blob.
    pub fn from(start: u64) -> ByteRange {
        ByteRange { start, end: None }
    }

    /// The `Range` header value: `bytes=start-[end]`.
    pub fn header_value(&self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{end}", self.start),
            None => format!("bytes={}-", self.start),
        }
    }
}

/// A parsed `Content-Range` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/complete`: the bytes sent; `complete` is `None`
    /// when the server wrote `*`.
    Bytes {
        /// First byte sent.
        first: u64,
        /// Last byte sent, inclusive.
        last: u64,
        /// The whole blob's length, if given.
        complete: Option<u64>,
    },
    /// `bytes */complete`: the range could not be satisfied (416).
    Unsatisfied {
        /// The whole blob's length.
        complete: u64,
    },
}

impl ContentRange {
    /// Bytes in the part sent (0 for [`ContentRange::Unsatisfied`]).
    pub fn len(&self) -> u64 {
        match self {
            // first <= last is checked at parse time.
            ContentRange::Bytes { first, last, .. } => last - first + 1,
            ContentRange::Unsatisfied { .. } => 0,
        }
    }

    /// Whether no byte was sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole blob's length, if the server said it.
    pub fn complete_length(&self) -> Option<u64> {
        match self {
            ContentRange::Bytes { complete, .. } => *complete,
            ContentRange::Unsatisfied { complete } => Some(*complete),
        }
    }
}

impl fmt::Display for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentRange::Bytes {
                first,
                last,
                complete: Some(n),
            } => write!(f, "bytes {first}-{last}/{n}"),
            ContentRange::Bytes {
                first,
                last,
                complete: None,
            } => write!(f, "bytes {first}-{last}/*"),
            ContentRange::Unsatisfied { complete } => write!(f, "bytes */{complete}"),
        }
    }
}

/// Why a `Content-Range` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentRangeError {
    /// Longer than any sensible value.
    #[error("Content-Range longer than {MAX_CONTENT_RANGE_LEN} bytes")]
    TooLong,
    /// Not `bytes ...`.
    #[error("Content-Range unit is not bytes")]
    Unit,
    /// The grammar wanted something else.
    #[error("Content-Range is malformed")]
    Syntax,
    /// A number beyond u64.
    #[error("Content-Range number overflows")]
    Overflow,
    /// `last` before `first`, or `last` at or past the complete length.
    #[error("Content-Range positions are inconsistent")]
    Inconsistent,
}

impl ContentRange {
    /// Parses a `Content-Range` value strictly.
    pub fn parse(value: &[u8]) -> Result<ContentRange, ContentRangeError> {
        if value.len() > MAX_CONTENT_RANGE_LEN {
            return Err(ContentRangeError::TooLong);
        }
        let value = value.trim_ascii();
        let rest = value
            .strip_prefix(b"bytes ")
            .ok_or(ContentRangeError::Unit)?;
        let slash = rest
            .iter()
            .position(|&b| b == b'/')
            .ok_or(ContentRangeError::Syntax)?;
        let (range, complete) = (
            rest.get(..slash).unwrap_or_default(),
            rest.get(slash + 1..).unwrap_or_default(),
        );
        if range == b"*" {
            return Ok(ContentRange::Unsatisfied {
                complete: decimal(complete)?,
            });
        }
        let dash = range
            .iter()
            .position(|&b| b == b'-')
            .ok_or(ContentRangeError::Syntax)?;
        let first = decimal(range.get(..dash).unwrap_or_default())?;
        let last = decimal(range.get(dash + 1..).unwrap_or_default())?;
        let complete = match complete {
            b"*" => None,
            n => Some(decimal(n)?),
        };
        if last < first || complete.is_some_and(|n| last >= n) {
            return Err(ContentRangeError::Inconsistent);
        }
        Ok(ContentRange::Bytes {
            first,
            last,
            complete,
        })
    }
}

/// A non-empty run of ASCII digits as a u64.
pub(crate) fn decimal(s: &[u8]) -> Result<u64, ContentRangeError> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(ContentRangeError::Syntax);
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(ContentRangeError::Overflow)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn range_header_values() {
        assert_eq!(
            ByteRange::inclusive(0, 99).unwrap().header_value(),
            "bytes=0-99"
        );
        assert_eq!(ByteRange::from(7).header_value(), "bytes=7-");
        assert_eq!(ByteRange::inclusive(5, 4), None);
    }

    #[test]
    fn parses_content_ranges() {
        assert_eq!(
            ContentRange::parse(b"bytes 100-1099/4096"),
            Ok(ContentRange::Bytes {
                first: 100,
                last: 1099,
                complete: Some(4096)
            })
        );
        assert_eq!(ContentRange::parse(b"bytes 0-0/*").map(|r| r.len()), Ok(1));
        assert_eq!(
            ContentRange::parse(b"bytes */4096"),
            Ok(ContentRange::Unsatisfied { complete: 4096 })
        );
    }

    #[test]
    fn refuses_bad_content_ranges() {
        use ContentRangeError as E;
        for (v, e) in [
            (&b"items 0-1/2"[..], E::Unit),
            (b"bytes 0-1", E::Syntax),
            (b"bytes -1/2", E::Syntax),
            (b"bytes 0-/2", E::Syntax),
            (b"bytes +0-1/2", E::Syntax),
            (b"bytes 2-1/5", E::Inconsistent),
            (b"bytes 0-5/5", E::Inconsistent),
            (b"bytes 0-99999999999999999999/*", E::Overflow),
            (b"bytes */*", E::Syntax),
        ] {
            assert_eq!(
                ContentRange::parse(v),
                Err(e),
                "{}",
                String::from_utf8_lossy(v)
            );
        }
        assert_eq!(ContentRange::parse(&[b'1'; 200]), Err(E::TooLong));
    }

    proptest! {
        #[test]
        fn display_round_trips(first in 0u64..1 << 40, len in 1u64..1 << 20, extra in 0u64..10, star: bool) {
            let last = first + len - 1;
            let complete = (!star).then_some(last + 1 + extra);
            let r = ContentRange::Bytes { first, last, complete };
            prop_assert_eq!(ContentRange::parse(r.to_string().as_bytes()), Ok(r));
            prop_assert_eq!(r.len(), len);
        }

        #[test]
        fn never_panics(v in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = ContentRange::parse(&v);
        }
    }
}
