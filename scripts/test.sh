#!/usr/bin/env bash
# Runs bay's whole test suite on a fresh Debian machine: installs what the
# tests drive (real registry, libtorrent, nginx, curl, wrk), checks format
# and lints, builds, runs every test, then a short fuzz pass per target.
#
# A plain `cargo test --workspace` runs only what needs neither root nor a
# program from outside the workspace; the rest is compiled with each
# crate's feature `external`, which --all-features turns on here.
#
#   sudo scripts/test.sh            # everything
#   BAY_FUZZ_SECONDS=0 scripts/test.sh   # skip the fuzz pass
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${BAY_FUZZ_SECONDS:-10}

scripts/install-deps.sh

# A from-scratch run gains nothing from incremental state, which would
# double the build's size on disk; a developer may set it back to 1.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
free_space() { df -h --output=avail,target . | tail -1; }
echo "== disk free before the build: $(free_space)"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

echo "== dependencies (cargo-deny)"
cargo deny check licenses bans sources
scripts/deny-advisories.sh

echo "== build and test"
# The end-to-end tests run the real binaries, so build them first.
# Same features as the test run, so both share one set of artifacts.
cargo build --workspace --bins --all-features --locked
cargo test --workspace --all-features --locked
echo "== disk free after the tests: $(free_space)"

if [ "$fuzz_seconds" != 0 ]; then
  echo "== fuzz smoke (${fuzz_seconds}s per target)"
  scripts/fuzz.sh "$fuzz_seconds"
fi
