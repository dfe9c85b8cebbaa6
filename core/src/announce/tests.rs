//! The announcer on a virtual clock: no sockets, every outcome scripted.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use bay_wire::tracker::{self, AnnounceResponse, Event, InfoHash, PeerId};

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn config() -> AnnounceConfig {
    let mut c = AnnounceConfig::new(InfoHash([7; 20]), PeerId(*b"-BY0001-abcdefghijkl"), 6881);
    c.seed = 42;
    c
}

fn urls(tiers: &[&[&str]]) -> Vec<Vec<String>> {
    tiers
        .iter()
        .map(|t| t.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

fn ok(interval: u32) -> Result<AnnounceResponse, AnnounceError> {
    Ok(AnnounceResponse {
        interval,
        ..AnnounceResponse::default()
    })
}

fn refused() -> Result<AnnounceResponse, AnnounceError> {
    Err(AnnounceError::Refused {
        reason: "no".into(),
    })
}

/// An announcer and its virtual clock.
struct Sim {
    a: Announcer,
    now: Instant,
}

impl Sim {
    fn new(tiers: &[&[&str]]) -> Sim {
        Sim::with(config(), tiers)
    }

    fn with(config: AnnounceConfig, tiers: &[&[&str]]) -> Sim {
        let now = Instant::now();
        Sim {
            a: Announcer::new(config, urls(tiers), now),
            now,
        }
    }

    /// Moves the clock to the next deadline and takes the request due then.
    fn next(&mut self) -> AnnounceRequest {
        if let Some(at) = self.a.poll_timeout() {
            self.now = self.now.max(at);
        }
        let r = self.a.poll_announce(self.now);
        let Some(r) = r else {
            panic!("no announce due at the deadline");
        };
        assert_eq!(self.a.poll_announce(self.now), None, "two requests at once");
        r
    }

    fn answer(&mut self, r: &AnnounceRequest, result: Result<AnnounceResponse, AnnounceError>) {
        self.a.handle_response(r, result, self.now);
    }

    /// Time until the next announce.
    fn wait(&self) -> Duration {
        let at = self.a.poll_timeout();
        let Some(at) = at else {
            panic!("nothing scheduled");
        };
        at.saturating_duration_since(self.now)
    }
}

#[test]
fn started_first_then_regular_at_the_interval() {
    let mut s = Sim::new(&[&["http://t/announce"]]);
    let r = s.next();
    assert_eq!(r.query.event, Event::Started);
    assert_eq!(s.a.poll_timeout(), None, "waiting for the answer");
    s.answer(&r, ok(120));
    assert_eq!(s.wait(), 120 * SEC);
    assert_eq!(s.a.poll_announce(s.now + 119 * SEC), None);
    let r = s.next();
    assert_eq!(r.query.event, Event::None);
    s.answer(&r, ok(300));
    assert_eq!(s.wait(), 300 * SEC);
}

#[test]
fn request_url_carries_the_announce_query() {
    let mut s = Sim::new(&[&["http://t:8080/announce?passkey=abc"]]);
    s.a.set_progress(10, 20, 30);
    let r = s.next();
    assert_eq!(r.tracker, "http://t:8080/announce?passkey=abc");
    let Some((base, query)) = r.url.split_once("?passkey=abc&") else {
        panic!("{}", r.url);
    };
    assert_eq!(base, "http://t:8080/announce");
    let parsed = tracker::AnnounceRequest::parse_query(query.as_bytes());
    let Ok(parsed) = parsed else {
        panic!("{parsed:?}");
    };
    assert_eq!(parsed, r.query);
    assert_eq!(parsed.info_hash, InfoHash([7; 20]));
    assert_eq!(parsed.port, 6881);
    assert_eq!(parsed.compact, Some(true));
    assert_eq!(parsed.numwant, Some(50));
    assert_eq!(
        (parsed.uploaded, parsed.downloaded, parsed.left),
        (10, 20, 30)
    );
    let plain = Sim::new(&[&["http://t/a"]]).next();
    assert!(
        plain.url.starts_with("http://t/a?info_hash="),
        "{}",
        plain.url
    );
}

#[test]
fn min_interval_and_floor_are_respected() {
    let mut s = Sim::new(&[&["http://t/"]]);
    let r = s.next();
    // A tracker asking for 0 s still gets the configured floor.
    s.answer(&r, ok(0));
    assert_eq!(s.wait(), 30 * SEC);
    let r = s.next();
    s.answer(
        &r,
        Ok(AnnounceResponse {
            interval: 60,
            min_interval: Some(600),
            ..AnnounceResponse::default()
        }),
    );
    assert_eq!(s.wait(), 600 * SEC, "min interval beats interval");
    // Wanting peers early may not beat the min interval either.
    s.now += 100 * SEC;
    s.a.want_peers(s.now);
    assert_eq!(s.wait(), 500 * SEC);
    // A huge interval is capped so a forgetful tracker relearns us.
    let r = s.next();
    s.answer(&r, ok(u32::MAX));
    assert_eq!(s.wait(), 3600 * SEC);
}

#[test]
fn want_peers_announces_early_when_the_min_interval_allows() {
    let mut s = Sim::new(&[&["http://t/"]]);
    let r = s.next();
    s.answer(
        &r,
        Ok(AnnounceResponse {
            interval: 1800,
            min_interval: Some(60),
            ..AnnounceResponse::default()
        }),
    );
    s.now += 200 * SEC;
    s.a.want_peers(s.now);
    assert_eq!(s.wait(), Duration::ZERO);
    assert_eq!(s.next().query.event, Event::None);
}

#[test]
fn completed_is_sent_once_and_at_once() {
    let mut s = Sim::new(&[&["http://t/"]]);
    s.a.set_progress(0, 0, 1000);
    let r = s.next();
    s.answer(&r, ok(1800));
    s.now += 10 * SEC;
    s.a.completed(s.now);
    assert_eq!(s.wait(), Duration::ZERO);
    let r = s.next();
    assert_eq!(r.query.event, Event::Completed);
    assert_eq!(r.query.left, 0);
    // A failed `completed` is retried, still as `completed`.
    s.answer(&r, refused());
    let r = s.next();
    assert_eq!(r.query.event, Event::Completed);
    s.answer(&r, ok(1800));
    s.a.completed(s.now);
    assert_eq!(s.wait(), 1800 * SEC);
    assert_eq!(s.next().query.event, Event::None);
}

#[test]
fn completed_before_started_was_acknowledged_follows_it() {
    let mut s = Sim::new(&[&["http://t/"]]);
    let r = s.next();
    s.a.completed(s.now);
    assert_eq!(s.a.poll_announce(s.now), None, "one request at a time");
    s.answer(&r, ok(1800));
    assert_eq!(s.wait(), Duration::ZERO);
    assert_eq!(s.next().query.event, Event::Completed);
}

#[test]
fn started_is_repeated_until_acknowledged() {
    let mut s = Sim::new(&[&["http://t/"]]);
    for _ in 0..3 {
        let r = s.next();
        assert_eq!(r.query.event, Event::Started);
        s.answer(&r, refused());
    }
    let r = s.next();
    assert_eq!(r.query.event, Event::Started);
    s.answer(&r, ok(100));
    assert_eq!(s.next().query.event, Event::None);
}

#[test]
fn failover_walks_the_tier_then_the_next_tier() {
    let mut s = Sim::new(&[&["http://a/", "http://b/", "http://c/"], &["http://d/"]]);
    let tier0 = s.a.tiers()[0].clone();
    let mut asked = Vec::new();
    for _ in 0..3 {
        let r = s.next();
        asked.push(r.tracker.clone());
        s.answer(&r, refused());
        assert_eq!(s.wait(), Duration::ZERO, "fail-over is immediate");
    }
    assert_eq!(asked, tier0, "tier 0 in its shuffled order");
    let r = s.next();
    assert_eq!(r.tracker, "http://d/");
    assert_eq!(r.query.event, Event::Started);
    s.answer(&r, ok(100));
    assert_eq!(s.a.failed_rounds(), 0);
    // The next announce starts from the first tier again.
    let r = s.next();
    assert_eq!(r.tracker, tier0[0]);
    assert_eq!(r.query.event, Event::None);
}

#[test]
fn a_tracker_that_answers_moves_to_the_front_of_its_tier() {
    let mut s = Sim::new(&[&["http://a/", "http://b/", "http://c/"]]);
    let before = s.a.tiers()[0].clone();
    let r = s.next();
    s.answer(&r, refused());
    let r = s.next();
    assert_eq!(r.tracker, before[1]);
    s.answer(&r, ok(100));
    assert_eq!(
        s.a.tiers()[0],
        [before[1].clone(), before[0].clone(), before[2].clone()]
    );
    assert_eq!(s.next().tracker, before[1], "asked first next time");
}

#[test]
fn backoff_grows_when_every_tier_fails_and_resets_on_success() {
    let mut s = Sim::new(&[&["http://a/", "http://b/"], &["http://c/"]]);
    let mut delays = Vec::new();
    for round in 1..=10 {
        for _ in 0..3 {
            let r = s.next();
            s.answer(&r, refused());
        }
        assert_eq!(s.a.failed_rounds(), round);
        delays.push(s.wait());
    }
    for (i, d) in delays.iter().enumerate() {
        let full = (15 * SEC * (1 << i)).min(1800 * SEC);
        assert!(
            *d <= full && *d >= full * 3 / 4,
            "round {i}: {d:?} vs {full:?}"
        );
    }
    assert!(delays[9] > 20 * 60 * SEC, "reaches the cap region");
    let r = s.next();
    s.answer(&r, ok(100));
    assert_eq!(s.a.failed_rounds(), 0);
    assert_eq!(s.wait(), 100 * SEC);
    let r = s.next();
    s.answer(&r, refused());
    for _ in 0..2 {
        let r = s.next();
        s.answer(&r, refused());
    }
    assert!(s.wait() <= 15 * SEC, "backoff starts over: {:?}", s.wait());
}

#[test]
fn jitter_depends_on_the_seed() {
    let delay = |seed| {
        let mut c = config();
        c.seed = seed;
        let mut s = Sim::with(c, &[&["http://a/"]]);
        let r = s.next();
        s.answer(&r, refused());
        s.wait()
    };
    let delays: std::collections::HashSet<Duration> = (0..8).map(delay).collect();
    assert!(delays.len() > 1);
    assert_eq!(delay(5), delay(5), "deterministic for a seed");
}

#[test]
fn stopped_is_sent_once_and_then_nothing() {
    let mut s = Sim::new(&[&["http://t/"]]);
    let r = s.next();
    s.answer(&r, ok(1800));
    s.now += 5 * SEC;
    s.a.stop(s.now);
    let r = s.next();
    assert_eq!(r.query.event, Event::Stopped);
    assert_eq!(r.query.numwant, Some(0));
    s.a.stop(s.now);
    s.answer(&r, ok(1800));
    assert!(s.a.is_finished());
    assert_eq!(s.a.poll_timeout(), None);
    assert_eq!(s.a.poll_announce(s.now + 10_000 * SEC), None);
    s.a.completed(s.now);
    s.a.want_peers(s.now);
    assert_eq!(s.a.poll_announce(s.now + 10_000 * SEC), None);
}

#[test]
fn stopped_walks_the_tiers_once_then_gives_up() {
    let mut s = Sim::new(&[&["http://a/"], &["http://b/"]]);
    let r = s.next();
    s.answer(&r, ok(1800));
    s.a.stop(s.now);
    let r = s.next();
    assert_eq!(r.query.event, Event::Stopped);
    s.answer(&r, refused());
    let r = s.next();
    assert_eq!(
        (r.tracker.as_str(), r.query.event),
        ("http://b/", Event::Stopped)
    );
    s.answer(&r, refused());
    assert!(s.a.is_finished());
    assert_eq!(s.a.poll_announce(s.now + 10_000 * SEC), None);
}

#[test]
fn stop_abandons_the_request_in_flight() {
    let mut s = Sim::new(&[&["http://t/"]]);
    let started = s.next();
    s.a.stop(s.now);
    assert_eq!(s.a.awaiting(), None);
    let stopped = s.next();
    assert_eq!(stopped.query.event, Event::Stopped);
    // The late answer to `started` is ignored.
    s.answer(&started, ok(100));
    assert!(s.a.awaits(&stopped));
    assert!(!s.a.awaits(&started));
    s.answer(&stopped, ok(100));
    assert!(s.a.is_finished());
}

#[test]
fn stop_before_anything_was_sent_sends_nothing() {
    let mut s = Sim::new(&[&["http://t/"]]);
    s.a.stop(s.now);
    assert!(s.a.is_finished());
    assert_eq!(s.a.poll_announce(s.now), None);
}

#[test]
fn stop_during_backoff_goes_out_at_once() {
    let mut s = Sim::new(&[&["http://t/"]]);
    let r = s.next();
    s.answer(&r, refused());
    assert!(s.wait() > 10 * SEC);
    s.a.stop(s.now);
    assert_eq!(s.wait(), Duration::ZERO);
    assert_eq!(s.next().query.event, Event::Stopped);
}

#[test]
fn peers_v4_and_v6_are_delivered_once_each() {
    let mut s = Sim::new(&[&["http://t/"]]);
    let r = s.next();
    let v4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 6881);
    let v6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6882, 0, 0);
    s.answer(
        &r,
        Ok(AnnounceResponse {
            interval: 100,
            peers: vec![v4, v4],
            peers6: vec![v6],
            ..AnnounceResponse::default()
        }),
    );
    assert_eq!(s.a.poll_peers(), [SocketAddr::V4(v4), SocketAddr::V6(v6)]);
    assert!(s.a.poll_peers().is_empty());
}

