//! Range header evaluation for bodies of known length (RFC 9110 §14), no I/O.
//!
//! Only a single byte range is served as 206; a multi-range request or
//! anything this module does not understand gets the whole representation
//! (200), which RFC 9110 allows a server to do with any Range it ignores.

use crate::head::parse_decimal;

/// What to send for a Range header against a body of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// The whole body, 200.
    Full,
    /// Bytes `start..=end` (inclusive, within the body), 206.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// No byte of the range exists, 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

impl RangeOutcome {
    /// The `Content-Range` value for this outcome, if it has one.
    pub fn content_range(&self, len: u64) -> Option<String> {
        match self {
            Self::Full => None,
            Self::Partial { start, end } => Some(format!("bytes {start}-{end}/{len}")),
            Self::Unsatisfiable => Some(format!("bytes */{len}")),
        }
    }
}

/// Evaluates the `Range` header value `header` against a body of `len` bytes.
pub fn evaluate(header: Option<&[u8]>, len: u64) -> RangeOutcome {
    let Some(spec) = header
        .map(<[u8]>::trim_ascii)
        .and_then(|h| strip_prefix_ignore_case(h, b"bytes="))
    else {
        return RangeOutcome::Full;
    };
    if spec.contains(&b',') {
        return RangeOutcome::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeOutcome::Full;
    };
    let (first, last) = (
        spec.get(..dash).unwrap_or_default().trim_ascii(),
        spec.get(dash + 1..).unwrap_or_default().trim_ascii(),
    );
    match (first.is_empty(), last.is_empty()) {
        (false, _) => from_start(first, last, len),
        (true, false) => suffix(last, len),
        (true, true) => RangeOutcome::Full,
    }
}

fn from_start(first: &[u8], last: &[u8], len: u64) -> RangeOutcome {
    let Some(start) = parse_decimal(first) else {
        return RangeOutcome::Full;
    };
    let end = if last.is_empty() {
        u64::MAX
    } else {
        match parse_decimal(last) {
            Some(end) if end >= start => end,
            _ => return RangeOutcome::Full,
        }
    };
    if start >= len {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial {
        start,
        end: end.min(len - 1),
    }
}

fn suffix(last: &[u8], len: u64) -> RangeOutcome {
    match parse_decimal(last) {
        None => RangeOutcome::Full,
        Some(0) => RangeOutcome::Unsatisfiable,
        Some(_) if len == 0 => RangeOutcome::Unsatisfiable,
        Some(n) => RangeOutcome::Partial {
            start: len - n.min(len),
            end: len - 1,
        },
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use RangeOutcome::*;

    fn eval(h: &str, len: u64) -> RangeOutcome {
        evaluate(Some(h.as_bytes()), len)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(eval("bytes=0-9", 100), Partial { start: 0, end: 9 });
        assert_eq!(eval("bytes=90-200", 100), Partial { start: 90, end: 99 });
        assert_eq!(eval("bytes=10-", 100), Partial { start: 10, end: 99 });
        assert_eq!(eval("bytes=-10", 100), Partial { start: 90, end: 99 });
        assert_eq!(eval("bytes=-1000", 100), Partial { start: 0, end: 99 });
        assert_eq!(eval("BYTES=5-5", 100), Partial { start: 5, end: 5 });
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(eval("bytes=100-", 100), Unsatisfiable);
        assert_eq!(eval("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(eval("bytes=-0", 100), Unsatisfiable);
        assert_eq!(eval("bytes=0-", 0), Unsatisfiable);
        assert_eq!(eval("bytes=-5", 0), Unsatisfiable);
        assert_eq!(
            Unsatisfiable.content_range(100).as_deref(),
            Some("bytes */100")
        );
    }

    #[test]
    fn unsupported_or_invalid_is_full() {
        for h in [
            "bytes=0-1,5-6",
            "bytes=5-1",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1",
            "bytes=99999999999999999999-",
            "",
        ] {
            assert_eq!(eval(h, 100), Full, "{h}");
        }
        assert_eq!(evaluate(None, 100), Full);
    }

    proptest! {
        #[test]
        fn partial_is_always_inside_the_body(h in proptest::collection::vec(any::<u8>(), 0..24), len in 0u64..1000) {
            if let Partial { start, end } = evaluate(Some(&h), len) {
                prop_assert!(start <= end);
                prop_assert!(end < len);
            }
        }

        #[test]
        fn well_formed_ranges_round_trip(a in 0u64..2000, b in 0u64..2000, len in 1u64..1000) {
            let (a, b) = (a.min(b), a.max(b));
            let got = eval(&format!("bytes={a}-{b}"), len);
            if a >= len {
                prop_assert_eq!(got, Unsatisfiable);
            } else {
                prop_assert_eq!(got, Partial { start: a, end: b.min(len - 1) });
                prop_assert_eq!(got.content_range(len), Some(format!("bytes {}-{}/{}", a, b.min(len - 1), len)));
            }
        }
    }
}
