//! A bay leecher among hostile peers, over real loopback sockets.
//!
//! Each hostile peer is a plain blocking TCP peer written here with
//! bay_wire's encoders: it sends corrupt blocks, or hangs up in the middle
//! of a block, or sends an oversized or malformed message, or takes
//! requests and never answers. In every case the leecher, also connected
//! to an honest seed, finishes with the right bytes and closes the
//! hostile connection. Hostile peers listen on 127.0.0.2 so that a ban of
//! their address leaves the honest seed on 127.0.0.1 alone.
//!
//! Then `bay-peer get` is killed with SIGKILL at random points of a
//! download and restarted on the same store: no file in `blobs/` is ever
//! wrong, and the download resumes and completes.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bay_core::engine::{new_peer_id, Engine, EngineConfig, TorrentSpec};
use bay_core::store::Store;
use bay_core::swarm::SwarmConfig;
use bay_httpd::Driver;
use bay_tests::content;
use bay_tests::peers::{self, Running};
use bay_wire::peer::{
    encode_piece_header, BytesMut, Decoder, Frame, Handshake, Limits, Message, Piece, Status,
    HANDSHAKE_LEN,
};
use sha2::{Digest as _, Sha256};

const PIECE: u64 = 64 * 1024;
const LEN: usize = 6_000_017;
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hostility {
    /// Answers every request with bytes that fail the piece hash.
    Corrupt,
    /// Sends half of the first block asked for, then hangs up.
    HangsUpMidBlock,
    /// Announces a message of 2 GiB.
    Oversized,
    /// Sends a bitfield of the wrong length.
    Malformed,
    /// Takes requests and never answers.
    Silent,
}

/// What a hostile peer saw.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// The leecher asked it for a block.
    Request,
    /// The leecher closed the connection.
    Closed,
}

/// A hostile peer on 127.0.0.2 serving one connection.
fn hostile_peer(
    how: Hostility,
    info_hash: [u8; 20],
    pieces: u32,
) -> Result<(SocketAddr, mpsc::Receiver<Seen>)> {
    let listener = TcpListener::bind("127.0.0.2:0")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(TIMEOUT));
        let result = misbehave(how, stream, info_hash, pieces, &tx);
        if result.is_ok() {
            let _ = tx.send(Seen::Closed);
        }
    });
    Ok((addr, rx))
}

/// Speaks to the leecher until it closes the connection (Ok) or
/// something unexpected happens (Err: the test sees no `Closed`).
fn misbehave(
    how: Hostility,
    mut stream: TcpStream,
    info_hash: [u8; 20],
    pieces: u32,
    seen: &mpsc::Sender<Seen>,
) -> Result<()> {
    let mut theirs = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut theirs)?;
    let Status::Complete(handshake, _) = Handshake::decode(&theirs)? else {
        bail!("short handshake");
    };
    ensure!(handshake.info_hash == info_hash);
    let mut peer_id = *b"-XX0000-hostilepeer0";
    peer_id[19] = b'0' + how as u8;
    stream.write_all(&Handshake::new(info_hash, peer_id).to_bytes())?;
    match how {
        Hostility::Oversized => {
            // A piece message claiming 2 GiB of payload.
            stream.write_all(&0x8000_0000u32.to_be_bytes())?;
            stream.write_all(&[7])?;
            return wait_for_close(&mut stream);
        }
        Hostility::Malformed => {
            let bitfield = vec![0xff; (pieces as usize).div_ceil(8) + 3];
            stream.write_all(&Message::Bitfield(bitfield.into()).to_vec()?)?;
            return wait_for_close(&mut stream);
        }
        _ => {}
    }
    stream.write_all(&Message::HaveAll.to_vec()?)?;
    stream.write_all(&Message::Unchoke.to_vec()?)?;
    let mut decoder = Decoder::after_handshake(Limits::default());
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut told = false;
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Status::Complete(frame, _) = decoder.decode(&mut buf)? {
            let Frame::Message(Message::Request(r)) = frame else {
                continue;
            };
            if !told {
                told = true;
                let _ = seen.send(Seen::Request);
            }
            match how {
                Hostility::Corrupt => {
                    let block = vec![0x5a; r.length as usize];
                    let m = Message::Piece(Piece {
                        piece: r.piece,
                        begin: r.begin,
                        block: block.into(),
                    });
                    // The leecher may hang up mid-write once it has seen
                    // enough: that is the outcome wanted.
                    if stream.write_all(&m.to_vec()?).is_err() {
                        return Ok(());
                    }
                }
                Hostility::HangsUpMidBlock => {
                    let mut header = BytesMut::new();
                    encode_piece_header(&mut header, r.piece, r.begin, r.length)?;
                    stream.write_all(&header)?;
                    stream.write_all(&vec![1; r.length as usize / 2])?;
                    stream.shutdown(std::net::Shutdown::Both)?;
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}

fn wait_for_close(stream: &mut TcpStream) -> Result<()> {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn wait_for(rx: &mpsc::Receiver<Seen>, want: Seen, what: &str) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) if seen == want => return Ok(()),
            Ok(_) => {}
            Err(_) => bail!("{what}: never saw {want:?}"),
        }
    }
}

