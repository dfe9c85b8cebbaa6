//! The announce client against a real opentracker (Debian's build, which
//! only tracks whitelisted info hashes), under both monoio drivers.
//!
//! Two announcers join the same swarm with different ports; the second
//! learns the first's address from the tracker; the first stops, and both a
//! scrape and a third announcer show it gone. The first announcer's list
//! starts with a tier whose tracker refuses connections, so the fail-over
//! to the next tier happens against real sockets too.

#[path = "support/announcing_peer.rs"]
mod announcing_peer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use announcing_peer::{client, join};
use bay_core::announce::{run_http, AnnounceConfig, AnnounceControl, Announcer};
use bay_httpd::client::{Request, Url};
use bay_testkit::drivers::{eventually, on_both_drivers};
use bay_testkit::process::{free_tcp_and_udp_port, Daemon};
use bay_wire::tracker::{InfoHash, PeerId, Reply, ScrapeRequest, ScrapeResponse, ScrapeStats};

const HASH: [u8; 20] = *b"bay-announce-test-01";
const DEADLINE: Duration = Duration::from_secs(20);

/// An opentracker process on 127.0.0.1, stopped on drop.
struct OpenTracker {
    _daemon: Daemon,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OpenTracker {
    fn start(whitelist: &[[u8; 20]]) -> OpenTracker {
        let dir = tempfile::tempdir().expect("tempdir");
        // opentracker chroots into the folder and drops to `nobody`, who
        // must still read the whitelist there.
        set_mode(dir.path(), 0o755);
        let list: String = whitelist.iter().map(|h| format!("{}\n", hex(h))).collect();
        write(&dir.path().join("whitelist"), &list);
        write(
            &dir.path().join("opentracker.conf"),
            "access.whitelist /whitelist\n",
        );
        let port = free_tcp_and_udp_port().expect("free port");
        let mut cmd = Command::new(binary());
        cmd.args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        .arg("-f")
        .arg(dir.path().join("opentracker.conf"))
        .arg("-d")
        .arg(dir.path())
        .args(["-u", "nobody"]);
        let mut daemon = Daemon::spawn("opentracker", cmd, dir.path()).expect("opentracker starts");
        daemon
            .wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), DEADLINE)
            .expect("opentracker listens");
        OpenTracker {
            _daemon: daemon,
            port,
            _dir: dir,
        }
    }

    fn announce_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    fn scrape_url(&self, hash: [u8; 20]) -> String {
        let query = ScrapeRequest {
            info_hashes: vec![InfoHash(hash)],
        }
        .to_query();
        format!("http://127.0.0.1:{}/scrape?{query}", self.port)
    }
}

fn binary() -> PathBuf {
    ["/usr/bin/opentracker", "/usr/sbin/opentracker"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("opentracker is installed (Debian package `opentracker`)")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
    set_mode(path, 0o644);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

async fn scrape(url: &str) -> ScrapeStats {
    let url = Url::parse(url).expect("scrape URL");
    let response = client().send(Request::get(url)).await.expect("scrape");
    assert_eq!(response.status(), 200);
    let body = response.bytes(64 * 1024).await.expect("scrape body");
    match ScrapeResponse::decode(&body) {
        Ok(Reply::Success(r)) => r.files.get(&InfoHash(HASH)).copied().unwrap_or_default(),
        other => panic!("scrape answered {other:?}"),
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs opentracker: scripts/test.sh runs it"
)]
fn peers_meet_through_opentracker_and_stopped_removes_them() {
    let tracker = OpenTracker::start(&[HASH]);
    let url = tracker.announce_url();
    let scrape_url = tracker.scrape_url(HASH);
    // A port nothing listens on: the first tier fails at once.
    let dead = format!(
        "http://127.0.0.1:{}/announce",
        bay_testkit::process::closed_port().unwrap()
    );
    on_both_drivers(|_| {
        let (url, scrape_url, dead) = (url.clone(), scrape_url.clone(), dead.clone());
        async move {
            // opentracker refuses every hash until its whitelist thread has
            // read the file: the first rounds may fail and back off (briefly,
            // see `join`).
            let a = join(vec![vec![dead], vec![url.clone()]], HASH, 40001, 1);
            eventually("the first announce", DEADLINE, || a.announced())
                .await
                .unwrap();
            let b = join(vec![vec![url.clone()]], HASH, 40002, 2);
            eventually("the second peer to learn the first", DEADLINE, || {
                b.knows(40001)
            })
            .await
            .unwrap();
            assert_eq!(scrape(&scrape_url).await.incomplete, 2);

            a.control.stop();
            monoio::time::timeout(DEADLINE, a.task)
                .await
                .expect("the first announcer finishes after `stopped`");
            assert!(a.control.with(|a| a.is_finished()));
            assert_eq!(scrape(&scrape_url).await.incomplete, 1);

            let c = join(vec![vec![url.clone()]], HASH, 40003, 3);
            eventually("a third peer to learn the second", DEADLINE, || {
                c.knows(40002)
            })
            .await
            .unwrap();
            assert!(!c.knows(40001), "the stopped peer is still listed");

            for p in [b, c] {
                p.control.stop();
                monoio::time::timeout(DEADLINE, p.task)
                    .await
                    .expect("announcer finishes");
            }
            assert_eq!(scrape(&scrape_url).await.incomplete, 0);
        }
    });
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs opentracker: scripts/test.sh runs it"
)]
fn a_hash_opentracker_does_not_track_is_refused() {
    let tracker = OpenTracker::start(&[HASH]);
    let url = tracker.announce_url();
    on_both_drivers(|_| {
        let url = url.clone();
        async move {
            let mut config =
                AnnounceConfig::new(InfoHash(*b"not-on-the-whitelist"), PeerId([1; 20]), 40009);
            config.seed = 9;
            let control =
                AnnounceControl::new(Announcer::new(config, vec![vec![url]], Instant::now()));
            let task = monoio::spawn(run_http(
                client(),
                control.clone(),
                Duration::from_secs(5),
                |_| {},
            ));
            eventually("the refusal", DEADLINE, || {
                control.with(|a| a.failed_rounds() == 1)
            })
            .await
            .unwrap();
            let error = control.with(|a| a.last_error().map(str::to_owned));
            assert!(
                error.as_deref().is_some_and(|e| e.contains("refused")),
                "{error:?}"
            );
            control.stop();
            monoio::time::timeout(DEADLINE, task)
                .await
                .expect("announcer finishes");
        }
    });
}
