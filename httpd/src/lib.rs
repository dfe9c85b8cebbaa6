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
//!
//! # Layout (server side)
//!
//! ```text
//!  runtime   workers, listeners, shutdown ──▶ conn (one task per connection)
//!  conn      head ─▶ Handler::handle(Request, RequestBody) ─▶ Response
//!  head      sans-IO request-head parser and limits (over httparse)
//!  range     sans-IO Range evaluation
//!  body      request bodies streamed to the handler
//!  response  Response and its bodies: bytes, stream, file
//!  zerocopy  file bodies by sendfile(2)
//!  server_tls an HTTPS listener's certificate and key (rustls)
//!  sys       the socket system calls monoio does not wrap (rustix)
//! ```
//!
//! # Serving
//!
//! ```no_run
//! use std::rc::Rc;
//! use bay_httpd::{serve, FileBody, Request, RequestBody, Response, ServerConfig, Shutdown};
//!
//! let shutdown = Shutdown::on_signals()?; // SIGINT, SIGTERM
//! // One handler per worker thread: it need not be Send.
//! let factory = || {
//!     let file = Rc::new(std::fs::File::open("/srv/blob").expect("blob"));
//!     move |_req: Request, _body: RequestBody| {
//!         let file = Rc::clone(&file);
//!         async move {
//!             match FileBody::whole(file) {
//!                 // Range and HEAD are handled by the server; bytes go by sendfile(2).
//!                 Ok(body) => Response::new(200).body(body),
//!                 Err(_) => Response::text(500, "unreadable\n"),
//!             }
//!         }
//!     }
//! };
//! let addr: std::net::SocketAddr = "127.0.0.1:8080".parse()?;
//! let server = serve(addr, factory, ServerConfig::default(), shutdown)?;
//! println!("{} on {}", server.local_addr(), server.driver());
//! server.join(); // returns after a signal, once requests in flight finish
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decisions: no `Date` header (clients of bay do not need it and it would
//! cost a clock read per response); `If-Range` is never confirmed (there
//! are no validators here), so it always yields the full body; a request
//! body the handler leaves unread is discarded up to 256 KiB, beyond that
//! the connection closes.

mod body;
pub mod chunked;
pub mod client;
mod config;
mod conn;
mod conn_io;
mod handler;
pub mod head;
mod pace;
pub mod range;
mod request;
mod response;
mod runtime;
pub mod server_tls;
mod shutdown;
pub mod sys;
mod tls_stream;
mod zerocopy;

pub use body::{BodyError, RequestBody};
pub use config::{Driver, RunningDriver, ServerConfig};
pub use handler::Handler;
pub use head::{parse_head, HeadError, HeadLimits, Parsed};
pub use pace::BodyPace;
pub use request::{BodyFraming, Header, Method, Request, Version};
pub use response::{
    reason, Aborted, AccessNote, Body, BodySender, BodyStream, FileBody, ReceiverGone, Response,
    StreamChunk, STREAM_QUEUE,
};
pub use runtime::{block_on, build_runtime, resolve_driver, serve, Listen, Runtime, ServerHandle};
pub use shutdown::Shutdown;
pub use zerocopy::yield_now;
