//! Content digests (`algorithm:encoded`) and their incremental verification.
//!
//! The image spec's grammar admits any algorithm; bay accepts only the two it
//! can verify, `sha256` (64 lowercase hex) and `sha512` (128 lowercase hex),
//! because a digest it cannot check is a digest it must not trust. Everything
//! else is a typed error. A parsed [`Digest`] is therefore a short string of
//! `[a-z0-9:]` and can be turned into a file name with
//! [`Digest::path_component`] without any way to escape a directory.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};

/// The hash functions a [`Digest`] may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the algorithm registries use by default.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written before the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hex characters the encoded part has.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest text a digest can be: `sha512:` and 128 hex characters.
pub const MAX_DIGEST_LEN: usize = 7 + 128;

/// Why a string is not a digest bay accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The input was empty.
    #[error("digest is empty")]
    Empty,
    /// The input is longer than any accepted digest.
    #[error("digest is {len} bytes, longer than the {MAX_DIGEST_LEN} any accepted digest has")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
    },
    /// There is no `:` between algorithm and encoded part.
    #[error("digest has no ':' between algorithm and encoded part")]
    MissingSeparator,
    /// The algorithm is not `sha256` or `sha512` (names are case-sensitive).
    #[error("digest algorithm {algorithm:?} is not supported (only sha256 and sha512)")]
    UnsupportedAlgorithm {
        /// The algorithm as written, at most 16 characters of it.
        algorithm: String,
    },
    /// The encoded part has the wrong length for its algorithm.
    #[error("{algorithm} digest needs {expected} hex characters, found {found}")]
    WrongLength {
        /// The algorithm named.
        algorithm: Algorithm,
        /// The length the algorithm requires.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A character of the encoded part is not lowercase hex.
    #[error("digest encoded part has a non-lowercase-hex byte at offset {offset}")]
    NotLowerHex {
        /// Offset of the bad byte within the encoded part.
        offset: usize,
    },
}

/// A validated `sha256:<64 hex>` or `sha512:<128 hex>` digest.
///
/// Ordered and hashed by its text, so it can key maps and sorted indexes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    /// The whole `algorithm:hex` text; only ASCII `[a-z0-9:]`.
    text: String,
}

