//! The tracker's status: `GET /` (an HTML page that refreshes itself)
//! and `GET /status` (the same as JSON, `?offset=&limit=` to page through
//! swarms). Large fleets do not make either large: at most [`MAX_LIMIT`]
//! swarms per answer (the page shows [`PAGE_SWARMS`]), each with at most
//! [`HOSTS`] downloading hosts, and both say how many are not shown.
//!
//! In keyed mode they are served to loopback clients (an operator on the
//! host, or through a port forward) and fleet-signed requests only.

use std::collections::HashMap;

use bay_core::page::{self, Cell};
use bay_wire::tracker::InfoHash;
use serde::Serialize;

use crate::origin::Origin;
use crate::service::Shared;

/// Swarms on the HTML page.
pub const PAGE_SWARMS: usize = 50;
/// Most swarms in one JSON answer.
pub const MAX_LIMIT: usize = 1000;
/// Downloading hosts shown per swarm.
pub const HOSTS: usize = 20;

/// Everything the status shows.
#[derive(Debug, Serialize)]
pub struct TrackerStatus {
    pub version: &'static str,
    pub uptime_secs: u64,
    /// Keyed (fleet key) or open.
    pub mode: &'static str,
    pub swarms_total: usize,
    pub peers_total: usize,
    pub offset: usize,
    pub swarms: Vec<SwarmRow>,
    /// Swarms past this page.
    pub swarms_hidden: usize,
    /// Blob bytes the origin fetched from registries.
    pub registry_bytes: u64,
    /// Blob bytes hosts finished downloading through the swarms.
    pub delivered_bytes: u64,
    /// 1 − registry / delivered: what the fleet did not fetch itself.
    pub saving: f64,
    pub origin: Option<OriginRow>,
    pub announces: u64,
    pub held_announces: u64,
    pub refused: u64,
}

/// One swarm.
#[derive(Debug, Serialize)]
pub struct SwarmRow {
    pub swarm: String,
    pub digest: Option<String>,
    pub repository: Option<String>,
    pub size: Option<u64>,
    pub seeders: u32,
    pub leechers: u32,
    pub completed: u32,
    /// The origin's upload over the blob's size, while it holds the blob.
    pub origin_copies: Option<f64>,
    pub downloading: Vec<HostRow>,
}

/// A host downloading.
#[derive(Debug, Serialize)]
pub struct HostRow {
    pub address: String,
    /// Fraction received, where the blob's size is known.
    pub progress: Option<f64>,
}

/// The origin seeder.
#[derive(Debug, Serialize)]
pub struct OriginRow {
    pub peer_address: String,
    pub fetches: usize,
    pub blobs_held: usize,
    pub cache_bytes: u64,
    pub cache_budget: u64,
    pub uploaded_bytes: u64,
    pub peer_connections: u64,
}

/// Builds the status: swarms `offset..offset + limit`.
pub fn collect(
    shared: &Shared,
    origin: Option<&Origin>,
    offset: usize,
    limit: usize,
) -> TrackerStatus {
    let limit = limit.min(MAX_LIMIT);
    let (snapshot, total) = shared.peers.snapshot(offset, limit, HOSTS);
    let uploads: HashMap<[u8; 20], (u64, u64)> = origin
        .map(|o| {
            o.engine
                .torrents()
                .into_iter()
                .map(|t| (t.info_hash, (t.stats.uploaded, t.total_len)))
                .collect()
        })
        .unwrap_or_default();
    let swarms: Vec<SwarmRow> = snapshot
        .into_iter()
        .map(|s| {
            let info = shared.catalog.get(&s.swarm);
            let size = info.as_ref().map(|i| i.length);
            let origin_copies = uploads
                .get(&s.swarm.0)
                .filter(|(_, len)| *len > 0)
                .map(|(up, len)| *up as f64 / *len as f64);
            SwarmRow {
                swarm: bay_wire::hex::encode(&s.swarm.0),
                digest: info.as_ref().map(|i| i.digest.to_string()),
                repository: info.as_ref().and_then(|i| i.repo.clone()),
                size,
                seeders: s.seeders,
                leechers: s.leechers,
                completed: s.completed,
                origin_copies,
                downloading: s
                    .downloading
                    .iter()
                    .map(|(addr, left)| HostRow {
                        address: addr.to_string(),
                        progress: size
                            .filter(|n| *n > 0)
                            .map(|n| 1.0 - *left as f64 / n as f64),
                    })
                    .collect(),
            }
        })
        .collect();
    let m = &shared.metrics;
    let (registry_bytes, delivered_bytes) =
        (m.origin_fetched_bytes.get(), m.fleet_delivered_bytes.get());
    let (_, peers_total) = shared.peers.sizes();
    TrackerStatus {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: shared.started.elapsed().as_secs(),
        mode: if shared.guard.is_some() {
            "keyed"
        } else {
            "open"
        },
        swarms_total: total,
        peers_total,
        offset,
        swarms_hidden: total.saturating_sub(offset + swarms.len()),
        swarms,
        registry_bytes,
        delivered_bytes,
        saving: saving(registry_bytes, delivered_bytes),
        origin: origin.map(|o| {
            let stats = o.store.stats();
            let counters = o.engine.counters();
            OriginRow {
                peer_address: o.peer_addr.to_string(),
                fetches: o.fetch_count(),
                blobs_held: stats.complete,
                cache_bytes: stats.used_bytes,
                cache_budget: stats.budget_bytes,
                uploaded_bytes: counters.uploaded.get(),
                peer_connections: counters.connections.get(),
            }
        }),
        announces: m.announces.get(),
        held_announces: m.held_announces.get(),
        refused: m.refused.get(),
    }
}

