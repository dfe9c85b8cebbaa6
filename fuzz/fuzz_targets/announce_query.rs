//! The HTTP announce and scrape query parsers on arbitrary query strings:
//! neither may panic, and a parsed request must rebuild into a query that
//! parses to the same request.
#![no_main]
use bay_wire::tracker::{AnnounceRequest, ScrapeRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(announce) = AnnounceRequest::parse_query(data) {
        let again = AnnounceRequest::parse_query(announce.to_query().as_bytes());
        assert_eq!(again.ok(), Some(announce));
    }
    if let Ok(scrape) = ScrapeRequest::parse_query(data) {
        let again = ScrapeRequest::parse_query(scrape.to_query().as_bytes());
        assert_eq!(again.ok(), Some(scrape));
    }
});
