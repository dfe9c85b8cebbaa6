//! Deterministic pseudo-random test data: the same seed and length give
//! the same bytes on every run, so a failure can be reproduced, and the
//! bytes look random enough that no two blocks or pieces hash alike.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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
}
