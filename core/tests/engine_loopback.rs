//! Whole engines over real loopback sockets, under both monoio drivers:
//! a seed and leechers move a blob, byte for byte, with every piece
//! verified on the way.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::net::SocketAddr;
use std::time::Duration;

use bay_core::engine::{new_peer_id, Engine, EngineConfig, TorrentSpec};
use bay_core::store::Store;
use bay_httpd::Driver;
use bay_wire::metainfo::{build, BuildOptions, Metainfo};
use bay_wire::oci::Digest;

fn blob(len: usize) -> Vec<u8> {
    bay_testkit::content::bytes(len, 1)
}

fn spec(data: &[u8], piece_length: u64) -> TorrentSpec {
    let metainfo = build(
        data,
        &BuildOptions {
            name: "blob".into(),
            piece_length: Some(piece_length),
            ..BuildOptions::default()
        },
    )
    .unwrap();
    // Through bytes and back, as a torrent travels.
    let metainfo = Metainfo::from_bytes(&metainfo.to_bytes()).unwrap();
    TorrentSpec {
        digest: Digest::sha256_of(data),
        metainfo,
    }
}

fn seeded_store(dir: &std::path::Path, data: &[u8]) -> Store {
    let store = Store::open(dir, 1 << 32).unwrap();
    let digest = Digest::sha256_of(data);
    let mut w = store
        .begin_stream(&digest, Some(data.len() as u64))
        .unwrap();
    w.write(data).unwrap();
    drop(w.finish().unwrap());
    store
}

fn engine(store: Store, driver: Driver) -> Engine {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = EngineConfig::new(listen, new_peer_id());
    config.driver = driver;
    Engine::start(config, store).unwrap()
}

/// The engine's setting for each driver this machine runs.
fn drivers() -> Vec<Driver> {
    bay_testkit::drivers::available_as().unwrap()
}

fn seed_to_leechers(driver: Driver, len: usize, piece_length: u64, leechers: usize) {
    let data = blob(len);
    let spec = spec(&data, piece_length);
    let seed_dir = tempfile::tempdir().unwrap();
    let seed = engine(seeded_store(seed_dir.path(), &data), driver);
    let seed_torrent = seed.add_torrent(spec.clone()).unwrap();
    assert!(seed_torrent.progress().is_complete());

    let mut dirs = Vec::new();
    let mut engines = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..leechers {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(Store::open(dir.path(), 1 << 32).unwrap(), driver);
        let h = e.add_torrent(spec.clone()).unwrap();
        e.connect(h.info_hash(), seed.local_addr());
        for other in &engines {
            let other: &Engine = other;
            e.connect(h.info_hash(), other.local_addr());
        }
        dirs.push(dir);
        engines.push(e);
        handles.push(h);
    }
    for (i, h) in handles.iter().enumerate() {
        h.progress()
            .wait_complete_blocking(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("leecher {i} under {driver:?}: {e}"));
    }
    for dir in &dirs {
        let store = Store::open(dir.path(), 1 << 32).unwrap();
        let got = store.get(&spec.digest).unwrap().expect("blob in the store");
        assert!(*got.map().unwrap() == data[..], "bytes differ");
    }
}

#[test]
fn one_seed_one_leecher_both_drivers() {
    for driver in drivers() {
        seed_to_leechers(driver, 3_000_000 + 123, 64 * 1024, 1);
    }
}

#[test]
fn one_seed_three_leechers_both_drivers() {
    for driver in drivers() {
        seed_to_leechers(driver, 5_000_000, 256 * 1024, 3);
    }
}

#[test]
fn single_piece_blob() {
    for driver in drivers() {
        seed_to_leechers(driver, 1000, 16 * 1024, 1);
    }
}

