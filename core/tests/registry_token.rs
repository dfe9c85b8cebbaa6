//! The registry client against the real registry with token auth
//! (distribution's `auth.token`) and the token server in fixtures/, under
//! both monoio drivers: the client's own token dance with right and wrong
//! credentials, token reuse (counted at the token server), relayed bearer
//! headers, and Debug output that never shows a secret.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

mod registry_support;

use bay_core::registry::{Auth, Registries, RegistryConfig, RegistryError};
use bay_wire::oci::{Reference, RepositoryName};
use registry_support::{
    on_both_drivers, seed_storage, start_registry, start_registry_on, RegistryAuth, TokenServer,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn token_auth_dance() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let image = seed_storage(dir.path(), &storage, "bay/tokened", 200_000);
    let tokens = TokenServer::start(dir.path(), "bob", "t0ken-pw");
    let auth = RegistryAuth::Token {
        realm: tokens.realm(),
        service: tokens.service.clone(),
        issuer: tokens.issuer.clone(),
        root_cert: tokens.cert.clone(),
    };
    let registry = start_registry(dir.path(), &storage, None, &auth);
    let name = format!("127.0.0.1:{}", registry.port);
    let repo = RepositoryName::parse("bay/tokened").unwrap();
    let config = RegistryConfig {
        insecure: vec![name.clone(), format!("127.0.0.1:{}", tokens.server.port)],
        ..RegistryConfig::default()
    };

    on_both_drivers(|driver| {
        let (image, repo, config, name, tokens) =
            (&image, &repo, config.clone(), name.clone(), &tokens);
        async move {
            let registries = Registries::new(config).unwrap();
            let http = registries.http_client();
            let client = registries.client(&name, &http).unwrap();
            let digest = &image.layer_digest;
            let bob = Auth::basic("bob", "t0ken-pw");
            let hits = tokens.hits();

            // 401 with a Bearer challenge, a token from the realm, retry.
            let head = client.head_blob(repo, digest, &bob).await.unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64), "{driver}");
            assert_eq!(tokens.hits(), hits + 1, "{driver}: one token fetched");

            // The token is reused for the same scope and credentials.
            let mut sink = Vec::new();
            client
                .fetch_blob_verified(repo, digest, &bob, &mut sink)
                .await
                .unwrap();
            assert!(sink == image.layer);
            let m = client
                .get_manifest(
                    repo,
                    &Reference::parse("v1").unwrap(),
                    &[OCI_MANIFEST.into()],
                    &bob,
                )
                .await
                .unwrap();
            assert_eq!(m.digest, image.manifest_digest);
            assert!(client.check_access(repo, digest, &bob).await.unwrap());
            assert_eq!(tokens.hits(), hits + 1, "{driver}: token not reused");
            assert_eq!(registries.cached_tokens(), 1);

            // Another client on the same Registries shares the cache.
            let again = registries.client(&name, &registries.http_client()).unwrap();
            again.head_blob(repo, digest, &bob).await.unwrap();
            assert_eq!(tokens.hits(), hits + 1);

            // Wrong credentials: the token server refuses; not cached.
            let wrong = Auth::basic("bob", "guess");
            let err = client.head_blob(repo, digest, &wrong).await.unwrap_err();
            let RegistryError::Unauthorized { challenge, .. } = &err else {
                panic!("{driver}: {err}");
            };
            assert!(
                challenge
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("Bearer "),
                "{err}"
            );
            assert!(!err.should_fall_back());
            assert!(!client.check_access(repo, digest, &wrong).await.unwrap());

            // Anonymous: a token without access, which the registry refuses.
            let err = client
                .head_blob(repo, digest, &Auth::Anonymous)
                .await
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::Unauthorized { .. }),
                "{driver}: {err}"
            );

            // The proxy's case: a bearer header its client got, relayed.
            let token = fetch_token_directly(tokens, "bay/tokened");
            let relayed = Auth::from_header(Some(format!("Bearer {token}").as_bytes()));
            let before = tokens.hits();
            let head = client.head_blob(repo, digest, &relayed).await.unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64));
            assert_eq!(tokens.hits(), before, "a relayed header is never exchanged");
            // A relayed header for another repository is refused, and the
            // challenge comes back for the client.
            let other = fetch_token_directly(tokens, "bay/other");
            let relayed_other = Auth::from_header(Some(format!("Bearer {other}").as_bytes()));
            let err = client
                .head_blob(repo, digest, &relayed_other)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    RegistryError::Unauthorized {
                        challenge: Some(_),
                        ..
                    }
                ),
                "{err}"
            );

            // Nothing secret in any Debug output.
            let shown = [
                format!("{registries:?}"),
                format!("{client:?}"),
                format!("{bob:?}"),
                format!("{relayed:?}"),
                format!("{:?}", bob.id()),
                format!("{err:?}"),
                format!(
                    "{:?}",
                    client.head_blob(repo, digest, &wrong).await.unwrap_err()
                ),
            ];
            for s in &shown {
                for secret in ["t0ken-pw", "guess", token.as_str(), other.as_str(), "eyJ"] {
                    assert!(!s.contains(secret), "{driver}: secret in {s}");
                }
            }
        }
    });
}

