//! Where the bytes of a blob read come from, as the client (the
//! `X-Bay-Source` header), the access log and the metrics say it.

use bay_core::metrics::Counter;
use bay_httpd::AccessNote;

/// The header that names a blob answer's source.
pub const SOURCE_HEADER: &str = "x-bay-source";

/// A blob read's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The proxy's own cache.
    Cache,
    /// Verified pieces from the swarm.
    Swarm,
    /// Straight from the registry.
    Registry,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Cache, Source::Swarm, Source::Registry];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Swarm => "swarm",
            Source::Registry => "registry",
        }
    }

    /// The access-log key counting this source's bytes.
    fn bytes_key(self) -> &'static str {
        match self {
            Source::Cache => "cache_bytes",
            Source::Swarm => "swarm_bytes",
            Source::Registry => "registry_bytes",
        }
    }
}

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct BlobMetrics {
    pub cache_hits: Counter,
    pub swarm_reads: Counter,
    pub registry_reads: Counter,
    pub bytes_to_clients: Counter,
    pub bytes_from_registry: Counter,
    /// Blobs whose origin and swarm were set up on seeing a manifest.
    pub warmed: Counter,
    /// Bytes to clients by source, in [`Source::ALL`] order.
    pub bytes_by_source: [Counter; 3],
}

impl BlobMetrics {
    /// `bytes` went to a client from `source`; `note` is the request's
    /// access-log line.
    pub fn delivered(&self, source: Source, bytes: u64, note: &AccessNote) {
        self.bytes_to_clients.add(bytes);
        if source == Source::Registry {
            self.bytes_from_registry.add(bytes);
        }
        let i = Source::ALL.iter().position(|s| *s == source).unwrap_or(0);
        if let Some(c) = self.bytes_by_source.get(i) {
            c.add(bytes);
        }
        note.add(source.bytes_key(), bytes);
    }
}
