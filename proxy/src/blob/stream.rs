//! The I/O shell of [`ReadPlan`]: streams a swarm download's verified
//! stretches to the client by sendfile(2), and the rest from the registry
//! when the plan says so.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bay_core::progress::BlobReader;
use bay_httpd::range::{evaluate, RangeOutcome};
use bay_httpd::{AccessNote, Body, BodySender, FileBody, Response};

use super::direct::{send_rest, Rest};
use super::download::Download;
use super::read_plan::{ReadPlan, ReadStep};
use super::{blob_response, BlobAsk, BlobWorker, Blobs, Source};
use crate::errors::oci_error;

/// No verified byte for this long: the rest comes from the registry.
pub const STALL: Duration = Duration::from_secs(15);

impl BlobWorker {
    /// Answers with the asked range of a swarm download, streamed as it is
    /// verified.
    pub(super) fn stream(&self, ask: &BlobAsk<'_>, download: &Arc<Download>) -> Response {
        let total = download.length;
        let (status, range) = match evaluate(ask.req.header("range"), total) {
            RangeOutcome::Full => (200, 0..total),
            RangeOutcome::Partial { start, end } => (206, start..end + 1),
            RangeOutcome::Unsatisfiable => {
                return Response::new(416).header("content-range", format!("bytes */{total}"))
            }
        };
        download.mark_read();
        let reader = match download.handle.reader(range.clone()) {
            Ok(r) => r,
            Err(e) => return oci_error(500, "UNKNOWN", &e.to_string()),
        };
        let (sender, body) = Body::channel(Some(range.end - range.start));
        let rest = Rest {
            http: self.http.clone(),
            url: ask.url.clone(),
            authorization: ask.authorization().map(<[u8]>::to_vec),
        };
        let plan = ReadPlan::new(range.clone(), STALL, Instant::now());
        ask.note.set("source", Source::Swarm.as_str());
        monoio::spawn(pump(
            plan,
            reader,
            sender,
            rest,
            self.blobs.clone(),
            download.clone(),
            ask.note.clone(),
        ));
        let mut resp = blob_response(status, &ask.digest, Source::Swarm);
        if status == 206 {
            resp = resp.header(
                "content-range",
                format!("bytes {}-{}/{total}", range.start, range.end - 1),
            );
        }
        resp.body(body)
    }
}

/// Carries out the plan until the client has its bytes or the response
/// must end.
async fn pump(
    mut plan: ReadPlan,
    mut reader: BlobReader,
    mut sender: BodySender,
    rest: Rest,
    blobs: Arc<Blobs>,
    download: Arc<Download>,
    note: AccessNote,
) {
    // Verified stretches go straight from the download's file: no copy
    // through the proxy.
    let file = match reader.file().try_clone() {
        Ok(f) => Rc::new(f),
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the download for streaming");
            sender.abort();
            return;
        }
    };
    let mut step = ReadStep::Wait {
        until: plan.wake_at(Instant::now()),
    };
    loop {
        step = match step {
            ReadStep::Wait { until } => {
                let wait = until.saturating_duration_since(Instant::now());
                // `next_range` moves the reader only when it completes, so
                // a timed-out wait can be started again.
                match monoio::time::timeout(wait, reader.next_range()).await {
                    Ok(None) => plan.ended(Instant::now()),
                    Ok(Some(Ok((offset, len)))) => plan.verified(offset, len, Instant::now()),
                    Ok(Some(Err(_))) => {
                        let mut health = download.health();
                        health.failed = true;
                        plan.woke(health, Instant::now())
                    }
                    Err(_) => plan.woke(download.health(), Instant::now()),
                }
            }
            ReadStep::Send { offset, len } => {
                blobs.metrics.delivered(Source::Swarm, len, &note);
                let sent = sender
                    .send_file(FileBody::range(file.clone(), offset, len))
                    .await;
                if sent.is_err() {
                    return;
                }
                ReadStep::Wait {
                    until: plan.wake_at(Instant::now()),
                }
            }
            ReadStep::FromRegistry { range, why } => {
                tracing::warn!(why, from = range.start, "finishing from the registry");
                note.set("source", "swarm+registry");
                match send_rest(&rest, &blobs, range, &mut sender, &note).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = e, "the registry failed the rest of the blob");
                        plan.registry_failed()
                    }
                }
            }
            ReadStep::Finished => return,
            ReadStep::Abort { why } => {
                tracing::warn!(why, "ending a blob response early");
                sender.abort();
                return;
            }
        };
    }
}
