//! The engine over loopback sockets, against a raw peer: blobs of the
//! store are loaded when a peer names their swarm and unloaded when idle;
//! a stranger's handshake for an unknown swarm gets nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bay_wire::oci::Digest;
use bay_wire::peer::{Handshake, HANDSHAKE_LEN};

use super::*;

fn stored(dir: &std::path::Path, data: &[u8]) -> (Store, Digest) {
    let store = Store::open(dir, 1 << 30).unwrap();
    let digest = Digest::sha256_of(data);
    let mut w = store
        .begin_stream(&digest, Some(data.len() as u64))
        .unwrap();
    w.write(data).unwrap();
    drop(w.finish().unwrap());
    (store, digest)
}

/// Connects, sends a handshake for `swarm`, and says whether the engine
/// answered with its own.
fn knock(addr: SocketAddr, swarm: [u8; 20]) -> Option<TcpStream> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(&Handshake::new(swarm, *b"-XX0000-knockknock00").to_bytes())
        .ok()?;
    let mut answer = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut answer).ok()?;
    Some(s)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stored_blobs_load_when_named_and_unload_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let (store, digest) = stored(dir.path(), &data);
    let mut config = EngineConfig::new("127.0.0.1:0".parse().unwrap(), new_peer_id());
    config.unload_after = Duration::from_millis(300);
    let engine = Engine::start(config, store).unwrap();
    let swarm = bay_wire::origin::swarm_id(&digest);
    assert_eq!(engine.status(swarm), None, "loaded before anyone asked");

    let peer = knock(engine.local_addr(), swarm).expect("no handshake for a stored blob");
    let status = engine.status(swarm).expect("not loaded for a peer");
    assert!(status.complete);
    drop(peer);
    wait_until("the idle blob to unload", || engine.status(swarm).is_none());
    // Named again, it comes back.
    assert!(knock(engine.local_addr(), swarm).is_some());
    assert!(
        knock(engine.local_addr(), [7; 20]).is_none(),
        "a made-up swarm was answered"
    );
}

#[test]
fn a_released_download_leaves_the_engine_and_keeps_its_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 1 << 30).unwrap();
    let piece_len = 64 * 1024u32;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let digest = Digest::sha256_of(&data);
    let spec = || ProgressiveSpec {
        digest: digest.clone(),
        total_len: data.len() as u64,
        piece_len: piece_len.into(),
    };
    let config = EngineConfig::new("127.0.0.1:0".parse().unwrap(), new_peer_id());
    let engine = Engine::start(config, store).unwrap();
    let handle = engine.add_progressive(spec()).unwrap();
    let first = &data[..piece_len as usize];
    let hash = bay_wire::merkle::piece_hash(first, piece_len.into(), data.len() as u64).unwrap();
    handle.set_piece_hash(0, hash);
    handle.supply_piece(0, bytes::Bytes::copy_from_slice(first));
    wait_until("the supplied piece", || {
        handle.progress().verified_pieces() == 1
    });

    handle.release();
    wait_until("the released blob to leave", || {
        engine.status(handle.info_hash()).is_none()
    });
    assert!(handle
        .progress()
        .wait_complete_blocking(Duration::from_secs(1))
        .is_err());

    let again = engine.add_progressive(spec()).unwrap();
    assert_eq!(
        again.progress().verified_pieces(),
        1,
        "the piece fetched before the release was lost"
    );
}
