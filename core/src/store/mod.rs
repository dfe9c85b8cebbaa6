//! The blob store: content-addressed blobs on disk, crash safe, evicting.
//!
//! A blob enters `blobs/` only by an atomic rename after its OCI digest has
//! been checked over the bytes on disk, so a crash at any instant leaves no
//! file that could be served wrongly. Downloads in progress live in
//! `partial/` with their piece hashes and a bitfield of verified pieces;
//! at start the index is rebuilt from the disk, every piece marked done is
//! checked again, and anything inconsistent is removed.
//!
//! A byte budget covers complete and partial blobs. Making room evicts the
//! least recently used complete blobs, never one that is pinned: a
//! [`BlobRef`] (being read) or a writer pins its blob until dropped.
//!
//! Files already on disk enter by [`Store::import_file`] (see `import`).
//!
//! The store is shared by every worker thread (`Store` is a cheap clone);
//! the index sits behind one mutex held only for bookkeeping, never for
//! I/O on blob data.

mod import;
mod layout;
mod partial;
mod prefix;
mod stream;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bay_wire::oci::Digest;

use layout::Layout;
pub use partial::{CheckedPiece, PartialBlob, PieceChecker, PieceError};
pub use stream::StreamWriter;

/// What went wrong in the store, with the path involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("disk full while trying to {op} {path}: free space or lower --cache-size")]
    DiskFull { op: &'static str, path: PathBuf },
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{needed} bytes do not fit the cache budget of {budget} bytes, even after evicting every unused blob")]
    OverBudget { needed: u64, budget: u64 },
    #[error("{digest} is already complete or being written")]
    Busy { digest: Digest },
    #[error("{digest}: partial download has {have} bytes but the blob is {want}")]
    Geometry {
        digest: Digest,
        have: u64,
        want: u64,
    },
    #[error("{digest}: content does not match its digest (got {actual})")]
    DigestMismatch { digest: Digest, actual: String },
    #[error("{digest}: expected {expected} bytes, got {actual}")]
    LengthMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("{digest}: not complete: {missing} pieces missing")]
    Incomplete { digest: Digest, missing: u32 },
}

