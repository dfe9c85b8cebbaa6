//! bay-httpd: HTTP/1.1 for bay, server and client, on monoio over httparse.
//!
//! It owns the runtime set-up every bay program uses (thread-per-core
//! monoio workers with io_uring or epoll, SO_REUSEPORT listeners, signal
//! driven shutdown), the HTTP/1.1 server (keep-alive, pipelining, chunked
//! bodies, Range, limits and timeouts), the HTTP/1.1 client (pooled
//! keep-alive, rustls, redirects), and zero-copy file bodies by
//! sendfile(2)/splice(2).
//!
//! It must not know about BitTorrent, registries or blobs: handlers and
//! callers bring the meaning; this crate only moves bytes, correctly and
//! within limits.

pub mod chunked;
pub mod client;
