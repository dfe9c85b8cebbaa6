//! The announce state machine of one torrent: which tracker to ask next,
//! with which event, and when.
//!
//! Sans-IO: the caller passes the time in, performs each
//! [`AnnounceRequest`] however it likes, and reports the outcome with
//! [`Announcer::handle_response`]. One request is outstanding at a time.
//!
//! Rules:
//! * `started` goes first and is repeated until a tracker acknowledges it;
//!   `completed` goes once, right after the download completes (after
//!   `started` if that is still pending); `stopped` goes once on shutdown,
//!   through one walk of the tiers, and only if anything was ever sent.
//! * Events belong to the torrent, not to one tracker: a tracker that takes
//!   over after a fail-over sees regular announces. That matches how
//!   trackers of one tier share a swarm (BEP 12).
//! * After a success the next regular announce waits the tracker's
//!   `interval`, never less than its `min interval` nor than
//!   [`AnnounceConfig::min_interval`], nor more than
//!   [`AnnounceConfig::max_interval`].
//! * A failed tracker hands over at once to the next one (BEP 12 order, see
//!   `tiers`); when every tier failed, the walk starts again after
//!   an exponential backoff with jitter, reset by the next success.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bay_wire::tracker::announce::MAX_TRACKER_ID_LEN;
use bay_wire::tracker::{self, AnnounceResponse, Event, InfoHash, PeerId};

use super::backoff::{Backoff, Rng};
use super::error::AnnounceError;
use super::tiers::{origin_of, Cursor, Tiers};

/// Settings of one torrent's announcer.
#[derive(Debug, Clone)]
pub struct AnnounceConfig {
    /// The swarm's 20-byte info hash (the truncated v2 hash).
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port peers reach us on.
    pub port: u16,
    /// Peers asked for per announce (0 on `stopped`).
    pub numwant: u32,
    /// First delay after a round in which every tracker failed.
    pub min_backoff: Duration,
    /// Longest delay between failed rounds.
    pub max_backoff: Duration,
    /// Shortest wait between regular announces, whatever a tracker says:
    /// a tracker answering `interval 0` must not make us hammer it.
    pub min_interval: Duration,
    /// Longest wait between regular announces, so a tracker that forgot us
    /// (restart) learns of us again within this time.
    pub max_interval: Duration,
    /// Most learned peers kept until [`Announcer::poll_peers`] takes them.
    pub max_pending_peers: usize,
    /// Seed of the tier shuffle, the backoff jitter and the `key`
    /// parameter. Give each torrent of each host a different one.
    pub seed: u64,
}

impl AnnounceConfig {
    /// Defaults: 50 peers per announce, backoff 15 s doubling to 30 min,
    /// intervals between 30 s and 1 h.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, port: u16) -> AnnounceConfig {
        AnnounceConfig {
            info_hash,
            peer_id,
            port,
            numwant: 50,
            min_backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(30 * 60),
            min_interval: Duration::from_secs(30),
            max_interval: Duration::from_secs(60 * 60),
            max_pending_peers: 1000,
            seed: 0,
        }
    }
}

/// One announce to perform: an HTTP GET of `url`.
///
/// `Debug` shows the tracker's origin only: the rest of its URL may hold a
/// pass key.
#[derive(Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// Tells this request from earlier ones to the same tracker, whose late
    /// outcomes must not be taken for this one's.
    pub serial: u64,
    /// The tracker's announce URL, as given.
    pub tracker: String,
    /// The full GET URL: the tracker URL with the announce query appended.
    pub url: String,
    /// The announce's parameters.
    pub query: tracker::AnnounceRequest,
}

impl fmt::Debug for AnnounceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnnounceRequest")
            .field("serial", &self.serial)
            .field("tracker", &origin_of(&self.tracker))
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// Where the torrent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// `stop` was called; `stopped` is being sent.
    Stopping,
    /// Nothing more will be sent.
    Finished,
}

/// Whether `completed` still has to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    NotYet,
    Pending,
    Sent,
}

/// The request awaiting its outcome.
#[derive(Clone)]
struct InFlight {
    serial: u64,
    cursor: Cursor,
    tracker: String,
    event: Event,
}

impl fmt::Debug for InFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InFlight")
            .field("serial", &self.serial)
            .field("cursor", &self.cursor)
            .field("tracker", &origin_of(&self.tracker))
            .field("event", &self.event)
            .finish()
    }
}

/// The announce client of one torrent, without I/O.
///
/// Drive it like this: after any input, call [`Announcer::poll_announce`]
/// until it returns `None` (at most one request comes out at a time), take
/// [`Announcer::poll_peers`], and sleep until [`Announcer::poll_timeout`]
/// or the next input.
pub struct Announcer {
    config: AnnounceConfig,
    tiers: Tiers,
    rng: Rng,
    backoff: Backoff,
    key: Vec<u8>,
    uploaded: u64,
    downloaded: u64,
    left: u64,
    phase: Phase,
    completion: Completion,
    started_acked: bool,
    sent_any: bool,
    serial: u64,
    due: Instant,
    /// The next tracker of a walk that is under way (after a failure).
    cursor: Option<Cursor>,
    in_flight: Option<InFlight>,
    last_success: Option<Instant>,
    tracker_min_interval: Duration,
    interval: Option<Duration>,
    last_error: Option<String>,
    /// `tracker id` values to send back, by tracker URL.
    tracker_ids: HashMap<String, Vec<u8>>,
    peers: Vec<SocketAddr>,
    peers_seen: HashSet<SocketAddr>,
}

