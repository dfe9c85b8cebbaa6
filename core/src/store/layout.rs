//! Where things live under the store's root, and the small file formats of
//! a partial download.
//!
//! ```text
//! <root>/blobs/<alg>-<hex>             complete blobs, digest checked
//! <root>/torrents/<alg>-<hex>.torrent  metainfo of blobs we seed
//! <root>/partial/<alg>-<hex>/data      a download in progress (preallocated)
//! <root>/partial/<alg>-<hex>/meta      its geometry: total length, piece length
//! <root>/partial/<alg>-<hex>/hashes    piece hashes known so far (32 bytes each, zero = unknown)
//! <root>/partial/<alg>-<hex>/have      bitfield of pieces written and verified
//! <root>/tmp/                          whole-blob fetches in flight; emptied at start
//! ```
//!
//! Names come only from [`Digest::path_component`], which is `[a-z0-9-]`,
//! so nothing a peer or client sends can name a path outside the root.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use bay_wire::oci::Digest;

use super::StoreError;

const META_MAGIC: &str = "bay-partial 1";

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub(crate) fn torrents(&self) -> PathBuf {
        self.root.join("torrents")
    }

    pub(crate) fn partials(&self) -> PathBuf {
        self.root.join("partial")
    }

    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs().join(digest.path_component())
    }

    pub(crate) fn torrent(&self, digest: &Digest) -> PathBuf {
        self.torrents()
            .join(format!("{}.torrent", digest.path_component()))
    }

    pub(crate) fn partial(&self, digest: &Digest) -> PathBuf {
        self.partials().join(digest.path_component())
    }

    /// Creates the folders; empties `tmp/`, whose files are fetches that a
    /// previous run did not finish and that no index refers to.
    pub(crate) fn prepare(&self) -> Result<(), StoreError> {
        for dir in [self.blobs(), self.torrents(), self.partials()] {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io("create", &dir, e))?;
        }
        let tmp = self.tmp();
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| StoreError::io("empty", &tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| StoreError::io("create", &tmp, e))?;
        Ok(())
    }
}

/// Geometry of a partial download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) total_len: u64,
    pub(crate) piece_len: u64,
}

impl Meta {
    pub(crate) fn encode(&self) -> String {
        format!("{META_MAGIC}\n{} {}\n", self.total_len, self.piece_len)
    }

    pub(crate) fn decode(text: &str) -> Option<Meta> {
        let mut lines = text.lines();
        if lines.next()? != META_MAGIC {
            return None;
        }
        let mut fields = lines.next()?.split(' ');
        let total_len = fields.next()?.parse().ok()?;
        let piece_len: u64 = fields.next()?.parse().ok()?;
        let valid = piece_len.is_power_of_two() && piece_len >= 16 * 1024 && total_len > 0;
        valid.then_some(Meta {
            total_len,
            piece_len,
        })
    }

    pub(crate) fn pieces(&self) -> u32 {
        u32::try_from(self.total_len.div_ceil(self.piece_len)).unwrap_or(u32::MAX)
    }

    pub(crate) fn piece_range(&self, piece: u32) -> Option<std::ops::Range<usize>> {
        let start = u64::from(piece).checked_mul(self.piece_len)?;
        if start >= self.total_len {
            return None;
        }
        let end = (start + self.piece_len).min(self.total_len);
        Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new
/// one, never a mix: a temporary file, fsync, rename, fsync the folder.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("new");
    let mut file = File::create(&tmp).map_err(|e| StoreError::io("create", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StoreError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io("rename", path, e))?;
    sync_parent(path)
}

/// Makes a rename or create in `path`'s folder durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io("sync", dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_rejects_nonsense() {
        let m = Meta {
            total_len: 100_000,
            piece_len: 32 * 1024,
        };
        assert_eq!(Meta::decode(&m.encode()), Some(m));
        assert_eq!(m.pieces(), 4);
        assert_eq!(m.piece_range(3), Some(98_304..100_000));
        assert_eq!(m.piece_range(4), None);
        for bad in [
            "",
            "bay-partial 1\n",
            "bay-partial 1\n10 1000\n",
            "bay-partial 1\n0 16384\n",
            "bay-partial 2\n10 16384\n",
            "bay-partial 1\n-1 16384\n",
        ] {
            assert_eq!(Meta::decode(bad), None, "{bad:?}");
        }
    }
}
