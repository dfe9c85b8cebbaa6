//! The proxy's status: `GET /` (an HTML page that refreshes itself) and
//! `GET /status` (the same as JSON) on its listener. Registry routes all
//! start with `/v2/`, so `/` is free; image clients never ask for it.
//! Cache use against its budget, downloads running with their progress and
//! peers, bytes sent to clients from each source since start, peer
//! connections, and how each tracker answered lately.

use std::time::Instant;

use bay_core::page::{self, Cell};
use serde::Serialize;

use crate::blob::{Blobs, Source};

/// Downloads shown (the table holds at most 1,024).
pub const SHOWN: usize = 50;

#[derive(Debug, Serialize)]
pub struct ProxyStatus {
    pub version: &'static str,
    pub uptime_secs: u64,
    pub mode: &'static str,
    /// How the proxy was started, for `bay-proxy doctor`.
    #[serde(flatten)]
    pub facts: Facts,
    pub cache_bytes: u64,
    pub cache_budget: u64,
    pub blobs_cached: usize,
    pub downloads: Vec<DownloadRow>,
    pub downloads_hidden: usize,
    /// Bytes sent to clients since start, by source.
    pub bytes_from_cache: u64,
    pub bytes_from_swarm: u64,
    pub bytes_from_registry: u64,
    pub peer_connections: u64,
    pub peer_downloaded_bytes: u64,
    pub peer_uploaded_bytes: u64,
    pub trackers: Vec<TrackerRow>,
}

/// What the proxy runs with, fixed at start.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Facts {
    /// `io_uring` or `epoll`.
    pub driver: String,
    /// The fixed upstream (`--upstream`), if any.
    pub upstream: Option<String>,
    /// The cache root.
    pub root: String,
    /// The peer address other hosts are told.
    pub peer_addr: String,
}

