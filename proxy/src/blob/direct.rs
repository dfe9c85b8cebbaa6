//! Blob reads straight from the registry, with the client's credentials:
//! the whole blob when no swarm can serve it, or the rest of it when the
//! swarm stalls. A whole 200 is cached once its digest checks; anything
//! else (a range, an error page) is relayed as the registry sent it and
//! never cached.

use std::time::Instant;

use bay_core::registry::Auth;
use bay_httpd::client::{self, Client, Url};
use bay_httpd::{AccessNote, Body, BodySender, Response};

use super::{blob_response, BlobAsk, BlobWorker, Blobs, Source};

/// Request fields passed on to the registry for a blob read.
const PASSED_ON: [&str; 4] = ["authorization", "range", "accept", "user-agent"];

impl BlobWorker {
    /// The blob (or the range asked for) from the registry.
    pub(super) async fn direct(&self, ask: &BlobAsk<'_>) -> Response {
        self.blobs.metrics.registry_reads.inc();
        ask.note.set("source", Source::Registry.as_str());
        let mut out = client::Request::get(ask.url.clone());
        for h in &ask.req.headers {
            if PASSED_ON.iter().any(|n| h.name_is(n)) {
                out = out.header(h.name().to_owned(), h.value().to_vec());
            }
        }
        let resp = match self.http.send(out).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(url = ?ask.url, error = %e, "registry unreachable for a blob");
                return crate::errors::registry_unreachable(&e);
            }
        };
        if resp.status() == 200 || resp.status() == 206 {
            let auth = Auth::from_header(ask.authorization());
            self.blobs
                .grants
                .record(ask.upstream.as_str(), &ask.digest, &auth, Instant::now());
        }
        let cacheable = resp.status() == 200 && ask.req.header("range").is_none();
        if !cacheable {
            return crate::passthrough::relay(resp, false, &ask.url)
                .header(super::SOURCE_HEADER, Source::Registry.as_str());
        }
        let length = resp.content_length();
        let mut headers = blob_response(200, &ask.digest, Source::Registry);
        if let Some(ct) = resp.header("content-type") {
            headers = headers.header("content-type", ct.as_ref());
        }
        let mut writer = self.blobs.store.begin_stream(&ask.digest, length).ok();
        let (_, mut upstream) = resp.into_parts();
        let (mut sender, body) = Body::channel(length);
        let blobs = self.blobs.clone();
        let note = ask.note.clone();
        monoio::spawn(async move {
            loop {
                match upstream.chunk().await {
                    Ok(Some(chunk)) => {
                        blobs
                            .metrics
                            .delivered(Source::Registry, chunk.len() as u64, &note);
                        if let Some(w) = writer.as_mut() {
                            if let Err(e) = w.write(&chunk) {
                                tracing::warn!(error = %e, "not caching this blob");
                                writer = None;
                            }
                        }
                        if sender.send(chunk).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "registry stream broke");
                        sender.abort();
                        return;
                    }
                }
            }
            if let Some(w) = writer {
                if let Err(e) = w.finish() {
                    tracing::warn!(error = %e, "fetched blob not cached");
                }
            }
        });
        headers.body(body)
    }
}

/// Where the rest of a blob comes from when the swarm cannot deliver it.
pub(super) struct Rest {
    pub http: Client,
    pub url: Url,
    pub authorization: Option<Vec<u8>>,
}

/// Sends `range` of the blob from the registry into `sender`; `Err` when
/// the registry refused or broke off (the caller ends the response).
pub(super) async fn send_rest(
    rest: &Rest,
    blobs: &Blobs,
    range: std::ops::Range<u64>,
    sender: &mut BodySender,
    note: &AccessNote,
) -> Result<(), String> {
    if range.is_empty() {
        return Ok(());
    }
    let mut req = client::Request::get(rest.url.clone())
        .header("range", format!("bytes={}-{}", range.start, range.end - 1));
    if let Some(a) = &rest.authorization {
        req = req.header("authorization", a.clone());
    }
    let mut resp = match rest.http.send(req).await {
        Ok(r) if r.status() == 206 => r,
        Ok(r) => {
            return Err(format!(
                "registry answered {} to the rest of the blob",
                r.status()
            ))
        }
        Err(e) => {
            return Err(format!(
                "registry unreachable for the rest of the blob: {e}"
            ))
        }
    };
    blobs.metrics.registry_reads.inc();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                blobs
                    .metrics
                    .delivered(Source::Registry, chunk.len() as u64, note);
                // A client that went away needs nothing more.
                if sender.send(chunk).await.is_err() {
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("registry stream broke: {e}")),
        }
    }
}
