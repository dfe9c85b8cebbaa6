//! One client's read of a blob from the swarm (sans-IO): send verified
//! stretches as they come, and decide when to stop waiting for the swarm
//! and take the rest from the registry.
//!
//! The I/O shell ([`super::stream`]) waits on the download for the next
//! verified stretch, at most until [`ReadPlan::wake_at`], and feeds what
//! happened back in. Rules:
//! * verified bytes go out in order, as soon as they are verified;
//! * the download verifying no piece at all for [`ReadPlan::stall`]: the
//!   rest comes from the registry, from the first byte the client has not
//!   received. Pieces verified anywhere in the blob count, not only the
//!   one the reader waits on: a host on a slow link, or one whose next
//!   piece went to a peer that died, is moving, and would otherwise hand
//!   layers to the registry that its swarm is delivering;
//! * the reader's own next byte not verified for [`OWN_STALL_FACTOR`]
//!   times that: the rest comes from the registry even while other pieces
//!   arrive, so one withheld piece cannot hold a client for ever;
//! * a download that failed, or that no origin can finish (orphaned),
//!   sends the reader to the registry at once;
//! * the registry failing after that ends the response early: the client
//!   sees a short body and retries; it never gets a wrong byte.

use std::ops::Range;
use std::time::{Duration, Instant};

/// How often a waiting reader looks at its download's health.
pub const HEALTH_CHECK: Duration = Duration::from_millis(500);
/// How many stall periods a reader waits for its own next byte while the
/// download verifies other pieces.
pub const OWN_STALL_FACTOR: u32 = 4;

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStep {
    /// Send `len` verified bytes at `offset` to the client.
    Send { offset: u64, len: u64 },
    /// Wait for the swarm until the given time at the latest.
    Wait { until: Instant },
    /// Read `range` from the registry and send it.
    FromRegistry {
        range: Range<u64>,
        why: &'static str,
    },
    /// The client has every byte it asked for.
    Finished,
    /// End the response early.
    Abort { why: &'static str },
}

/// The download's health, as the shell sees it when it wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// The download failed (disk, digest): nothing more will be verified.
    pub failed: bool,
    /// No origin is left to publish the missing piece hashes.
    pub orphaned: bool,
    /// Pieces the download has verified so far, anywhere in the blob.
    pub verified_pieces: u32,
}

/// One reader's plan.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    position: u64,
    end: u64,
    /// When the download last verified a piece (or this reader moved).
    last_progress: Instant,
    /// When this reader last moved.
    last_sent: Instant,
    verified_pieces: u32,
    stall: Duration,
    /// The rest has been handed to the registry.
    handed_over: bool,
}

impl ReadPlan {
    /// A reader of `range`, starting at `now`.
    pub fn new(range: Range<u64>, stall: Duration, now: Instant) -> ReadPlan {
        ReadPlan {
            position: range.start,
            end: range.end,
            last_progress: now,
            last_sent: now,
            verified_pieces: 0,
            stall,
            handed_over: false,
        }
    }

    /// The first byte the client has not been sent.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How long the swarm may go without verifying a piece.
    pub fn stall(&self) -> Duration {
        self.stall
    }

    fn own_stall(&self) -> Duration {
        self.stall * OWN_STALL_FACTOR
    }

    /// When the shell must wake at the latest to look again.
    pub fn wake_at(&self, now: Instant) -> Instant {
        (now + HEALTH_CHECK)
            .min(self.last_progress + self.stall)
            .min(self.last_sent + self.own_stall())
    }

    /// `len` bytes at `offset` were verified for this reader.
    #[must_use]
    pub fn verified(&mut self, offset: u64, len: u64, now: Instant) -> ReadStep {
        if self.handed_over || offset != self.position || len == 0 {
            return self.next(now);
        }
        let len = len.min(self.end - self.position);
        self.position += len;
        self.last_progress = now;
        self.last_sent = now;
        ReadStep::Send { offset, len }
    }

    /// The shell woke without news: look at the download's health and the
    /// time.
    #[must_use]
    pub fn woke(&mut self, health: Health, now: Instant) -> ReadStep {
        if self.position >= self.end {
            return ReadStep::Finished;
        }
        if health.verified_pieces > self.verified_pieces {
            self.verified_pieces = health.verified_pieces;
            self.last_progress = now;
        }
        let why = if health.failed {
            "swarm download failed"
        } else if health.orphaned {
            "no origin left for this blob"
        } else if now.saturating_duration_since(self.last_progress) >= self.stall {
            "swarm stalled"
        } else if now.saturating_duration_since(self.last_sent) >= self.own_stall() {
            "the swarm did not deliver the next piece"
        } else {
            return ReadStep::Wait {
                until: self.wake_at(now),
            };
        };
        self.hand_over(why)
    }

    /// The reader's range is verified to its end.
    #[must_use]
    pub fn ended(&mut self, now: Instant) -> ReadStep {
        self.next(now)
    }

