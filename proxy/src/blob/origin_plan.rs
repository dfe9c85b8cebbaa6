//! Where one blob's download stands with the trackers (sans-IO): which
//! tracker to ask to be the blob's origin, whose piece hashes to follow,
//! who takes over when that tracker dies, and when the swarm cannot serve
//! the blob at all.
//!
//! The I/O shell ([`super::download`]) performs each [`Step`] and reports
//! the outcome; this machine reads no socket and no clock.
//!
//! Rules:
//! * Trackers are asked in rendezvous order of the digest, so every proxy
//!   asks the same owner first and the same next one when it is down.
//! * A first ask the origin refuses (the registry's 401, 403, 404) sends
//!   the client to the registry, which gives it the registry's own answer.
//!   A tracker that does not answer within [`OriginPlan::ask_within`]
//!   counts as down: the next one is asked. When none answers, the client
//!   reads from the registry.
//! * Once the swarm runs, piece hashes are followed from the tracker that
//!   granted the blob. When it stops answering, the next tracker not yet
//!   tried is asked to take over (with the same client's credentials):
//!   piece hashes depend only on the blob, so any origin publishes the
//!   same ones, and hashes are taken up where they stopped. A take-over
//!   whose blob geometry differs is refused. When nobody can take over,
//!   the download is orphaned: readers finish from the registry at once.

use std::net::SocketAddr;
use std::time::Duration;

/// The length and piece length the origin gave; every origin of a blob
/// must give the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub length: u64,
    pub piece_length: u64,
}

/// What a tracker answered to "be this blob's origin".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Granted {
        geometry: Geometry,
        peer: SocketAddr,
        /// The origin's name for the blob's swarm.
        swarm: [u8; 20],
    },
    /// It answered and said no (the registry refused the client, or the
    /// blob cannot be shared): the status it gave.
    Refused(u16),
    /// No answer in time, or the tracker failed.
    Unreachable,
}

/// Why a blob is not read through the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSwarm {
    /// The origin refused with this status: the registry will tell the
    /// client why.
    Refused(u16),
    /// No tracker answered.
    NoTracker,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask tracker `tracker` (an index into the configured list) to be the
    /// blob's origin, giving it `within` to answer.
    Ask { tracker: usize, within: Duration },
    /// The first grant: start the download with this geometry and dial
    /// the origin; then follow hashes from `tracker`.
    Join {
        tracker: usize,
        geometry: Geometry,
        peer: SocketAddr,
        swarm: [u8; 20],
    },
    /// A take-over: dial the new origin, then follow its hashes from
    /// piece `from`.
    TakeOver {
        tracker: usize,
        peer: SocketAddr,
        from: u32,
    },
    /// Ask `tracker` for piece hashes from `from` on (a long poll).
    Follow { tracker: usize, from: u32 },
    /// Read the blob straight from the registry.
    Direct(NoSwarm),
    /// No origin can publish the missing hashes: readers go to the
    /// registry now instead of waiting for a stall.
    Orphaned,
    /// Every piece hash is known.
    Done,
}

/// How far the plan has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Asking trackers for the first grant.
    Asking,
    /// Following hashes from `tracker`.
    Following { tracker: usize },
    /// Asking other trackers to take over.
    TakingOver,
    /// Nothing more to do.
    Over,
}

/// One blob's plan with the trackers.
#[derive(Debug, Clone)]
pub struct OriginPlan {
    /// Tracker indices in rendezvous order.
    order: Vec<usize>,
    /// How many of `order` have been asked.
    asked: usize,
    state: State,
    geometry: Option<Geometry>,
    /// Hashes known: pieces `0..known`.
    known: u32,
    ask_within: Duration,
}

impl OriginPlan {
    /// A plan over trackers in `order` (rendezvous order of the digest).
    pub fn new(order: Vec<usize>, ask_within: Duration) -> OriginPlan {
        OriginPlan {
            order,
            asked: 0,
            state: State::Asking,
            geometry: None,
            known: 0,
            ask_within,
        }
    }

    /// How long a tracker gets to answer an ask.
    pub fn ask_within(&self) -> Duration {
        self.ask_within
    }

    /// Piece hashes known so far.
    pub fn known(&self) -> u32 {
        self.known
    }

    /// The first step.
    #[must_use]
    pub fn start(&mut self) -> Step {
        self.ask_next()
    }

    /// The tracker asked last answered.
    #[must_use]
    pub fn answered(&mut self, tracker: usize, answer: Answer) -> Step {
        match (self.state, answer) {
            (
                State::Asking,
                Answer::Granted {
                    geometry,
                    peer,
                    swarm,
                },
            ) => {
                self.geometry = Some(geometry);
                self.state = State::Following { tracker };
                Step::Join {
                    tracker,
                    geometry,
                    peer,
                    swarm,
                }
            }
            (State::Asking, Answer::Refused(status)) => {
                self.state = State::Over;
                Step::Direct(NoSwarm::Refused(status))
            }
            (State::TakingOver, Answer::Granted { geometry, peer, .. })
                if Some(geometry) == self.geometry =>
            {
                self.state = State::Following { tracker };
                Step::TakeOver {
                    tracker,
                    peer,
                    from: self.known,
                }
            }
            (State::Asking | State::TakingOver, _) => self.ask_next(),
            (State::Following { .. } | State::Over, _) => self.idle(),
        }
    }

