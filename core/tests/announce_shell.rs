//! The monoio announce driver against small scripted trackers, under both
//! drivers: what a real tracker rarely does on demand (hang, answer 500,
//! sit behind a URL the client cannot speak) and what the driver must do
//! then (fail over, abandon a hung request on stop, still send `stopped`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bay_core::announce::{run_http, AnnounceConfig, AnnounceControl, Announcer};
use bay_httpd::client::{Client, ClientConfig, PlainHttp};
use bay_testkit::drivers::{eventually, on_both_drivers};
use bay_wire::tracker::{self, AnnounceResponse, Event, InfoHash, PeerId};

const DEADLINE: Duration = Duration::from_secs(20);

/// How a scripted tracker answers.
#[derive(Clone, Copy)]
enum Script {
    /// A valid announce response with a 60 s interval.
    Ok,
    /// `500` with an empty body.
    ServerError,
    /// Reads the request and never answers.
    Hang,
}

/// A tracker on 127.0.0.1 that answers by `script` and reports each
/// announce's event.
fn scripted_tracker(script: Script) -> (String, mpsc::Receiver<Event>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (events, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut hung = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Some(event) = read_announce(&mut stream) else {
                continue;
            };
            if events.send(event).is_err() {
                return;
            }
            match script {
                Script::Ok => {
                    let body = AnnounceResponse {
                        interval: 60,
                        ..AnnounceResponse::default()
                    }
                    .to_bytes();
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                }
                Script::ServerError => {
                    let _ = stream.write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
                }
                Script::Hang => hung.push(stream),
            }
        }
    });
    (format!("http://127.0.0.1:{port}/announce"), received)
}

/// Reads one request head and returns its announce event.
fn read_announce(stream: &mut TcpStream) -> Option<Event> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    let line = head.split(|&b| b == b'\r').next()?;
    let target = line.split(|&b| b == b' ').nth(1)?;
    let query = target.splitn(2, |&b| b == b'?').nth(1)?;
    tracker::AnnounceRequest::parse_query(query)
        .ok()
        .map(|r| r.event)
}

fn control(tiers: Vec<Vec<String>>) -> AnnounceControl {
    let config = AnnounceConfig::new(InfoHash([3; 20]), PeerId([4; 20]), 6881);
    AnnounceControl::new(Announcer::new(config, tiers, Instant::now()))
}

fn start(control: &AnnounceControl, timeout: Duration) -> monoio::task::JoinHandle<()> {
    let client = Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        ..ClientConfig::default()
    })
    .expect("client");
    monoio::spawn(run_http(client, control.clone(), timeout, |_| {}))
}

/// Waits (yielding to the runtime) for the tracker's next announce.
async fn next_event(events: &mpsc::Receiver<Event>) -> Event {
    let mut event = None;
    eventually("an announce", DEADLINE, || {
        event = events.try_recv().ok();
        event.is_some()
    })
    .await
    .expect("no announce arrived");
    event.expect("set when the wait ended")
}

#[test]
fn fails_over_past_an_unusable_url_and_a_server_error() {
    on_both_drivers(|_| async {
        let (broken, broken_events) = scripted_tracker(Script::ServerError);
        let (good, good_events) = scripted_tracker(Script::Ok);
        let control = control(vec![
            vec!["udp://127.0.0.1:1/announce".into()],
            vec![broken],
            vec![good],
        ]);
        let task = start(&control, Duration::from_secs(5));
        assert_eq!(next_event(&broken_events).await, Event::Started);
        assert_eq!(next_event(&good_events).await, Event::Started);
        eventually("the good tracker's answer", DEADLINE, || {
            control.with(|a| a.interval()).is_some()
        })
        .await
        .expect("the good tracker's answer was not taken");
        assert_eq!(
            control.with(|a| a.interval()),
            Some(Duration::from_secs(60))
        );

        // `completed` goes out at once, walking the tiers again.
        control.completed();
        assert_eq!(next_event(&broken_events).await, Event::Completed);
        assert_eq!(next_event(&good_events).await, Event::Completed);

        control.stop();
        assert_eq!(next_event(&broken_events).await, Event::Stopped);
        assert_eq!(next_event(&good_events).await, Event::Stopped);
        monoio::time::timeout(DEADLINE, task)
            .await
            .expect("driver ends after stopped");
    });
}

#[test]
fn stop_abandons_a_hung_request_and_stopped_gets_its_timeout() {
    on_both_drivers(|_| async {
        let (hung, events) = scripted_tracker(Script::Hang);
        let control = control(vec![vec![hung]]);
        let timeout = Duration::from_secs(5);
        let task = start(&control, timeout);
        assert_eq!(next_event(&events).await, Event::Started);
        // `started` hangs until its timeout; `stopped` does not wait for it.
        let stopped_at = Instant::now();
        control.stop();
        assert_eq!(next_event(&events).await, Event::Stopped);
        assert!(stopped_at.elapsed() < timeout - Duration::from_secs(1));
        // `stopped` hangs too: the driver gives up on it at the timeout.
        monoio::time::timeout(DEADLINE, task)
            .await
            .expect("driver ends once stopped timed out");
        assert!(stopped_at.elapsed() >= timeout);
        assert!(control.with(|a| a.is_finished()));
        let error = control.with(|a| a.last_error().map(str::to_owned));
        assert!(
            error.is_some_and(|e| e.contains("within")),
            "a timeout is recorded"
        );
    });
}
