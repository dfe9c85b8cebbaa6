//! The fleet decoders on arbitrary bytes: key files, request signature
//! headers, held announces, and the peer proof exchange fed whatever a
//! stranger sends. None may panic, and no input a stranger makes up
//! (without the key) completes the proof exchange.
#![no_main]
use bay_wire::fleet::{FleetKey, FleetKeys, RequestSignature};
use bay_wire::peer::{AuthStep, BytesMut, FleetAuth};
use bay_wire::tracker::held::{HeldAnnounce, HeldAnswer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = FleetKeys::parse(text);
    }
    if let Ok(sig) = RequestSignature::parse(data) {
        assert_eq!(
            RequestSignature::parse(sig.to_header().as_bytes()).ok(),
            Some(sig)
        );
    }
    let split = data.len() / 2;
    if let Ok(held) = HeldAnnounce::parse(&data[..split], &data[split..]) {
        let again = HeldAnnounce::parse(held.to_query().as_bytes(), &held.body());
        assert_eq!(again.ok(), Some(held));
    }
    let _ = HeldAnswer::decode(data);
    let keys = FleetKeys::single(FleetKey::from_bytes([7; 32]));
    let mut auth = FleetAuth::new(keys, [1; 20], [2; 20], [3; 20], [4; 32]);
    let mut input = BytesMut::from(data);
    while let Ok(step) = auth.receive(&mut input) {
        match step {
            AuthStep::Partial => break,
            AuthStep::Send(_) => {}
            AuthStep::Done => panic!("a made-up proof was accepted"),
        }
    }
});