struct Blob {
    data: Vec<u8>,
    spec: TorrentSpec,
}

fn blob(len: usize, seed: u64) -> Blob {
    let data = content::bytes(len, seed);
    let metainfo = bay_wire::metainfo::build(
        &data,
        &bay_wire::metainfo::BuildOptions {
            name: "blob".into(),
            piece_length: Some(PIECE),
            ..Default::default()
        },
    )
    .unwrap();
    let spec = TorrentSpec {
        digest: peers::digest_of(&data),
        metainfo,
    };
    Blob { data, spec }
}

fn engine(root: &Path, swarm: SwarmConfig) -> (Engine, Store) {
    let store = Store::open(root, 1 << 34).unwrap();
    let mut config = EngineConfig::new("127.0.0.1:0".parse().unwrap(), new_peer_id());
    config.driver = Driver::Auto;
    config.swarm = swarm;
    (Engine::start(config, store.clone()).unwrap(), store)
}

fn seed_engine(dir: &Path, b: &Blob) -> Engine {
    let store = Store::open(dir, 1 << 34).unwrap();
    let file = dir.join("source");
    std::fs::write(&file, &b.data).unwrap();
    drop(store.import_file(&b.spec.digest, &file).unwrap());
    let mut config = EngineConfig::new("127.0.0.1:0".parse().unwrap(), new_peer_id());
    config.driver = Driver::Auto;
    let e = Engine::start(config, store).unwrap();
    let h = e.add_torrent(b.spec.clone()).unwrap();
    assert!(h.progress().is_complete());
    e
}

/// Short timeouts so that a silent peer costs seconds, not minutes.
fn impatient() -> SwarmConfig {
    SwarmConfig {
        request_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
        ..SwarmConfig::default()
    }
}

fn leech_among(how: Hostility) -> Result<()> {
    let b = blob(LEN, how as u64 + 10);
    let dir = tempfile::tempdir()?;
    let seed = seed_engine(&dir.path().join("seed"), &b);
    let (hostile, seen) = hostile_peer(
        how,
        b.spec.metainfo.info_hash().truncated(),
        b.spec.metainfo.info().num_pieces(),
    )?;
    let (leech, store) = engine(&dir.path().join("leech"), impatient());
    let h = leech.add_torrent(b.spec.clone())?;
    leech.connect(h.info_hash(), hostile);
    // Let the hostile peer do its worst before the honest seed joins.
    match how {
        Hostility::Corrupt | Hostility::HangsUpMidBlock | Hostility::Silent => {
            wait_for(&seen, Seen::Request, "hostile peer")?;
        }
        Hostility::Oversized | Hostility::Malformed => {
            wait_for(&seen, Seen::Closed, "hostile peer")?;
        }
    }
    leech.connect(h.info_hash(), seed.local_addr());
    h.progress()
        .wait_complete_blocking(TIMEOUT)
        .with_context(|| format!("leecher among a {how:?} peer"))?;
    let got = store.get(&b.spec.digest)?.context("blob not stored")?;
    ensure!(*got.map()? == b.data[..], "{how:?}: bytes differ");
    if !matches!(how, Hostility::Oversized | Hostility::Malformed) {
        wait_for(&seen, Seen::Closed, "hostile peer")?;
    }
    let status = leech.status(h.info_hash()).context("no status")?;
    ensure!(status.complete, "{status:?}");
    ensure!(
        status.stats.peers <= 1,
        "hostile peer still counted: {status:?}"
    );
    Ok(())
}

#[test]
fn a_peer_sending_corrupt_pieces_is_dropped() -> Result<()> {
    leech_among(Hostility::Corrupt)
}

#[test]
fn a_peer_hanging_up_mid_block_costs_nothing() -> Result<()> {
    leech_among(Hostility::HangsUpMidBlock)
}

#[test]
fn a_peer_announcing_an_oversized_message_is_dropped() -> Result<()> {
    leech_among(Hostility::Oversized)
}

#[test]
fn a_peer_sending_a_malformed_bitfield_is_dropped() -> Result<()> {
    leech_among(Hostility::Malformed)
}

#[test]
fn a_peer_that_never_answers_is_dropped() -> Result<()> {
    leech_among(Hostility::Silent)
}

