//! The cases: one world each, and where the client's bytes came from.

use std::time::Duration;

use super::{NoSwarm, Tracker, World, PIECE, STALL};

#[test]
fn all_well_every_byte_comes_from_the_swarm() {
    let w = World::new(vec![Tracker::good(), Tracker::good()]);
    let o = w.run(vec![1, 0]);
    assert_eq!((o.from_swarm, o.from_registry), (w.length, 0));
    assert_eq!(o.origins_asked, vec![1]);
    assert!(!o.aborted);
}

#[test]
fn a_down_owner_is_passed_over_for_the_next_tracker() {
    let w = World::new(vec![Tracker::down(), Tracker::good()]);
    let o = w.run(vec![0, 1]);
    assert_eq!(o.origins_asked, vec![0, 1]);
    assert_eq!(o.from_swarm, w.length);
}

#[test]
fn no_tracker_means_the_whole_blob_from_the_registry() {
    let w = World::new(vec![Tracker::down(), Tracker::down()]);
    let o = w.run(vec![1, 0]);
    assert_eq!(o.direct, Some(NoSwarm::NoTracker));
    assert_eq!(o.from_registry, w.length);
}

#[test]
fn a_refusing_origin_sends_the_client_to_the_registry_for_its_answer() {
    let refusing = Tracker {
        refuses: Some(401),
        ..Tracker::good()
    };
    let w = World::new(vec![refusing, Tracker::good()]);
    let o = w.run(vec![0, 1]);
    assert_eq!(o.direct, Some(NoSwarm::Refused(401)));
    assert_eq!(o.origins_asked, vec![0]);
}

#[test]
fn a_slow_tracker_counts_as_down() {
    let slow = Tracker {
        answers_after: Duration::from_secs(60),
        ..Tracker::good()
    };
    let w = World::new(vec![slow, Tracker::good()]);
    let o = w.run(vec![0, 1]);
    assert_eq!(o.origins_asked, vec![0, 1]);
    assert_eq!(o.from_swarm, w.length);
    // Ten seconds spent on the slow one, not sixty.
    assert!(o.secs < 12.0, "{}", o.secs);
}

#[test]
fn an_owner_killed_mid_blob_is_taken_over_and_the_swarm_carries_on() {
    let dying = Tracker {
        dies_at: Some(Duration::from_millis(150)),
        ..Tracker::good()
    };
    let w = World {
        hash_rate: 50.0,
        ..World::new(vec![dying, Tracker::good()])
    };
    let o = w.run(vec![0, 1]);
    assert_eq!(o.origins_asked, vec![0, 1]);
    assert_eq!((o.from_swarm, o.from_registry), (w.length, 0));
}

#[test]
fn an_owner_killed_with_nobody_to_take_over_orphans_the_read_at_once() {
    let dying = Tracker {
        dies_at: Some(Duration::from_millis(150)),
        ..Tracker::good()
    };
    let w = World {
        hash_rate: 50.0,
        ..World::new(vec![dying, Tracker::down()])
    };
    let o = w.run(vec![0, 1]);
    assert!(o.from_swarm > 0 && o.from_registry > 0, "{o:?}");
    assert_eq!(o.from_swarm + o.from_registry, w.length);
    // Orphaned readers do not wait out the stall.
    assert!(o.secs < 2.0, "{}", o.secs);
}

#[test]
fn a_successor_with_another_geometry_is_not_followed() {
    let dying = Tracker {
        dies_at: Some(Duration::from_millis(150)),
        ..Tracker::good()
    };
    let odd = Tracker {
        piece_length: PIECE * 2,
        ..Tracker::good()
    };
    let w = World {
        hash_rate: 50.0,
        ..World::new(vec![dying, odd])
    };
    let o = w.run(vec![0, 1]);
    assert_eq!(o.from_swarm + o.from_registry, w.length);
    assert!(o.from_registry > 0);
    assert!(o.secs < 2.0, "{}", o.secs);
}

#[test]
fn hashes_that_stop_mid_blob_end_in_the_registry_after_the_stall() {
    let stuck = Tracker {
        hashes_stop_at: Some(10),
        ..Tracker::good()
    };
    let w = World::new(vec![stuck]);
    let o = w.run(vec![0]);
    assert_eq!(o.from_swarm, 10 * PIECE);
    assert_eq!(o.from_registry, w.length - 10 * PIECE);
    let secs = STALL.as_secs_f64();
    assert!(o.secs >= secs && o.secs < secs + 2.0, "{}", o.secs);
}

#[test]
fn a_registry_that_fails_after_the_swarm_did_ends_the_response_early() {
    let stuck = Tracker {
        hashes_stop_at: Some(3),
        ..Tracker::good()
    };
    let w = World {
        registry_works: false,
        ..World::new(vec![stuck])
    };
    let o = w.run(vec![0]);
    assert!(o.aborted);
    assert_eq!((o.from_swarm, o.from_registry), (3 * PIECE, 0));
}