/// A token got the way docker gets one, outside the client under test.
fn fetch_token_directly(tokens: &TokenServer, repo: &str) -> String {
    let url = format!(
        "{}?service={}&scope=repository:{repo}:pull",
        tokens.realm(),
        tokens.service
    );
    let body = registry_support::curl(&["-u", "bob:t0ken-pw", &url]);
    let text = String::from_utf8(body).unwrap();
    let start = text.find("\"token\": \"").unwrap() + "\"token\": \"".len();
    let end = start + text[start..].find('"').unwrap();
    text[start..end].to_owned()
}

/// A cached token the registry stops accepting (here: the registry now
/// trusts another token issuer) is dropped, and a new one is fetched from
/// the realm the registry's new challenge names.
#[test]
fn refused_cached_token_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let image = seed_storage(dir.path(), &storage, "bay/rotated", 50_000);
    let repo = RepositoryName::parse("bay/rotated").unwrap();
    on_both_drivers(|driver| {
        let (dir, storage, image, repo) = (dir.path(), &storage, &image, &repo);
        async move {
            let run = dir.join(driver);
            let (first_dir, second_dir) = (run.join("first"), run.join("second"));
            std::fs::create_dir_all(&first_dir).unwrap();
            std::fs::create_dir_all(&second_dir).unwrap();
            let token_auth = |t: &TokenServer| RegistryAuth::Token {
                realm: t.realm(),
                service: t.service.clone(),
                issuer: t.issuer.clone(),
                root_cert: t.cert.clone(),
            };
            let first = TokenServer::start(&first_dir, "bob", "t0ken-pw");
            let second = TokenServer::start(&second_dir, "bob", "t0ken-pw");
            let registry = start_registry(&run, storage, None, &token_auth(&first));
            let port = registry.port;
            let name = format!("127.0.0.1:{port}");
            let config = RegistryConfig {
                insecure: vec![
                    name.clone(),
                    format!("127.0.0.1:{}", first.server.port),
                    format!("127.0.0.1:{}", second.server.port),
                ],
                ..RegistryConfig::default()
            };
            let client = bay_core::registry::RegistryClient::new(&name, config).unwrap();
            let bob = Auth::basic("bob", "t0ken-pw");
            client
                .head_blob(repo, &image.layer_digest, &bob)
                .await
                .unwrap();
            assert_eq!((first.hits(), second.hits()), (1, 0), "{driver}");

            drop(registry);
            let _registry = start_registry_on(port, &run, storage, None, &token_auth(&second));
            let head = client
                .head_blob(repo, &image.layer_digest, &bob)
                .await
                .unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64));
            assert_eq!((first.hits(), second.hits()), (1, 1), "{driver}");
            client
                .head_blob(repo, &image.layer_digest, &bob)
                .await
                .unwrap();
            assert_eq!(second.hits(), 1, "{driver}: new token not kept");
        }
    });
}
