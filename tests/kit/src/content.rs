//! Deterministic pseudo-random test data: the same seed and length give
//! the same bytes on every run, so a failure can be reproduced, and the
//! bytes look random enough that no two blocks or pieces hash alike.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};

use crate::error::HarnessError;

/// `len` bytes from a xorshift64* stream seeded with `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `bytes(len, seed)` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, len: usize, seed: u64) -> Result<PathBuf> {
    let path = dir.join(name);
    fs::write(&path, bytes(len, seed)).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `sha256:<hex>`, the OCI digest of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// `sha256:<hex>` of the file at `path`, read in 1 MiB chunks.
pub fn file_digest(path: &Path) -> Result<String, HarnessError> {
    use std::io::Read;
    let mut file = fs::File::open(path).map_err(|e| HarnessError::io("open", path, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| HarnessError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&hash.finalize())))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_seeded() {
        assert_eq!(bytes(1000, 1), bytes(1000, 1));
        assert_ne!(bytes(1000, 1), bytes(1000, 2));
        assert_eq!(bytes(13, 5).len(), 13);
        assert_eq!(bytes(13, 5)[..], bytes(100, 5)[..13]);
    }

    #[test]
    fn digests_name_sha256() {
        assert_eq!(
            digest_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_file(dir.path(), "f", 3000, 9).expect("write");
        assert_eq!(
            file_digest(&path).expect("digest"),
            digest_of(&bytes(3000, 9))
        );
    }
}
