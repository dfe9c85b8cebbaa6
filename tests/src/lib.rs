//! bay-tests: harness for the integration and end-to-end tests, which run
//! bay against real programs (libtorrent, docker-registry, image clients).
//!
//! Helpers here start and stop those programs and poll with deadlines;
//! nothing here sleeps to synchronise.

pub mod clients;
pub mod error;
pub mod image;
pub mod netns;
pub mod process;
pub mod registry;
pub mod tls;
pub mod tmpfs;
pub mod token;
