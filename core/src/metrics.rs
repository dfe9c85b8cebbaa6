//! Counters and gauges rendered as Prometheus text for `/metrics`.
//!
//! Deliberately tiny: a fixed set of named atomics per program, a label
//! only where a family splits one count (bytes by source), no allocation
//! on the hot path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Writes Prometheus text exposition format.
#[derive(Debug, Default)]
pub struct Exposition(String);

impl Exposition {
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.metric(name, help, "counter", value)
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.metric(name, help, "gauge", value)
    }

    /// A counter family with one label: `name{label="value"} n` per entry.
    pub fn counters(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: &[(&str, u64)],
    ) -> &mut Self {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} counter");
        for (v, n) in values {
            let _ = writeln!(self.0, "{name}{{{label}=\"{v}\"}} {n}");
        }
        self
    }

    fn metric(&mut self, name: &str, help: &str, kind: &str, value: u64) -> &mut Self {
        // Writing to a String cannot fail.
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
        self
    }

    pub fn finish(self) -> String {
        self.0
    }
}

/// The content type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let c = Counter::default();
        c.add(3);
        c.inc();
        let mut e = Exposition::default();
        e.counter("bay_bytes_total", "Bytes.", c.get())
            .gauge("bay_peers", "Peers.", 2);
        assert_eq!(
            e.finish(),
            "# HELP bay_bytes_total Bytes.\n# TYPE bay_bytes_total counter\nbay_bytes_total 4\n\
             # HELP bay_peers Peers.\n# TYPE bay_peers gauge\nbay_peers 2\n"
        );
    }
}