impl StoreError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> StoreError {
        if matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ) {
            StoreError::DiskFull {
                op,
                path: path.to_path_buf(),
            }
        } else {
            StoreError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Whether this is the disk (or quota) running out.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::DiskFull { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Complete,
    Partial,
    Streaming,
}

#[derive(Debug)]
struct Entry {
    state: State,
    len: u64,
    pins: u32,
    writer: bool,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<Digest, Entry>,
    used: u64,
    clock: u64,
    /// Complete blobs added since the store opened (see
    /// [`Store::additions`]).
    additions: u64,
}

impl Index {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[derive(Debug)]
struct Inner {
    layout: Layout,
    budget: u64,
    index: Mutex<Index>,
}

/// A handle on the store; clones share it.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Counts for /metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub complete: usize,
    pub partial: usize,
    pub used_bytes: u64,
    pub budget_bytes: u64,
}

impl Store {
    /// Opens (or creates) the store at `root` with a budget of `budget`
    /// bytes, rebuilding the index from what is on disk.
    pub fn open(root: &Path, budget: u64) -> Result<Store, StoreError> {
        let layout = Layout::new(root);
        layout.prepare()?;
        let store = Store {
            inner: Arc::new(Inner {
                layout,
                budget,
                index: Mutex::new(Index::default()),
            }),
        };
        store.load_complete()?;
        store.load_partials()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        self.inner.layout.root()
    }

    pub fn stats(&self) -> StoreStats {
        let index = self.lock();
        let count = |s: State| index.entries.values().filter(|e| e.state == s).count();
        StoreStats {
            complete: count(State::Complete),
            partial: count(State::Partial),
            used_bytes: index.used,
            budget_bytes: self.inner.budget,
        }
    }

    /// Every complete blob with its length, for those who index the
    /// store by something else (the engine by swarm name).
    pub fn complete_blobs(&self) -> Vec<(Digest, u64)> {
        self.lock()
            .entries
            .iter()
            .filter(|(_, e)| e.state == State::Complete)
            .map(|(d, e)| (d.clone(), e.len))
            .collect()
    }

    /// A count that grows whenever a complete blob is added: an index kept
    /// beside the store is stale when this moved.
    pub fn additions(&self) -> u64 {
        self.lock().additions
    }

    /// Whether a complete blob is here.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.lock()
            .entries
            .get(digest)
            .is_some_and(|e| e.state == State::Complete)
    }

    /// Opens a complete blob for reading; it stays pinned (never evicted)
    /// until the handle is dropped.
    pub fn get(&self, digest: &Digest) -> Result<Option<BlobRef>, StoreError> {
        let len = {
            let mut index = self.lock();
            let now = index.tick();
            match index.entries.get_mut(digest) {
                Some(e) if e.state == State::Complete => {
                    e.pins += 1;
                    e.last_used = now;
                    e.len
                }
                _ => return Ok(None),
            }
        };
        let pin = Pin {
            store: self.clone(),
            digest: digest.clone(),
        };
        let path = self.inner.layout.blob(digest);
        match File::open(&path) {
            Ok(file) => Ok(Some(BlobRef { pin, file, len })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Removed behind our back: forget it rather than fail reads.
                drop(pin);
                self.forget(digest);
                Ok(None)
            }
            Err(e) => Err(StoreError::io("open", &path, e)),
        }
    }

    /// Stores the metainfo of a blob (for seeding after a restart).
    pub fn put_torrent(&self, digest: &Digest, torrent: &[u8]) -> Result<(), StoreError> {
        layout::write_atomically(&self.inner.layout.torrent(digest), torrent)
    }

    /// The stored metainfo of a blob, if any.
    pub fn torrent(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.inner.layout.torrent(digest);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path, e)),
        }
    }

    /// Starts or resumes a piece-by-piece download of a blob of `total_len`
    /// bytes in pieces of `piece_len`.
    pub fn begin_partial(
        &self,
        digest: &Digest,
        total_len: u64,
        piece_len: u64,
    ) -> Result<PartialBlob, StoreError> {
        self.claim_writer(digest, total_len, State::Partial)?;
        let pin = Pin {
            store: self.clone(),
            digest: digest.clone(),
        };
        let dir = self.inner.layout.partial(digest);
        match PartialBlob::open_or_create(pin, dir, total_len, piece_len) {
            Ok(partial) => Ok(partial),
            Err(e) => {
                self.release_writer(digest);
                Err(e)
            }
        }
    }

    /// Starts a sequential write of a whole blob (a fetch from the
    /// registry); `expected_len` reserves room when the length is known.
    pub fn begin_stream(
        &self,
        digest: &Digest,
        expected_len: Option<u64>,
    ) -> Result<StreamWriter, StoreError> {
        self.claim_writer(digest, expected_len.unwrap_or(0), State::Streaming)?;
        let pin = Pin {
            store: self.clone(),
            digest: digest.clone(),
        };
        match StreamWriter::create(pin, &self.inner.layout.tmp(), expected_len) {
            Ok(w) => Ok(w),
            Err(e) => {
                self.release_writer(digest);
                Err(e)
            }
        }
    }

    /// Removes a blob (complete or partial) unless it is pinned; returns
    /// whether it is gone.
    pub fn remove(&self, digest: &Digest) -> Result<bool, StoreError> {
        {
            let index = self.lock();
            if index.entries.get(digest).is_some_and(|e| e.pins > 0) {
                return Ok(false);
            }
        }
        self.delete_files(digest)?;
        self.forget(digest);
        Ok(true)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock leaves plain counters behind, which
        // are still usable; carry on rather than poison every later call.
        self.inner
            .index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a writer for `digest`, making room for `len` bytes.
    fn claim_writer(&self, digest: &Digest, len: u64, state: State) -> Result<(), StoreError> {
        let victims = {
            let mut index = self.lock();
            if let Some(e) = index.entries.get(digest) {
                if e.writer || e.state == State::Complete {
                    return Err(StoreError::Busy {
                        digest: digest.clone(),
                    });
                }
            }
            let already = index.entries.get(digest).map_or(0, |e| e.len);
            let victims = self.choose_victims(&mut index, len.saturating_sub(already))?;
            let now = index.tick();
            index.used = index.used - already + len;
            let entry = index.entries.entry(digest.clone()).or_insert(Entry {
                state,
                len,
                pins: 0,
                writer: true,
                last_used: now,
            });
            entry.state = state;
            entry.len = len;
            entry.writer = true;
            entry.pins += 1;
            entry.last_used = now;
            victims
        };
        for victim in victims {
            self.delete_files(&victim)?;
        }
        Ok(())
    }

    /// Picks least recently used unpinned complete blobs to free `needed`
    /// bytes and takes them out of the index.
    fn choose_victims(&self, index: &mut Index, needed: u64) -> Result<Vec<Digest>, StoreError> {
        let budget = self.inner.budget;
        if index.used + needed <= budget {
            return Ok(Vec::new());
        }
        let mut candidates: Vec<(u64, Digest, u64)> = index
            .entries
            .iter()
            .filter(|(_, e)| e.pins == 0 && !e.writer && e.state != State::Streaming)
            .map(|(d, e)| (e.last_used, d.clone(), e.len))
            .collect();
        candidates.sort_unstable();
        let mut freed = 0;
        let mut victims = Vec::new();
        for (_, digest, len) in candidates {
            if index.used - freed + needed <= budget {
                break;
            }
            freed += len;
            victims.push(digest);
        }
        if index.used - freed + needed > budget {
            return Err(StoreError::OverBudget { needed, budget });
        }
        for v in &victims {
            index.entries.remove(v);
        }
        index.used -= freed;
        Ok(victims)
    }

    fn delete_files(&self, digest: &Digest) -> Result<(), StoreError> {
        let layout = &self.inner.layout;
        for path in [layout.blob(digest), layout.torrent(digest)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", &path, e)),
            }
        }
        let dir = layout.partial(digest);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("remove", &dir, e)),
        }
    }

    fn forget(&self, digest: &Digest) {
        let mut index = self.lock();
        if let Some(e) = index.entries.remove(digest) {
            index.used = index.used.saturating_sub(e.len);
        }
    }

    /// A writer is done (finished, failed or dropped): drop its claim. A
    /// partial download stays on disk and in the index so it can resume; an
    /// unfinished stream leaves nothing. Pins are settled by [`Pin`].
    fn release_writer(&self, digest: &Digest) {
        let mut index = self.lock();
        let streaming = match index.entries.get_mut(digest) {
            Some(e) => {
                e.writer = false;
                e.state == State::Streaming
            }
            None => false,
        };
        if streaming {
            if let Some(e) = index.entries.remove(digest) {
                index.used = index.used.saturating_sub(e.len);
            }
        }
    }

    /// A new pin on an indexed blob.
    fn pin(&self, digest: &Digest) -> Pin {
        if let Some(e) = self.lock().entries.get_mut(digest) {
            e.pins += 1;
        }
        Pin {
            store: self.clone(),
            digest: digest.clone(),
        }
    }

    /// A writer finished and renamed its file into `blobs/`.
    fn completed(&self, digest: &Digest, len: u64) {
        let mut index = self.lock();
        let now = index.tick();
        let old = index.entries.get(digest).map_or(0, |e| e.len);
        index.used = index.used - old.min(index.used) + len;
        let entry = index.entries.entry(digest.clone()).or_insert(Entry {
            state: State::Complete,
            len,
            pins: 0,
            writer: false,
            last_used: now,
        });
        entry.state = State::Complete;
        entry.len = len;
        entry.last_used = now;
        index.additions += 1;
    }

    fn unpin(&self, digest: &Digest) {
        let mut index = self.lock();
        if let Some(e) = index.entries.get_mut(digest) {
            e.pins = e.pins.saturating_sub(1);
        }
    }

    fn load_complete(&self) -> Result<(), StoreError> {
        let dir = self.inner.layout.blobs();
        let mut found = Vec::new();
        for item in fs::read_dir(&dir).map_err(|e| StoreError::io("list", &dir, e))? {
            let item = item.map_err(|e| StoreError::io("list", &dir, e))?;
            let path = item.path();
            let name = item.file_name();
            let digest = name
                .to_str()
                .and_then(|n| Digest::from_path_component(n).ok());
            let meta = item
                .metadata()
                .map_err(|e| StoreError::io("stat", &path, e))?;
            match digest {
                Some(d) if meta.is_file() => {
                    let used = meta.accessed().or_else(|_| meta.modified()).ok();
                    found.push((used, d, meta.len()));
                }
                // Not ours (or a leftover of an interrupted write): a store
                // must hold only what it can name.
                _ => remove_any(&path)?,
            }
        }
        // Oldest first, so the restored LRU order follows the disk's.
        found.sort_by_key(|(used, _, _)| *used);
        let mut index = self.lock();
        index.additions += found.len() as u64;
        for (_, digest, len) in found {
            let now = index.tick();
            index.used += len;
            index.entries.insert(
                digest,
                Entry {
                    state: State::Complete,
                    len,
                    pins: 0,
                    writer: false,
                    last_used: now,
                },
            );
        }
        Ok(())
    }

    fn load_partials(&self) -> Result<(), StoreError> {
        let dir = self.inner.layout.partials();
        for item in fs::read_dir(&dir).map_err(|e| StoreError::io("list", &dir, e))? {
            let item = item.map_err(|e| StoreError::io("list", &dir, e))?;
            let path = item.path();
            let digest = item
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_path_component(n).ok());
            let (Some(digest), Some(len)) = (digest, partial::check_on_disk(&path)?) else {
                remove_any(&path)?;
                continue;
            };
            if self.contains(&digest) {
                remove_any(&path)?;
                continue;
            }
            let mut index = self.lock();
            let now = index.tick();
            index.used += len;
            index.entries.insert(
                digest,
                Entry {
                    state: State::Partial,
                    len,
                    pins: 0,
                    writer: false,
                    last_used: now,
                },
            );
        }
        Ok(())
    }
}

