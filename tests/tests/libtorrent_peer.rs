//! bay and libtorrent 2.0 as peers of each other over loopback, v2
//! torrents, TCP only:
//!
//! - libtorrent downloads from `bay-peer seed` and from a bay engine in
//!   this process;
//! - `bay-peer get` and a bay engine in this process download from a
//!   libtorrent seed.
//!
//! Every download is compared byte for byte with the original, with
//! torrents made by bay and by libtorrent. Sizes
//! cover a single piece smaller than a block, and several pieces with a
//! short last piece whose last block libtorrent pads to a full block.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bay_core::engine::{new_peer_id, Engine, EngineConfig, TorrentSpec};
use bay_core::store::Store;
use bay_httpd::Driver;
use bay_tests::content;
use bay_tests::peers::{self, BaySeed, LtSeed};

const KIB: usize = 1024;
const TIMEOUT: Duration = Duration::from_secs(60);

struct Case {
    name: &'static str,
    len: usize,
    piece_length: u64,
    seed: u64,
}

const CASES: &[Case] = &[
    // One piece, shorter than one block.
    Case {
        name: "single-piece",
        len: 10_000,
        piece_length: 64 * KIB as u64,
        seed: 1,
    },
    // Many pieces; the last one ends inside its last block.
    Case {
        name: "short-last-piece",
        len: 3_000_123,
        piece_length: 64 * KIB as u64,
        seed: 2,
    },
    // Larger pieces; the last piece's tail is several blocks of padding.
    Case {
        name: "padded-blocks",
        len: 2_000_000,
        piece_length: 256 * KIB as u64,
        seed: 3,
    },
];

/// A folder holding `case`'s file and torrent.
struct Prepared {
    dir: tempfile::TempDir,
    data: Vec<u8>,
    torrent: std::path::PathBuf,
    file: std::path::PathBuf,
    spec: TorrentSpec,
}

fn prepare(case: &Case) -> Result<Prepared> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    std::fs::create_dir(&src)?;
    let file = content::write_file(&src, case.name, case.len, case.seed)?;
    let data = std::fs::read(&file)?;
    let (torrent, metainfo) =
        peers::write_torrent(dir.path(), case.name, &data, case.piece_length)?;
    let spec = TorrentSpec {
        digest: peers::digest_of(&data),
        metainfo,
    };
    Ok(Prepared {
        dir,
        data,
        torrent,
        file,
        spec,
    })
}

fn engine(root: &Path) -> Result<(Engine, Store)> {
    let store = Store::open(root, 1 << 34)?;
    let mut config = EngineConfig::new("127.0.0.1:0".parse()?, new_peer_id());
    config.driver = Driver::Auto;
    Ok((Engine::start(config, store.clone())?, store))
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent: scripts/test.sh runs it"
)]
fn libtorrent_downloads_from_bay_peer_seed() -> Result<()> {
    for case in CASES {
        let p = prepare(case)?;
        let seed = BaySeed::start(&p.torrent, &p.file, None)?;
        let save = p.dir.path().join("lt");
        let report = peers::lt_get(&p.torrent, &save, &[seed.addr], TIMEOUT)
            .with_context(|| format!("case {}", case.name))?;
        peers::assert_file_is(&save.join(case.name), &p.data)
            .with_context(|| format!("case {}", case.name))?;
        let uploaded = seed.stop()?;
        ensure!(
            uploaded >= case.len as u64,
            "{}: bay uploaded {uploaded} of {} bytes ({report})",
            case.name,
            case.len
        );
        // libtorrent names its peer from bay's BEP 10 handshake.
        let named_bay = report["clients"].as_array().is_some_and(|c| {
            c.iter()
                .any(|n| n.as_str().is_some_and(|n| n.starts_with("bay ")))
        });
        ensure!(
            named_bay,
            "{}: libtorrent saw the clients {}",
            case.name,
            report["clients"]
        );
    }
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent: scripts/test.sh runs it"
)]
fn bay_peer_downloads_from_libtorrent_seed() -> Result<()> {
    for case in CASES {
        let p = prepare(case)?;
        let seed = LtSeed::start(&p.torrent, &p.file.with_file_name(""))?;
        let out = p.dir.path().join("out");
        let line = peers::bay_get(
            &p.torrent,
            p.spec.digest.as_str(),
            &out,
            &[seed.addr],
            None,
            TIMEOUT,
        )
        .with_context(|| format!("case {}", case.name))?;
        peers::assert_file_is(&out, &p.data).with_context(|| format!("case {}", case.name))?;
        ensure!(
            peers::field(&line, "bytes")? == case.len.to_string(),
            "{line}"
        );
        let uploaded = seed.stop()?;
        ensure!(
            uploaded >= case.len as u64,
            "{}: libtorrent uploaded {uploaded}",
            case.name
        );
    }
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent: scripts/test.sh runs it"
)]
fn engine_in_process_trades_with_libtorrent_both_ways() -> Result<()> {
    let case = &CASES[1];
    let p = prepare(case)?;

    // bay leeches from libtorrent.
    let lt_seed = LtSeed::start(&p.torrent, &p.file.with_file_name(""))?;
    let root = p.dir.path().join("bay-root");
    let (bay, store) = engine(&root)?;
    let handle = bay.add_torrent(p.spec.clone())?;
    bay.connect(handle.info_hash(), lt_seed.addr);
    handle
        .progress()
        .wait_complete_blocking(TIMEOUT)
        .context("bay leeching from libtorrent")?;
    let blob = store
        .get(&p.spec.digest)?
        .context("blob not in the store")?;
    ensure!(*blob.map()? == p.data[..], "bay's copy differs");
    drop(blob);
    lt_seed.stop()?;

    // libtorrent leeches from the same engine, now a seed.
    let save = p.dir.path().join("lt");
    let addr: SocketAddr = bay.local_addr();
    peers::lt_get(&p.torrent, &save, &[addr], TIMEOUT)?;
    peers::assert_file_is(&save.join(case.name), &p.data)?;
    let status = bay.status(handle.info_hash()).context("no status")?;
    ensure!(status.complete, "{status:?}");
    ensure!(
        status.stats.uploaded >= case.len as u64,
        "bay uploaded {} bytes",
        status.stats.uploaded
    );
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent: scripts/test.sh runs it"
)]
fn a_torrent_made_by_libtorrent_works_both_ways() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    std::fs::create_dir(&src)?;
    let file = content::write_file(&src, "lt-made", 1_500_000 + 77, 9)?;
    let data = std::fs::read(&file)?;
    let torrent = dir.path().join("lt-made.torrent");
    bay_tests::libtorrent::make(&file, &torrent, 128 * KIB as u64)?;

    // libtorrent seeds, bay-peer fetches.
    let lt_seed = LtSeed::start(&torrent, &src)?;
    let out = dir.path().join("out");
    let digest = peers::digest_of(&data);
    peers::bay_get(
        &torrent,
        digest.as_str(),
        &out,
        &[lt_seed.addr],
        None,
        TIMEOUT,
    )?;
    peers::assert_file_is(&out, &data)?;
    lt_seed.stop()?;

    // bay-peer seeds the copy it fetched, libtorrent fetches.
    let seed = BaySeed::start(&torrent, &out, None)?;
    ensure!(
        seed.digest == digest.as_str(),
        "seed printed {}",
        seed.digest
    );
    let save = dir.path().join("lt");
    peers::lt_get(&torrent, &save, &[seed.addr], TIMEOUT)?;
    peers::assert_file_is(&save.join("lt-made"), &data)?;
    seed.stop()?;
    Ok(())
}
