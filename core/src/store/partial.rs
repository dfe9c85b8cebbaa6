//! A blob being downloaded piece by piece.
//!
//! Each piece is checked against its hash before it is written, and marked
//! in the `have` bitfield only after it is written; the bitfield is updated
//! in place, one byte at a time. After a crash the bitfield may claim a
//! piece whose bytes never reached the disk, so at start every marked piece
//! is verified again (see [`check_on_disk`]). The blob moves to `blobs/`
//! only after the whole file matches its OCI digest.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bay_wire::merkle::{self, Hash, ZERO_HASH};
use bay_wire::oci::DigestVerifier;
use memmap2::MmapMut;

use super::layout::{self, Meta};
use super::prefix::PrefixDigest;
use super::{BlobRef, Pin, StoreError};
use crate::bitfield::Bitfield;

/// Why a piece was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PieceError {
    #[error("piece {piece} is out of range ({pieces} pieces)")]
    OutOfRange { piece: u32, pieces: u32 },
    #[error("piece {piece} is {actual} bytes, expected {expected}")]
    WrongSize {
        piece: u32,
        expected: usize,
        actual: usize,
    },
    #[error("hash of piece {piece} is not known yet")]
    HashUnknown { piece: u32 },
    #[error("piece {piece} does not match its hash")]
    Mismatch { piece: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A download in progress; the only writer of its blob.
#[derive(Debug)]
pub struct PartialBlob {
    pin: Pin,
    dir: PathBuf,
    meta: Meta,
    /// The data file, for writing blocks with pwrite(2): storing through
    /// the mapping would take a page fault (and a read-ahead of the
    /// preallocated file) for every 4 KiB written.
    data: File,
    map: MmapMut,
    hashes: Vec<Hash>,
    hashes_file: File,
    have: Bitfield,
    have_file: File,
    /// The OCI digest of the verified prefix, kept by the checkers.
    prefix: Arc<PrefixDigest>,
}

impl PartialBlob {
    pub(super) fn open_or_create(
        pin: Pin,
        dir: PathBuf,
        total_len: u64,
        piece_len: u64,
    ) -> Result<PartialBlob, StoreError> {
        let meta = Meta {
            total_len,
            piece_len,
        };
        if Meta::decode(&meta.encode()).is_none() {
            return Err(StoreError::Geometry {
                digest: pin.digest.clone(),
                have: total_len,
                want: piece_len,
            });
        }
        let meta_path = dir.join("meta");
        let existing = fs::read_to_string(&meta_path)
            .ok()
            .and_then(|t| Meta::decode(&t));
        if existing != Some(meta) {
            create_fresh(&dir, &meta)?;
        }
        let data_path = dir.join("data");
        let data = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&data_path)
            .map_err(|e| StoreError::io("open", &data_path, e))?;
        // SAFETY: only this writer (the store allows one per digest) maps
        // the file for writing, and nothing truncates it while mapped.
        let map =
            unsafe { MmapMut::map_mut(&data) }.map_err(|e| StoreError::io("map", &data_path, e))?;
        let pieces = meta.pieces();
        let hashes_path = dir.join("hashes");
        let hashes_file = open_rw(&hashes_path)?;
        let hashes = read_hashes(&hashes_file, pieces, &hashes_path)?;
        let have_path = dir.join("have");
        let have_file = open_rw(&have_path)?;
        let have = read_have(&have_file, pieces, &have_path)?;
        let prefix = Arc::new(PrefixDigest::new(DigestVerifier::new(&pin.digest)));
        Ok(PartialBlob {
            pin,
            dir,
            meta,
            data,
            map,
            hashes,
            hashes_file,
            have,
            have_file,
            prefix,
        })
    }

    pub fn digest(&self) -> &bay_wire::oci::Digest {
        &self.pin.digest
    }

    pub fn total_len(&self) -> u64 {
        self.meta.total_len
    }

    pub fn piece_len(&self) -> u64 {
        self.meta.piece_len
    }

    pub fn pieces(&self) -> u32 {
        self.meta.pieces()
    }

    /// Verified pieces (after a restart: those that checked out again).
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    pub fn hash_known(&self, piece: u32) -> bool {
        self.hashes
            .get(piece as usize)
            .is_some_and(|h| *h != ZERO_HASH)
    }

    /// Records the hash piece `piece` must have (from the metainfo, or
    /// progressively from the origin).
    pub fn set_piece_hash(&mut self, piece: u32, hash: Hash) -> Result<(), PieceError> {
        let pieces = self.pieces();
        let slot = self
            .hashes
            .get_mut(piece as usize)
            .ok_or(PieceError::OutOfRange { piece, pieces })?;
        if *slot == hash {
            return Ok(());
        }
        *slot = hash;
        let path = self.dir.join("hashes");
        self.hashes_file
            .write_all_at(&hash, u64::from(piece) * 32)
            .map_err(|e| StoreError::io("write", &path, e))?;
        Ok(())
    }

    /// Verifies `data` as piece `piece` and writes it. Nothing is written
    /// if it does not match.
    pub fn write_piece(&mut self, piece: u32, data: &[u8]) -> Result<(), PieceError> {
        self.write_piece_hashed(piece, data, None)
    }

    /// [`PartialBlob::write_piece`] where the caller has just hashed `data`
    /// itself (`hashed`, the origin cutting a registry stream into pieces):
    /// that hash is compared with the known one instead of hashing again.
    pub fn write_piece_hashed(
        &mut self,
        piece: u32,
        data: &[u8],
        hashed: Option<&Hash>,
    ) -> Result<(), PieceError> {
        let range = self.piece_range(piece)?;
        if data.len() != range.len() {
            return Err(PieceError::WrongSize {
                piece,
                expected: range.len(),
                actual: data.len(),
            });
        }
        if self.have.has(piece) {
            return Ok(());
        }
        let expected = self.known_hash(piece)?;
        let matches = match hashed {
            Some(h) => *h == expected,
            None => merkle::verify_piece(&expected, data, self.meta.piece_len, self.meta.total_len)
                .is_ok(),
        };
        if !matches {
            return Err(PieceError::Mismatch { piece });
        }
        // Written through the page cache rather than the mapping: no page
        // faults, and no pages zeroed only to be overwritten.
        self.data
            .write_all_at(data, range.start as u64)
            .map_err(|e| StoreError::io("write", &self.dir.join("data"), e))?;
        self.mark(piece)?;
        Ok(())
    }

    /// Writes bytes of a piece that is not verified yet, as blocks arrive
    /// from peers. Nothing marks them: [`PartialBlob::verify_piece`] does,
    /// once the whole piece is here.
    pub fn write_block(&mut self, piece: u32, begin: u32, data: &[u8]) -> Result<(), PieceError> {
        let range = self.piece_range(piece)?;
        let start = range.start + begin as usize;
        let end = start
            .checked_add(data.len())
            .filter(|&end| end <= range.end)
            .ok_or(PieceError::WrongSize {
                piece,
                expected: range.len(),
                actual: begin as usize + data.len(),
            })?;
        // A piece verified (or folded into the digest) is never written
        // again, even before the engine marks it: the digest and the
        // readers already rely on its bytes.
        if self.have.has(piece) || self.prefix.covers(piece) {
            return Ok(());
        }
        // The page cache is shared with the mapping, which reads see.
        self.data
            .write_all_at(data, start as u64)
            .map_err(|e| StoreError::io("write", &self.dir.join("data"), e))?;
        debug_assert!(end <= self.map.len());
        Ok(())
    }

    /// Checks the bytes written for `piece` against its hash and marks it
    /// on success. A mismatch leaves it unmarked, to be fetched again.
    pub fn verify_piece(&mut self, piece: u32) -> Result<(), PieceError> {
        if self.have.has(piece) {
            return Ok(());
        }
        let range = self.piece_range(piece)?;
        let expected = self.known_hash(piece)?;
        let bytes = self.map.get(range).ok_or(PieceError::OutOfRange {
            piece,
            pieces: self.meta.pieces(),
        })?;
        merkle::verify_piece(&expected, bytes, self.meta.piece_len, self.meta.total_len)
            .map_err(|_| PieceError::Mismatch { piece })?;
        self.mark(piece)?;
        Ok(())
    }

    /// A checker that verifies pieces of this download on another thread
    /// (hashing is most of a download's work); see [`PieceChecker`].
    pub fn checker(&self) -> Result<PieceChecker, StoreError> {
        let path = self.dir.join("data");
        // SAFETY: read-only view of a file whose only writer is this
        // download; the bytes of a piece are read only after all of its
        // blocks were written, and a piece being checked is not written.
        let map = unsafe { memmap2::Mmap::map(&self.data) }
            .map_err(|e| StoreError::io("map", &path, e))?;
        let data = self
            .data
            .try_clone()
            .map_err(|e| StoreError::io("open", &path, e))?;
        Ok(PieceChecker {
            map,
            data,
            meta: self.meta,
            prefix: self.prefix.clone(),
        })
    }

    /// The hash piece `piece` must have, if known.
    pub fn piece_hash(&self, piece: u32) -> Option<Hash> {
        self.known_hash(piece).ok()
    }

    /// Marks a piece that a [`PieceChecker`] found good, if its hash is
    /// still the one it was checked against and it was not marked since.
    pub fn mark_checked(&mut self, checked: CheckedPiece) -> Result<(), PieceError> {
        let piece = checked.piece;
        if self.have.has(piece) {
            return Ok(());
        }
        if self.known_hash(piece)? != checked.hash {
            return Err(PieceError::Mismatch { piece });
        }
        self.mark(piece)?;
        Ok(())
    }

    /// The file being filled, for sending verified pieces with sendfile(2).
    /// Only ranges of pieces in [`PartialBlob::have`] may be read from it.
    pub fn data_file(&self) -> Result<File, StoreError> {
        let path = self.dir.join("data");
        File::open(&path).map_err(|e| StoreError::io("open", &path, e))
    }

    /// The bytes of a verified piece, for sharing with peers or readers.
    pub fn piece(&self, piece: u32) -> Option<&[u8]> {
        if !self.have.has(piece) {
            return None;
        }
        let range = self.meta.piece_range(piece)?;
        self.map.get(range)
    }

    /// Checks the whole blob against its digest and moves it into the
    /// store; a mismatch deletes the download (a piece hash from a trusted
    /// source disagreed with the registry's digest: start over).
    pub fn finish(self) -> Result<BlobRef, StoreError> {
        let missing = self.pieces() - self.have.count();
        if missing > 0 {
            return Err(StoreError::Incomplete {
                digest: self.digest().clone(),
                missing,
            });
        }
        let data_path = self.dir.join("data");
        self.map
            .flush()
            .map_err(|e| StoreError::io("flush", &data_path, e))?;
        // The checkers hashed the prefix as pieces came; hash the rest.
        let prefix = self.prefix.take();
        let mut verifier = prefix.verifier;
        let from = self
            .meta
            .piece_range(prefix.next)
            .map_or(self.map.len(), |r| r.start);
        verifier.update(self.map.get(from..).unwrap_or_default());
        if let Err(mismatch) = verifier.finish() {
            let digest = self.digest().clone();
            let _ = fs::remove_dir_all(&self.dir);
            self.pin.store.forget(&digest);
            return Err(StoreError::DigestMismatch {
                digest,
                actual: mismatch.to_string(),
            });
        }
        let store = self.pin.store.clone();
        let digest = self.digest().clone();
        let dest = store.inner.layout.blob(&digest);
        fs::rename(&data_path, &dest).map_err(|e| StoreError::io("rename", &dest, e))?;
        layout::sync_parent(&dest)?;
        // The partial folder is now only bookkeeping; losing it in a crash
        // is harmless since the complete blob wins at start.
        let _ = fs::remove_dir_all(&self.dir);
        store.completed(&digest, self.meta.total_len);
        let file = File::open(&dest).map_err(|e| StoreError::io("open", &dest, e))?;
        Ok(BlobRef {
            pin: store.pin(&digest),
            file,
            len: self.meta.total_len,
        })
    }

    fn piece_range(&self, piece: u32) -> Result<std::ops::Range<usize>, PieceError> {
        self.meta.piece_range(piece).ok_or(PieceError::OutOfRange {
            piece,
            pieces: self.meta.pieces(),
        })
    }

    fn known_hash(&self, piece: u32) -> Result<Hash, PieceError> {
        match self.hashes.get(piece as usize) {
            Some(h) if *h != ZERO_HASH => Ok(*h),
            _ => Err(PieceError::HashUnknown { piece }),
        }
    }

    fn mark(&mut self, piece: u32) -> Result<(), StoreError> {
        self.have.set(piece);
        let byte_index = (piece / 8) as usize;
        let byte = self
            .have
            .as_payload()
            .get(byte_index)
            .copied()
            .unwrap_or_default();
        let path = self.dir.join("have");
        self.have_file
            .write_all_at(&[byte], byte_index as u64)
            .map_err(|e| StoreError::io("write", &path, e))
    }
}

