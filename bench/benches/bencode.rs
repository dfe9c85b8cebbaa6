//! Decoding a large metainfo: the torrent of a 4 GiB file in 16 KiB pieces,
//! whose piece layer (262,144 hashes, 8 MiB) dominates the file. It is
//! built in memory from synthetic leaf hashes, so no 4 GiB of data is
//! hashed. Measured: the raw bencode decode, and the full metainfo parse,
//! which also checks the piece layer against the pieces root.
//!
//! A second torrent lists 10,000 small files, so that its decode cost is
//! in the number of values rather than in one long string.
//!
//! Run: `cargo bench -p bay-bench --bench bencode`.

use std::hint::black_box;
use std::time::Duration;

use bay_wire::bencode::{self, Owned};
use bay_wire::merkle::{self, Hash};
use bay_wire::metainfo::Metainfo;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};

const FILE_LENGTH: u64 = 4 << 30;
const PIECE_LENGTH: u64 = 16 << 10;

/// A valid v2 torrent of a virtual 4 GiB file.
fn large_torrent() -> Vec<u8> {
    let pieces = FILE_LENGTH / PIECE_LENGTH;
    // With 16 KiB pieces the piece layer is the leaf layer.
    let layer: Vec<Hash> = (0..pieces)
        .map(|i| Sha256::digest(i.to_le_bytes()).into())
        .collect();
    let root = merkle::root_from_layer(&layer, 0);
    let mut props = Owned::dict();
    props
        .insert(b"length", FILE_LENGTH)
        .insert(b"pieces root", root.as_slice());
    let mut leaf = Owned::dict();
    leaf.insert(b"", props);
    let mut tree = Owned::dict();
    tree.insert(b"blob", leaf);
    let mut info = Owned::dict();
    info.insert(b"file tree", tree)
        .insert(b"meta version", 2i64)
        .insert(b"name", "blob")
        .insert(b"piece length", PIECE_LENGTH);
    let mut layers = Owned::dict();
    layers.insert(&root, layer.concat());
    let mut torrent = Owned::dict();
    torrent
        .insert(b"announce", "http://127.0.0.1:6969/announce")
        .insert(b"info", info)
        .insert(b"piece layers", layers);
    torrent.to_bytes()
}

/// A valid v2 torrent of 10,000 one-block files in a few directories.
fn many_files_torrent() -> Vec<u8> {
    let mut tree = Owned::dict();
    let Owned::Dict(dirs) = &mut tree else {
        return Vec::new();
    };
    for d in 0..100u32 {
        let mut dir = Owned::dict();
        for f in 0..100u32 {
            let root: Hash = Sha256::digest((d * 100 + f).to_le_bytes()).into();
            let mut props = Owned::dict();
            props
                .insert(b"length", u64::from(1000 + f))
                .insert(b"pieces root", root.as_slice());
            let mut leaf = Owned::dict();
            leaf.insert(b"", props);
            dir.insert(format!("layer-{f:03}.tar").as_bytes(), leaf);
        }
        dirs.insert(format!("dir-{d:03}").into_bytes(), dir);
    }
    let mut info = Owned::dict();
    info.insert(b"file tree", tree)
        .insert(b"meta version", 2i64)
        .insert(b"name", "many")
        .insert(b"piece length", PIECE_LENGTH);
    let mut torrent = Owned::dict();
    torrent
        .insert(b"info", info)
        .insert(b"piece layers", Owned::dict());
    torrent.to_bytes()
}

fn bench_many_files(c: &mut Criterion) {
    let torrent = many_files_torrent();
    let mut group = c.benchmark_group("metainfo_10000_files");
    group.throughput(Throughput::Bytes(torrent.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bencode_decode", |b| {
        b.iter(|| bencode::decode(black_box(&torrent)).map(|n| n.raw.len()))
    });
    group.bench_function("metainfo_parse_and_validate", |b| {
        b.iter(|| Metainfo::from_bytes(black_box(&torrent)).map(|m| m.info().files.len()))
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let torrent = large_torrent();
    let mut group = c.benchmark_group("metainfo_4GiB_16KiB_pieces");
    group.throughput(Throughput::Bytes(torrent.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bencode_decode", |b| {
        b.iter(|| bencode::decode(black_box(&torrent)).map(|n| n.raw.len()))
    });
    group.bench_function("metainfo_parse_and_validate", |b| {
        b.iter(|| Metainfo::from_bytes(black_box(&torrent)).map(|m| m.info_hash()))
    });
    group.finish();
}

criterion_group!(benches, bench, bench_many_files);
criterion_main!(benches);
