//! What one (swarm, peer) entry costs the tracker: resident memory per
//! entry, and held announces answered per second on one core.
//!
//!   cargo run --release -p bay-tracker --example peer_store_cost [HOSTS] [BLOBS]
//!
//! HOSTS hosts (default 1,000) each send one held announce naming the
//! same BLOBS swarms (default 1,000): HOSTS x BLOBS entries, the shape of
//! a fleet at rest whose hosts all cache the same images.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use bay_tracker::peers::{PeerStore, PeerStoreConfig, Source};
use bay_wire::tracker::held::HeldAnnounce;
use bay_wire::tracker::{InfoHash, PeerId};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn arg(n: usize, default: u32) -> u32 {
    std::env::args()
        .nth(n)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn swarm(i: u32) -> InfoHash {
    let mut h = [0u8; 20];
    // Spread over the store's shards the way real info hashes do.
    h[0] = (i % 251) as u8;
    h[1..5].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

fn host(i: u32) -> (PeerId, Source) {
    let mut id = [b'-'; 20];
    id[..4].copy_from_slice(&i.to_be_bytes());
    let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 0x00ff_ffff)));
    (PeerId(id), Source { ip, trusted: false })
}

fn main() {
    let hosts = arg(1, 1_000);
    let blobs = arg(2, 1_000);
    let store = PeerStore::new(PeerStoreConfig {
        open: true,
        ..PeerStoreConfig::default()
    });
    let swarms: Vec<InfoHash> = (0..blobs).map(swarm).collect();
    let before = resident_bytes();
    let started = Instant::now();
    let now = Instant::now();
    for i in 0..hosts {
        let (peer_id, source) = host(i);
        let held = HeldAnnounce {
            peer_id,
            port: 6881,
            swarms: swarms.clone(),
        };
        if let Err(e) = store.hold(&held, source, now) {
            eprintln!("held announce refused: {e}");
            std::process::exit(1);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = resident_bytes();
    let (swarm_count, entries) = store.sizes();
    let per_entry = after.saturating_sub(before) as f64 / entries.max(1) as f64;
    println!("swarms {swarm_count}, entries {entries}");
    println!(
        "resident memory {:.1} MiB, {per_entry:.0} bytes per entry",
        after.saturating_sub(before) as f64 / (1 << 20) as f64
    );
    println!(
        "{hosts} held announces of {blobs} swarms in {secs:.2} s: {:.0} announces/s, {:.0} entries/s on one thread",
        f64::from(hosts) / secs,
        entries as f64 / secs
    );
}