impl Drop for PartialBlob {
    fn drop(&mut self) {
        // Give up the writer claim; the files stay for a later resume. A
        // completed blob's claim was already settled by `finish`.
        let digest = self.pin.digest.clone();
        self.pin.store.release_writer(&digest);
    }
}

fn open_rw(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::io("open", path, e))
}

/// Creates a partial folder from nothing: preallocated data (so a full disk
/// shows now, not mid-download), empty hashes and bitfield, then `meta`
/// last, so a folder without valid `meta` is known to be unfinished.
fn create_fresh(dir: &Path, meta: &Meta) -> Result<(), StoreError> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| StoreError::io("remove", dir, e))?;
    }
    fs::create_dir_all(dir).map_err(|e| StoreError::io("create", dir, e))?;
    let data_path = dir.join("data");
    let data = File::create(&data_path).map_err(|e| StoreError::io("create", &data_path, e))?;
    bay_httpd::sys::preallocate(&data, meta.total_len)
        .map_err(|e| StoreError::io("allocate", &data_path, e))?;
    let pieces = u64::from(meta.pieces());
    let hashes_path = dir.join("hashes");
    File::create(&hashes_path)
        .and_then(|f| f.set_len(pieces * 32))
        .map_err(|e| StoreError::io("create", &hashes_path, e))?;
    let have_path = dir.join("have");
    File::create(&have_path)
        .and_then(|f| f.set_len(pieces.div_ceil(8)))
        .map_err(|e| StoreError::io("create", &have_path, e))?;
    layout::write_atomically(&dir.join("meta"), meta.encode().as_bytes())
}

