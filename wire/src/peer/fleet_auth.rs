//! Proving fleet membership on a peer connection (sans-IO), in keyed mode,
//! right after the BitTorrent handshakes and before any other message.
//!
//! Both sides set the fleet bit of the handshake's reserved bytes
//! ([`super::Reserved::with_fleet_auth`]). Then each sends a fresh 32-byte
//! nonce, and on the other's nonce sends its proof:
//! `HMAC(key, "bay-peer-auth" | swarm | prover id | verifier id |
//! verifier nonce | prover nonce)`. A proof holds only for this
//! connection's nonces, swarm and both peer ids, so a recorded handshake
//! cannot be replayed and a proof cannot be reflected back. Nothing but
//! these 64 bytes each way flows until both proofs check.

use bytes::{Buf, BytesMut};

use crate::fleet::{FleetKeys, TAG_LEN};

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;

/// Why a peer failed to prove it belongs to the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the peer's proof does not hold under any fleet key")]
    BadProof,
    #[error("the peer sent our own nonce or peer id back")]
    Reflected,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Need more bytes from the peer.
    Partial,
    /// Send this proof, then read on.
    Send([u8; TAG_LEN]),
    /// The peer proved itself; the connection may carry messages.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    WaitNonce,
    WaitProof,
    Done,
}

/// One side of the exchange.
#[derive(Debug)]
pub struct FleetAuth {
    keys: FleetKeys,
    swarm: [u8; 20],
    ours: [u8; 20],
    theirs: [u8; 20],
    our_nonce: [u8; NONCE_LEN],
    their_nonce: [u8; NONCE_LEN],
    state: State,
}

impl FleetAuth {
    /// Starts the exchange for `swarm` between peer ids `ours` and
    /// `theirs`; `our_nonce` must be fresh random bytes. Send it first.
    pub fn new(
        keys: FleetKeys,
        swarm: [u8; 20],
        ours: [u8; 20],
        theirs: [u8; 20],
        our_nonce: [u8; NONCE_LEN],
    ) -> FleetAuth {
        FleetAuth {
            keys,
            swarm,
            ours,
            theirs,
            our_nonce,
            their_nonce: [0; NONCE_LEN],
            state: State::WaitNonce,
        }
    }

    /// The first bytes to send: our nonce.
    pub fn hello(&self) -> [u8; NONCE_LEN] {
        self.our_nonce
    }

    /// Whether both sides are proven.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes what it needs of `input`, the peer's bytes after its
    /// handshake. Bytes after the proof stay in `input`.
    pub fn receive(&mut self, input: &mut BytesMut) -> Result<AuthStep, AuthError> {
        match self.state {
            State::WaitNonce => {
                if input.len() < NONCE_LEN {
                    return Ok(AuthStep::Partial);
                }
                self.their_nonce.copy_from_slice(&input[..NONCE_LEN]);
                input.advance(NONCE_LEN);
                if self.their_nonce == self.our_nonce || self.theirs == self.ours {
                    return Err(AuthError::Reflected);
                }
                self.state = State::WaitProof;
                let proof = self.keys.current().tag(&self.parts(true));
                Ok(AuthStep::Send(proof))
            }
            State::WaitProof => {
                if input.len() < TAG_LEN {
                    return Ok(AuthStep::Partial);
                }
                let ok = self.keys.verifies(&self.parts(false), &input[..TAG_LEN]);
                input.advance(TAG_LEN);
                if !ok {
                    return Err(AuthError::BadProof);
                }
                self.state = State::Done;
                Ok(AuthStep::Done)
            }
            State::Done => Ok(AuthStep::Done),
        }
    }