    /// The registry failed while serving the rest.
    #[must_use]
    pub fn registry_failed(&mut self) -> ReadStep {
        ReadStep::Abort {
            why: "registry failed for the rest of the blob",
        }
    }

    fn hand_over(&mut self, why: &'static str) -> ReadStep {
        self.handed_over = true;
        ReadStep::FromRegistry {
            range: self.position..self.end,
            why,
        }
    }

    fn next(&self, now: Instant) -> ReadStep {
        if self.position >= self.end {
            ReadStep::Finished
        } else {
            ReadStep::Wait {
                until: self.wake_at(now),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(15);

    #[test]
    fn verified_stretches_go_out_in_order_and_finish() {
        let t = Instant::now();
        let mut r = ReadPlan::new(100..300, STALL, t);
        assert_eq!(
            r.verified(100, 50, t),
            ReadStep::Send {
                offset: 100,
                len: 50
            }
        );
        // A stretch that is not where the client stands is not sent.
        assert!(matches!(r.verified(400, 5, t), ReadStep::Wait { .. }));
        assert_eq!(
            r.verified(150, 500, t),
            ReadStep::Send {
                offset: 150,
                len: 150
            }
        );
        assert_eq!(r.ended(t), ReadStep::Finished);
    }

    #[test]
    fn a_stall_hands_the_rest_to_the_registry_from_the_first_unsent_byte() {
        let t = Instant::now();
        let mut r = ReadPlan::new(0..1000, STALL, t);
        let _ = r.verified(0, 400, t + Duration::from_secs(2));
        assert_eq!(
            r.woke(Health::default(), t + Duration::from_secs(16)),
            ReadStep::Wait {
                until: t + Duration::from_secs(16) + HEALTH_CHECK
            }
        );
        assert_eq!(
            r.woke(Health::default(), t + Duration::from_secs(17)),
            ReadStep::FromRegistry {
                range: 400..1000,
                why: "swarm stalled"
            }
        );
        // Once handed over, late swarm bytes are not sent twice.
        assert!(matches!(r.verified(400, 10, t), ReadStep::Wait { .. }));
    }

    #[test]
    fn failed_or_orphaned_downloads_hand_over_at_once() {
        let t = Instant::now();
        let mut r = ReadPlan::new(0..10, STALL, t);
        let orphaned = Health {
            orphaned: true,
            ..Health::default()
        };
        assert!(
            matches!(r.woke(orphaned, t), ReadStep::FromRegistry { range, .. } if range == (0..10))
        );
        let mut r = ReadPlan::new(0..10, STALL, t);
        let failed = Health {
            failed: true,
            ..Health::default()
        };
        assert!(matches!(
            r.woke(failed, t),
            ReadStep::FromRegistry {
                why: "swarm download failed",
                ..
            }
        ));
        assert!(matches!(r.registry_failed(), ReadStep::Abort { .. }));
    }

    fn verified(pieces: u32) -> Health {
        Health {
            verified_pieces: pieces,
            ..Health::default()
        }
    }

    #[test]
    fn pieces_verified_elsewhere_in_the_blob_keep_the_reader_waiting() {
        let t = Instant::now();
        let secs = |s: u64| t + Duration::from_secs(s);
        let mut r = ReadPlan::new(0..1000, STALL, t);
        let _ = r.verified(0, 100, t);
        // The download goes on verifying pieces ahead of the reader.
        for (at, pieces) in [(10, 2), (20, 3), (30, 4)] {
            assert!(matches!(
                r.woke(verified(pieces), secs(at)),
                ReadStep::Wait { .. }
            ));
        }
        // Nothing more for a whole stall after the last piece.
        assert_eq!(
            r.woke(verified(4), secs(45)),
            ReadStep::FromRegistry {
                range: 100..1000,
                why: "swarm stalled"
            }
        );
    }

    #[test]
    fn a_reader_whose_next_piece_never_comes_leaves_after_its_own_deadline() {
        let t = Instant::now();
        let mut r = ReadPlan::new(0..1000, STALL, t);
        let own = STALL * OWN_STALL_FACTOR;
        let mut pieces = 0;
        let mut at = t;
        while at < t + own {
            pieces += 1;
            assert!(matches!(
                r.woke(verified(pieces), at),
                ReadStep::Wait { .. }
            ));
            at += Duration::from_secs(5);
        }
        assert_eq!(r.wake_at(at), t + own);
        assert_eq!(
            r.woke(verified(pieces + 1), at),
            ReadStep::FromRegistry {
                range: 0..1000,
                why: "the swarm did not deliver the next piece"
            }
        );
    }

    #[test]
    fn the_wake_up_is_never_later_than_the_stall() {
        let t = Instant::now();
        let r = ReadPlan::new(0..10, Duration::from_millis(200), t);
        assert_eq!(r.wake_at(t), t + Duration::from_millis(200));
    }
}