fn read_hashes(file: &File, pieces: u32, path: &Path) -> Result<Vec<Hash>, StoreError> {
    let mut raw = vec![0u8; pieces as usize * 32];
    file.read_exact_at(&mut raw, 0)
        .map_err(|e| StoreError::io("read", path, e))?;
    Ok(raw
        .chunks_exact(32)
        .map(|c| {
            let mut h = ZERO_HASH;
            h.copy_from_slice(c);
            h
        })
        .collect())
}

fn read_have(file: &File, pieces: u32, path: &Path) -> Result<Bitfield, StoreError> {
    let mut raw = vec![0u8; (pieces as usize).div_ceil(8)];
    file.read_exact_at(&mut raw, 0)
        .map_err(|e| StoreError::io("read", path, e))?;
    // Spare bits set means the file is damaged: trust none of it.
    Ok(Bitfield::from_payload(&raw, pieces).unwrap_or_else(|_| Bitfield::new(pieces)))
}

/// Checks a partial folder found at start: valid geometry and files of the
/// right sizes; each piece marked done is verified again and unmarked if
/// it does not match. Returns the blob length, or `None` if the folder is
/// unusable and should be removed.
pub(super) fn check_on_disk(dir: &Path) -> Result<Option<u64>, StoreError> {
    let Some(meta) = fs::read_to_string(dir.join("meta"))
        .ok()
        .and_then(|t| Meta::decode(&t))
    else {
        return Ok(None);
    };
    let pieces = meta.pieces();
    let sizes_ok = [
        ("data", meta.total_len),
        ("hashes", u64::from(pieces) * 32),
        ("have", u64::from(pieces).div_ceil(8)),
    ]
    .iter()
    .all(|(name, len)| fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.len() == *len));
    if !sizes_ok {
        return Ok(None);
    }
    let have_path = dir.join("have");
    let hashes_path = dir.join("hashes");
    let data_path = dir.join("data");
    let have_file = open_rw(&have_path)?;
    let mut have = read_have(&have_file, pieces, &have_path)?;
    let hashes = read_hashes(&open_rw(&hashes_path)?, pieces, &hashes_path)?;
    let data = File::open(&data_path).map_err(|e| StoreError::io("open", &data_path, e))?;
    // SAFETY: no writer exists yet: the store is still opening.
    let map =
        unsafe { memmap2::Mmap::map(&data) }.map_err(|e| StoreError::io("map", &data_path, e))?;
    let marked: Vec<u32> = have.iter().collect();
    for piece in marked {
        let ok = match (hashes.get(piece as usize), meta.piece_range(piece)) {
            (Some(hash), Some(range)) if *hash != ZERO_HASH => {
                map.get(range).is_some_and(|bytes| {
                    merkle::verify_piece(hash, bytes, meta.piece_len, meta.total_len).is_ok()
                })
            }
            _ => false,
        };
        if !ok {
            have.clear(piece);
        }
    }
    have_file
        .write_all_at(have.as_payload(), 0)
        .map_err(|e| StoreError::io("write", &have_path, e))?;
    Ok(Some(meta.total_len))
}

