//! bay-tracker's HTTP tracker, driven by bay's own announce client over
//! real sockets, under both monoio drivers: peers meet, `stopped` removes
//! them, unknown torrents are refused, and /metrics counts it all.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

// The announcing peer of bay-core's tracker tests, shared as a file: it
// needs bay crates the test kit must not depend on.
#[path = "../../core/tests/support/announcing_peer.rs"]
mod announcing_peer;

use std::net::TcpListener;
use std::time::Duration;

use announcing_peer::{client, join};
use bay_httpd::client::{Request, Url};
use bay_httpd::Shutdown;
use bay_testkit::drivers::{eventually, on_both_drivers};
use bay_tracker::config::TrackerConfig;
use bay_tracker::serve;
use bay_wire::tracker::{InfoHash, Reply, ScrapeRequest, ScrapeResponse};

const HASH: [u8; 20] = [7; 20];
const DEADLINE: Duration = Duration::from_secs(20);

async fn get(url: &str) -> (u16, Vec<u8>) {
    let response = client()
        .send(Request::get(Url::parse(url).unwrap()))
        .await
        .unwrap();
    let status = response.status();
    (status, response.bytes(1 << 20).await.unwrap().to_vec())
}

#[test]
fn peers_meet_and_leave_through_bay_tracker() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = TrackerConfig {
        threads: 2,
        ..TrackerConfig::default()
    };
    let tracker = serve::start(&config, Some(listener), Shutdown::new()).unwrap();
    tracker.shared().peers.allow(InfoHash(HASH));
    let base = format!("http://{}", tracker.local_addr());
    let announce = format!("{base}/announce");
    let scrape = format!(
        "{base}/scrape?{}",
        ScrapeRequest {
            info_hashes: vec![InfoHash(HASH)]
        }
        .to_query()
    );

    on_both_drivers(|_| {
        let (announce, scrape, base) = (announce.clone(), scrape.clone(), base.clone());
        async move {
            let a = join(vec![vec![announce.clone()]], HASH, 41001, 41001);
            eventually("a's first announce", DEADLINE, || a.announced())
                .await
                .unwrap();
            let b = join(vec![vec![announce.clone()]], HASH, 41002, 41002);
            eventually("b learns a", DEADLINE, || b.knows(41001))
                .await
                .unwrap();
            assert!(!b.knows(41002), "a peer is never told about itself");
            let (_, body) = get(&scrape).await;
            let Ok(Reply::Success(s)) = ScrapeResponse::decode(&body) else {
                panic!("scrape: {body:?}");
            };
            assert_eq!(s.files[&InfoHash(HASH)].incomplete, 2);

            b.control.stop();
            b.task.await;
            let (status, body) = get(&scrape).await;
            assert_eq!(status, 200);
            let Ok(Reply::Success(s)) = ScrapeResponse::decode(&body) else {
                panic!("scrape: {body:?}");
            };
            assert_eq!(s.files[&InfoHash(HASH)].incomplete, 1, "only a is left");

            // A torrent the tracker was not told about is refused.
            let stranger = join(vec![vec![announce.clone()]], [9; 20], 41003, 41003);
            eventually("the refusal", DEADLINE, || {
                stranger.control.with(|x| x.last_error().is_some())
            })
            .await
            .unwrap();
            let refused = stranger
                .control
                .with(|x| x.last_error().map(str::to_string));
            assert!(refused.unwrap().contains("unknown torrent"));
            stranger.control.stop();
            stranger.task.await;
            a.control.stop();
            a.task.await;

            let (status, metrics) = get(&format!("{base}/metrics")).await;
            assert_eq!(status, 200);
            let text = String::from_utf8(metrics).unwrap();
            assert!(text.contains("bay_tracker_announces_total"), "{text}");
            assert!(text.contains("bay_tracker_peers 0"), "{text}");
            assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
            assert_eq!(get(&format!("{base}/nope")).await.0, 404);
        }
    });
    tracker.stop();
}
