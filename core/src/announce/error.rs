//! Why an announce to one tracker failed.
//!
//! Every variant counts as a failure of that tracker: the announcer moves on
//! to the next one. Messages name what went wrong, never the announce URL
//! (private trackers put a pass key in it) or a header value.

use std::time::Duration;

use bay_httpd::client::{self, UrlError};
use bay_wire::tracker::ResponseError;

/// A failed announce to one tracker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// The tracker answered with a `failure reason`.
    #[error("tracker refused the announce: {reason}")]
    Refused {
        /// The tracker's words.
        reason: String,
    },
    /// The tracker answered with an HTTP status other than 200 and no
    /// failure reason.
    #[error("tracker answered HTTP status {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The response body is not a valid announce response.
    #[error("tracker response is malformed: {0}")]
    Malformed(#[from] ResponseError),
    /// The tracker URL cannot be requested (not http or https, or invalid).
    #[error("tracker URL is not usable: {0}")]
    Url(#[from] UrlError),
    /// Connecting, sending or reading failed.
    #[error("announce request failed: {0}")]
    Http(#[from] client::Error),
    /// The whole exchange took too long.
    #[error("no answer from the tracker within {after:?}")]
    Timeout {
        /// The limit that expired.
        after: Duration,
    },
}
