//! A small fleet run through the simulator, checking its own books: every
//! live host gets the whole image, each host received the image plus what
//! it dropped, and every block sent was received or lost with a closed
//! connection.

use bay_bench::fleet::{self, Scenario, Sim};

fn small(hosts: usize) -> Scenario {
    // Layers over two reveal windows (2 MiB), so that the origin
    // super-seeds them as it does real layers: a seed of a smaller blob
    // serves it plainly, and 50 hosts pulling 3 MiB that way took 6-7x.
    let mut sc = Scenario::new("ci", hosts, vec![8 << 20, 4 << 20], 100.0);
    sc.seed = 7;
    // A 12 MiB image takes 1 s over one link: no start-up on top.
    sc.startup = std::time::Duration::ZERO;
    sc
}

/// Runs `sc`; with `bound`, every live host must finish within that many
/// times the one-link time.
fn check_books(sc: Scenario, bound: Option<f64>) {
    let mut sim = Sim::new(sc.clone()).expect("scenario");
    sim.run();
    let image = sim.image_bytes();
    let outcomes = sim.outcomes();
    let mut received = 0;
    let mut uploaded = sim.origin_totals().uploaded;
    for (i, o) in outcomes.iter().enumerate() {
        received += o.totals.downloaded + o.totals.wasted;
        uploaded += o.totals.uploaded;
        if o.alive {
            let ratio = o.ratio.unwrap_or_else(|| panic!("host {i} did not finish"));
            if let Some(bound) = bound {
                assert!(ratio < bound, "host {i} took {ratio:.2}x the one-link time");
            }
            assert_eq!(o.totals.downloaded, image, "host {i}");
        }
    }
    assert_eq!(uploaded, received + sim.lost_bytes + sim.in_flight_bytes());
    assert!(outcomes.iter().filter(|o| o.alive).count() > sc.hosts / 2);
}

#[test]
fn thirty_hosts_all_finish_and_the_bytes_add_up() {
    check_books(small(30), Some(4.0));
    let mut warm = small(30);
    warm.registry_bps = None;
    check_books(warm, Some(4.0));
}

#[test]
fn with_deaths_and_slow_hosts_every_live_host_finishes() {
    let mut sc = small(30);
    sc.die_fraction = 0.1;
    sc.slow_fraction = 0.1;
    sc.late_fraction = 0.1;
    sc.trackers = 2;
    // A host that dies silently holds requests for at least 3 s (longer
    // when our requests wait behind each other): long against a 1 s image.
    check_books(sc, None);
}

#[test]
fn the_report_sums_up_a_run() {
    let report = fleet::run(&small(20)).expect("run");
    assert_eq!(report.unfinished, 0);
    assert!(report.bytes_add_up);
    assert!(report.origin_copies >= 0.99, "{}", report.origin_copies);
    assert!((report.registry_egress - 1.0).abs() < 1e-9);
}
