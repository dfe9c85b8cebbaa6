//! The request-head parser on arbitrary bytes: it never panics, what it
//! accepts stays within its limits, every accepted target is a path (or
//! `*`) with one Host at most, and such a target put on an origin never
//! moves the request to another host or port. Range evaluation rides
//! along, since its input is a header value the parser hands out.
#![no_main]
use bay_httpd::client::Url;
use bay_httpd::{parse_head, range, HeadLimits, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let small = HeadLimits {
        max_request_line: 64,
        max_header_bytes: 256,
        max_headers: 8,
    };
    for limits in [HeadLimits::default(), small] {
        match parse_head(data, &limits) {
            Ok(Parsed::Complete(req, used)) => {
                assert!(used <= data.len());
                assert!(req.headers.len() <= limits.max_headers);
                assert!(req.target.len() <= limits.max_request_line);
                assert!(used <= limits.max_request_line + limits.max_header_bytes + 6);
                assert!(req.target.starts_with('/') || &*req.target == "*");
                assert!(req.headers.iter().filter(|h| h.name_is("host")).count() <= 1);
                if let Ok(base) = Url::parse("http://reg.test:5000/") {
                    if let Ok(u) = Url::on_origin(base.origin().clone(), &req.target) {
                        assert_eq!(u.origin(), base.origin());
                    }
                }
                if let Some(value) = req.header("range") {
                    let len = data.len() as u64;
                    if let range::RangeOutcome::Partial { start, end } =
                        range::evaluate(Some(value), len)
                    {
                        assert!(start <= end && end < len);
                    }
                }
            }
            Ok(Parsed::Partial) => {
                // A partial head is never allowed to grow past the limits.
                assert!(data.len() <= limits.max_request_line + limits.max_header_bytes + 6);
            }
            Err(e) => assert!((400..=501).contains(&e.status())),
        }
    }
});
