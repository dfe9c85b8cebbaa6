//! Taking a whole file that is already on disk into the store, without
//! copying its bytes when the file system allows: the file is hard-linked
//! under `tmp/`, the linked inode is checked against the digest, and only
//! then renamed into `blobs/`. Seeders of large local files use this.
//!
//! A hard link shares the inode with the source: whoever imports a file
//! this way must not modify it afterwards (replacing it by a rename is
//! fine). Where linking is impossible (another file system, a file system
//! without links) the bytes are copied through [`super::StreamWriter`].

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bay_wire::oci::{Digest, DigestVerifier};

use super::{layout, BlobRef, Pin, State, Store, StoreError};

static NEXT_IMPORT: AtomicU64 = AtomicU64::new(0);

/// Size of the reads used to hash a linked file.
const READ_CHUNK: usize = 1 << 20;

impl Store {
    /// Adds the file at `source` as the complete blob `digest`, after
    /// checking its bytes against the digest. Returns the blob (pinned).
    /// A blob already complete in the store is returned as it is.
    pub fn import_file(&self, digest: &Digest, source: &Path) -> Result<BlobRef, StoreError> {
        if let Some(blob) = self.get(digest)? {
            return Ok(blob);
        }
        let len = fs::metadata(source)
            .map_err(|e| StoreError::io("stat", source, e))?
            .len();
        let tmp = self.inner.layout.tmp().join(format!(
            "{}.{}.import{}",
            digest.path_component(),
            std::process::id(),
            NEXT_IMPORT.fetch_add(1, Ordering::Relaxed)
        ));
        if fs::hard_link(source, &tmp).is_err() {
            return self.import_by_copy(digest, source, len);
        }
        self.claim_writer(digest, len, State::Streaming)
            .inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })?;
        let pin = Pin {
            store: self.clone(),
            digest: digest.clone(),
        };
        let result = self.adopt_linked(&pin, &tmp, len);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        self.release_writer(digest);
        drop(pin);
        result
    }

    /// Checks the linked file and renames it into `blobs/`.
    fn adopt_linked(&self, pin: &Pin, tmp: &Path, len: u64) -> Result<BlobRef, StoreError> {
        let digest = &pin.digest;
        let mut file = File::open(tmp).map_err(|e| StoreError::io("open", tmp, e))?;
        let mut verifier = DigestVerifier::new(digest);
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| StoreError::io("read", tmp, e))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            verifier.update(chunk);
        }
        if verifier.len() != len {
            return Err(StoreError::LengthMismatch {
                digest: digest.clone(),
                expected: len,
                actual: verifier.len(),
            });
        }
        verifier
            .finish()
            .map_err(|mismatch| StoreError::DigestMismatch {
                digest: digest.clone(),
                actual: mismatch.to_string(),
            })?;
        let dest = self.inner.layout.blob(digest);
        fs::rename(tmp, &dest).map_err(|e| StoreError::io("rename", &dest, e))?;
        layout::sync_parent(&dest)?;
        self.completed(digest, len);
        let file = File::open(&dest).map_err(|e| StoreError::io("open", &dest, e))?;
        Ok(BlobRef {
            pin: self.pin(digest),
            file,
            len,
        })
    }

    fn import_by_copy(
        &self,
        digest: &Digest,
        source: &Path,
        len: u64,
    ) -> Result<BlobRef, StoreError> {
        let mut writer = self.begin_stream(digest, Some(len))?;
        let mut file = File::open(source).map_err(|e| StoreError::io("open", source, e))?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| StoreError::io("read", source, e))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            writer.write(chunk)?;
        }
        writer.finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tmp_entries(store: &Store) -> usize {
        fs::read_dir(store.inner.layout.tmp()).unwrap().count()
    }

    #[test]
    fn imports_by_link_after_checking_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("root"), 1 << 30).unwrap();
        let source = dir.path().join("file");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(&source, &data).unwrap();
        let digest = Digest::sha256_of(&data);
        let blob = store.import_file(&digest, &source).unwrap();
        assert_eq!(blob.len(), data.len() as u64);
        assert!(*blob.map().unwrap() == data[..]);
        assert!(store.contains(&digest));
        assert_eq!(store.stats().used_bytes, data.len() as u64);
        assert_eq!(tmp_entries(&store), 0);
        // Same file system: the blob is the source's inode.
        use std::os::unix::fs::MetadataExt;
        let stored = fs::metadata(store.root().join("blobs").join(digest.path_component()));
        assert_eq!(stored.unwrap().ino(), fs::metadata(&source).unwrap().ino());
        // Importing again returns what is there.
        drop(blob);
        assert_eq!(
            store.import_file(&digest, &source).unwrap().len(),
            3_000_000
        );
    }

    #[test]
    fn a_file_that_does_not_match_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("root"), 1 << 30).unwrap();
        let source = dir.path().join("file");
        fs::write(&source, b"not what the digest says").unwrap();
        let digest = Digest::sha256_of(b"something else");
        let err = store.import_file(&digest, &source).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert!(!store.contains(&digest));
        assert_eq!(store.stats().used_bytes, 0);
        assert_eq!(tmp_entries(&store), 0);
        assert_eq!(fs::read_dir(store.root().join("blobs")).unwrap().count(), 0);
        // The source is untouched.
        assert_eq!(fs::read(&source).unwrap(), b"not what the digest says");
    }
}
