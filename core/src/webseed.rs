//! Web seeds: the bytes of pieces fetched over HTTP(S) with a `Range`
//! request, for pieces no peer has (BEP 19 in spirit: one URL serves the
//! whole blob). The upstream registry is such a source:
//! `GET /v2/<name>/blobs/<digest>` answers ranges, often through a redirect
//! to object storage, which the client follows (dropping `Authorization`
//! when the origin changes).
//!
//! What it guarantees:
//! * Exactly the requested bytes come out, streamed as they arrive: a
//!   `206` must carry the `Content-Range` asked for; a `200` (a server that
//!   ignores `Range`) is accepted only by reading and dropping the bytes
//!   before the range, up to [`WebSeedConfig::max_skip`], and is cut off at
//!   the end of the range. Nothing beyond the range is kept in memory.
//! * A short body, a wrong range, a bad status and a slow server are typed
//!   errors; the whole fetch has one deadline.
//! * The caller's headers (credentials) are sent as given and never shown:
//!   `Debug` prints their names only, errors name only the origin.
//!
//! It does not verify: the bytes are the server's word until the caller
//! checks each piece, with [`PieceLayout::verify`] (piece hashes from
//! bay-wire's merkle module) or [`verify_with_metainfo`].

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::time::{Duration, Instant};

use bay_httpd::client::{self, Client, Origin, Request, ResponseBody, Url};
use bay_wire::merkle::{self, Hash};
use bay_wire::metainfo::Metainfo;
use bytes::{Bytes, BytesMut};

/// Settings of a web seed.
#[derive(Debug, Clone)]
pub struct WebSeedConfig {
    /// Limit on one whole fetch, head and body.
    pub timeout: Duration,
    /// Most bytes read and dropped to reach the start of a range when the
    /// server ignores `Range` and sends the whole blob.
    pub max_skip: u64,
}

impl Default for WebSeedConfig {
    fn default() -> Self {
        WebSeedConfig {
            timeout: Duration::from_secs(60),
            max_skip: 16 << 20,
        }
    }
}

