//! Idle keep-alive connections, per origin.
//!
//! A connection enters the pool only when its last response was read to the
//! end, the server allowed keep-alive, and no stray bytes are buffered: then
//! the next request on it starts on a clean stream. The pool is per worker
//! thread (monoio is thread per core), so it needs no lock. Limits: at most
//! `max_idle_per_origin` idle connections per origin (the oldest are closed
//! first) and none older than `idle_timeout` (servers close idle connections
//! after a while; reusing one that the server is closing wastes a request).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::conn::Conn;
use super::url::Origin;

/// The idle connections of one client.
#[derive(Debug)]
pub(crate) struct Pool {
    idle: HashMap<Origin, Vec<Conn>>,
    max_idle_per_origin: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(max_idle_per_origin: usize, idle_timeout: Duration) -> Pool {
        Pool {
            idle: HashMap::new(),
            max_idle_per_origin,
            idle_timeout,
        }
    }

    /// The most recently used live idle connection to `origin`, if any.
    pub(crate) fn take(&mut self, origin: &Origin, now: Instant) -> Option<Conn> {
        let conns = self.idle.get_mut(origin)?;
        let timeout = self.idle_timeout;
        conns.retain(|c| now.saturating_duration_since(c.idle_since) < timeout);
        let conn = conns.pop();
        if conns.is_empty() {
            self.idle.remove(origin);
        }
        conn.map(|mut c| {
            c.reused = true;
            c
        })
    }

    /// Keeps `conn` for reuse, if it is clean and there is room.
    pub(crate) fn put(&mut self, mut conn: Conn, now: Instant) {
        if !conn.buf.is_empty() || self.max_idle_per_origin == 0 {
            return;
        }
        // Expired connections of other origins would otherwise linger until
        // their origin is asked for again.
        let timeout = self.idle_timeout;
        self.idle.retain(|_, conns| {
            conns.retain(|c| now.saturating_duration_since(c.idle_since) < timeout);
            !conns.is_empty()
        });
        conn.idle_since = now;
        let conns = self.idle.entry(conn.origin.clone()).or_default();
        conns.push(conn);
        if conns.len() > self.max_idle_per_origin {
            conns.remove(0);
        }
    }

    /// Idle connections held for `origin` (expired ones included until the
    /// next `take`).
    pub(crate) fn idle_count(&self, origin: &Origin) -> usize {
        self.idle.get(origin).map_or(0, Vec::len)
    }
}
