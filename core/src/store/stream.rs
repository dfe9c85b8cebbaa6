//! A whole blob written front to back, as it streams from the registry.
//!
//! The bytes go to a file under `tmp/` while a digest is computed on the
//! way; [`StreamWriter::finish`] checks length and digest before the rename
//! into `blobs/`. Dropped unfinished (the fetch failed, the process is
//! killed), it leaves only a file in `tmp/`, which the next start empties.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bay_wire::oci::DigestVerifier;

use super::layout;
use super::{BlobRef, Pin, StoreError};

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Sequential writer of one blob.
#[derive(Debug)]
pub struct StreamWriter {
    pin: Pin,
    path: PathBuf,
    file: File,
    verifier: DigestVerifier,
    expected_len: Option<u64>,
    written: u64,
    finished: bool,
}

impl StreamWriter {
    pub(super) fn create(
        pin: Pin,
        tmp_dir: &Path,
        expected_len: Option<u64>,
    ) -> Result<StreamWriter, StoreError> {
        let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
        let path = tmp_dir.join(format!(
            "{}.{}.{n}",
            pin.digest.path_component(),
            std::process::id()
        ));
        let file = File::create(&path).map_err(|e| StoreError::io("create", &path, e))?;
        let verifier = DigestVerifier::new(&pin.digest);
        Ok(StreamWriter {
            pin,
            path,
            file,
            verifier,
            expected_len,
            written: 0,
            finished: false,
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Appends bytes of the blob.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let len = bytes.len() as u64;
        if let Some(expected) = self.expected_len {
            if self.written + len > expected {
                return Err(StoreError::LengthMismatch {
                    digest: self.pin.digest.clone(),
                    expected,
                    actual: self.written + len,
                });
            }
        }
        self.file
            .write_all(bytes)
            .map_err(|e| StoreError::io("write", &self.path, e))?;
        self.verifier.update(bytes);
        self.written += len;
        Ok(())
    }

    /// Checks length and digest, then moves the blob into the store.
    pub fn finish(mut self) -> Result<BlobRef, StoreError> {
        let digest = self.pin.digest.clone();
        if let Some(expected) = self.expected_len {
            if expected != self.written {
                return Err(StoreError::LengthMismatch {
                    digest,
                    expected,
                    actual: self.written,
                });
            }
        }
        let verifier = std::mem::replace(&mut self.verifier, DigestVerifier::new(&digest));
        if let Err(mismatch) = verifier.finish() {
            return Err(StoreError::DigestMismatch {
                digest,
                actual: mismatch.to_string(),
            });
        }
        self.file
            .sync_all()
            .map_err(|e| StoreError::io("sync", &self.path, e))?;
        let store = self.pin.store.clone();
        let dest = store.inner.layout.blob(&digest);
        fs::rename(&self.path, &dest).map_err(|e| StoreError::io("rename", &dest, e))?;
        layout::sync_parent(&dest)?;
        self.finished = true;
        store.completed(&digest, self.written);
        let file = File::open(&dest).map_err(|e| StoreError::io("open", &dest, e))?;
        Ok(BlobRef {
            pin: store.pin(&digest),
            file,
            len: self.written,
        })
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_file(&self.path);
        }
        let digest = self.pin.digest.clone();
        self.pin.store.release_writer(&digest);
    }
}