fn saving(registry: u64, delivered: u64) -> f64 {
    if delivered == 0 {
        0.0
    } else {
        (1.0 - registry as f64 / delivered as f64).max(0.0)
    }
}

/// The status as JSON.
pub fn json(status: &TrackerStatus) -> Vec<u8> {
    serde_json::to_vec_pretty(status).unwrap_or_default()
}

/// The status as the HTML page.
pub fn html(status: &TrackerStatus) -> String {
    let tiles = page::tiles(&[
        ("saving", "registry saving", page::percent(status.saving)),
        (
            "delivered",
            "delivered by the fleet",
            page::bytes(status.delivered_bytes),
        ),
        (
            "registry",
            "fetched from registries",
            page::bytes(status.registry_bytes),
        ),
        ("swarms", "swarms", status.swarms_total.to_string()),
        ("peers", "peer entries", status.peers_total.to_string()),
    ]);
    let saving_bar = format!(
        "<p>The fleet received <b id=\"delivered-text\">{}</b> through its swarms and fetched <b>{}</b> from registries: {}</p>",
        page::bytes(status.delivered_bytes),
        page::bytes(status.registry_bytes),
        page::bar(status.saving)
    );
    let rows: Vec<Vec<Cell>> = status
        .swarms
        .iter()
        .map(|s| {
            let name = s
                .digest
                .as_deref()
                .map_or_else(|| s.swarm.clone(), |d| d.chars().take(19).collect());
            let hosts = s
                .downloading
                .iter()
                .map(|h| match h.progress {
                    Some(p) => format!("{} {}", page::escape(&h.address), page::bar(p)),
                    None => page::escape(&h.address),
                })
                .collect::<Vec<_>>()
                .join("<br>");
            vec![
                Cell::Html(format!(
                    "<code title=\"{}\">{}…</code>",
                    page::escape(s.digest.as_deref().unwrap_or(&s.swarm)),
                    page::escape(&name)
                )),
                Cell::Text(s.repository.clone().unwrap_or_default()),
                Cell::Num(s.size.map(page::bytes).unwrap_or_default()),
                Cell::Num(s.seeders.to_string()),
                Cell::Num(s.leechers.to_string()),
                Cell::Num(s.completed.to_string()),
                Cell::Num(
                    s.origin_copies
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or_default(),
                ),
                Cell::Html(hosts),
            ]
        })
        .collect();
    let swarms = page::table(
        "swarms",
        &[
            "blob",
            "repository",
            "size",
            "seeders",
            "leechers",
            "completed",
            "origin copies",
            "downloading",
        ],
        &rows,
        status.swarms_hidden,
    );
    let origin = match &status.origin {
        None => "<p>No origin seeder on this tracker (no allowed registry).</p>".to_string(),
        Some(o) => page::table(
            "origin",
            &[
                "peer address",
                "fetches",
                "blobs held",
                "cache",
                "uploaded",
                "peer connections",
            ],
            &[vec![
                Cell::Text(o.peer_address.clone()),
                Cell::Num(o.fetches.to_string()),
                Cell::Num(o.blobs_held.to_string()),
                Cell::Html(format!(
                    "{} of {} {}",
                    page::bytes(o.cache_bytes),
                    page::bytes(o.cache_budget),
                    page::bar(o.cache_bytes as f64 / o.cache_budget.max(1) as f64)
                )),
                Cell::Num(page::bytes(o.uploaded_bytes)),
                Cell::Num(o.peer_connections.to_string()),
            ]],
            0,
        ),
    };
    let requests = page::table(
        "requests",
        &[
            "announces",
            "held announces",
            "refused (no fleet signature)",
        ],
        &[vec![
            Cell::Num(status.announces.to_string()),
            Cell::Num(status.held_announces.to_string()),
            Cell::Num(status.refused.to_string()),
        ]],
        0,
    );
    let subtitle = format!(
        "bay-tracker {} · {} mode · up {} · refreshes every 5 s",
        status.version,
        status.mode,
        page::duration(status.uptime_secs)
    );
    page::document(
        "bay-tracker",
        &subtitle,
        &[
            ("", tiles),
            ("Saving", saving_bar),
            ("Swarms, busiest first", swarms),
            ("Origin seeder", origin),
            ("Requests", requests),
        ],
        5,
    )
}