    /// `tracker` sent hashes up to piece `upto` (exclusive); `done` when
    /// it has sent them all.
    #[must_use]
    pub fn hashes(&mut self, tracker: usize, upto: u32, done: bool) -> Step {
        if self.state != (State::Following { tracker }) {
            return self.idle();
        }
        self.known = self.known.max(upto);
        if done {
            self.state = State::Over;
            return Step::Done;
        }
        Step::Follow {
            tracker,
            from: self.known,
        }
    }

    /// `tracker` stopped answering for hashes: someone else must take
    /// over.
    #[must_use]
    pub fn hashes_lost(&mut self, tracker: usize) -> Step {
        if self.state != (State::Following { tracker }) {
            return self.idle();
        }
        self.state = State::TakingOver;
        self.ask_next()
    }

    fn ask_next(&mut self) -> Step {
        match self.order.get(self.asked) {
            Some(&tracker) => {
                self.asked += 1;
                Step::Ask {
                    tracker,
                    within: self.ask_within,
                }
            }
            None => {
                let first = self.state == State::Asking;
                self.state = State::Over;
                if first {
                    Step::Direct(NoSwarm::NoTracker)
                } else {
                    Step::Orphaned
                }
            }
        }
    }

    /// The answer to an input that no longer matters (a late answer).
    fn idle(&self) -> Step {
        match self.state {
            State::Following { tracker } => Step::Follow {
                tracker,
                from: self.known,
            },
            _ => Step::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Geometry = Geometry {
        length: 1 << 20,
        piece_length: 1 << 16,
    };

    fn peer(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    fn plan(order: &[usize]) -> OriginPlan {
        OriginPlan::new(order.to_vec(), Duration::from_secs(5))
    }

    fn ask(tracker: usize) -> Step {
        Step::Ask {
            tracker,
            within: Duration::from_secs(5),
        }
    }

    fn granted(p: u16) -> Answer {
        Answer::Granted {
            geometry: G,
            peer: peer(p),
            swarm: [7; 20],
        }
    }

    #[test]
    fn the_owner_grants_and_its_hashes_are_followed_to_the_end() {
        let mut p = plan(&[2, 0, 1]);
        assert_eq!(p.start(), ask(2));
        assert_eq!(
            p.answered(2, granted(1)),
            Step::Join {
                tracker: 2,
                geometry: G,
                peer: peer(1),
                swarm: [7; 20],
            }
        );
        assert_eq!(
            p.hashes(2, 5, false),
            Step::Follow {
                tracker: 2,
                from: 5
            }
        );
        assert_eq!(p.hashes(2, 16, true), Step::Done);
    }

    #[test]
    fn a_down_owner_hands_the_first_ask_to_the_next() {
        let mut p = plan(&[1, 0]);
        assert_eq!(p.start(), ask(1));
        assert_eq!(p.answered(1, Answer::Unreachable), ask(0));
        assert!(matches!(
            p.answered(0, granted(9)),
            Step::Join { tracker: 0, .. }
        ));
    }

    #[test]
    fn no_tracker_or_a_refusal_sends_the_client_to_the_registry() {
        let mut p = plan(&[0, 1]);
        let _ = p.start();
        assert_eq!(p.answered(0, Answer::Unreachable), ask(1));
        assert_eq!(
            p.answered(1, Answer::Unreachable),
            Step::Direct(NoSwarm::NoTracker)
        );
        let mut p = plan(&[0, 1]);
        let _ = p.start();
        assert_eq!(
            p.answered(0, Answer::Refused(401)),
            Step::Direct(NoSwarm::Refused(401))
        );
        let mut p = plan(&[]);
        assert_eq!(p.start(), Step::Direct(NoSwarm::NoTracker));
    }

    #[test]
    fn a_lost_origin_is_taken_over_from_where_its_hashes_stopped() {
        let mut p = plan(&[0, 1, 2]);
        let _ = p.start();
        let _ = p.answered(0, granted(1));
        let _ = p.hashes(0, 7, false);
        assert_eq!(p.hashes_lost(0), ask(1));
        assert_eq!(p.answered(1, Answer::Refused(403)), ask(2));
        assert_eq!(
            p.answered(2, granted(3)),
            Step::TakeOver {
                tracker: 2,
                peer: peer(3),
                from: 7
            }
        );
        // Late news from the dead origin changes nothing.
        assert_eq!(
            p.hashes(0, 9, true),
            Step::Follow {
                tracker: 2,
                from: 7
            }
        );
        assert_eq!(p.hashes(2, 16, true), Step::Done);
    }

    #[test]
    fn a_take_over_with_another_geometry_is_refused_and_nobody_left_orphans() {
        let mut p = plan(&[0, 1]);
        let _ = p.start();
        let _ = p.answered(0, granted(1));
        assert_eq!(p.hashes_lost(0), ask(1));
        let other = Answer::Granted {
            geometry: Geometry {
                length: G.length,
                piece_length: G.piece_length * 2,
            },
            peer: peer(2),
            swarm: [7; 20],
        };
        assert_eq!(p.answered(1, other), Step::Orphaned);
    }
}