impl Digest {
    /// Parses and validates a digest.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        if s.is_empty() {
            return Err(DigestError::Empty);
        }
        if s.len() > MAX_DIGEST_LEN {
            return Err(DigestError::TooLong { len: s.len() });
        }
        let (name, encoded) = s.split_once(':').ok_or(DigestError::MissingSeparator)?;
        let algorithm =
            Algorithm::from_name(name).ok_or_else(|| DigestError::UnsupportedAlgorithm {
                algorithm: name.chars().take(16).collect(),
            })?;
        if encoded.len() != algorithm.hex_len() {
            return Err(DigestError::WrongLength {
                algorithm,
                expected: algorithm.hex_len(),
                found: encoded.len(),
            });
        }
        if let Some(offset) = encoded.bytes().position(|b| !is_lower_hex(b)) {
            return Err(DigestError::NotLowerHex { offset });
        }
        Ok(Digest {
            algorithm,
            text: s.to_owned(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Algorithm::Sha256, &Sha256::digest(bytes))
    }

    /// The SHA-512 digest of `bytes`.
    pub fn sha512_of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Algorithm::Sha512, &Sha512::digest(bytes))
    }

    /// A SHA-256 digest from its 32 raw bytes.
    pub fn from_sha256_bytes(hash: &[u8; 32]) -> Digest {
        Digest::from_hash(Algorithm::Sha256, hash)
    }

    /// The algorithm named before the colon.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex after the colon.
    pub fn hex(&self) -> &str {
        // The text always starts with the algorithm's name and a colon.
        self.text
            .get(self.algorithm.as_str().len() + 1..)
            .unwrap_or_default()
    }

    /// The whole digest as written: `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A file name for this digest: `sha256-<hex>`.
    ///
    /// Only `[a-z0-9-]`, never empty, never `.` or `..`, no separator: safe
    /// to join onto a directory.
    pub fn path_component(&self) -> String {
        format!("{}-{}", self.algorithm.as_str(), self.hex())
    }

    /// Parses the output of [`Digest::path_component`] back into a digest,
    /// for rebuilding an index from file names.
    pub fn from_path_component(name: &str) -> Result<Digest, DigestError> {
        let (algorithm, hex) = name.split_once('-').ok_or(DigestError::MissingSeparator)?;
        if algorithm.len() + hex.len() + 1 > MAX_DIGEST_LEN {
            return Err(DigestError::TooLong { len: name.len() });
        }
        Digest::parse(&format!("{algorithm}:{hex}"))
    }

    /// The raw hash bytes the hex encodes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hex()
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
            .collect()
    }

    fn from_hash(algorithm: Algorithm, hash: &[u8]) -> Digest {
        let mut text = String::with_capacity(algorithm.as_str().len() + 1 + hash.len() * 2);
        text.push_str(algorithm.as_str());
        text.push(':');
        for byte in hash {
            text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
        }
        Digest { algorithm, text }
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Value of a byte already checked by [`is_lower_hex`].
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => 0,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sha256 or sha512 digest string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Digest, E> {
                Digest::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// The hasher behind a [`DigestVerifier`].
#[derive(Clone)]
enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Checks bytes against an expected digest as they arrive.
///
/// Feed every byte of the content with [`update`](Self::update), in order,
/// then ask [`finish`](Self::finish). Nothing here buffers the content.
#[derive(Clone)]
pub struct DigestVerifier {
    expected: Digest,
    hasher: Hasher,
    len: u64,
}

/// The content did not hash to the expected digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content of {len} bytes hashes to {actual}, expected {expected}")]
pub struct DigestMismatch {
    /// The digest the content was supposed to have.
    pub expected: Digest,
    /// The digest it has.
    pub actual: Digest,
    /// How many bytes were hashed.
    pub len: u64,
}

impl DigestVerifier {
    /// A verifier for content that should hash to `expected`.
    pub fn new(expected: &Digest) -> DigestVerifier {
        let hasher = match expected.algorithm() {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        };
        DigestVerifier {
            expected: expected.clone(),
            hasher,
            len: 0,
        }
    }

    /// Hashes the next bytes of the content.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
        self.len = self.len.saturating_add(bytes.len() as u64);
    }

    /// How many bytes have been hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before any byte was hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest this verifier expects.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// The digest of everything hashed, and whether it is the expected one.
    pub fn finish(self) -> Result<Digest, DigestMismatch> {
        let actual = match self.hasher {
            Hasher::Sha256(h) => Digest::from_hash(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_hash(Algorithm::Sha512, &h.finalize()),
        };
        if actual == self.expected {
            Ok(actual)
        } else {
            Err(DigestMismatch {
                expected: self.expected,
                actual,
                len: self.len,
            })
        }
    }

    /// Whether everything hashed matches the expected digest.
    pub fn matches(self) -> bool {
        self.finish().is_ok()
    }
}

impl fmt::Debug for DigestVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestVerifier")
            .field("expected", &self.expected)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_spec_example() {
        let d = Digest::parse(
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
        )
        .unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(
            d.hex(),
            "6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
        );
        assert_eq!(
            d.path_component(),
            "sha256-6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
        );
        assert_eq!(Digest::from_path_component(&d.path_component()), Ok(d));
    }

    #[test]
    fn computes_known_hashes() {
        assert_eq!(Digest::sha256_of(b"").as_str(), EMPTY_SHA256);
        let abc = Digest::sha512_of(b"abc");
        assert!(abc.hex().starts_with("ddaf35a193617aba"));
        assert_eq!(abc.hex().len(), 128);
        assert_eq!(Digest::parse(abc.as_str()), Ok(abc));
    }

    #[test]
    fn rejects_hostile_digests() {
        let hex64 = "a".repeat(64);
        let cases: Vec<(String, DigestError)> = vec![
            (String::new(), DigestError::Empty),
            (hex64.clone(), DigestError::MissingSeparator),
            (
                format!("SHA256:{hex64}"),
                DigestError::UnsupportedAlgorithm {
                    algorithm: "SHA256".into(),
                },
            ),
            (
                format!("md5:{}", "a".repeat(32)),
                DigestError::UnsupportedAlgorithm {
                    algorithm: "md5".into(),
                },
            ),
            (
                format!("sha256:{}", "A".repeat(64)),
                DigestError::NotLowerHex { offset: 0 },
            ),
            (
                format!("sha256:{}/", "a".repeat(63)),
                DigestError::NotLowerHex { offset: 63 },
            ),
            (
                format!("sha256:{}..", "a".repeat(62)),
                DigestError::NotLowerHex { offset: 62 },
            ),
            (
                format!("sha256:{}\0", "a".repeat(63)),
                DigestError::NotLowerHex { offset: 63 },
            ),
            (
                format!("sha256:{}", "a".repeat(63)),
                DigestError::WrongLength {
                    algorithm: Algorithm::Sha256,
                    expected: 64,
                    found: 63,
                },
            ),
            (
                format!("sha512:{hex64}"),
                DigestError::WrongLength {
                    algorithm: Algorithm::Sha512,
                    expected: 128,
                    found: 64,
                },
            ),
            (
                format!("sha256:{}", "a".repeat(200)),
                DigestError::TooLong { len: 207 },
            ),
            (
                format!("../sha256:{}", "a".repeat(60)),
                DigestError::UnsupportedAlgorithm {
                    algorithm: "../sha256".into(),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Digest::parse(&input), Err(want), "input {input:?}");
        }
        assert!(Digest::from_path_component("sha256-..").is_err());
        assert!(Digest::from_path_component("..").is_err());
    }

    #[test]
    fn serde_validates() {
        let d: Digest = serde_json::from_str(&format!("\"{EMPTY_SHA256}\"")).unwrap();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{EMPTY_SHA256}\"")
        );
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
        assert!(serde_json::from_str::<Digest>("42").is_err());
    }

    #[test]
    fn verifier_accepts_split_content_and_rejects_other() {
        let content = b"hello, layer";
        let d = Digest::sha256_of(content);
        let mut v = DigestVerifier::new(&d);
        v.update(&content[..3]);
        v.update(&[]);
        v.update(&content[3..]);
        assert_eq!(v.len(), content.len() as u64);
        assert_eq!(v.finish(), Ok(d.clone()));

        let mut bad = DigestVerifier::new(&d);
        bad.update(b"hello, layeR");
        let err = bad.finish().unwrap_err();
        assert_eq!(err.expected, d);
        assert_eq!(err.actual, Digest::sha256_of(b"hello, layeR"));

        let d512 = Digest::sha512_of(content);
        let mut v = DigestVerifier::new(&d512);
        v.update(content);
        assert!(v.matches());
        assert!(!DigestVerifier::new(&d512).matches());
    }

    #[test]
    fn to_bytes_inverts_from_bytes() {
        let raw = [0xabu8; 32];
        assert_eq!(Digest::from_sha256_bytes(&raw).to_bytes(), raw.to_vec());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64), wide in any::<bool>()) {
            let d = if wide { Digest::sha512_of(&bytes) } else { Digest::sha256_of(&bytes) };
            prop_assert_eq!(Digest::parse(&d.to_string()), Ok(d.clone()));
            prop_assert_eq!(Digest::from_path_component(&d.path_component()), Ok(d.clone()));
            let json = serde_json::to_string(&d).unwrap();
            prop_assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_safe_text(s in "\\PC{0,140}") {
            if let Ok(d) = Digest::parse(&s) {
                prop_assert!(d.as_str().bytes().all(|b| b == b':' || b.is_ascii_digit() || b.is_ascii_lowercase()));
                prop_assert_eq!(d.as_str(), s.as_str());
            }
        }
    }
}
