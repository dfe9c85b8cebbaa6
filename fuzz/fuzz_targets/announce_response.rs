//! The bencoded announce and scrape response decoders on arbitrary bodies:
//! neither may panic, and a decoded reply must re-encode to a body that
//! decodes to the same reply.
#![no_main]
use bay_wire::tracker::response::encode_failure;
use bay_wire::tracker::{AnnounceResponse, Reply, ScrapeResponse};
use libfuzzer_sys::fuzz_target;

fn reencode<T>(reply: &Reply<T>, encode: impl Fn(&T, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    match reply {
        Reply::Success(r) => encode(r, &mut out),
        Reply::Failure(reason) => encode_failure(reason, &mut out),
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = AnnounceResponse::decode(data) {
        let again = reencode(&reply, AnnounceResponse::encode);
        assert_eq!(AnnounceResponse::decode(&again).ok(), Some(reply));
    }
    if let Ok(reply) = ScrapeResponse::decode(data) {
        let again = reencode(&reply, ScrapeResponse::encode);
        assert_eq!(ScrapeResponse::decode(&again).ok(), Some(reply));
    }
});
