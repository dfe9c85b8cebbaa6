//! Cross-checks of bay's BitTorrent v2 metainfo against libtorrent 2.0,
//! both ways:
//!
//! - torrents written by the real `bay-tracker mktorrent` load in
//!   libtorrent with the same v2 info hash, pieces root and piece layers,
//!   and libtorrent, hashing the data itself, accepts every piece (and
//!   refuses an altered one);
//! - v2-only torrents libtorrent makes parse in bay with the same info
//!   hash, pieces root and piece layers, and bay's piece check accepts the
//!   real data and refuses altered data.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bay_tests::{bins, content, libtorrent as lt, process};
use bay_wire::hex;
use bay_wire::metainfo::Metainfo;
use serde_json::Value;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

struct Case {
    name: &'static str,
    len: usize,
    /// None: let the torrent maker choose.
    piece_length: Option<u64>,
}

const fn case(name: &'static str, len: usize, piece_length: Option<u64>) -> Case {
    Case {
        name,
        len,
        piece_length,
    }
}

/// Sizes around every boundary BEP 52's padding rules care about.
const CASES: &[Case] = &[
    case("one-byte", 1, None),
    case("under-one-block", 10_000, Some(16 * KIB as u64)),
    case("under-one-piece", 40 * KIB + 7, Some(64 * KIB as u64)),
    case("exactly-one-piece", 64 * KIB, Some(64 * KIB as u64)),
    case("one-piece-plus-one", 64 * KIB + 1, Some(64 * KIB as u64)),
    case("exact-multiple", 12 * 32 * KIB, Some(32 * KIB as u64)),
    case("odd-many-pieces", 1_000_003, Some(32 * KIB as u64)),
    case("odd-leaf-pieces", 5 * 16 * KIB + 1, Some(16 * KIB as u64)),
    case("few-mib-auto", 3 * MIB + 12_345, None),
    case("few-mib-big-pieces", 5 * MIB + 999, Some(MIB as u64)),
];

const MKTORRENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `bay-tracker mktorrent FILE --out OUT [extra...]`; returns the
/// info hash it printed last.
fn bay_mktorrent(file: &Path, out: &Path, extra: &[String]) -> Result<String> {
    let bin = bins::bay_binary("bay-tracker")?;
    let mut cmd = Command::new(bin);
    cmd.arg("mktorrent")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(extra);
    let stdout = process::run_ok(&mut cmd, MKTORRENT_TIMEOUT)?;
    let last = stdout.lines().last().context("mktorrent printed nothing")?;
    Ok(last.to_owned())
}

fn piece_length_args(case: &Case) -> Vec<String> {
    case.piece_length
        .map(|pl| vec!["--piece-length".to_owned(), pl.to_string()])
        .unwrap_or_default()
}

fn bay_layer_hex(meta: &Metainfo) -> Result<Vec<String>> {
    Ok(meta
        .piece_layer(0)
        .context("bay has no piece layer for file 0")?
        .iter()
        .map(|h| hex::encode(h))
        .collect())
}

/// Compares what libtorrent read from a torrent with what bay read.
fn assert_same_view(name: &str, seen: &Value, meta: &Metainfo) -> Result<()> {
    let info = meta.info();
    ensure!(
        seen["info_hash_v2"] == meta.info_hash().to_hex().as_str(),
        "{name}: info hash: libtorrent {} bay {}",
        seen["info_hash_v2"],
        meta.info_hash()
    );
    ensure!(seen["has_v1"] == false, "{name}: libtorrent sees v1 keys");
    ensure!(
        seen["piece_length"] == info.piece_length,
        "{name}: piece length: libtorrent {} bay {}",
        seen["piece_length"],
        info.piece_length
    );
    ensure!(
        seen["num_pieces"] == info.num_pieces(),
        "{name}: pieces: libtorrent {} bay {}",
        seen["num_pieces"],
        info.num_pieces()
    );
    let file = &seen["files"][0];
    let root = info.files[0].pieces_root.context("no pieces root")?;
    ensure!(
        file["pieces_root"] == hex::encode(&root).as_str(),
        "{name}: pieces root: libtorrent {} bay {}",
        file["pieces_root"],
        hex::encode(&root)
    );
    ensure!(file["size"] == info.files[0].length, "{name}: file size");
    let lt_layer = lt::hex_list(&file["piece_layer"], "piece layer")?;
    ensure!(
        lt_layer == bay_layer_hex(meta)?,
        "{name}: piece layers differ ({} hashes in libtorrent, {} in bay)",
        lt_layer.len(),
        info.num_pieces()
    );
    Ok(())
}