#[test]
fn reader_streams_verified_bytes_in_order() {
    let data = blob(2_000_000);
    let spec = spec(&data, 64 * 1024);
    let seed_dir = tempfile::tempdir().unwrap();
    let seed = engine(seeded_store(seed_dir.path(), &data), Driver::Legacy);
    let _seeding = seed.add_torrent(spec.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let leech = engine(Store::open(dir.path(), 1 << 32).unwrap(), Driver::Legacy);
    let h = leech.add_torrent(spec).unwrap();
    let mut reader = h.reader(500_000..1_500_000).unwrap();
    leech.connect(h.info_hash(), seed.local_addr());
    let mut got = Vec::new();
    bay_testkit::drivers::Driver::Epoll
        .block_on(async {
            use std::os::unix::fs::FileExt;
            while let Some(r) = reader.next_range().await {
                let (offset, len) = r.unwrap();
                let mut buf = vec![0; len as usize];
                reader.file().read_exact_at(&mut buf, offset).unwrap();
                got.extend_from_slice(&buf);
            }
        })
        .unwrap();
    assert!(got == data[500_000..1_500_000]);
}

/// The origin publishes piece hashes and pieces one at a time, as it would
/// while fetching from the registry; leechers get each piece before the
/// origin has the next, so the swarm runs ahead of the origin's download.
#[test]
fn progressive_swarm_runs_while_the_origin_fetches() {
    use bay_core::engine::ProgressiveSpec;
    use bay_wire::merkle;

    for driver in drivers() {
        let data = blob(1_000_000 + 7);
        let piece_len = 64 * 1024u64;
        let digest = Digest::sha256_of(&data);
        let spec = ProgressiveSpec {
            digest: digest.clone(),
            total_len: data.len() as u64,
            piece_len,
        };
        let origin_dir = tempfile::tempdir().unwrap();
        let origin = engine(Store::open(origin_dir.path(), 1 << 32).unwrap(), driver);
        let source = origin.add_progressive(spec.clone()).unwrap();
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let leechers: Vec<Engine> = dirs
            .iter()
            .map(|d| engine(Store::open(d.path(), 1 << 32).unwrap(), driver))
            .collect();
        let handles: Vec<_> = leechers
            .iter()
            .map(|e| {
                let h = e.add_progressive(spec.clone()).unwrap();
                e.connect(h.info_hash(), origin.local_addr());
                h
            })
            .collect();
        leechers[1].connect(handles[1].info_hash(), leechers[0].local_addr());

        for (i, chunk) in data.chunks(piece_len as usize).enumerate() {
            let piece = i as u32;
            let hash = merkle::piece_hash(chunk, piece_len, data.len() as u64).unwrap();
            source.set_piece_hash(piece, hash);
            source.supply_piece(piece, bytes::Bytes::copy_from_slice(chunk));
            for h in &handles {
                h.set_piece_hash(piece, hash);
            }
            // Every leecher has this piece before the origin has the next.
            for h in &handles {
                h.progress()
                    .wait_verified_blocking(piece + 1, Duration::from_secs(20))
                    .unwrap_or_else(|e| panic!("piece {piece} never arrived: {e}"));
            }
        }
        for h in &handles {
            h.progress()
                .wait_complete_blocking(Duration::from_secs(20))
                .unwrap();
        }
        source
            .progress()
            .wait_complete_blocking(Duration::from_secs(20))
            .unwrap();
        for d in &dirs {
            let store = Store::open(d.path(), 1 << 32).unwrap();
            assert!(*store.get(&digest).unwrap().unwrap().map().unwrap() == data[..]);
        }
    }
}

/// The upload and download limits hold over a whole transfer: it cannot
/// finish sooner than the limit allows (the test asserts only that lower
/// bound; how close to the limit it gets is for benchmarks).
#[test]
fn rate_limits_bound_a_transfer() {
    let data = blob(6_000_000);
    let spec = spec(&data, 256 * 1024);
    for (up, down) in [(Some(4_000_000u64), None), (None, Some(4_000_000u64))] {
        let seed_dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new("127.0.0.1:0".parse().unwrap(), new_peer_id());
        config.upload_limit = up;
        let seed = Engine::start(config, seeded_store(seed_dir.path(), &data)).unwrap();
        let _seeding = seed.add_torrent(spec.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = EngineConfig::new("127.0.0.1:0".parse().unwrap(), new_peer_id());
        config.download_limit = down;
        let leech = Engine::start(config, Store::open(dir.path(), 1 << 32).unwrap()).unwrap();
        let h = leech.add_torrent(spec.clone()).unwrap();
        let start = std::time::Instant::now();
        leech.connect(h.info_hash(), seed.local_addr());
        h.progress()
            .wait_complete_blocking(Duration::from_secs(30))
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        // 6 MB at 4 MB/s with a 0.4 MB burst: at least 1.4 s.
        assert!(secs >= 1.3, "{up:?}/{down:?}: finished in {secs:.2} s");
    }
}

fn keyed_engine(store: Store, driver: Driver, key: u8, encrypt: bool) -> Engine {
    use bay_wire::fleet::{FleetKey, FleetKeys};
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = EngineConfig::new(listen, new_peer_id());
    config.driver = driver;
    let keys = FleetKeys::single(FleetKey::from_bytes([key; 32]));
    if encrypt {
        config.peer_tls = Some(bay_core::peer_tls::PeerTls::from_keys(&keys).unwrap());
    }
    config.fleet = Some(keys);
    Engine::start(config, store).unwrap()
}

#[test]
fn encrypted_links_move_a_blob_and_strangers_get_no_byte_of_it() {
    use std::io::{Read, Write};
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    for driver in drivers() {
        let data = blob(2_000_000 + 77);
        let spec = spec(&data, 64 * 1024);
        let seed_dir = tempfile::tempdir().unwrap();
        let seed = keyed_engine(seeded_store(seed_dir.path(), &data), driver, 9, true);
        seed.add_torrent(spec.clone()).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let leecher = keyed_engine(Store::open(dir.path(), 1 << 32).unwrap(), driver, 9, true);
        let h = leecher.add_torrent(spec.clone()).unwrap();
        leecher.connect(h.info_hash(), seed.local_addr());
        h.progress()
            .wait_complete_blocking(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("encrypted leecher under {driver:?}: {e}"));
        let store = Store::open(dir.path(), 1 << 32).unwrap();
        let got = store.get(&spec.digest).unwrap().expect("blob in the store");
        assert!(*got.map().unwrap() == data[..], "bytes differ");

        // A plain BitTorrent handshake gets no handshake back, only the
        // end of the connection.
        let mut s = std::net::TcpStream::connect(seed.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let hello = bay_wire::peer::Handshake::new(h.info_hash(), *b"-XX0000-stranger0000");
        s.write_all(&hello.to_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(
            !answer.windows(19).any(|w| w == b"BitTorrent protocol"),
            "a plain peer got a handshake from an encrypted one"
        );

        // Hosts with another key, or the key without encryption, never
        // get a piece.
        for (key, encrypt) in [(8, true), (9, false)] {
            let dir = tempfile::tempdir().unwrap();
            let other = keyed_engine(
                Store::open(dir.path(), 1 << 32).unwrap(),
                driver,
                key,
                encrypt,
            );
            let h = other.add_torrent(spec.clone()).unwrap();
            other.connect(h.info_hash(), seed.local_addr());
            let waited = h.progress().wait_complete_blocking(Duration::from_secs(3));
            assert!(waited.is_err(), "key {key} encrypt {encrypt} got the blob");
            assert_eq!(h.progress().verified_pieces(), 0);
        }
    }
}
