#![no_main]
use bay_wire::bencode;
use libfuzzer_sys::fuzz_target;

// The decoder accepts only canonical bencode, so anything it accepts must
// re-encode to the very same bytes, and every span must be a slice of the
// input at the position the value came from.
fuzz_target!(|data: &[u8]| {
    if let Ok(node) = bencode::decode(data) {
        assert_eq!(node.raw, data);
        assert_eq!(node.to_owned_value().to_bytes(), data);
    }
    if let Ok((node, used)) = bencode::decode_prefix(data, &bencode::Limits::default()) {
        assert_eq!(node.raw, &data[..used]);
    }
});