/// Why a range could not be fetched, or did not check out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebSeedError {
    /// The caller asked for an empty or inverted range.
    #[error("invalid byte range {start}..{end}")]
    InvalidRange {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// Connecting, sending or reading failed.
    #[error("web seed request failed: {0}")]
    Http(#[from] client::Error),
    /// The server answered neither 206 nor 200.
    #[error("web seed {origin} answered HTTP status {status}")]
    Status {
        /// Who answered.
        origin: Origin,
        /// The status code.
        status: u16,
    },
    /// A 206 whose `Content-Range` or length is not the range asked for.
    #[error("web seed {origin} sent range {got:?} for bytes {start}-{last}")]
    WrongRange {
        /// Who answered.
        origin: Origin,
        /// First byte asked for.
        start: u64,
        /// Last byte asked for (inclusive, as in the header).
        last: u64,
        /// What the server sent (`Content-Range`, or the length).
        got: String,
    },
    /// A 200 for a range that starts too far in to read up to.
    #[error("web seed {origin} ignored Range; skipping to byte {start} is more than the {limit} allowed")]
    SkipTooFar {
        /// Who answered.
        origin: Origin,
        /// Where the range starts.
        start: u64,
        /// [`WebSeedConfig::max_skip`].
        limit: u64,
    },
    /// The body ended before the range did.
    #[error("web seed {origin} sent {got} of {expected} bytes")]
    ShortBody {
        /// Who answered.
        origin: Origin,
        /// Bytes of the range.
        expected: u64,
        /// Bytes of the range received.
        got: u64,
    },
    /// A 206 body longer than its range.
    #[error("web seed {origin} sent more than the {expected} bytes of the range")]
    LongBody {
        /// Who answered.
        origin: Origin,
        /// Bytes of the range.
        expected: u64,
    },
    /// The fetch did not finish within [`WebSeedConfig::timeout`].
    #[error("web seed {origin} did not deliver within {after:?}")]
    Timeout {
        /// The web seed.
        origin: Origin,
        /// The limit.
        after: Duration,
    },
    /// A piece's bytes do not match its hash.
    #[error("piece {piece} from the web seed does not match its hash")]
    PieceMismatch {
        /// The piece.
        piece: u32,
    },
    /// A piece index outside the blob, or data not ending on a piece end.
    #[error("piece {piece} is not in the blob, or the data does not cover it exactly")]
    NoSuchPiece {
        /// The piece.
        piece: u32,
    },
}

/// A URL that serves a blob, with the headers to send it.
#[derive(Clone)]
pub struct WebSeed {
    client: Client,
    url: Url,
    headers: Vec<(String, Vec<u8>)>,
    config: WebSeedConfig,
}

impl fmt::Debug for WebSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, _)| format!("{name}: <redacted>"))
            .collect();
        f.debug_struct("WebSeed")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WebSeed {
    /// A web seed at `url`, with default settings and no extra headers.
    pub fn new(client: Client, url: Url) -> WebSeed {
        WebSeed::with_config(client, url, WebSeedConfig::default())
    }

    /// A web seed with the given settings.
    pub fn with_config(client: Client, url: Url, config: WebSeedConfig) -> WebSeed {
        WebSeed {
            client,
            url,
            headers: Vec::new(),
            config,
        }
    }

    /// Adds a header sent with every request (`Authorization`, ...). Its
    /// value is never printed. A `Range` given here is ignored: each fetch
    /// sets its own.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> WebSeed {
        let name = name.into();
        if !name.eq_ignore_ascii_case("range") {
            self.headers.push((name, value.into()));
        }
        self
    }

    /// The blob's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Starts fetching bytes `range` of the blob; the body streams from the
    /// returned [`RangeBody`].
    pub async fn fetch(&self, range: Range<u64>) -> Result<RangeBody, WebSeedError> {
        if range.start >= range.end {
            return Err(WebSeedError::InvalidRange {
                start: range.start,
                end: range.end,
            });
        }
        let started = Instant::now();
        let deadline = started + self.config.timeout;
        let last = range.end - 1;
        let request = Request::get(self.url.clone())
            .headers(self.headers.iter().cloned())
            .header("Range", format!("bytes={}-{last}", range.start))
            .header("Accept-Encoding", "identity");
        let response = within(
            deadline,
            self.url.origin(),
            self.config.timeout,
            self.client.send(request),
        )
        .await??;
        let origin = response.url().origin().clone();
        let len = range.end - range.start;
        let partial = response.status() == 206;
        let skip = match response.status() {
            206 => {
                check_content_range(&response, &origin, range.start, last)?;
                if let Some(n) = response.content_length().filter(|&n| n != len) {
                    return Err(WebSeedError::WrongRange {
                        origin,
                        start: range.start,
                        last,
                        got: format!("Content-Length {n}"),
                    });
                }
                0
            }
            200 => {
                if range.start > self.config.max_skip {
                    return Err(WebSeedError::SkipTooFar {
                        origin,
                        start: range.start,
                        limit: self.config.max_skip,
                    });
                }
                if let Some(total) = response.content_length().filter(|&t| t < range.end) {
                    return Err(WebSeedError::ShortBody {
                        origin,
                        expected: len,
                        got: total.saturating_sub(range.start),
                    });
                }
                tracing::debug!(%origin, skip = range.start, "web seed ignored Range");
                range.start
            }
            status => return Err(WebSeedError::Status { origin, status }),
        };
        let (_, body) = response.into_parts();
        Ok(RangeBody {
            body,
            origin,
            partial,
            skip,
            expected: len,
            remaining: len,
            deadline,
            timeout: self.config.timeout,
        })
    }

    /// Fetches bytes `range` whole. Only the range is held in memory.
    pub async fn read(&self, range: Range<u64>) -> Result<Bytes, WebSeedError> {
        let mut body = self.fetch(range).await?;
        let mut first: Option<Bytes> = None;
        let mut all = BytesMut::new();
        while let Some(piece) = body.chunk().await? {
            if first.is_none() && all.is_empty() {
                first = Some(piece);
                continue;
            }
            if let Some(held) = first.take() {
                let room = usize::try_from(body.expected).unwrap_or(usize::MAX);
                all.reserve(room.min(64 << 20));
                all.extend_from_slice(&held);
            }
            all.extend_from_slice(&piece);
        }
        // One read's worth comes back without a copy.
        Ok(first.unwrap_or_else(|| all.freeze()))
    }
}

/// The body of one range, streamed: exactly the range's bytes, then `None`.
#[derive(Debug)]
pub struct RangeBody {
    body: ResponseBody,
    origin: Origin,
    partial: bool,
    skip: u64,
    expected: u64,
    remaining: u64,
    deadline: Instant,
    timeout: Duration,
}