#[test]
fn pending_peers_are_bounded() {
    let mut c = config();
    c.max_pending_peers = 10;
    let mut s = Sim::with(c, &[&["http://t/"]]);
    let r = s.next();
    let peers = (0..100)
        .map(|i| SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1000 + i))
        .collect();
    s.answer(
        &r,
        Ok(AnnounceResponse {
            interval: 100,
            peers,
            ..AnnounceResponse::default()
        }),
    );
    assert_eq!(s.a.poll_peers().len(), 10);
}

#[test]
fn answers_to_requests_not_awaited_are_ignored() {
    let mut s = Sim::new(&[&["http://a/", "http://b/"]]);
    let r = s.next();
    let mut stale = r.clone();
    stale.serial += 7;
    s.a.handle_response(&stale, ok(100), s.now);
    assert!(s.a.awaits(&r));
}

#[test]
fn no_trackers_means_no_requests() {
    let mut s = Sim::new(&[&[], &[]]);
    assert_eq!(s.a.poll_timeout(), None);
    assert_eq!(s.a.poll_announce(s.now), None);
}

#[test]
fn a_tracker_id_is_sent_back_to_that_tracker_only() {
    let mut s = Sim::new(&[&["http://a/"], &["http://b/"]]);
    let r = s.next();
    assert!(!r.url.contains("trackerid"));
    s.answer(
        &r,
        Ok(AnnounceResponse {
            interval: 100,
            tracker_id: Some(b"id 1".to_vec()),
            ..AnnounceResponse::default()
        }),
    );
    let r = s.next();
    assert!(r.url.contains("&trackerid=id%201"), "{}", r.url);
    assert_eq!(r.query.tracker_id.as_deref(), Some(&b"id 1"[..]));
    s.answer(&r, refused());
    let r = s.next();
    assert_eq!(r.tracker, "http://b/");
    assert!(!r.url.contains("trackerid"), "{}", r.url);
}

