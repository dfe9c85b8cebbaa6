//! The handler interface: what the server calls for each request.

use std::future::Future;

use crate::body::RequestBody;
use crate::request::Request;
use crate::response::Response;

/// Answers requests on one worker thread.
///
/// One handler is made per worker by the factory given to
/// [`crate::serve`], so a handler needs neither `Send` nor `Sync`.
pub trait Handler: 'static {
    /// Answers one request. The body streams from the connection while
    /// the handler reads it.
    fn handle(&self, req: Request, body: RequestBody) -> impl Future<Output = Response>;

    /// The body limit for this request; `None` keeps the server default.
    fn body_limit(&self, _req: &Request) -> Option<u64> {
        None
    }
}

impl<F, Fut> Handler for F
where
    F: Fn(Request, RequestBody) -> Fut + 'static,
    Fut: Future<Output = Response>,
{
    fn handle(&self, req: Request, body: RequestBody) -> impl Future<Output = Response> {
        self(req, body)
    }
}
