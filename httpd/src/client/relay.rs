//! Relaying between this crate's server and client without holding a body
//! whole: a server request body is a client [`BodySource`] (a push passed
//! upstream), and a client [`ResponseBody`] can feed a server response's
//! [`BodySender`] (a blob passed downstream).
//!
//! Back-pressure comes from both ends: the relay reads the next upstream
//! piece only after the downstream queue took the last one, so a slow
//! client slows the upstream read instead of filling memory.

use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;

use super::error::Error;
use super::request::BodySource;
use super::response::ResponseBody;
use crate::{BodySender, ReceiverGone, RequestBody};

impl BodySource for RequestBody {
    fn next_chunk(&mut self) -> Pin<Box<dyn Future<Output = io::Result<Option<Bytes>>> + '_>> {
        Box::pin(async move { self.chunk().await.map_err(io::Error::other) })
    }
}

/// Why a relay stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Reading the upstream body failed; the downstream body was aborted,
    /// so its reader sees a truncated response, never a short complete one.
    #[error("upstream body failed: {0}")]
    Upstream(#[source] Error),
    /// The downstream reader went away; the upstream connection is closed.
    #[error("downstream reader went away: {0}")]
    Downstream(#[source] ReceiverGone),
}

impl ResponseBody {
    /// Moves the whole body into `sender`, piece by piece; returns the
    /// bytes relayed.
    pub async fn relay(mut self, mut sender: BodySender) -> Result<u64, RelayError> {
        let mut relayed = 0u64;
        loop {
            match self.chunk().await {
                Ok(Some(piece)) => {
                    relayed += piece.len() as u64;
                    sender.send(piece).await.map_err(RelayError::Downstream)?;
                }
                Ok(None) => return Ok(relayed),
                Err(e) => {
                    sender.abort();
                    return Err(RelayError::Upstream(e));
                }
            }
        }
    }
}