/// `offset` and `limit` from a `/status` query (defaults 0 and 100).
pub fn paging(query: &str) -> (usize, usize) {
    let mut offset = 0;
    let mut limit = 100;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("offset", v)) => offset = v.parse().unwrap_or(0),
            Some(("limit", v)) => limit = v.parse().unwrap_or(100),
            _ => {}
        }
    }
    (offset, limit.min(MAX_LIMIT))
}

/// Swarms of a status, by name (for tests).
pub fn swarm_names(status: &TrackerStatus) -> Vec<InfoHash> {
    status
        .swarms
        .iter()
        .filter_map(|s| bay_wire::hex::decode_array(&s.swarm).ok().map(InfoHash))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{PeerStore, PeerStoreConfig, Source};
    use bay_wire::tracker::{AnnounceRequest, Event, PeerId};
    use std::time::Instant;

    fn shared(swarms: u32) -> Shared {
        let peers = PeerStore::new(PeerStoreConfig {
            open: true,
            ..PeerStoreConfig::default()
        });
        let source = Source {
            ip: "10.0.0.1".parse().unwrap(),
            trusted: false,
        };
        let now = Instant::now();
        for i in 0..swarms {
            let mut hash = [0u8; 20];
            hash[..4].copy_from_slice(&i.to_be_bytes());
            let req = AnnounceRequest {
                info_hash: InfoHash(hash),
                peer_id: PeerId([1; 20]),
                port: 7000,
                uploaded: 0,
                downloaded: 0,
                left: u64::from(i % 3),
                event: Event::Started,
                compact: Some(true),
                numwant: Some(0),
                key: None,
                ip: None,
                no_peer_id: false,
                tracker_id: None,
            };
            peers.announce(&req, source, now).unwrap();
        }
        Shared {
            peers,
            trusted_sources: Vec::new(),
            metrics: Default::default(),
            guard: None,
            catalog: Default::default(),
            started: now,
        }
    }

    #[test]
    fn ten_thousand_swarms_make_a_bounded_page_and_json() {
        let shared = shared(10_000);
        let status = collect(&shared, None, 0, PAGE_SWARMS);
        assert_eq!(status.swarms_total, 10_000);
        assert_eq!(status.swarms.len(), PAGE_SWARMS);
        assert_eq!(status.swarms_hidden, 10_000 - PAGE_SWARMS);
        let page = html(&status);
        assert!(page.len() < 200_000, "{} bytes", page.len());
        assert!(page.contains(&format!("{} more not shown", 10_000 - PAGE_SWARMS)));
        let (offset, limit) = paging("offset=9990&limit=5000");
        let tail = collect(&shared, None, offset, limit);
        assert_eq!(tail.swarms.len(), 10);
        assert_eq!(tail.swarms_hidden, 0);
        assert!(json(&tail).len() < 1_000_000);
        // Busiest first: leechers (left > 0) before seeders.
        assert!(status.swarms.iter().all(|s| s.leechers == 1));
    }
}
