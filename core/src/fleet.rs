//! The client side of fleet-signed tracker requests: every request a
//! keyed node sends a tracker carries [`SIGNATURE_HEADER`] with the time,
//! a fresh nonce and a tag under the fleet key
//! ([`bay_wire::fleet::RequestSignature`]).

use std::time::{SystemTime, UNIX_EPOCH};

use bay_httpd::client::Request;
use bay_wire::fleet::{FleetKeys, RequestSignature, SIGNATURE_HEADER};
use sha2::{Digest as _, Sha256};

/// Signs requests with the fleet key in use.
#[derive(Debug, Clone)]
pub struct Signer {
    keys: FleetKeys,
}

impl Signer {
    pub fn new(keys: FleetKeys) -> Signer {
        Signer { keys }
    }

    /// `request` (whose body is `body`) with its signature header.
    pub fn sign(&self, request: Request, method: &str, target: &str, body: &[u8]) -> Request {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut nonce = [0u8; 16];
        if getrandom::getrandom(&mut nonce).is_err() {
            fastrand::Rng::new().fill(&mut nonce);
        }
        let body_sha256: [u8; 32] = Sha256::digest(body).into();
        let sig = RequestSignature::sign(
            self.keys.current(),
            method,
            target,
            &body_sha256,
            time,
            nonce,
        );
        request.header(SIGNATURE_HEADER.to_owned(), sig.to_header().into_bytes())
    }
}

/// Signs `request` when `signer` is set (keyed mode).
pub fn maybe_sign(
    signer: Option<&Signer>,
    request: Request,
    method: &str,
    target: &str,
    body: &[u8],
) -> Request {
    match signer {
        Some(s) => s.sign(request, method, target, body),
        None => request,
    }
}