impl RangeBody {
    /// Whether the server honoured `Range` (206) rather than sending the
    /// whole blob (200).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// Bytes of the range not yet returned.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next bytes of the range, `None` once all of it came.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, WebSeedError> {
        while self.remaining > 0 {
            let read = within(self.deadline, &self.origin, self.timeout, self.body.chunk()).await?;
            let short = WebSeedError::ShortBody {
                origin: self.origin.clone(),
                expected: self.expected,
                got: self.expected - self.remaining,
            };
            let mut piece = match read {
                Ok(Some(piece)) => piece,
                Ok(None) | Err(client::Error::Truncated { .. }) => return Err(short),
                Err(e) => return Err(e.into()),
            };
            let skipped = usize::try_from(self.skip).map_or(piece.len(), |s| s.min(piece.len()));
            self.skip -= skipped as u64;
            let _ = piece.split_to(skipped);
            if piece.is_empty() {
                continue;
            }
            if piece.len() as u64 > self.remaining {
                if self.partial {
                    return Err(WebSeedError::LongBody {
                        origin: self.origin.clone(),
                        expected: self.expected,
                    });
                }
                // The rest of a whole-blob answer is not ours to read.
                piece.truncate(self.remaining as usize);
            }
            self.remaining -= piece.len() as u64;
            return Ok(Some(piece));
        }
        if self.partial && !self.body.is_end() {
            self.finish_partial().await?;
        }
        Ok(None)
    }

    /// Reads the end of a 206 body whose length was not declared (chunked),
    /// so that the connection can be reused; anything more is an error.
    async fn finish_partial(&mut self) -> Result<(), WebSeedError> {
        let read = within(self.deadline, &self.origin, self.timeout, self.body.chunk()).await?;
        match read? {
            None => Ok(()),
            Some(_) => Err(WebSeedError::LongBody {
                origin: self.origin.clone(),
                expected: self.expected,
            }),
        }
    }
}

/// Awaits `fut` until `deadline`.
async fn within<T>(
    deadline: Instant,
    origin: &Origin,
    after: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, WebSeedError> {
    monoio::time::timeout_at(monoio::time::Instant::from_std(deadline), fut)
        .await
        .map_err(|_| WebSeedError::Timeout {
            origin: origin.clone(),
            after,
        })
}

/// Checks that a 206 carries `Content-Range: bytes start-last/total`.
fn check_content_range(
    response: &client::Response,
    origin: &Origin,
    start: u64,
    last: u64,
) -> Result<(), WebSeedError> {
    let value = response.header("content-range");
    let matches = value
        .and_then(|v| parse_content_range(v))
        .is_some_and(|(s, l)| s == start && l == last);
    if matches {
        return Ok(());
    }
    let got = value.map_or_else(
        || "no Content-Range".to_owned(),
        |v| String::from_utf8_lossy(&v[..v.len().min(80)]).into_owned(),
    );
    Err(WebSeedError::WrongRange {
        origin: origin.clone(),
        start,
        last,
        got,
    })
}

/// Parses `bytes first-last/total` (total may be `*`); strict digits only.
fn parse_content_range(value: &[u8]) -> Option<(u64, u64)> {
    let rest = value.strip_prefix(b"bytes ")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (span, total) = rest.split_at(slash);
    let total = total.get(1..)?;
    if total != b"*" {
        number(total)?;
    }
    let dash = span.iter().position(|&b| b == b'-')?;
    let first = number(span.get(..dash)?)?;
    let last = number(span.get(dash + 1..)?)?;
    (first <= last).then_some((first, last))
}

fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// How one file (a blob) is cut into pieces: enough to turn piece numbers
/// into byte ranges and to check fetched pieces against their hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceLayout {
    /// Bytes per piece (a power of two, at least 16 KiB).
    pub piece_length: u64,
    /// Bytes of the file.
    pub file_length: u64,
}

impl PieceLayout {
    /// Number of pieces.
    pub fn pieces(&self) -> u64 {
        merkle::num_pieces(self.file_length, self.piece_length)
    }

    /// The bytes of `count` pieces from `first`; `None` past the end.
    pub fn range(&self, first: u32, count: u32) -> Option<Range<u64>> {
        let end_piece = u64::from(first) + u64::from(count);
        if count == 0 || end_piece > self.pieces() {
            return None;
        }
        let start = u64::from(first) * self.piece_length;
        let end = (end_piece * self.piece_length).min(self.file_length);
        Some(start..end)
    }

    /// Checks `data`, the bytes of consecutive pieces from `first`, against
    /// `hashes`, the file's piece layer (its pieces root alone, for a file
    /// of one piece).
    pub fn verify(&self, hashes: &[Hash], first: u32, data: &[u8]) -> Result<(), WebSeedError> {
        for_each_piece(*self, first, data, |piece, bytes| {
            let expected = hashes
                .get(piece as usize)
                .ok_or(WebSeedError::NoSuchPiece { piece })?;
            merkle::verify_piece(expected, bytes, self.piece_length, self.file_length)
                .map_err(|_| WebSeedError::PieceMismatch { piece })
        })
    }
}

/// Checks `data`, the bytes of consecutive pieces from `first` of a
/// one-file torrent, against the torrent's hashes.
pub fn verify_with_metainfo(
    metainfo: &Metainfo,
    first: u32,
    data: &[u8],
) -> Result<(), WebSeedError> {
    let info = metainfo.info();
    let layout = PieceLayout {
        piece_length: info.piece_length,
        file_length: info.total_length(),
    };
    for_each_piece(layout, first, data, |piece, bytes| {
        metainfo
            .verify_piece(piece, bytes)
            .map_err(|_| WebSeedError::PieceMismatch { piece })
    })
}

