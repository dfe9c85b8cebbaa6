//! A peer that announces through bay's monoio announce driver and keeps the
//! peers trackers tell it about: the set-up of the tests that run bay's
//! announce client against a real tracker. bay-core's tests and
//! bay-tracker's include this one file (with `#[path]`), as it needs bay
//! crates the test kit must not depend on.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bay_core::announce::{run_http, AnnounceConfig, AnnounceControl, Announcer};
use bay_httpd::client::{Client, ClientConfig, PlainHttp};
use bay_wire::tracker::{InfoHash, PeerId};

/// A client that may speak plain HTTP to any origin, as trackers on
/// loopback need.
pub fn client() -> Client {
    Client::new(ClientConfig {
        plain_http: PlainHttp::Any,
        ..ClientConfig::default()
    })
    .expect("client")
}

/// One announcer on the running driver, with the peers it has learned.
pub struct Peer {
    pub control: AnnounceControl,
    pub learned: Rc<RefCell<Vec<SocketAddr>>>,
    pub task: monoio::task::JoinHandle<()>,
}

/// Starts announcing `hash` with listening `port` to `tiers`; `seed` picks
/// the peer id's last digit and the announcer's randomness. Back-off is
/// short, so a refused first round costs a fraction of a second.
pub fn join(tiers: Vec<Vec<String>>, hash: [u8; 20], port: u16, seed: u64) -> Peer {
    let mut id = *b"-BY0001-000000000000";
    id[19] = b'0' + (seed % 10) as u8;
    let mut config = AnnounceConfig::new(InfoHash(hash), PeerId(id), port);
    config.seed = seed;
    config.min_backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_millis(500);
    let control = AnnounceControl::new(Announcer::new(config, tiers, Instant::now()));
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
    /// Whether a tracker told this peer about 127.0.0.1:`port`.
    pub fn knows(&self, port: u16) -> bool {
        self.learned
            .borrow()
            .contains(&SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::LOCALHOST,
                port,
            )))
    }

    /// Whether a tracker has answered an announce (it set an interval).
    pub fn announced(&self) -> bool {
        self.control.with(|a| a.interval().is_some())
    }
}
