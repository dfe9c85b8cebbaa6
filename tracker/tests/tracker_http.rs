//! bay-tracker's HTTP tracker, driven by bay's own announce client over
//! real sockets, under both monoio drivers: peers meet, `stopped` removes
//! them, unknown torrents are refused, and /metrics counts it all.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bay_core::announce::{run_http, AnnounceConfig, AnnounceControl, Announcer};
use bay_httpd::client::{Client, ClientConfig, PlainHttp, Request, Url};
use bay_httpd::Shutdown;
use bay_testkit::drivers::{eventually, on_both_drivers};
use bay_tracker::config::TrackerConfig;
use bay_tracker::serve;
use bay_wire::tracker::{InfoHash, PeerId, Reply, ScrapeRequest, ScrapeResponse};

const HASH: [u8; 20] = [7; 20];
const DEADLINE: Duration = Duration::from_secs(20);

fn client() -> Client {
    Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        ..ClientConfig::default()
    })
    .unwrap()
}

struct Peer {
    control: AnnounceControl,
    learned: Rc<RefCell<Vec<SocketAddr>>>,
    task: monoio::task::JoinHandle<()>,
}

fn join(url: &str, hash: [u8; 20], port: u16) -> Peer {
    let mut id = *b"-BY0001-000000000000";
    id[19] = b'0' + (port % 10) as u8;
    let mut config = AnnounceConfig::new(InfoHash(hash), PeerId(id), port);
    config.min_backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_millis(500);
    let control = AnnounceControl::new(Announcer::new(
        config,
        vec![vec![url.to_string()]],
        Instant::now(),
    ));
    control.set_progress(0, 0, 1 << 20);
    let learned = Rc::new(RefCell::new(Vec::new()));
    let sink = learned.clone();
    let task = monoio::spawn(run_http(
        client(),
        control.clone(),
        Duration::from_secs(5),
        move |peers| sink.borrow_mut().extend(peers),
    ));
    Peer {
        control,
        learned,
        task,
    }
}

impl Peer {
    fn knows(&self, port: u16) -> bool {
        self.learned
            .borrow()
            .contains(&SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::LOCALHOST,
                port,
            )))
    }
}

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
            let a = join(&announce, HASH, 41001);
            eventually("a's first announce", DEADLINE, || {
                a.control.with(|x| x.interval().is_some())
            })
            .await
            .unwrap();
            let b = join(&announce, HASH, 41002);
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
            let stranger = join(&announce, [9; 20], 41003);
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
