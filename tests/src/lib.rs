//! bay-tests: harness for the integration and end-to-end tests, which run
//! bay against real programs (libtorrent, docker-registry, image clients).
//!
//! Helpers here start and stop those programs and poll with deadlines;
//! nothing here sleeps to synchronise.
//!
//! Layout:
//! - [`bay`]: bay's trackers and proxies, in this process or as binaries.
//! - [`bins`]: finds bay's own programs in the workspace's target dir.
//! - [`clients`], [`image`]: image clients (skopeo, podman, containerd,
//!   docker) and the test images they push and pull.
//! - [`libtorrent`]: the python libtorrent driver (`tests/py/lt_driver.py`).
//! - [`peers`]: live peers: libtorrent (`tests/py/lt_peer.py`) and
//!   `bay-peer` as children, and torrents of test data.
//! - [`deploy`]: bay's container image, containers and played pods.
//! - [`cluster_bench`]: the cluster comparison run (bin `bay-cluster-bench`).
//! - [`stranger`]: hostile clients and peers: raw HTTP, handshakes from
//!   chosen loopback addresses, and a bait listener.
//!
//! The set-up shared with the other crates' tests (processes, content,
//! certificates, the token server, the registry, namespaces, tmpfs) lives
//! in bay-testkit and is re-exported here under its old paths.
//!
//! The test command builds the binaries before the tests run:
//! `cargo build --workspace --bins && cargo test --workspace --all-features`
//! (`--all-features` turns on the feature `external`, without which the
//! tests that need those programs are ignored).

pub mod bay;
pub mod bins;
pub mod clients;
pub mod cluster_bench;
pub mod deploy;
pub mod image;
pub mod libtorrent;
pub mod peers;
pub mod stranger;

pub use bay_testkit::{content, error, netns, process, registry, tls, tmpfs, token};