#[test]
fn debug_output_hides_pass_keys() {
    let mut s = Sim::new(&[&["https://t.example/PASSKEY1/announce?pk=PASSKEY2"]]);
    let r = s.next();
    s.answer(
        &r,
        Ok(AnnounceResponse {
            interval: 100,
            tracker_id: Some(b"id".to_vec()),
            ..AnnounceResponse::default()
        }),
    );
    let r = s.next();
    for shown in [format!("{r:?}"), format!("{:?}", s.a)] {
        assert!(!shown.contains("PASSKEY"), "{shown}");
        assert!(shown.contains("https://t.example"), "{shown}");
    }
}

/// Inputs a torrent's owner and the network may give, in any order.
#[derive(Debug, Clone)]
enum Input {
    Advance(u16),
    Succeed(u32),
    Fail,
    Completed,
    WantPeers,
    Stop,
}

fn input() -> impl proptest::strategy::Strategy<Value = Input> {
    use proptest::prelude::*;
    prop_oneof![
        (0u16..4000).prop_map(Input::Advance),
        (0u32..4000).prop_map(Input::Succeed),
        Just(Input::Fail),
        Just(Input::Completed),
        Just(Input::WantPeers),
        Just(Input::Stop),
    ]
}

proptest::proptest! {
    /// Whatever happens: one request at a time, `started` sent before any
    /// other event and acknowledged before any but `stopped`, `completed` and `stopped` acknowledged at most once, nothing
    /// but `stopped` after `stopped`, and a deadline only in the future.
    #[test]
    fn event_order_holds_under_any_inputs(inputs in proptest::collection::vec(input(), 1..200)) {
        let mut s = Sim::new(&[&["http://a/", "http://b/"], &["http://c/"]]);
        let mut pending: Option<AnnounceRequest> = None;
        let mut acked: Vec<Event> = Vec::new();
        let mut sent: Vec<Event> = Vec::new();
        for input in inputs {
            match input {
                Input::Advance(secs) => s.now += Duration::from_secs(secs.into()),
                Input::Succeed(interval) => {
                    if let Some(r) = pending.take() {
                        acked.push(r.query.event);
                        s.answer(&r, ok(interval));
                    }
                }
                Input::Fail => {
                    if let Some(r) = pending.take() {
                        s.answer(&r, refused());
                    }
                }
                Input::Completed => s.a.completed(s.now),
                Input::WantPeers => s.a.want_peers(s.now),
                Input::Stop => {
                    s.a.stop(s.now);
                    pending = None;
                }
            }
            if let Some(r) = s.a.poll_announce(s.now) {
                proptest::prop_assert!(pending.is_none(), "two requests at once");
                sent.push(r.query.event);
                pending = Some(r);
            }
            if let Some(at) = s.a.poll_timeout() {
                // Nothing came out above, so the deadline is still ahead.
                proptest::prop_assert!(pending.is_none());
                proptest::prop_assert!(at > s.now);
            }
        }
        if let Some(first) = sent.first() {
            proptest::prop_assert_eq!(*first, Event::Started);
        }
        // `stopped` may come first: `stop` abandons an unanswered `started`.
        let first_ack = acked.first().copied();
        proptest::prop_assert!(matches!(first_ack, None | Some(Event::Started | Event::Stopped)));
        for once in [Event::Completed, Event::Stopped] {
            proptest::prop_assert!(acked.iter().filter(|e| **e == once).count() <= 1);
        }
        if let Some(stop) = sent.iter().position(|e| *e == Event::Stopped) {
            proptest::prop_assert!(sent[stop..].iter().all(|e| *e == Event::Stopped));
        }
        if acked.contains(&Event::Stopped) {
            proptest::prop_assert!(s.a.is_finished());
            proptest::prop_assert_eq!(acked.last().copied(), Some(Event::Stopped));
        }
    }
}