#[derive(Debug, Serialize)]
pub struct DownloadRow {
    pub digest: String,
    pub size: u64,
    pub progress: f64,
    pub peers: usize,
    pub from_peers_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct TrackerRow {
    pub url: String,
    pub healthy: bool,
    pub last_ok_secs_ago: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_secs_ago: Option<u64>,
}

pub fn collect(blobs: &Blobs, started: Instant, facts: &Facts) -> ProxyStatus {
    let stats = blobs.store.stats();
    let mut downloads: Vec<DownloadRow> = blobs
        .downloads
        .list()
        .into_iter()
        .map(|(digest, d)| {
            let progress = d.handle.progress();
            let pieces = d.length.div_ceil(progress.piece_len().max(1)).max(1);
            let status = blobs.engine.status(d.handle.info_hash());
            DownloadRow {
                digest: digest.to_string(),
                size: d.length,
                progress: f64::from(progress.verified_pieces()) / pieces as f64,
                peers: status.as_ref().map_or(0, |s| s.stats.peers),
                from_peers_bytes: status.map_or(0, |s| s.stats.downloaded),
            }
        })
        .collect();
    downloads.sort_by(|a, b| a.digest.cmp(&b.digest));
    let hidden = downloads.len().saturating_sub(SHOWN);
    downloads.truncate(SHOWN);
    let by = |s: Source| blobs.metrics.bytes_by_source[s as usize].get();
    let counters = blobs.engine.counters();
    let now = Instant::now();
    ProxyStatus {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: started.elapsed().as_secs(),
        facts: facts.clone(),
        mode: if blobs.engine.naming().keys().is_some() {
            "keyed"
        } else {
            "open"
        },
        cache_bytes: stats.used_bytes,
        cache_budget: stats.budget_bytes,
        blobs_cached: stats.complete,
        downloads,
        downloads_hidden: hidden,
        bytes_from_cache: by(Source::Cache),
        bytes_from_swarm: by(Source::Swarm),
        bytes_from_registry: by(Source::Registry),
        peer_connections: counters.connections.get(),
        peer_downloaded_bytes: counters.downloaded.get(),
        peer_uploaded_bytes: counters.uploaded.get(),
        trackers: blobs
            .trackers
            .health()
            .into_iter()
            .map(|(url, h)| {
                let ok = h.ok_at.map(|t| now.saturating_duration_since(t).as_secs());
                let err = h
                    .failed
                    .as_ref()
                    .map(|(t, _)| now.saturating_duration_since(*t).as_secs());
                TrackerRow {
                    url,
                    // Healthy: answered since its last failure.
                    healthy: h.ok_at.is_some()
                        && h.failed.as_ref().is_none_or(|(t, _)| h.ok_at > Some(*t)),
                    last_ok_secs_ago: ok,
                    last_error: h.failed.map(|(_, why)| why),
                    last_error_secs_ago: err,
                }
            })
            .collect(),
    }
}

pub fn json(status: &ProxyStatus) -> Vec<u8> {
    serde_json::to_vec_pretty(status).unwrap_or_default()
}

pub fn html(status: &ProxyStatus) -> String {
    let delivered = status.bytes_from_cache + status.bytes_from_swarm + status.bytes_from_registry;
    let share = |n: u64| n as f64 / delivered.max(1) as f64;
    let tiles = page::tiles(&[
        ("delivered", "sent to clients", page::bytes(delivered)),
        (
            "from-swarm",
            "from the swarm",
            page::bytes(status.bytes_from_swarm),
        ),
        (
            "from-cache",
            "from the cache",
            page::bytes(status.bytes_from_cache),
        ),
        (
            "from-registry",
            "from the registry",
            page::bytes(status.bytes_from_registry),
        ),
        (
            "peer-connections",
            "peer connections",
            status.peer_connections.to_string(),
        ),
    ]);
    let sources = page::table(
        "sources",
        &["source", "bytes", "share"],
        &[
            ("cache", status.bytes_from_cache),
            ("swarm", status.bytes_from_swarm),
            ("registry", status.bytes_from_registry),
        ]
        .iter()
        .map(|(name, n)| {
            vec![
                Cell::Text((*name).into()),
                Cell::Num(page::bytes(*n)),
                Cell::Html(page::bar(share(*n))),
            ]
        })
        .collect::<Vec<_>>(),
        0,
    );
    let cache = format!(
        "<p><b id=\"cache-used\">{}</b> of <b>{}</b> in <b id=\"blobs-cached\">{}</b> blobs {}</p>",
        page::bytes(status.cache_bytes),
        page::bytes(status.cache_budget),
        status.blobs_cached,
        page::bar(status.cache_bytes as f64 / status.cache_budget.max(1) as f64)
    );
    let downloads = page::table(
        "downloads",
        &["blob", "size", "progress", "peers", "from peers"],
        &status
            .downloads
            .iter()
            .map(|d| {
                vec![
                    Cell::Html(format!(
                        "<code title=\"{0}\">{1}…</code>",
                        page::escape(&d.digest),
                        page::escape(&d.digest.chars().take(19).collect::<String>())
                    )),
                    Cell::Num(page::bytes(d.size)),
                    Cell::Html(page::bar(d.progress)),
                    Cell::Num(d.peers.to_string()),
                    Cell::Num(page::bytes(d.from_peers_bytes)),
                ]
            })
            .collect::<Vec<_>>(),
        status.downloads_hidden,
    );
    let trackers = page::table(
        "trackers",
        &["tracker", "state", "last answer", "last failure"],
        &status
            .trackers
            .iter()
            .map(|t| {
                let state = if t.healthy {
                    "<span class=\"ok\">answering</span>"
                } else if t.last_ok_secs_ago.is_none() && t.last_error.is_none() {
                    "not asked yet"
                } else {
                    "<span class=\"bad\">failing</span>"
                };
                let ago = |s: Option<u64>| {
                    s.map(|s| format!("{} ago", page::duration(s)))
                        .unwrap_or_default()
                };
                let failure = match (&t.last_error, t.last_error_secs_ago) {
                    (Some(why), s) => format!("{} — {}", ago(s), why),
                    _ => String::new(),
                };
                vec![
                    Cell::Text(t.url.clone()),
                    Cell::Html(state.into()),
                    Cell::Num(ago(t.last_ok_secs_ago)),
                    Cell::Num(failure),
                ]
            })
            .collect::<Vec<_>>(),
        0,
    );
    let subtitle = format!(
        "bay-proxy {} · {} mode · up {} · refreshes every 5 s",
        status.version,
        status.mode,
        page::duration(status.uptime_secs)
    );
    page::document(
        "bay-proxy",
        &subtitle,
        &[
            ("", tiles),
            ("Where blob bytes came from", sources),
            ("Cache", cache),
            ("Downloads", downloads),
            ("Trackers", trackers),
        ],
        5,
    )
}