/// Splits `data` into the pieces it holds, from `first`, and checks each.
fn for_each_piece(
    layout: PieceLayout,
    first: u32,
    data: &[u8],
    mut check: impl FnMut(u32, &[u8]) -> Result<(), WebSeedError>,
) -> Result<(), WebSeedError> {
    let mut piece = first;
    let mut rest = data;
    while !rest.is_empty() {
        let range = layout
            .range(piece, 1)
            .ok_or(WebSeedError::NoSuchPiece { piece })?;
        let len = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
        if rest.len() < len {
            return Err(WebSeedError::NoSuchPiece { piece });
        }
        let (bytes, tail) = rest.split_at(len);
        check(piece, bytes)?;
        rest = tail;
        piece = piece
            .checked_add(1)
            .ok_or(WebSeedError::NoSuchPiece { piece })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing_is_strict() {
        assert_eq!(parse_content_range(b"bytes 0-99/1000"), Some((0, 99)));
        assert_eq!(parse_content_range(b"bytes 5-5/*"), Some((5, 5)));
        for bad in [
            &b"bytes 0-99"[..],
            b"bytes +0-99/1000",
            b"bytes 0-+99/1000",
            b"bytes 9-1/1000",
            b"bytes -1/1000",
            b"bytes 0-99/",
            b"bytes 0-99/x",
            b"items 0-99/1000",
            b"bytes 0-99999999999999999999999/1",
            b"bytes */1000",
            b"",
        ] {
            assert_eq!(
                parse_content_range(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn content_range_round_trips(first in 0u64..u64::MAX / 2, len in 0u64..1 << 40, total in proptest::option::of(0u64..u64::MAX)) {
            let last = first + len;
            let total = total.map_or_else(|| "*".to_owned(), |t| t.to_string());
            let header = format!("bytes {first}-{last}/{total}");
            proptest::prop_assert_eq!(parse_content_range(header.as_bytes()), Some((first, last)));
        }

        #[test]
        fn content_range_parser_takes_any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let _ = parse_content_range(&bytes);
        }
    }

    #[test]
    fn piece_ranges() {
        let layout = PieceLayout {
            piece_length: 16384,
            file_length: 40000,
        };
        assert_eq!(layout.pieces(), 3);
        assert_eq!(layout.range(0, 1), Some(0..16384));
        assert_eq!(layout.range(1, 2), Some(16384..40000));
        assert_eq!(layout.range(2, 1), Some(32768..40000));
        assert_eq!(layout.range(2, 2), None);
        assert_eq!(layout.range(0, 0), None);
        assert_eq!(layout.range(u32::MAX, u32::MAX), None);
    }

    #[test]
    fn verify_checks_each_piece_and_the_cut() {
        let data: Vec<u8> = (0..40000u32).map(|i| (i * 7 % 251) as u8).collect();
        let layout = PieceLayout {
            piece_length: 16384,
            file_length: data.len() as u64,
        };
        let hashes = merkle::file_hashes(&data, 16384).map(|h| h.piece_layer);
        let Ok(hashes) = hashes else {
            panic!("{hashes:?}");
        };
        assert!(layout.verify(&hashes, 0, &data).is_ok());
        assert!(layout.verify(&hashes, 1, &data[16384..]).is_ok());
        assert!(layout.verify(&hashes, 2, &data[32768..]).is_ok());
        let mut bad = data[16384..32768].to_vec();
        bad[100] ^= 1;
        assert!(matches!(
            layout.verify(&hashes, 1, &bad),
            Err(WebSeedError::PieceMismatch { piece: 1 })
        ));
        assert!(matches!(
            layout.verify(&hashes, 0, &data[..20000]),
            Err(WebSeedError::NoSuchPiece { piece: 1 })
        ));
        assert!(matches!(
            layout.verify(&hashes, 3, &data[..10]),
            Err(WebSeedError::NoSuchPiece { piece: 3 })
        ));
    }

    #[test]
    fn debug_hides_header_values() {
        bay_testkit::drivers::Driver::Epoll
            .block_on(async {
                let client = Client::new(client::ClientConfig::default());
                let Ok(client) = client else {
                    panic!("client");
                };
                let url = Url::parse("https://registry.test/v2/a/blobs/sha256:00?sig=SECRETSIG");
                let Ok(url) = url else {
                    panic!("url");
                };
                let seed = WebSeed::new(client, url).header("Authorization", "Bearer SECRETTOKEN");
                let shown = format!("{seed:?}");
                assert!(shown.contains("Authorization: <redacted>"), "{shown}");
                assert!(!shown.contains("SECRET"), "{shown}");
            })
            .expect("a runtime");
    }
}
