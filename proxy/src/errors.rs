//! Error answers in the OCI distribution format, which every image client
//! prints: `{"errors":[{"code":…,"message":…}]}`.

use bay_httpd::Response;

/// An OCI error response.
pub fn oci_error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "code": code, "message": message }]
    })
    .to_string();
    Response::new(status)
        .header("content-type", "application/json")
        .body(body.into_bytes())
}

/// The upstream registry could not be reached: 502, so the client knows
/// the fault is upstream, not in its request. The body says what kind of
/// failure it was and nothing more: an address, a port or a socket error
/// would turn the proxy into a probe of the network behind it. The
/// operator's log has the whole error.
pub fn registry_unreachable(e: &bay_httpd::client::Error) -> Response {
    oci_error(
        502,
        "UNAVAILABLE",
        &format!("bay-proxy: upstream registry unreachable: {}", e.summary()),
    )
}

/// The request target is not a path (`OPTIONS *`, or a form the server
/// let through): 400, since no registry route can use it.
pub fn bad_target() -> Response {
    oci_error(
        400,
        "UNSUPPORTED",
        "bay-proxy: request target must be a path",
    )
}

/// The request names no allowed upstream.
pub fn refused(why: &str) -> Response {
    oci_error(403, "DENIED", &format!("bay-proxy: {why}"))
}