/// Verifies pieces of a partial download off the thread that owns it:
/// it reads the data file through its own read-only mapping and returns a
/// [`CheckedPiece`], which only [`PartialBlob::mark_checked`] accepts.
#[derive(Debug)]
pub struct PieceChecker {
    map: memmap2::Mmap,
    data: File,
    meta: Meta,
    prefix: Arc<PrefixDigest>,
}

/// Proof that a piece's bytes on disk matched `hash` when checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedPiece {
    piece: u32,
    hash: Hash,
}

impl CheckedPiece {
    pub fn piece(&self) -> u32 {
        self.piece
    }
}

impl PieceChecker {
    /// Hashes piece `piece` as written and compares it with `expected`.
    pub fn check(&self, piece: u32, expected: Hash) -> Result<CheckedPiece, PieceError> {
        let pieces = self.meta.pieces();
        let bytes = self
            .meta
            .piece_range(piece)
            .and_then(|r| self.map.get(r))
            .ok_or(PieceError::OutOfRange { piece, pieces })?;
        merkle::verify_piece(&expected, bytes, self.meta.piece_len, self.meta.total_len)
            .map_err(|_| PieceError::Mismatch { piece })?;
        self.start_writeback(piece);
        self.prefix.verified(piece, &self.map, &self.meta);
        Ok(CheckedPiece {
            piece,
            hash: expected,
        })
    }

    /// Folds a piece verified elsewhere into the blob's digest.
    pub fn fold(&self, piece: u32) {
        self.start_writeback(piece);
        self.prefix.verified(piece, &self.map, &self.meta);
    }

    /// Starts writing a good piece to disk now, so that the flush before
    /// the blob is admitted to the store has little left to wait for.
    /// Only a hint: errors show up at that flush.
    fn start_writeback(&self, piece: u32) {
        if let Some(range) = self.meta.piece_range(piece) {
            bay_httpd::sys::start_writeback(&self.data, range.start as u64, range.len() as u64);
        }
    }
}
