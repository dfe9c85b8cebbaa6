//! The blob read's decisions in a simulated setting: trackers that answer,
//! refuse, answer slowly, die, or stop publishing hashes; a swarm that
//! verifies bytes at a set rate once their hashes are known; a registry
//! that works or fails. Both plans run against it on a virtual clock, and
//! each test checks where every byte the client got came from.
//!
//! It covers the fallbacks the end-to-end tests reach (owner down, no
//! tracker, origin refusing, owner killed with and without a successor)
//! and those they cannot (a slow tracker, hashes that stop mid-blob, a
//! successor with another geometry, a registry failing after the swarm).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::origin_plan::{Answer, Geometry, NoSwarm, OriginPlan, Step};
use super::read_plan::{Health, ReadPlan, ReadStep};

const PIECE: u64 = 1 << 16;
const TICK: Duration = Duration::from_millis(50);
const STALL: Duration = Duration::from_secs(15);
const ASK_WITHIN: Duration = Duration::from_secs(10);

/// How one simulated tracker behaves.
#[derive(Debug, Clone)]
struct Tracker {
    /// Time it takes to answer an ask.
    answers_after: Duration,
    /// Refuses with this status instead of granting.
    refuses: Option<u16>,
    /// Dead from this moment (since the start) on: asks and hash polls
    /// fail.
    dies_at: Option<Duration>,
    /// Publishes no hash past this piece (it stays up, long polls come
    /// back empty).
    hashes_stop_at: Option<u32>,
    /// Grants this piece length (a broken successor gives another).
    piece_length: u64,
}

impl Tracker {
    fn good() -> Tracker {
        Tracker {
            answers_after: Duration::from_millis(20),
            refuses: None,
            dies_at: None,
            hashes_stop_at: None,
            piece_length: PIECE,
        }
    }

    fn down() -> Tracker {
        Tracker {
            dies_at: Some(Duration::ZERO),
            ..Tracker::good()
        }
    }
}

/// The world around one client reading one blob.
struct World {
    trackers: Vec<Tracker>,
    length: u64,
    /// Bytes a second the swarm verifies (pieces in order) once their
    /// hashes are known.
    swarm_rate: f64,
    /// Pieces a second each origin publishes hashes for (its registry
    /// fetch).
    hash_rate: f64,
    registry_works: bool,
}

/// Where the client's bytes came from, and how the read ended.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    direct: Option<NoSwarm>,
    from_swarm: u64,
    from_registry: u64,
    aborted: bool,
    /// Virtual seconds until the read ended.
    secs: f64,
    origins_asked: Vec<usize>,
}

fn peer(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8 + 1], 6881))
}

impl World {
    fn new(trackers: Vec<Tracker>) -> World {
        World {
            trackers,
            length: 40 * PIECE + 123,
            swarm_rate: 50.0 * PIECE as f64,
            hash_rate: 100.0,
            registry_works: true,
        }
    }

    fn pieces(&self) -> u32 {
        self.length.div_ceil(PIECE) as u32
    }

    fn alive(&self, tracker: usize, at: Duration) -> bool {
        self.trackers[tracker].dies_at.is_none_or(|d| at < d)
    }

    /// The tracker's answer to an ask made at `at`, and when it comes.
    fn answer(&self, tracker: usize, at: Duration) -> (Answer, Duration) {
        let t = &self.trackers[tracker];
        if !self.alive(tracker, at) || t.answers_after > ASK_WITHIN {
            return (Answer::Unreachable, ASK_WITHIN.min(t.answers_after));
        }
        let answer = match t.refuses {
            Some(status) => Answer::Refused(status),
            None => Answer::Granted {
                geometry: Geometry {
                    length: self.length,
                    piece_length: t.piece_length,
                },
                peer: peer(tracker),
                swarm: [7; 20],
            },
        };
        (answer, t.answers_after)
    }

    /// Hashes `tracker` has published by `at`, counting from when it was
    /// granted (`since`).
    fn published(&self, tracker: usize, since: Duration, at: Duration) -> u32 {
        let t = &self.trackers[tracker];
        let made = ((at - since).as_secs_f64() * self.hash_rate) as u32;
        made.min(self.pieces())
            .min(t.hashes_stop_at.unwrap_or(u32::MAX))
    }

