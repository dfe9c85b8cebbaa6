//! bay-wire: every byte format bay speaks, as pure functions and state
//! machines.
//!
//! It owns bencode, BitTorrent v2 metainfo and merkle trees (BEP 52), the
//! peer wire protocol (BEP 3, 6, 10, 52), the tracker protocol (HTTP
//! announce and scrape), the origin API of bay's own programs, and the OCI types bay reads: digests,
//! repository names, references, manifests and WWW-Authenticate challenges.
//!
//! It must not do I/O: no sockets, no files, no clocks, no async. Callers
//! hand it bytes (a file is memory-mapped by the caller) and get values or a
//! typed error back. Every decoder is strict, bounded, fuzzed and never
//! panics on input.
//!
//! Layout:
//! - [`bencode`]: decoder keeping each value's byte span, canonical encoder.
//! - [`merkle`]: SHA-256 merkle trees over 16 KiB blocks.
//! - [`metainfo`]: v2 torrents: build, parse, validate, info hash, piece checks.
//! - [`peer`]: handshake, messages, incremental decoder, encoder.
//! - [`tracker`]: announce and scrape over HTTP.
//! - [`origin`]: the origin API between bay-proxy and bay-tracker.
//! - [`fleet`]: fleet keys, keyed swarm names, proofs and signatures.
//! - [`oci`]: digests, names, references, manifests, auth challenges.
//! - [`hex`] and [`percent`]: the small text encodings the others share.

pub mod bencode;
pub mod fleet;
pub mod hex;
pub mod merkle;
pub mod metainfo;
pub mod oci;
pub mod origin;
pub mod peer;
pub mod percent;
pub mod tracker;