    /// What a proof covers; `ours` for the proof we send, else the one we
    /// expect.
    fn parts(&self, ours: bool) -> [&[u8]; 6] {
        let (prover, verifier, verifier_nonce, prover_nonce) = if ours {
            (&self.ours, &self.theirs, &self.their_nonce, &self.our_nonce)
        } else {
            (&self.theirs, &self.ours, &self.our_nonce, &self.their_nonce)
        };
        [
            b"bay-peer-auth",
            &self.swarm,
            prover,
            verifier,
            verifier_nonce,
            prover_nonce,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetKey;

    fn keys(n: u8) -> FleetKeys {
        FleetKeys::single(FleetKey::from_bytes([n; 32]))
    }

    /// One side's turn: reads what it has, writes what it sends.
    fn turn(
        side: &mut FleetAuth,
        input: &mut BytesMut,
        output: &mut BytesMut,
    ) -> Option<Result<(), AuthError>> {
        match side.receive(input) {
            Ok(AuthStep::Send(p)) => {
                output.extend_from_slice(&p);
                None
            }
            Ok(AuthStep::Done) => Some(Ok(())),
            Ok(AuthStep::Partial) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Runs both sides against each other; returns each side's outcome.
    fn exchange(
        a: &mut FleetAuth,
        b: &mut FleetAuth,
    ) -> (Result<(), AuthError>, Result<(), AuthError>) {
        let mut to_b = BytesMut::from(&a.hello()[..]);
        let mut to_a = BytesMut::from(&b.hello()[..]);
        let (mut ra, mut rb) = (None, None);
        for _ in 0..3 {
            if ra.is_none() {
                ra = turn(a, &mut to_a, &mut to_b);
            }
            if rb.is_none() {
                rb = turn(b, &mut to_b, &mut to_a);
            }
        }
        (ra.unwrap_or(Ok(())), rb.unwrap_or(Ok(())))
    }

    #[test]
    fn peers_with_the_key_prove_themselves_both_ways() {
        let mut a = FleetAuth::new(keys(1), [9; 20], [1; 20], [2; 20], [11; 32]);
        let mut b = FleetAuth::new(keys(1), [9; 20], [2; 20], [1; 20], [22; 32]);
        assert_eq!(exchange(&mut a, &mut b), (Ok(()), Ok(())));
        assert!(a.is_done() && b.is_done());
    }

    #[test]
    fn a_wrong_key_fails_on_both_sides() {
        let mut a = FleetAuth::new(keys(1), [9; 20], [1; 20], [2; 20], [11; 32]);
        let mut b = FleetAuth::new(keys(2), [9; 20], [2; 20], [1; 20], [22; 32]);
        assert_eq!(
            exchange(&mut a, &mut b),
            (Err(AuthError::BadProof), Err(AuthError::BadProof))
        );
    }

    #[test]
    fn a_recorded_exchange_cannot_be_replayed_or_reflected() {
        // A stranger replays b's nonce and proof from an earlier session
        // to a fresh `a`, which chose a new nonce.
        let mut a1 = FleetAuth::new(keys(1), [9; 20], [1; 20], [2; 20], [11; 32]);
        let mut b = FleetAuth::new(keys(1), [9; 20], [2; 20], [1; 20], [22; 32]);
        let mut to_b = BytesMut::from(&a1.hello()[..]);
        let Ok(AuthStep::Send(b_proof)) = b.receive(&mut to_b) else {
            panic!("b did not answer")
        };
        let mut recorded = BytesMut::from(&b.hello()[..]);
        recorded.extend_from_slice(&b_proof);
        let mut replay = recorded.clone();
        assert!(matches!(a1.receive(&mut replay), Ok(AuthStep::Send(_))));
        assert_eq!(a1.receive(&mut replay), Ok(AuthStep::Done));
        let mut a2 = FleetAuth::new(keys(1), [9; 20], [1; 20], [2; 20], [33; 32]);
        let mut replay = recorded;
        assert!(matches!(a2.receive(&mut replay), Ok(AuthStep::Send(_))));
        assert_eq!(a2.receive(&mut replay), Err(AuthError::BadProof));
        // Our own nonce sent back is refused before any proof is given.
        let mut a3 = FleetAuth::new(keys(1), [9; 20], [1; 20], [2; 20], [44; 32]);
        let mut echo = BytesMut::from(&a3.hello()[..]);
        assert_eq!(a3.receive(&mut echo), Err(AuthError::Reflected));
    }
}
