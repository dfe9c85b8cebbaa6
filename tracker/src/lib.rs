//! bay-tracker: the BitTorrent tracker and origin seeder.
//!
//! It owns the `bay-tracker` program: today its `mktorrent` command, which
//! writes a BitTorrent v2 torrent for a file; later the tracker (announce,
//! scrape), the origin seeder that fetches each blob from the registry once,
//! and preheat.
//!
//! It must not reach into bay-proxy; what both need lives in bay-core.
pub mod peers;
