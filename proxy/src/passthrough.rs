//! Everything that is not a blob read goes to the upstream registry as it
//! came and comes back as it went: auth challenges, tokens, manifests of
//! every media type (each `Accept` line kept), tags, catalog, referrers,
//! uploads. Bodies stream both ways; hop-by-hop fields (RFC 9110 §7.6.1)
//! are dropped at each hop; redirects are handed to the client.

use bay_core::allow::Upstream;
use bay_core::registry::Registries;
use bay_httpd::client::{self, Client, Url};
use bay_httpd::{Body, BodyFraming, Method, Request, RequestBody, Response};

/// Fields that belong to one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whether a field must not cross this hop: a standard hop-by-hop field,
/// or one the sender's `Connection` names.
fn is_hop_by_hop(name: &str, connection: &[String]) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
        || connection.iter().any(|c| name.eq_ignore_ascii_case(c))
}

fn connection_tokens<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// The URL of `target` (origin-form path and query, `ns` removed) on the
/// upstream. Built from the upstream's parsed origin and the target as a
/// path, never by joining strings: nothing a client sends can move the
/// request to another host or port.
pub fn upstream_url(registries: &Registries, upstream: &Upstream, target: &str) -> Option<Url> {
    registries
        .upstream(upstream.as_str())
        .ok()?
        .target_url(&strip_ns(target))
        .ok()
}

/// Removes containerd's `ns` parameter, which is for the mirror only.
pub fn strip_ns(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("ns"))
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Largest manifest read whole to learn its blobs.
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Sends the request upstream and relays the answer.
pub async fn forward(http: &Client, url: Url, req: &Request, body: RequestBody) -> Response {
    match send_upstream(http, &url, req, body).await {
        Ok(resp) => relay(resp, req.method == Method::Head, &url),
        Err(e) => unreachable_upstream(&url, &e),
    }
}

/// [`forward`] for a manifest GET: an answer of 200 and at most
/// [`MAX_MANIFEST`] bytes is read whole, handed with its content type to
/// `seen`, then passed on.
pub async fn forward_manifest(
    http: &Client,
    url: Url,
    req: &Request,
    body: RequestBody,
    seen: impl FnOnce(&[u8], Option<&str>),
) -> Response {
    let resp = match send_upstream(http, &url, req, body).await {
        Ok(r) => r,
        Err(e) => return unreachable_upstream(&url, &e),
    };
    if req.method != Method::Get || !is_small_ok(&resp) {
        return relay(resp, req.method == Method::Head, &url);
    }
    let content_type = resp
        .header("content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_owned);
    let head = relay_head(&resp, &url);
    match resp.bytes(MAX_MANIFEST as usize).await {
        Ok(bytes) => {
            seen(&bytes, content_type.as_deref());
            head.body(bytes)
        }
        Err(e) => unreachable_upstream(&url, &e),
    }
}

fn unreachable_upstream(url: &Url, e: &client::Error) -> Response {
    tracing::warn!(%url, error = %e, "upstream request failed");
    crate::errors::registry_unreachable(e)
}

/// Sends `req` (its end-to-end fields and streamed body) to `url`.
async fn send_upstream(
    http: &Client,
    url: &Url,
    req: &Request,
    body: RequestBody,
) -> Result<client::Response, client::Error> {
    let connection = connection_tokens(req.headers_named("connection"));
    let mut out =
        client::Request::new(req.method.as_str().to_owned(), url.clone()).follow_redirects(false);
    for h in &req.headers {
        if !is_hop_by_hop(h.name(), &connection) {
            out = out.header(h.name().to_owned(), h.value().to_vec());
        }
    }
    let has_body = !matches!(req.framing, BodyFraming::Empty);
    if has_body {
        let length = match req.framing {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        out = out.body(client::Body::Stream {
            length,
            source: Box::new(body),
        });
    }
    http.send(out).await
}

/// A 200 with a declared length small enough to read whole.
fn is_small_ok(resp: &client::Response) -> bool {
    resp.status() == 200 && resp.content_length().is_some_and(|n| n <= MAX_MANIFEST)
}

/// Our response head for an upstream answer (status and end-to-end
/// fields), without a body.
fn relay_head(resp: &client::Response, asked: &Url) -> Response {
    let connection = connection_tokens(
        resp.headers()
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .map(|h| h.value.as_ref()),
    );
    let mut out = Response::new(resp.status());
    for h in resp.headers() {
        if is_hop_by_hop(&h.name, &connection) {
            continue;
        }
        if h.name.eq_ignore_ascii_case("location") {
            out = out.header("location", local_location(&h.value, asked));
        } else {
            out = out.header(&h.name, h.value.as_ref());
        }
    }
    out
}

/// Turns an upstream response into ours, body streamed.
pub fn relay(resp: client::Response, head_only: bool, asked: &Url) -> Response {
    let declared = resp
        .header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let out = relay_head(&resp, asked);
    if head_only {
        // The server writes the length of this (never sent) body.
        let (_sender, body) = Body::channel(declared);
        return out.body(body);
    }
    let length = resp.content_length();
    let (_, upstream_body) = resp.into_parts();
    let (sender, body) = Body::channel(length);
    monoio::spawn(async move {
        if let Err(e) = upstream_body.relay(sender).await {
            tracing::debug!(error = %e, "relay from upstream ended early");
        }
    });
    out.body(body)
}

/// An absolute `Location` on the upstream becomes a path on this proxy, so
/// the client keeps talking to bay (uploads answer with such URLs).
fn local_location(value: &[u8], asked: &Url) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(value) else {
        return value.to_vec();
    };
    match Url::parse(text) {
        Ok(u) if u.origin() == asked.origin() => u.target().as_bytes().to_vec(),
        _ => value.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_is_removed_and_the_rest_kept() {
        assert_eq!(
            strip_ns("/v2/a/manifests/b?ns=docker.io"),
            "/v2/a/manifests/b"
        );
        assert_eq!(strip_ns("/v2/?ns=x&n=1&last=2"), "/v2/?n=1&last=2");
        assert_eq!(strip_ns("/v2/"), "/v2/");
    }

    #[test]
    fn hop_by_hop_fields_stay() {
        let conn = connection_tokens([&b"close, X-Secret"[..]].into_iter());
        assert!(is_hop_by_hop("Transfer-Encoding", &conn));
        assert!(is_hop_by_hop("x-secret", &conn));
        assert!(!is_hop_by_hop("Authorization", &conn));
        assert!(!is_hop_by_hop("Accept", &conn));
    }

    #[test]
    fn upstream_locations_become_local() {
        let asked = Url::parse("https://reg.test:5000/v2/a/blobs/uploads/").unwrap();
        assert_eq!(
            local_location(
                b"https://reg.test:5000/v2/a/blobs/uploads/u1?_state=x",
                &asked
            ),
            b"/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(
            local_location(b"https://cdn.test/blob?sig=1", &asked),
            b"https://cdn.test/blob?sig=1"
        );
    }
}
