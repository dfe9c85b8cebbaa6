//! Fuzzes every OCI name parser: digest, repository name, tag, manifest
//! reference, image reference and registry API path. None may panic, and
//! whatever one accepts must print back to text it accepts again as the
//! same value.
#![no_main]
use bay_wire::oci::{ApiPath, Digest, ImageReference, Reference, RepositoryName, Tag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = Digest::parse(text) {
        assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(&d));
        assert_eq!(
            Digest::from_path_component(&d.path_component()).as_ref(),
            Ok(&d)
        );
        assert!(d
            .path_component()
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_lowercase()));
    }
    let _ = Digest::from_path_component(text);
    if let Ok(n) = RepositoryName::parse(text) {
        assert_eq!(RepositoryName::parse(n.as_str()).as_ref(), Ok(&n));
        assert!(n
            .components()
            .all(|c| c != "." && c != ".." && !c.is_empty()));
    }
    if let Ok(t) = Tag::parse(text) {
        assert_eq!(Tag::parse(t.as_str()).as_ref(), Ok(&t));
    }
    if let Ok(r) = Reference::parse(text) {
        assert_eq!(Reference::parse(&r.to_string()).as_ref(), Ok(&r));
    }
    if let Ok(r) = ImageReference::parse(text) {
        assert_eq!(ImageReference::parse(&r.to_string()).as_ref(), Ok(&r));
    }
    if let Ok(p) = ApiPath::parse(text) {
        assert_eq!(ApiPath::parse(&p.to_string()).as_ref(), Ok(&p));
    }
});
