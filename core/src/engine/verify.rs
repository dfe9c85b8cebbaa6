//! The threads that hash downloaded pieces, so that the engine thread
//! only moves bytes: hashing (each piece's merkle tree, then the blob's
//! OCI digest over the verified prefix) is most of a download's CPU time,
//! and the host's other cores can do it while the next blocks arrive. One
//! thread per core, up to [`MAX_THREADS`].
//!
//! The engine sends a piece's checker and expected hash; the answer comes
//! back as a [`Command::PieceChecked`] through the engine's own mailbox.
//! The thread ends when the engine drops its [`Verifier`].

use std::sync::Arc;

use bay_wire::merkle::Hash;
use crossbeam_channel::Sender;

use super::mailbox::Outbox;
use super::Command;
use crate::store::PieceChecker;

/// One piece to check.
pub(super) struct Job {
    pub(super) info_hash: [u8; 20],
    pub(super) piece: u32,
    pub(super) expected: Hash,
    pub(super) checker: Arc<PieceChecker>,
    pub(super) kind: JobKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JobKind {
    /// Check the piece against `expected`; the answer goes back to the
    /// engine.
    Check,
    /// The piece is already verified (its supplier hashed these bytes):
    /// only fold it into the blob's digest. No answer.
    Fold,
}

/// The engine's handle on the verifier thread.
#[derive(Debug)]
pub(super) struct Verifier {
    jobs: Sender<Job>,
}

impl Verifier {
    /// Queues a job; gives it back if the thread is gone.
    pub(super) fn check(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }
}

/// Most verifier threads.
pub(super) const MAX_THREADS: usize = 4;

pub(super) fn start(results: Outbox<Command>) -> std::io::Result<Verifier> {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_THREADS);
    for i in 0..threads {
        let (queue, results) = (queue.clone(), results.clone());
        std::thread::Builder::new()
            .name(format!("bay-verify-{i}"))
            .spawn(move || {
                for job in queue {
                    if job.kind == JobKind::Fold {
                        job.checker.fold(job.piece);
                        continue;
                    }
                    let result = job.checker.check(job.piece, job.expected);
                    let delivered = results.send(Command::PieceChecked {
                        info_hash: job.info_hash,
                        piece: job.piece,
                        result,
                    });
                    if !delivered {
                        break;
                    }
                }
            })?;
    }
    Ok(Verifier { jobs })
}
