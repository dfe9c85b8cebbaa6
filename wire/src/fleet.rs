//! The fleet key: what a host or a request shows to prove it belongs to
//! the fleet, and the names it gives swarms.
//!
//! A key is 32 random bytes, written as 64 hex digits on a line of its
//! own in the key file. The first key of a file is the one this host uses
//! (to name swarms, to prove itself, to sign); every key in the file is
//! accepted from others, so a fleet rotates its key without downtime
//! (docs/security.md). Everything here is a keyed SHA-256 (HMAC) over
//! length-prefixed parts, so no two different inputs run together into
//! the same bytes.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::oci::Digest;

/// Bytes in a fleet key.
pub const KEY_LEN: usize = 32;
/// Bytes in a keyed hash.
pub const TAG_LEN: usize = 32;

/// One fleet key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKey([u8; KEY_LEN]);

impl fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetKey(<redacted>)")
    }
}

/// A key file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("line {line}: not a fleet key (64 hex digits)")]
    BadLine { line: usize },
    #[error("no key in the file")]
    Empty,
    #[error("line {line}: a key of all zeros is not a key")]
    Zero { line: usize },
}

impl FleetKey {
    /// A key from 32 random bytes (the caller's random source).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> FleetKey {
        FleetKey(bytes)
    }

    /// The key as written in a key file.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// HMAC-SHA256 over `parts`, each prefixed by its length.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        self.mac(parts).finalize().into_bytes().into()
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        // HMAC takes keys of every length: this cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC key");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// Whether `tag` is this key's tag over `parts` (in constant time).
    pub fn verifies(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.mac(parts).verify_slice(tag).is_ok()
    }
}

/// The keys of a fleet: the one in use first, then those still accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKeys {
    keys: Vec<FleetKey>,
}

impl fmt::Debug for FleetKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FleetKeys({} keys, <redacted>)", self.keys.len())
    }
}

impl FleetKeys {
    /// Reads a key file: one key per line, the one in use first; blank
    /// lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<FleetKeys, KeyFileError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bytes: [u8; KEY_LEN] = crate::hex::decode_array(line)
                .map_err(|_| KeyFileError::BadLine { line: i + 1 })?;
            if bytes == [0; KEY_LEN] {
                return Err(KeyFileError::Zero { line: i + 1 });
            }
            keys.push(FleetKey(bytes));
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty);
        }
        Ok(FleetKeys { keys })
    }

    /// One key, in use.
    pub fn single(key: FleetKey) -> FleetKeys {
        FleetKeys { keys: vec![key] }
    }

    /// The key this host uses.
    pub fn current(&self) -> &FleetKey {
        // `parse` and `single` never build an empty list.
        &self.keys[0]
    }

    /// Every accepted key, the one in use first.
    pub fn all(&self) -> &[FleetKey] {
        &self.keys
    }

    /// Whether any accepted key made `tag` over `parts`.
    pub fn verifies(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.keys.iter().any(|k| k.verifies(parts, tag))
    }

    /// The swarm name of `digest` under the key in use.
    pub fn swarm_id(&self, digest: &Digest) -> [u8; 20] {
        keyed_swarm_id(self.current(), digest)
    }

    /// The swarm names of `digest` under every accepted key.
    pub fn swarm_ids(&self, digest: &Digest) -> Vec<[u8; 20]> {
        self.keys
            .iter()
            .map(|k| keyed_swarm_id(k, digest))
            .collect()
    }
}

/// A swarm name only key holders can derive from a digest.
fn keyed_swarm_id(key: &FleetKey, digest: &Digest) -> [u8; 20] {
    let tag = key.tag(&[b"bay-swarm", digest.as_str().as_bytes()]);
    let mut id = [0u8; 20];
    id.copy_from_slice(&tag[..20]);
    id
}

/// How a node names swarms: openly (anyone who knows a digest can derive
/// the name) or under the fleet key.
#[derive(Debug, Clone, Default)]
pub enum Naming {
    #[default]
    Open,
    Keyed(FleetKeys),
}

impl Naming {
    /// The name this node gives the swarm of `digest`.
    pub fn swarm_id(&self, digest: &Digest) -> [u8; 20] {
        match self {
            Naming::Open => crate::origin::swarm_id(digest),
            Naming::Keyed(keys) => keys.swarm_id(digest),
        }
    }

    /// Every name of `digest` this node answers to.
    pub fn swarm_ids(&self, digest: &Digest) -> Vec<[u8; 20]> {
        match self {
            Naming::Open => vec![crate::origin::swarm_id(digest)],
            Naming::Keyed(keys) => keys.swarm_ids(digest),
        }
    }

