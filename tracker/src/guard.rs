//! The tracker's check of fleet-signed requests, in keyed mode: announce,
//! held announces, scrape and the origin API must carry a signature
//! ([`bay_wire::fleet::RequestSignature`]) by a fleet key, made within
//! [`WINDOW`] of the tracker's clock, with a nonce not seen before. So no
//! stranger can add peers, read swarms or make the origin fetch, and a
//! recorded request cannot be sent again.
//!
//! Seen nonces are kept for twice the window (older signatures are
//! refused as stale anyway), at most [`MAX_SEEN`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bay_httpd::Request;
use bay_wire::fleet::{FleetKeys, RequestSignature, SIGNATURE_HEADER};
use sha2::{Digest as _, Sha256};

/// How far a signature's time may be from the tracker's clock.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most nonces remembered; beyond, new requests are refused until old
/// ones age out (a flood of valid requests needs the key).
pub const MAX_SEEN: usize = 1 << 20;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no {SIGNATURE_HEADER} signature: this tracker serves its fleet only")]
    Missing,
    #[error("malformed {SIGNATURE_HEADER} signature")]
    Malformed,
    #[error("signature time too far from the tracker's clock")]
    Stale,
    #[error("signature already used")]
    Replayed,
    #[error("signature does not hold under any fleet key")]
    BadSignature,
    #[error("too many recent requests to remember")]
    Busy,
}

impl Refusal {
    /// 401 when nothing was shown, 403 when what was shown is refused.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Missing => 401,
            Refusal::Busy => 503,
            _ => 403,
        }
    }
}

/// Checks signatures against the fleet's keys.
#[derive(Debug)]
pub struct RequestGuard {
    keys: FleetKeys,
    seen: Mutex<HashMap<[u8; 16], u64>>,
}

impl RequestGuard {
    pub fn new(keys: FleetKeys) -> RequestGuard {
        RequestGuard {
            keys,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `req` with body `body` at `now` (seconds since the epoch).
    pub fn check(&self, req: &Request, body: &[u8], now: u64) -> Result<(), Refusal> {
        let header = req.header(SIGNATURE_HEADER).ok_or(Refusal::Missing)?;
        let sig = RequestSignature::parse(header).map_err(|_| Refusal::Malformed)?;
        if sig.time.abs_diff(now) > WINDOW.as_secs() {
            return Err(Refusal::Stale);
        }
        let body_sha256: [u8; 32] = Sha256::digest(body).into();
        if !sig.verifies(&self.keys, req.method.as_str(), &req.target, &body_sha256) {
            return Err(Refusal::BadSignature);
        }
        self.first_use(sig.nonce, sig.time, now)
    }

    /// Records `nonce`; refuses one seen before.
    fn first_use(&self, nonce: [u8; 16], time: u64, now: u64) -> Result<(), Refusal> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(&nonce) {
            return Err(Refusal::Replayed);
        }
        if seen.len() >= MAX_SEEN {
            let keep_after = now.saturating_sub(2 * WINDOW.as_secs());
            seen.retain(|_, t| *t >= keep_after);
            if seen.len() >= MAX_SEEN {
                return Err(Refusal::Busy);
            }
        }
        seen.insert(nonce, time);
        Ok(())
    }

    /// Nonces remembered (for tests and metrics).
    pub fn remembered(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bay_httpd::{parse_head, HeadLimits, Parsed};
    use bay_wire::fleet::FleetKey;

    fn request(sig: Option<&RequestSignature>) -> Request {
        let mut head = "GET /announce?x=1 HTTP/1.1\r\nHost: t\r\n".to_string();
        if let Some(s) = sig {
            head.push_str(&format!("{SIGNATURE_HEADER}: {}\r\n", s.to_header()));
        }
        head.push_str("\r\n");
        match parse_head(head.as_bytes(), &HeadLimits::default()).unwrap() {
            Parsed::Complete(r, _) => r,
            Parsed::Partial => panic!("partial"),
        }
    }

    fn sign(key: u8, time: u64, nonce: u8) -> RequestSignature {
        let empty: [u8; 32] = Sha256::digest(b"").into();
        RequestSignature::sign(
            &FleetKey::from_bytes([key; 32]),
            "GET",
            "/announce?x=1",
            &empty,
            time,
            [nonce; 16],
        )
    }

    #[test]
    fn only_fresh_signatures_by_a_fleet_key_pass_once() {
        let guard = RequestGuard::new(FleetKeys::single(FleetKey::from_bytes([1; 32])));
        let now = 1_000_000;
        assert_eq!(guard.check(&request(None), b"", now), Err(Refusal::Missing));
        assert_eq!(
            guard.check(&request(Some(&sign(2, now, 1))), b"", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            guard.check(&request(Some(&sign(1, now - 61, 2))), b"", now),
            Err(Refusal::Stale)
        );
        let good = request(Some(&sign(1, now - 5, 3)));
        assert_eq!(guard.check(&good, b"", now), Ok(()));
        assert_eq!(guard.check(&good, b"", now), Err(Refusal::Replayed));
        // The body is covered too.
        assert_eq!(
            guard.check(&request(Some(&sign(1, now, 4))), b"extra", now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(Refusal::Missing.status(), 401);
        assert_eq!(Refusal::Replayed.status(), 403);
    }
}