    /// Runs both plans until the read ends.
    fn run(&self, order: Vec<usize>) -> Outcome {
        let start = Instant::now();
        let mut out = Outcome::default();
        let mut plan = OriginPlan::new(order, ASK_WITHIN);
        let mut at = Duration::ZERO;
        // First asks, until a grant or a decision to go direct.
        let mut step = plan.start();
        let mut granted_by = loop {
            match step {
                Step::Ask { tracker, .. } => {
                    out.origins_asked.push(tracker);
                    let (answer, took) = self.answer(tracker, at);
                    at += took;
                    step = plan.answered(tracker, answer);
                }
                Step::Join { tracker, .. } => break (tracker, at),
                Step::Direct(why) => {
                    out.direct = Some(why);
                    out.from_registry = self.length;
                    out.secs = at.as_secs_f64();
                    return out;
                }
                other => panic!("unexpected first step {other:?}"),
            }
        };
        // The swarm runs; hashes are followed; the reader reads.
        let mut reader = ReadPlan::new(0..self.length, STALL, start + at);
        let joined = at;
        let mut orphaned = false;
        let mut origin_done = false;
        let mut following = true;
        let mut read_step = ReadStep::Wait {
            until: reader.wake_at(start + at),
        };
        loop {
            at += TICK;
            let now = start + at;
            // The origin side: poll hashes, hand over when the owner dies.
            if following && !origin_done && !orphaned {
                let (tracker, since) = granted_by;
                let next = if self.alive(tracker, at) {
                    let upto = self.published(tracker, since, at).max(plan.known());
                    plan.hashes(tracker, upto, upto == self.pieces())
                } else {
                    plan.hashes_lost(tracker)
                };
                let mut next = next;
                loop {
                    match next {
                        Step::Follow { .. } => break,
                        Step::Done => {
                            origin_done = true;
                            break;
                        }
                        Step::Orphaned => {
                            orphaned = true;
                            break;
                        }
                        Step::Ask { tracker, .. } => {
                            out.origins_asked.push(tracker);
                            let (answer, took) = self.answer(tracker, at);
                            at += took;
                            next = plan.answered(tracker, answer);
                        }
                        Step::TakeOver { tracker, .. } => {
                            granted_by = (tracker, at); // it fetches anew
                            next = Step::Follow {
                                tracker,
                                from: plan.known(),
                            };
                        }
                        Step::Join { .. } | Step::Direct(_) => {
                            following = false;
                            break;
                        }
                    }
                }
            }
            // The swarm verifies, in order, what it has hashes for.
            let by_rate = ((at - joined).as_secs_f64() * self.swarm_rate) as u64;
            let verified = by_rate
                .min(u64::from(plan.known()) * PIECE)
                .min(self.length);
            let now_step = match read_step {
                ReadStep::Wait { until } => {
                    let position = reader.position();
                    if verified > position {
                        reader.verified(position, verified - position, now)
                    } else if position >= self.length {
                        reader.ended(now)
                    } else if now >= until {
                        reader.woke(
                            Health {
                                failed: false,
                                orphaned,
                                verified_pieces: (verified / PIECE) as u32,
                            },
                            now,
                        )
                    } else {
                        ReadStep::Wait { until }
                    }
                }
                other => other,
            };
            read_step = match now_step {
                ReadStep::Send { len, .. } => {
                    out.from_swarm += len;
                    ReadStep::Wait {
                        until: reader.wake_at(now),
                    }
                }
                ReadStep::FromRegistry { range, .. } => {
                    if self.registry_works {
                        out.from_registry += range.end - range.start;
                        ReadStep::Finished
                    } else {
                        reader.registry_failed()
                    }
                }
                other => other,
            };
            match read_step {
                ReadStep::Finished => break,
                ReadStep::Abort { .. } => {
                    out.aborted = true;
                    break;
                }
                _ => {}
            }
            assert!(at < Duration::from_secs(600), "the read never ended");
        }
        out.secs = at.as_secs_f64();
        out
    }
}

mod cases;