    /// The fleet keys, in keyed mode.
    pub fn keys(&self) -> Option<&FleetKeys> {
        match self {
            Naming::Open => None,
            Naming::Keyed(k) => Some(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> FleetKey {
        FleetKey([n; KEY_LEN])
    }

    #[test]
    fn key_files_read_every_key_the_first_in_use() {
        let text = format!("# fleet key\n{}\n\n{}\n", key(1).to_hex(), key(2).to_hex());
        let keys = FleetKeys::parse(&text).unwrap();
        assert_eq!(keys.current(), &key(1));
        assert_eq!(keys.all().len(), 2);
        assert_eq!(FleetKeys::parse("# nothing\n"), Err(KeyFileError::Empty));
        assert_eq!(
            FleetKeys::parse("abc\n"),
            Err(KeyFileError::BadLine { line: 1 })
        );
        let zeros = "0".repeat(64);
        assert_eq!(
            FleetKeys::parse(&zeros),
            Err(KeyFileError::Zero { line: 1 })
        );
        assert!(!format!("{keys:?}").contains(&key(1).to_hex()));
    }

    #[test]
    fn tags_verify_under_any_accepted_key_and_parts_do_not_run_together() {
        let keys =
            FleetKeys::parse(&format!("{}\n{}\n", key(1).to_hex(), key(2).to_hex())).unwrap();
        let by_old = key(2).tag(&[b"ab", b"c"]);
        assert!(keys.verifies(&[b"ab", b"c"], &by_old));
        assert!(!keys.verifies(&[b"a", b"bc"], &by_old));
        assert!(!keys.verifies(&[b"ab", b"c"], &key(3).tag(&[b"ab", b"c"])));
    }

    #[test]
    fn keyed_names_differ_from_open_ones_and_between_keys() {
        let d = Digest::sha256_of(b"layer");
        let keyed = Naming::Keyed(FleetKeys::single(key(1)));
        assert_ne!(keyed.swarm_id(&d), Naming::Open.swarm_id(&d));
        assert_ne!(
            keyed.swarm_id(&d),
            Naming::Keyed(FleetKeys::single(key(2))).swarm_id(&d)
        );
        assert_eq!(Naming::Open.swarm_id(&d), crate::origin::swarm_id(&d));
    }
}

/// The header that carries a request's [`RequestSignature`].
pub const SIGNATURE_HEADER: &str = "x-bay-fleet";

/// A request to a tracker, signed with the fleet key: the time, a fresh
/// nonce and a tag over both, the method, the target and the body's
/// SHA-256. The tracker refuses a stale time or a nonce it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    /// Seconds since the Unix epoch when it was signed.
    pub time: u64,
    pub nonce: [u8; 16],
    pub tag: [u8; TAG_LEN],
}

/// A signature header that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {SIGNATURE_HEADER} header")]
pub struct BadSignatureHeader;

impl RequestSignature {
    /// Signs `method target` with `body_sha256` at `time` with `nonce`.
    pub fn sign(
        key: &FleetKey,
        method: &str,
        target: &str,
        body_sha256: &[u8; 32],
        time: u64,
        nonce: [u8; 16],
    ) -> RequestSignature {
        let tag = key.tag(&Self::parts(
            method,
            target,
            body_sha256,
            &time.to_be_bytes(),
            &nonce,
        ));
        RequestSignature { time, nonce, tag }
    }

    fn parts<'a>(
        method: &'a str,
        target: &'a str,
        body_sha256: &'a [u8; 32],
        time: &'a [u8; 8],
        nonce: &'a [u8; 16],
    ) -> [&'a [u8]; 6] {
        [
            b"bay-request",
            method.as_bytes(),
            target.as_bytes(),
            body_sha256,
            time,
            nonce,
        ]
    }

    /// Whether an accepted key signed exactly this request.
    pub fn verifies(
        &self,
        keys: &FleetKeys,
        method: &str,
        target: &str,
        body_sha256: &[u8; 32],
    ) -> bool {
        let time = self.time.to_be_bytes();
        keys.verifies(
            &Self::parts(method, target, body_sha256, &time, &self.nonce),
            &self.tag,
        )
    }

    /// The header value: `t=<seconds>,n=<hex>,s=<hex>`.
    pub fn to_header(&self) -> String {
        format!(
            "t={},n={},s={}",
            self.time,
            crate::hex::encode(&self.nonce),
            crate::hex::encode(&self.tag)
        )
    }

    pub fn parse(value: &[u8]) -> Result<RequestSignature, BadSignatureHeader> {
        let text = std::str::from_utf8(value).map_err(|_| BadSignatureHeader)?;
        let (mut time, mut nonce, mut tag) = (None, None, None);
        for part in text.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or(BadSignatureHeader)?;
            match k {
                "t" => time = v.parse().ok(),
                "n" => nonce = crate::hex::decode_array(v).ok(),
                "s" => tag = crate::hex::decode_array(v).ok(),
                _ => {}
            }
        }
        Ok(RequestSignature {
            time: time.ok_or(BadSignatureHeader)?,
            nonce: nonce.ok_or(BadSignatureHeader)?,
            tag: tag.ok_or(BadSignatureHeader)?,
        })
    }
}

#[cfg(test)]
mod signature_tests {
    use super::*;

    #[test]
    fn signatures_bind_method_target_body_time_and_nonce() {
        let key = FleetKey::from_bytes([4; KEY_LEN]);
        let keys = FleetKeys::single(key.clone());
        let body = [9u8; 32];
        let sig =
            RequestSignature::sign(&key, "POST", "/origin/v1/blobs?x=1", &body, 1000, [1; 16]);
        let back = RequestSignature::parse(sig.to_header().as_bytes()).unwrap();
        assert_eq!(back, sig);
        assert!(back.verifies(&keys, "POST", "/origin/v1/blobs?x=1", &body));
        assert!(!back.verifies(&keys, "GET", "/origin/v1/blobs?x=1", &body));
        assert!(!back.verifies(&keys, "POST", "/origin/v1/blobs?x=2", &body));
        assert!(!back.verifies(&keys, "POST", "/origin/v1/blobs?x=1", &[0; 32]));
        let mut later = back.clone();
        later.time += 1;
        assert!(!later.verifies(&keys, "POST", "/origin/v1/blobs?x=1", &body));
        let other = FleetKeys::single(FleetKey::from_bytes([5; KEY_LEN]));
        assert!(!back.verifies(&other, "POST", "/origin/v1/blobs?x=1", &body));
        assert!(RequestSignature::parse(b"t=1,n=zz,s=00").is_err());
    }
}
