//! The proxy's side of the origin API ([`bay_wire::origin`]): asking a
//! tracker to be a blob's origin, and following its piece hashes.

use std::time::Duration;

use bay_httpd::client::Client;
use bay_wire::fleet::Naming;
use bay_wire::origin::{
    BlobAsk, BlobGrant, ErrorBody, HashBatch, HashesAsk, BLOBS_PATH, DONE_HEADER, HASHES_PATH,
    MAX_JSON, PIECES_HEADER,
};

use super::origin_plan::{Answer, Geometry};
use super::trackers::Trackers;

/// Longest hashes answer read (a 64 GiB blob in 64 KiB pieces).
const MAX_HASHES_BODY: usize = 32 << 20;

/// `POST /origin/v1/blobs` on `tracker` with the client's Authorization,
/// answered within `within`.
#[allow(clippy::too_many_arguments)]
pub async fn ask_origin(
    http: &Client,
    naming: &Naming,
    trackers: &Trackers,
    tracker: usize,
    ask: &BlobAsk,
    authorization: Option<&[u8]>,
    within: Duration,
) -> Answer {
    match monoio::time::timeout(
        within,
        ask_once(http, naming, trackers, tracker, ask, authorization),
    )
    .await
    {
        Ok(answer) => answer,
        Err(_) => {
            tracing::warn!(
                tracker = trackers.name(tracker),
                ?within,
                "tracker did not answer in time"
            );
            Answer::Unreachable
        }
    }
}

async fn ask_once(
    http: &Client,
    naming: &Naming,
    trackers: &Trackers,
    tracker: usize,
    ask: &BlobAsk,
    authorization: Option<&[u8]>,
) -> Answer {
    let path = format!("{BLOBS_PATH}?{}", ask.to_query());
    let Some(mut req) = trackers.request("POST", tracker, &path, Vec::new()) else {
        return Answer::Unreachable;
    };
    if let Some(a) = authorization {
        if trackers.may_carry_credentials(tracker) {
            req = req.header("authorization", a.to_vec());
        } else {
            tracing::warn!(
                tracker = trackers.name(tracker),
                "not sending a client's registry credentials to a tracker over plain HTTP (use https, or allow_plain_tracker_credentials)"
            );
        }
    }
    let unreachable = |why: String| {
        tracing::warn!(tracker = trackers.name(tracker), why, "tracker unreachable");
        trackers.failed(tracker, &why);
        Answer::Unreachable
    };
    let resp = match http.send(req).await {
        Ok(r) => r,
        Err(e) => return unreachable(e.to_string()),
    };
    let status = resp.status();
    let body = match resp.bytes(MAX_JSON).await {
        Ok(b) => b,
        Err(e) => return unreachable(e.to_string()),
    };
    if status != 200 {
        let why = ErrorBody::parse(&body).map(|e| e.error).unwrap_or_default();
        tracing::debug!(
            tracker = trackers.name(tracker),
            status,
            why,
            "origin said no"
        );
        // 502 is the registry failing behind a working tracker: the
        // client gets the registry's own answer by going there.
        return if status >= 500 && status != 502 {
            unreachable(format!("status {status}"))
        } else {
            Answer::Refused(status)
        };
    }
    trackers.answered(tracker);
    let grant = match BlobGrant::parse(&body) {
        Ok(g) => g,
        Err(e) => return unreachable(format!("bad origin answer: {e}")),
    };
    // The origin must name the swarm as this fleet does: an open origin
    // and a keyed proxy (or keys that differ) cannot share a swarm.
    match grant
        .swarm()
        .filter(|s| naming.swarm_ids(&ask.digest).contains(s))
    {
        Some(swarm) => Answer::Granted {
            geometry: Geometry {
                length: grant.length,
                piece_length: grant.piece_length,
            },
            peer: grant.peer,
            swarm,
        },
        None => {
            unreachable("origin names the swarm otherwise (are the fleet keys the same?)".into())
        }
    }
}

/// One long poll for piece hashes from `ask.from` on.
pub async fn fetch_hashes(
    http: &Client,
    trackers: &Trackers,
    tracker: usize,
    ask: &HashesAsk,
) -> Result<HashBatch, String> {
    let path = format!("{HASHES_PATH}?{}", ask.to_query());
    let req = trackers
        .request("GET", tracker, &path, Vec::new())
        .ok_or("tracker URL")?;
    let resp = http.send(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let pieces = resp.header(PIECES_HEADER).map(|v| v.to_vec());
    let done = resp.header(DONE_HEADER).map(|v| v.to_vec());
    let body = resp
        .bytes(MAX_HASHES_BODY)
        .await
        .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("status {status}"));
    }
    HashBatch::parse(ask.from, pieces.as_deref(), done.as_deref(), &body).map_err(|e| e.to_string())
}
