//! Fuzzes `parse_manifest` under every Content-Type it treats differently,
//! and the image config parser. Nothing may panic; an accepted manifest
//! serialized and parsed again as its own type must come back equal.
#![no_main]
use bay_wire::oci::{media_type, parse_image_config, parse_manifest};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some(media_type::OCI_MANIFEST),
    Some(media_type::OCI_INDEX),
    Some(media_type::DOCKER_MANIFEST),
    Some(media_type::DOCKER_MANIFEST_LIST),
    Some("application/json"),
    Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
    Some(media_type::DOCKER_MANIFEST_V1_SIGNED),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    if let Ok(m) = parse_manifest(content_type, body) {
        let again = parse_manifest(Some(m.media_type()), &m.to_json());
        assert_eq!(again.as_ref(), Ok(&m));
        for blob in m.blobs() {
            assert!(!blob.digest.path_component().contains('/'));
        }
    }
    let _ = parse_image_config(body);
});
