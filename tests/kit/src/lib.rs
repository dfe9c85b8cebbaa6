//! bay-testkit: the set-up every bay test shares, written once.
//!
//! It owns the runtimes a test future runs on, the real programs tests
//! start (registry, nginx, the token server) and stop, deterministic test
//! data, test certificates, and the polling that replaces sleeping.
//!
//! What it must not do: depend on any bay crate (they take the kit as a
//! dev-dependency, so that would be a cycle); sleep to synchronise (poll
//! against a deadline instead); unwrap anything a file or a program
//! controls (every such failure is a [`error::HarnessError`] that says
//! which program and what it printed); talk to anything off loopback.
//!
//! Layout:
//! - [`drivers`]: one test future on monoio's epoll and io_uring drivers.
//! - [`error`]: the kit's error type, with the tail of a program's log.
//! - [`process`]: daemons stopped on drop, programs run under a deadline,
//!   free ports, polling with a deadline.
//! - [`content`]: deterministic pseudo-random test data and its digests.
//! - [`tls`]: the one certificate maker: a test CA and server certificates.
//! - [`token`]: the bearer-token server for registry token auth.
//! - [`registry`]: the real registry (CNCF distribution) and pushes to it.
//! - [`nginx`]: nginx on loopback with a test's own `server` blocks.
//! - [`netns`]: network namespaces joined by a shaped bridge.
//! - [`tmpfs`]: size-limited tmpfs mounts, for disk-full cases.

pub mod content;
pub mod drivers;
pub mod error;
pub mod netns;
pub mod nginx;
pub mod process;
pub mod registry;
pub mod tls;
pub mod tmpfs;
pub mod token;
