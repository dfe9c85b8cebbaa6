//! Every UDP tracker decoder (BEP 15) on arbitrary datagrams: none may
//! panic, and whatever decodes must survive encode and decode unchanged.
#![no_main]
use bay_wire::tracker::udp::{AddressFamily, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        let mut again = Vec::new();
        request.encode(&mut again);
        assert_eq!(Request::decode(&again).ok(), Some(request));
    }
    for family in [AddressFamily::V4, AddressFamily::V6] {
        if let Ok(response) = Response::decode(data, family) {
            let mut again = Vec::new();
            response.encode(&mut again);
            assert_eq!(Response::decode(&again, family).ok(), Some(response));
        }
    }
});