fn flip_byte(path: &Path, offset: usize) -> Result<()> {
    let mut data = fs::read(path)?;
    let byte = data.get_mut(offset).context("offset past the end")?;
    *byte ^= 0x5a;
    fs::write(path, data)?;
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent and bay's binaries: scripts/test.sh runs it"
)]
fn libtorrent_loads_and_checks_bay_torrents() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (i, case) in CASES.iter().enumerate() {
        let file = content::write_file(dir.path(), case.name, case.len, i as u64 + 1)?;
        let torrent = dir.path().join(format!("{}.torrent", case.name));
        let printed = bay_mktorrent(&file, &torrent, &piece_length_args(case))?;
        let meta = Metainfo::from_bytes(&fs::read(&torrent)?)?;
        ensure!(
            printed == meta.info_hash().to_hex(),
            "{}: printed hash {printed} is not the torrent's",
            case.name
        );
        let seen = lt::info(&torrent)?;
        assert_same_view(case.name, &seen, &meta)?;

        // libtorrent hashes the data itself against bay's piece layers.
        let report = lt::check(&torrent, dir.path())?;
        ensure!(
            report["is_seeding"] == true && report["have"] == meta.info().num_pieces(),
            "{}: libtorrent refused pieces of the real data: {report}",
            case.name
        );
    }
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent and bay's binaries: scripts/test.sh runs it"
)]
fn libtorrent_refuses_an_altered_piece_of_a_bay_torrent() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pl = 32 * KIB;
    let file = content::write_file(dir.path(), "blob", 10 * pl + 77, 42)?;
    let torrent = dir.path().join("blob.torrent");
    bay_mktorrent(&file, &torrent, &["--piece-length".into(), pl.to_string()])?;
    flip_byte(&file, 3 * pl + 100)?;
    let report = lt::check(&torrent, dir.path())?;
    ensure!(
        report["missing"] == serde_json::json!([3]) && report["have"] == 10,
        "libtorrent should refuse exactly piece 3: {report}"
    );
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent and bay's binaries: scripts/test.sh runs it"
)]
fn libtorrent_reads_trackers_web_seeds_and_private_flag() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = content::write_file(dir.path(), "layer.tar", 200 * KIB, 7)?;
    let torrent = dir.path().join("layer.torrent");
    let extra: Vec<String> = [
        "--announce",
        "http://127.0.0.1:6969/announce",
        "--announce",
        "http://127.0.0.2:6969/announce",
        "--web-seed",
        "http://127.0.0.1:8080/blobs/",
        "--private",
        "--name",
        "renamed.tar",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let printed = bay_mktorrent(&file, &torrent, &extra)?;
    let seen = lt::info(&torrent)?;
    ensure!(seen["info_hash_v2"] == printed.as_str(), "hash: {seen}");
    ensure!(seen["private"] == true, "private flag: {seen}");
    ensure!(seen["name"] == "renamed.tar", "name: {seen}");
    let trackers = lt::hex_list(&seen["trackers"], "trackers")?;
    ensure!(
        trackers
            == [
                "http://127.0.0.1:6969/announce",
                "http://127.0.0.2:6969/announce"
            ],
        "trackers in tier order: {trackers:?}"
    );
    // A directory-style URL (BEP 19: the client appends the name) is read
    // the same way by every client. A URL naming the file itself is not:
    // libtorrent 2.0 pads the tail of a v2 file whose length is not a
    // multiple of the piece length, then counts the torrent as multi-file
    // and appends a slash to each web seed.
    ensure!(
        seen["web_seeds"] == serde_json::json!(["http://127.0.0.1:8080/blobs/"]),
        "web seeds: {seen}"
    );
    Ok(())
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs python3-libtorrent and bay's binaries: scripts/test.sh runs it"
)]
fn bay_parses_and_verifies_libtorrent_torrents() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (i, case) in CASES.iter().enumerate() {
        let data = content::bytes(case.len, 100 + i as u64);
        let file = dir.path().join(case.name);
        fs::write(&file, &data)?;
        let torrent = dir.path().join(format!("{}.lt.torrent", case.name));
        let seen = lt::make(&file, &torrent, case.piece_length.unwrap_or(0))?;
        let meta = Metainfo::from_bytes(&fs::read(&torrent)?)
            .with_context(|| format!("{}: bay refused libtorrent's torrent", case.name))?;
        ensure!(!meta.is_hybrid(), "{}: libtorrent made a hybrid", case.name);
        assert_same_view(case.name, &seen, &meta)?;

        let info = meta.info();
        let pl = info.piece_length as usize;
        for piece in 0..info.num_pieces() {
            let start = piece as usize * pl;
            let size = info.piece_size(piece).context("piece size")? as usize;
            let real = data
                .get(start..start + size)
                .context("piece past the data")?;
            meta.verify_piece(piece, real)
                .with_context(|| format!("{}: piece {piece} of the real data", case.name))?;
            let mut altered = real.to_vec();
            let mid = altered.len() / 2;
            altered[mid] ^= 1;
            ensure!(
                meta.verify_piece(piece, &altered).is_err(),
                "{}: altered piece {piece} was accepted",
                case.name
            );
        }
    }
    Ok(())
}