impl fmt::Debug for Announcer {
    /// A summary that names trackers by origin only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Announcer")
            .field("info_hash", &self.config.info_hash)
            .field("port", &self.config.port)
            .field("tiers", &self.tiers)
            .field("phase", &self.phase)
            .field("completion", &self.completion)
            .field("started_acked", &self.started_acked)
            .field("due", &self.due)
            .field("in_flight", &self.in_flight)
            .field("failed_rounds", &self.backoff.failures())
            .field("interval", &self.interval)
            .field("last_error", &self.last_error)
            .field("pending_peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Announcer {
    /// An announcer for `tiers` of tracker URLs (BEP 12 `announce-list`;
    /// empty tiers are dropped). The `started` announce is due at `now`.
    pub fn new(config: AnnounceConfig, tiers: Vec<Vec<String>>, now: Instant) -> Announcer {
        let mut rng = Rng::new(config.seed);
        let tiers = Tiers::new(tiers, &mut rng);
        let key = format!("{:08x}", rng.next_u64() as u32).into_bytes();
        let backoff = Backoff::new(config.min_backoff, config.max_backoff);
        Announcer {
            config,
            tiers,
            rng,
            backoff,
            key,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            phase: Phase::Running,
            completion: Completion::NotYet,
            started_acked: false,
            sent_any: false,
            serial: 0,
            due: now,
            cursor: None,
            in_flight: None,
            last_success: None,
            tracker_min_interval: Duration::ZERO,
            interval: None,
            last_error: None,
            tracker_ids: HashMap::new(),
            peers: Vec::new(),
            peers_seen: HashSet::new(),
        }
    }

    // Getters.

    /// The tiers in their current order (shuffled, answering trackers
    /// first).
    pub fn tiers(&self) -> &[Vec<String>] {
        self.tiers.as_slice()
    }

    /// Whether nothing more will be sent: `stopped` was acknowledged or
    /// given up on, or the torrent stopped before anything was sent.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Whether the outcome of `request` is awaited (not yet reported,
    /// nor abandoned by [`Announcer::stop`]).
    pub fn awaits(&self, request: &AnnounceRequest) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| f.serial == request.serial)
    }

    /// The tracker whose answer is awaited, if any.
    pub fn awaiting(&self) -> Option<&str> {
        self.in_flight.as_ref().map(|f| f.tracker.as_str())
    }

    /// Rounds in a row in which every tracker failed.
    pub fn failed_rounds(&self) -> u32 {
        self.backoff.failures()
    }

    /// The interval in force after the last success.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// The last failure, for status pages.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    // Inputs.

    /// The outcome of `request`. An outcome for a request that is no longer
    /// awaited (abandoned by [`Announcer::stop`]) is ignored.
    pub fn handle_response(
        &mut self,
        request: &AnnounceRequest,
        result: Result<AnnounceResponse, AnnounceError>,
        now: Instant,
    ) {
        let Some(flight) = self.in_flight.take_if(|f| f.serial == request.serial) else {
            return;
        };
        match result {
            Ok(response) => self.on_success(flight, &response, now),
            Err(error) => self.on_failure(flight, &error, now),
        }
    }

    /// Transfer totals since `started` and bytes still missing, sent with
    /// the next announce.
    pub fn set_progress(&mut self, uploaded: u64, downloaded: u64, left: u64) {
        self.uploaded = uploaded;
        self.downloaded = downloaded;
        self.left = left;
    }

    // Commands.

    /// The download completed: `completed` goes out now (after `started`
    /// if that is still pending; not before a backoff ends). Later calls do
    /// nothing. A torrent that starts complete should not call this: it
    /// announces `left=0` with `started`.
    pub fn completed(&mut self, now: Instant) {
        if self.completion != Completion::NotYet || self.phase != Phase::Running {
            return;
        }
        self.completion = Completion::Pending;
        self.left = 0;
        if self.started_acked && self.is_idle() {
            self.due = self.due.min(now);
        }
    }

    /// Asks for an announce before the interval ends, because more peers
    /// are wanted; the tracker's `min interval` still holds.
    pub fn want_peers(&mut self, now: Instant) {
        if self.phase != Phase::Running || !self.is_idle() {
            return;
        }
        let earliest = self.last_success.map_or(now, |t| {
            t + self.tracker_min_interval.max(self.config.min_interval)
        });
        self.due = self.due.min(earliest.max(now));
    }

    /// The torrent is going away: an outstanding request is abandoned and
    /// `stopped` is due now, unless nothing was ever sent.
    pub fn stop(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.in_flight = None;
        self.cursor = None;
        if self.sent_any {
            self.phase = Phase::Stopping;
            self.due = now;
        } else {
            self.phase = Phase::Finished;
        }
    }

    /// Ends without `stopped`: the peer still has the torrent and
    /// something else keeps it known to the tracker (a host's held
    /// announce), which `stopped` would undo.
    pub fn hand_over(&mut self) {
        self.in_flight = None;
        self.cursor = None;
        self.phase = Phase::Finished;
    }

    // Outputs.

    /// The next announce to perform, if one is due.
    #[must_use]
    pub fn poll_announce(&mut self, now: Instant) -> Option<AnnounceRequest> {
        if self.phase == Phase::Finished || self.in_flight.is_some() || now < self.due {
            return None;
        }
        let cursor = self.cursor.or_else(|| self.tiers.first())?;
        let tracker = self.tiers.url(cursor)?.to_owned();
        let event = self.next_event();
        let query = tracker::AnnounceRequest {
            info_hash: self.config.info_hash,
            peer_id: self.config.peer_id,
            port: self.config.port,
            uploaded: self.uploaded,
            downloaded: self.downloaded,
            left: self.left,
            event,
            compact: Some(true),
            numwant: Some(if event == Event::Stopped {
                0
            } else {
                self.config.numwant
            }),
            key: Some(self.key.clone()),
            ip: None,
            no_peer_id: true,
            tracker_id: self.tracker_ids.get(&tracker).cloned(),
        };
        let url = announce_url(&tracker, &query);
        self.serial += 1;
        self.in_flight = Some(InFlight {
            serial: self.serial,
            cursor,
            tracker: tracker.clone(),
            event,
        });
        self.sent_any = true;
        Some(AnnounceRequest {
            serial: self.serial,
            tracker,
            url,
            query,
        })
    }

    /// When the next announce is due; `None` while a request is awaited,
    /// when there is no tracker, or when finished.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let waiting =
            self.phase == Phase::Finished || self.in_flight.is_some() || self.tiers.is_empty();
        (!waiting).then_some(self.due)
    }

    /// Peers learned since the last call, IPv4 and IPv6, each once.
    #[must_use]
    pub fn poll_peers(&mut self) -> Vec<SocketAddr> {
        self.peers_seen.clear();
        std::mem::take(&mut self.peers)
    }

    // Internals.

    fn is_idle(&self) -> bool {
        self.in_flight.is_none() && self.cursor.is_none() && self.backoff.failures() == 0
    }

    fn next_event(&self) -> Event {
        if self.phase == Phase::Stopping {
            Event::Stopped
        } else if !self.started_acked {
            Event::Started
        } else if self.completion == Completion::Pending {
            Event::Completed
        } else {
            Event::None
        }
    }

    fn on_success(&mut self, flight: InFlight, response: &AnnounceResponse, now: Instant) {
        self.tiers.promote(flight.cursor);
        self.backoff.reset();
        self.cursor = None;
        self.last_error = None;
        self.last_success = Some(now);
        match flight.event {
            Event::Stopped => {
                self.phase = Phase::Finished;
                return;
            }
            Event::Started => self.started_acked = true,
            Event::Completed => self.completion = Completion::Sent,
            Event::None | Event::Paused => {}
        }
        if let Some(id) = response
            .tracker_id
            .as_ref()
            .filter(|id| id.len() <= MAX_TRACKER_ID_LEN)
        {
            self.tracker_ids.insert(flight.tracker.clone(), id.clone());
        }
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        self.tracker_min_interval = response.min_interval.map_or(Duration::ZERO, secs);
        let interval = secs(response.interval)
            .max(self.tracker_min_interval)
            .max(self.config.min_interval)
            .min(self.config.max_interval.max(self.config.min_interval));
        self.interval = Some(interval);
        self.due = if self.next_event() == Event::None {
            now + interval
        } else {
            now
        };
        self.learn_peers(response);
    }

    fn on_failure(&mut self, flight: InFlight, error: &AnnounceError, now: Instant) {
        self.last_error = Some(error.to_string());
        self.cursor = self.tiers.after_failure(flight.cursor);
        if self.cursor.is_some() {
            self.due = now;
            return;
        }
        if self.phase == Phase::Stopping {
            // Every tracker had its chance; they will time us out.
            self.phase = Phase::Finished;
            return;
        }
        self.due = now + self.backoff.fail(&mut self.rng);
    }

    fn learn_peers(&mut self, response: &AnnounceResponse) {
        let v4 = response.peers.iter().copied().map(SocketAddr::V4);
        let v6 = response.peers6.iter().copied().map(SocketAddr::V6);
        for peer in v4.chain(v6) {
            if self.peers.len() >= self.config.max_pending_peers {
                break;
            }
            if self.peers_seen.insert(peer) {
                self.peers.push(peer);
            }
        }
    }
}

/// The tracker URL with the announce query appended (BEP 3: a URL that
/// already has a query, like a private tracker's pass key, gets `&`).
fn announce_url(tracker: &str, query: &tracker::AnnounceRequest) -> String {
    let separator = if tracker.contains('?') { '&' } else { '?' };
    format!("{tracker}{separator}{}", query.to_query())
}
