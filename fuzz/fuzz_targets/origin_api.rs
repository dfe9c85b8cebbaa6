//! The origin API's decoders on arbitrary bytes: the query parsers, the
//! JSON answers and the hash batches never panic; what parses rebuilds
//! into what parses the same; a hash batch never claims more hashes than
//! pieces, or done before the last one.
#![no_main]
use bay_wire::origin::{
    BlobAsk, BlobGrant, ErrorBody, HashBatch, HashesAsk, PreheatAnswer, PreheatAsk,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ask) = BlobAsk::parse_query(data) {
        assert_eq!(
            BlobAsk::parse_query(ask.to_query().as_bytes()).ok(),
            Some(ask)
        );
    }
    if let Ok(ask) = HashesAsk::parse_query(data) {
        assert_eq!(
            HashesAsk::parse_query(ask.to_query().as_bytes()).ok(),
            Some(ask)
        );
    }
    if let Ok(ask) = PreheatAsk::parse_query(data) {
        assert_eq!(
            PreheatAsk::parse_query(ask.to_query().as_bytes()).ok(),
            Some(ask)
        );
    }
    if let Ok(grant) = BlobGrant::parse(data) {
        assert!(grant.length > 0 && grant.piece_length.is_power_of_two());
        assert_eq!(BlobGrant::parse(&grant.to_json()).ok(), Some(grant));
    }
    let _ = PreheatAnswer::parse(data);
    let _ = ErrorBody::parse(data);
    // Headers from the first bytes, the body after them.
    if data.len() >= 6 {
        let (head, body) = data.split_at(6);
        let from = u32::from(head[0]);
        if let Ok(batch) = HashBatch::parse(from, Some(&head[1..5]), Some(&head[5..6]), body) {
            let end = u64::from(batch.from) + batch.hashes.len() as u64;
            assert!(end <= u64::from(batch.pieces));
            assert!(!batch.done || end == u64::from(batch.pieces));
        }
    }
});
