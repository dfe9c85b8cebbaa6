//! Connection set-up time of a peer link, open against keyed (the fleet
//! proof) and keyed with encrypted links (TLS 1.3 first), on loopback: an
//! engine holds a stored blob; a client dials it, handshakes (and in
//! keyed mode proves the fleet key both ways) and waits for the engine's
//! first message. Rounds alternate the modes, so the machine's noise
//! falls on all alike.
//!
//!     cargo run --release -p bay-bench --bin bay-handshake-bench -- --rounds 2000

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bay_core::engine::{new_peer_id, Engine, EngineConfig};
use bay_core::peer_tls::PeerTls;
use bay_core::store::Store;
use bay_wire::fleet::{FleetKey, FleetKeys};
use bay_wire::oci::Digest;
use bay_wire::peer::{
    AuthStep, BytesMut, FleetAuth, Handshake, Reserved, HANDSHAKE_LEN, NONCE_LEN,
};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Connections per mode.
    #[arg(long, default_value_t = 1000)]
    rounds: u32,
}

fn engine(
    dir: &std::path::Path,
    keys: Option<FleetKeys>,
    encrypt: bool,
) -> Result<(Engine, [u8; 20])> {
    let store = Store::open(dir, 1 << 30)?;
    let data = vec![7u8; 1 << 20];
    let digest = Digest::sha256_of(&data);
    let mut w = store.begin_stream(&digest, Some(data.len() as u64))?;
    w.write(&data)?;
    drop(w.finish()?);
    let mut config = EngineConfig::new("127.0.0.1:0".parse()?, new_peer_id());
    if encrypt {
        if let Some(keys) = &keys {
            config.peer_tls = Some(PeerTls::from_keys(keys)?);
        }
    }
    config.fleet = keys;
    let engine = Engine::start(config, store)?;
    let swarm = engine.swarm_id(&digest);
    Ok((engine, swarm))
}

/// One connection: time until the engine's first message arrives.
fn connect(
    addr: SocketAddr,
    swarm: [u8; 20],
    keys: Option<&FleetKeys>,
    tls: Option<&PeerTls>,
    n: u32,
) -> Result<Duration> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    match tls {
        Some(tls) => {
            let mut s = rustls::StreamOwned::new(tls.client_connection()?, s);
            talk(&mut s, swarm, keys, n)?;
        }
        None => talk(&mut s, swarm, keys, n)?,
    }
    Ok(started.elapsed())
}

/// Handshake, fleet proof, first message.
fn talk(
    s: &mut (impl Read + Write),
    swarm: [u8; 20],
    keys: Option<&FleetKeys>,
    n: u32,
) -> Result<()> {
    let mut id = *b"-BB0000-000000000000";
    id[8..12].copy_from_slice(&n.to_be_bytes());
    let mut hello = Handshake::new(swarm, id);
    hello.reserved = Reserved::BAY.with_fleet_auth(keys.is_some());
    s.write_all(&hello.to_bytes())?;
    let mut theirs = [0u8; HANDSHAKE_LEN];
    s.read_exact(&mut theirs).context("no handshake")?;
    if let Some(keys) = keys {
        let their_id: [u8; 20] = theirs[48..68].try_into()?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..4].copy_from_slice(&n.to_be_bytes());
        let mut auth = FleetAuth::new(keys.clone(), swarm, id, their_id, nonce);
        s.write_all(&auth.hello())?;
        let mut buf = BytesMut::new();
        while !auth.is_done() {
            let mut chunk = [0u8; 64];
            let got = match s.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if got == 0 {
                bail!("closed during the proof");
            }
            buf.extend_from_slice(&chunk[..got]);
            while let AuthStep::Send(p) = auth.receive(&mut buf)? {
                s.write_all(&p)?;
            }
        }
    }
    let mut first = [0u8; 5];
    s.read_exact(&mut first).context("no first message")?;
    Ok(())
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let keys = FleetKeys::single(FleetKey::from_bytes([9; 32]));
    let tls = PeerTls::from_keys(&keys)?;
    let open_dir = tempfile::tempdir()?;
    let keyed_dir = tempfile::tempdir()?;
    let tls_dir = tempfile::tempdir()?;
    let (open, open_swarm) = engine(open_dir.path(), None, false)?;
    let (keyed, keyed_swarm) = engine(keyed_dir.path(), Some(keys.clone()), false)?;
    let (sealed, sealed_swarm) = engine(tls_dir.path(), Some(keys.clone()), true)?;
    let (mut t_open, mut t_keyed, mut t_sealed) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..args.rounds {
        t_open.push(connect(open.local_addr(), open_swarm, None, None, n)?);
        t_keyed.push(connect(
            keyed.local_addr(),
            keyed_swarm,
            Some(&keys),
            None,
            n,
        )?);
        t_sealed.push(connect(
            sealed.local_addr(),
            sealed_swarm,
            Some(&keys),
            Some(&tls),
            n,
        )?);
    }
    println!(
        "connection set-up to the first message, {} rounds each, alternating:",
        args.rounds
    );
    for (name, v) in [
        ("open", &mut t_open),
        ("keyed", &mut t_keyed),
        ("keyed+TLS", &mut t_sealed),
    ] {
        let p50 = percentile(v, 0.5);
        let p99 = percentile(v, 0.99);
        println!(
            "  {name:9} p50 {:>7.1} us   p99 {:>7.1} us",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
    Ok(())
}
