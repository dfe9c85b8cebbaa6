//! The thread that hashes downloaded pieces, so that the engine thread
//! only moves bytes: hashing is most of a download's CPU time, and a
//! second core can do it while the next blocks arrive.
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

pub(super) fn start(results: Outbox<Command>) -> std::io::Result<Verifier> {
    let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
    std::thread::Builder::new()
        .name("bay-verify".into())
        .spawn(move || {
            for job in queue {
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
    Ok(Verifier { jobs })
}
