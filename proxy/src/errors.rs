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
/// the fault is upstream, not in its request.
pub fn registry_unreachable(why: &str) -> Response {
    oci_error(
        502,
        "UNAVAILABLE",
        &format!("bay-proxy: upstream registry unreachable: {why}"),
    )
}

/// The request names no allowed upstream.
pub fn refused(why: &str) -> Response {
    oci_error(403, "DENIED", &format!("bay-proxy: {why}"))
}