fn remove_any(path: &Path) -> Result<(), StoreError> {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    result.map_err(|e| StoreError::io("remove", path, e))
}

/// Keeps a blob from being evicted while it is read or written.
#[derive(Debug)]
struct Pin {
    store: Store,
    digest: Digest,
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.store.unpin(&self.digest);
    }
}

/// An open, complete, verified blob. Its file can be memory-mapped or sent
/// with sendfile(2); the blob is not evicted while this handle lives.
#[derive(Debug)]
pub struct BlobRef {
    pin: Pin,
    file: File,
    len: u64,
}

impl BlobRef {
    pub fn digest(&self) -> &Digest {
        &self.pin.digest
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Maps the blob read-only (an empty blob maps to an empty slice).
    pub fn map(&self) -> Result<BlobMap, StoreError> {
        if self.len == 0 {
            return Ok(BlobMap(None));
        }
        // SAFETY: blob files are never written after the rename that made
        // them complete; they are only ever removed, which leaves a mapping
        // valid.
        let map = unsafe { memmap2::Mmap::map(&self.file) }.map_err(|e| {
            StoreError::io("map", &self.pin.store.inner.layout.blob(self.digest()), e)
        })?;
        Ok(BlobMap(Some(map)))
    }
}

/// A read-only mapping of a complete blob.
#[derive(Debug)]
pub struct BlobMap(Option<memmap2::Mmap>);

impl std::ops::Deref for BlobMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
