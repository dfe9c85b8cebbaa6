//! Merkle hashing throughput next to one plain SHA-256 pass over the same
//! 256 MiB buffer. The goal is merkle at least 0.9x of plain sha2: the
//! leaves are nearly all of the work, so the tree should cost little more
//! than hashing the bytes once.
//!
//! Run: `cargo bench -p bay-bench --bench merkle`. After criterion's
//! report it prints the best-of-five throughput of each and their ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bay_wire::merkle;
use criterion::{criterion_group, Criterion, Throughput};
use sha2::{Digest, Sha256};

const SIZE: usize = 256 << 20;

/// Deterministic bytes that do not compress or repeat.
fn buffer() -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(SIZE);
    while out.len() < SIZE {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out
}

fn plain_sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn merkle_root(data: &[u8]) -> [u8; 32] {
    merkle::root_from_leaves(&merkle::leaf_hashes(data))
}

fn bench(c: &mut Criterion) {
    let data = buffer();
    let mut group = c.benchmark_group("256MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("sha256_plain", |b| {
        b.iter(|| plain_sha256(black_box(&data)))
    });
    group.bench_function("merkle_root", |b| b.iter(|| merkle_root(black_box(&data))));
    group.bench_function("merkle_file_hashes_1MiB_pieces", |b| {
        b.iter(|| merkle::file_hashes(black_box(&data), 1 << 20))
    });
    group.finish();
}

fn best_of(runs: usize, f: impl Fn() -> [u8; 32]) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Prints the two throughputs and merkle's share of plain sha2's.
fn ratio() {
    let data = buffer();
    let sha = best_of(5, || plain_sha256(&data));
    let tree = best_of(5, || merkle_root(&data));
    let mib_s = |d: Duration| SIZE as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!(
        "256 MiB best of 5: sha256 plain {:.0} MiB/s, merkle root {:.0} MiB/s, ratio merkle/sha256 = {:.3}",
        mib_s(sha),
        mib_s(tree),
        sha.as_secs_f64() / tree.as_secs_f64()
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // Only when really benchmarking, not under `cargo test --benches`.
    if std::env::args().any(|a| a == "--bench") {
        ratio();
    }
}
