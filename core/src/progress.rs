//! Which pieces of a download are verified, shared with other threads.
//!
//! The engine's thread updates it as pieces check out; HTTP workers
//! streaming a blob to a client wait on it from their own threads (async,
//! via wakers) and programs wait on it blocking (via a condition variable).
//! A [`BlobReader`] turns it into a stream of verified byte ranges.

use std::fs::File;
use std::future::poll_fn;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::bitfield::Bitfield;

/// Why a wait ended without the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgressError {
    #[error("download abandoned: {0}")]
    Failed(String),
    #[error("timed out waiting for the download")]
    TimedOut,
}

#[derive(Debug)]
struct State {
    have: Bitfield,
    complete: bool,
    failed: Option<String>,
    wakers: Vec<Waker>,
}

/// Verified pieces of one blob.
#[derive(Debug)]
pub struct Progress {
    piece_len: u64,
    total_len: u64,
    state: Mutex<State>,
    changed: Condvar,
}

impl Progress {
    /// `complete` once the blob is in the store, which is later than the
    /// last piece: the whole blob is checked against its digest first.
    pub(crate) fn new(
        have: Bitfield,
        complete: bool,
        piece_len: u64,
        total_len: u64,
    ) -> Arc<Progress> {
        Arc::new(Progress {
            piece_len,
            total_len,
            state: Mutex::new(State {
                have,
                complete,
                failed: None,
                wakers: Vec::new(),
            }),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake_all(&self, mut state: MutexGuard<'_, State>) {
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.changed.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    pub(crate) fn piece_done(&self, piece: u32) {
        let mut state = self.lock();
        state.have.set(piece);
        self.wake_all(state);
    }

    pub(crate) fn set_complete(&self) {
        let mut state = self.lock();
        state.complete = true;
        self.wake_all(state);
    }

    pub(crate) fn set_failed(&self, why: String) {
        let mut state = self.lock();
        state.failed = Some(why);
        self.wake_all(state);
    }

    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    pub fn piece_len(&self) -> u64 {
        self.piece_len
    }

    pub fn is_complete(&self) -> bool {
        self.lock().complete
    }

    pub fn verified_pieces(&self) -> u32 {
        self.lock().have.count()
    }

    /// How many bytes from `offset` on are verified and contiguous.
    pub fn verified_from(&self, offset: u64) -> u64 {
        let state = self.lock();
        self.contiguous(&state, offset)
    }

    fn contiguous(&self, state: &State, offset: u64) -> u64 {
        if self.piece_len == 0 || offset >= self.total_len {
            return 0;
        }
        let first = (offset / self.piece_len) as u32;
        let mut piece = first;
        while piece < state.have.len() && state.have.has(piece) {
            piece += 1;
        }
        let end = (u64::from(piece) * self.piece_len).min(self.total_len);
        end.saturating_sub(offset)
    }

    /// Waits until at least one byte at `offset` is verified; returns how
    /// many contiguous bytes from there are.
    pub async fn wait_from(&self, offset: u64) -> Result<u64, ProgressError> {
        poll_fn(|cx| {
            let mut state = self.lock();
            let n = self.contiguous(&state, offset);
            if n > 0 || offset >= self.total_len {
                return Poll::Ready(Ok(n));
            }
            if let Some(why) = &state.failed {
                return Poll::Ready(Err(ProgressError::Failed(why.clone())));
            }
            state.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Completes once the blob is complete (or the download failed).
    pub async fn wait_complete(&self) -> Result<(), ProgressError> {
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.complete {
                return Poll::Ready(Ok(()));
            }
            if let Some(why) = &state.failed {
                return Poll::Ready(Err(ProgressError::Failed(why.clone())));
            }
            state.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Blocks this thread until the blob is complete.
    pub fn wait_complete_blocking(&self, timeout: Duration) -> Result<(), ProgressError> {
        self.wait_blocking(timeout, |s| s.complete)
    }

    /// Blocks this thread until at least `count` pieces are verified.
    pub fn wait_verified_blocking(
        &self,
        count: u32,
        timeout: Duration,
    ) -> Result<(), ProgressError> {
        self.wait_blocking(timeout, |s| s.have.count() >= count)
    }

    fn wait_blocking(
        &self,
        timeout: Duration,
        done: impl Fn(&State) -> bool,
    ) -> Result<(), ProgressError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&state) {
                return Ok(());
            }
            if let Some(why) = &state.failed {
                return Err(ProgressError::Failed(why.clone()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ProgressError::TimedOut);
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .map(|(s, _)| s)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// Reads a byte range of a blob as it is verified: each step yields the
/// next verified stretch, to be sent from [`BlobReader::file`] (by
/// sendfile) or read from it.
pub struct BlobReader {
    progress: Arc<Progress>,
    file: File,
    pos: u64,
    end: u64,
    hooks: ReaderHooks,
    /// The position last passed to `hooks.moved`.
    reported: u64,
}

/// What a [`BlobReader`] tells the download about itself.
#[derive(Default)]
pub(crate) struct ReaderHooks {
    /// The reader now waits at this offset: the swarm fetches the pieces
    /// just ahead of it first.
    pub moved: Option<Box<dyn Fn(u64) + Send>>,
    /// The reader is gone.
    pub dropped: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("pos", &self.pos)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    pub(crate) fn new(
        progress: Arc<Progress>,
        file: File,
        range: std::ops::Range<u64>,
        hooks: ReaderHooks,
    ) -> BlobReader {
        let end = range.end.min(progress.total_len());
        let pos = range.start.min(end);
        BlobReader {
            progress,
            file,
            pos,
            end,
            hooks,
            reported: pos,
        }
    }

    /// The file the ranges refer to.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The next offset to be yielded.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The end of the range (exclusive).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes not yet yielded.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    /// The next verified `(offset, len)` within the range, waiting for the
    /// swarm if needed; `None` at the end.
    pub async fn next_range(&mut self) -> Option<Result<(u64, u64), ProgressError>> {
        if self.pos >= self.end {
            return None;
        }
        if self.pos != self.reported {
            // Without this the swarm would favour only the pieces at the
            // start of the range, and a reader could wait on a piece the
            // picker left for last.
            self.reported = self.pos;
            if let Some(moved) = &self.hooks.moved {
                moved(self.pos);
            }
        }
        match self.progress.wait_from(self.pos).await {
            Ok(n) => {
                let len = n.min(self.end - self.pos);
                let start = self.pos;
                self.pos += len;
                Some(Ok((start, len)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl Drop for BlobReader {
    fn drop(&mut self) {
        if let Some(f) = self.hooks.dropped.take() {
            f();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        bay_testkit::drivers::Driver::Epoll
            .block_on(f)
            .expect("runtime")
    }

    #[test]
    fn reader_yields_only_verified_stretches_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![0u8; 100]).unwrap();
        let progress = Progress::new(Bitfield::new(4), false, 32, 100);
        let mut reader = BlobReader::new(
            progress.clone(),
            File::open(&path).unwrap(),
            10..90,
            ReaderHooks::default(),
        );
        let p = progress.clone();
        let feeder = std::thread::spawn(move || {
            for piece in [1, 0, 3, 2] {
                p.piece_done(piece);
            }
        });
        let mut got = Vec::new();
        block_on(async {
            while let Some(r) = reader.next_range().await {
                got.push(r.unwrap());
            }
        });
        feeder.join().unwrap();
        // Pieces 1 then 0 make 0..64 contiguous; 3 then 2 make 64..100.
        let total: u64 = got.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 80);
        assert_eq!(got.first().map(|r| r.0), Some(10));
        let mut pos = 10;
        for (start, len) in got {
            assert_eq!(start, pos);
            pos += len;
        }
    }

    #[test]
    fn a_reader_tells_the_download_where_it_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![0u8; 128]).unwrap();
        let progress = Progress::new(Bitfield::new(4), false, 32, 128);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let hooks = ReaderHooks {
            moved: Some(Box::new(move |at| log.lock().unwrap().push(at))),
            dropped: None,
        };
        let mut reader =
            BlobReader::new(progress.clone(), File::open(&path).unwrap(), 0..128, hooks);
        for piece in 0..4 {
            progress.piece_done(piece);
            block_on(reader.next_range()).unwrap().unwrap();
        }
        // Reported when it moved on from where it stood, not at the start
        // (the download was told that when the reader was made).
        assert_eq!(*seen.lock().unwrap(), vec![32, 64, 96]);
    }

    #[test]
    fn failure_ends_waits() {
        let progress = Progress::new(Bitfield::new(2), false, 32, 64);
        progress.set_failed("origin gone".into());
        assert_eq!(
            block_on(progress.wait_from(0)),
            Err(ProgressError::Failed("origin gone".into()))
        );
        assert!(progress
            .wait_complete_blocking(Duration::from_millis(1))
            .is_err());
    }
}