#[test]
fn a_banned_address_cannot_come_back() -> Result<()> {
    let b = blob(LEN, 40);
    let dir = tempfile::tempdir()?;
    let info_hash = b.spec.metainfo.info_hash().truncated();
    let pieces = b.spec.metainfo.info().num_pieces();
    let (hostile, seen) = hostile_peer(Hostility::Corrupt, info_hash, pieces)?;
    let (leech, _store) = engine(&dir.path().join("leech"), impatient());
    let h = leech.add_torrent(b.spec.clone())?;
    leech.connect(h.info_hash(), hostile);
    wait_for(&seen, Seen::Closed, "corrupt peer")?;
    // A second peer on the banned address is never dialled.
    let again = TcpListener::bind("127.0.0.2:0")?;
    again.set_nonblocking(true)?;
    leech.connect(h.info_hash(), again.local_addr()?);
    // Status answers after the connect command was handled (one queue).
    leech.status(h.info_hash()).context("no status")?;
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        if again.accept().is_ok() {
            bail!("the leecher dialled a banned address");
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

// ---- SIGKILL

fn sha256_hex(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(bay_wire::hex::encode(&h.finalize()))
}

/// Every file in `blobs/` must hash to its name.
fn check_blobs(root: &Path) -> Result<usize> {
    let dir = root.join("blobs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let hex = name.strip_prefix("sha256-").context("odd name in blobs/")?;
        ensure!(sha256_hex(&e.path())? == hex, "blobs/{name} is wrong");
        n += 1;
    }
    Ok(n)
}

/// Pieces marked in a partial download's bitfield file.
fn pieces_marked(have: &Path) -> u32 {
    std::fs::read(have).map_or(0, |b| b.iter().map(|x| x.count_ones()).sum())
}

/// A small xorshift for kill points; seeded from the clock and printed,
/// so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs bay-peer, built by cargo build --bins: scripts/test.sh runs it"
)]
fn sigkilled_download_resumes_and_never_leaves_a_wrong_blob() -> Result<()> {
    let len = 48 << 20;
    let b = blob(len, 99);
    let dir = tempfile::tempdir()?;
    let seed = seed_engine(&dir.path().join("seed"), &b);
    let torrent = dir.path().join("blob.torrent");
    std::fs::write(&torrent, b.spec.metainfo.to_bytes())?;
    let root = dir.path().join("leech");
    let out: PathBuf = dir.path().join("out");
    let pieces = b.spec.metainfo.info().num_pieces();
    let have = root
        .join("partial")
        .join(b.spec.digest.path_component())
        .join("have");
    let seed_value = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    eprintln!("kill points from seed {seed_value}");
    let mut rng = Rng(seed_value);
    let mut mid_download_kills = 0;
    let mut last_marked = 0;
    for round in 0..5 {
        let mut cmd = peers::bay_get_command(
            &torrent,
            b.spec.digest.as_str(),
            &out,
            &[seed.local_addr()],
            Some(&root),
        )?;
        cmd.stderr(std::process::Stdio::null());
        let mut child = Running::spawn(&mut cmd)?;
        // The first kill lands after a random delay, perhaps before any
        // piece (while the store opens or the handshake runs), or after a
        // random number of pieces if that comes first (a fast download
        // can end within the delay); later ones once a random number of
        // further pieces is verified.
        let target = (last_marked + 1 + rng.below(u64::from(pieces) / 5) as u32).min(pieces);
        let delay = Duration::from_millis(rng.below(300));
        let started = Instant::now();
        let deadline = started + TIMEOUT;
        loop {
            if child.has_exited() || Instant::now() > deadline {
                break;
            }
            // While the writer runs too, blobs/ holds only right files.
            check_blobs(&root)?;
            let due = pieces_marked(&have) >= target || (round == 0 && started.elapsed() >= delay);
            if due {
                child.kill();
                break;
            }
            thread::sleep(Duration::from_micros(500));
        }
        let marked = pieces_marked(&have);
        if marked > last_marked && marked < pieces {
            mid_download_kills += 1;
        }
        eprintln!("round {round}: killed with {marked}/{pieces} pieces marked");
        last_marked = marked;
        check_blobs(&root)?;
    }
    ensure!(
        mid_download_kills >= 3,
        "only {mid_download_kills} kills landed mid-download"
    );
    let before = pieces_marked(&have);
    let line = peers::bay_get(
        &torrent,
        b.spec.digest.as_str(),
        &out,
        &[seed.local_addr()],
        Some(&root),
        TIMEOUT,
    )?;
    peers::assert_file_is(&out, &b.data)?;
    ensure!(check_blobs(&root)? == 1, "the blob is not in blobs/");
    // Resumed: pieces verified before the last kill were not fetched again.
    let downloaded: u64 = peers::field(&line, "downloaded")?.parse()?;
    ensure!(
        downloaded <= len as u64 - u64::from(before) * PIECE + PIECE,
        "fetched {downloaded} bytes with {before} pieces already verified"
    );
    Ok(())
}
