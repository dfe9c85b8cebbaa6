//! Fuzzes the WWW-Authenticate parser and the token answer parser. Nothing
//! may panic; accepted challenges written back out must parse to the same
//! challenges, and a Bearer token URL must always be buildable.
#![no_main]
use bay_wire::oci::{parse_www_authenticate, AuthChallenge, TokenResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(challenges) = parse_www_authenticate(data) {
        let header: Vec<String> = challenges.iter().map(ToString::to_string).collect();
        let again = parse_www_authenticate(header.join(", ").as_bytes());
        assert_eq!(again.as_ref(), Ok(&challenges));
        for c in &challenges {
            if let AuthChallenge::Bearer(b) = c {
                let url = b.token_url(&["repository:x:pull"]);
                assert!(url.starts_with(b.realm.split('#').next().unwrap_or_default()));
            }
            let _ = format!("{c:?}");
        }
    }
    if let Ok(t) = TokenResponse::parse(data) {
        assert!(t.bearer_token().is_some());
        let _ = format!("{t:?}");
    }
});
