//! Response-head parser and body-framing rules on arbitrary bytes: they
//! must never panic, and a complete head never claims more bytes than given.
#![no_main]
use bay_httpd::client::head::{body_framing, parse_response_head, HeadLimits, HeadStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits {
        max_bytes: 4096,
        max_headers: 32,
    };
    if let Ok(HeadStatus::Complete { head, len }) = parse_response_head(data, &limits) {
        assert!(len <= data.len());
        assert!(len <= limits.max_bytes);
        for method in ["GET", "HEAD"] {
            let _ = body_framing(method, &head);
        }
    }
});
