//! The registry client against the real registry with token auth
//! (distribution's `auth.token`) and the kit's token server, under
//! both monoio drivers: the client's own token dance with right and wrong
//! credentials, token reuse (counted at the token server), relayed bearer
//! headers, and Debug output that never shows a secret.
#![allow(clippy::unwrap_used)] // a panic is a test's failure report

use bay_core::registry::{Auth, Registries, RegistryConfig, RegistryError};
use bay_testkit::drivers::on_both_drivers;
use bay_testkit::registry::{Credentials, Registry, RegistryOptions, Storage, OCI_MANIFEST};
use bay_testkit::token::TokenServer;
use bay_wire::oci::{Digest, Reference, RepositoryName};

fn bob() -> Credentials {
    Credentials::new("bob", "t0ken-pw")
}

#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl and curl: scripts/test.sh runs it"
)]
fn token_auth_dance() {
    let storage = Storage::new().unwrap();
    let image = storage.seed("bay/tokened", 200_000, 7).unwrap();
    let layer_digest = Digest::parse(&image.layer_digest).unwrap();
    let manifest_digest = Digest::parse(&image.manifest_digest).unwrap();
    let tokens = TokenServer::start(bob()).unwrap();
    let registry = Registry::start(
        RegistryOptions::plain()
            .on_storage(&storage)
            .with_token(&tokens),
    )
    .unwrap();
    let name = registry.host();
    let repo = RepositoryName::parse("bay/tokened").unwrap();
    let config = RegistryConfig {
        insecure: vec![name.clone(), tokens.addr().to_string()],
        ..RegistryConfig::default()
    };

    on_both_drivers(|driver| {
        let (image, repo, config, name, tokens) =
            (&image, &repo, config.clone(), name.clone(), &tokens);
        let (layer_digest, manifest_digest) = (&layer_digest, &manifest_digest);
        async move {
            let registries = Registries::new(config).unwrap();
            let http = registries.http_client();
            let client = registries.client(&name, &http).unwrap();
            let digest = layer_digest;
            let bob = Auth::basic("bob", "t0ken-pw");
            let hits = tokens.count();

            // 401 with a Bearer challenge, a token from the realm, retry.
            let head = client.head_blob(repo, digest, &bob).await.unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64), "{driver}");
            assert_eq!(tokens.count(), hits + 1, "{driver}: one token fetched");

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
            assert_eq!(&m.digest, manifest_digest);
            assert!(client.check_access(repo, digest, &bob).await.unwrap());
            assert_eq!(tokens.count(), hits + 1, "{driver}: token not reused");
            assert_eq!(registries.cached_tokens(), 1);

            // Another client on the same Registries shares the cache.
            let again = registries.client(&name, &registries.http_client()).unwrap();
            again.head_blob(repo, digest, &bob).await.unwrap();
            assert_eq!(tokens.count(), hits + 1);

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
            let token = tokens.fetch_token("repository:bay/tokened:pull").unwrap();
            let relayed = Auth::from_header(Some(format!("Bearer {token}").as_bytes()));
            let before = tokens.count();
            let head = client.head_blob(repo, digest, &relayed).await.unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64));
            assert_eq!(
                tokens.count(),
                before,
                "a relayed header is never exchanged"
            );
            // A relayed header for another repository is refused, and the
            // challenge comes back for the client.
            let other = tokens.fetch_token("repository:bay/other:pull").unwrap();
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

/// A cached token the registry stops accepting (here: the registry now
/// trusts another token issuer) is dropped, and a new one is fetched from
/// the realm the registry's new challenge names.
#[test]
#[cfg_attr(
    not(feature = "external"),
    ignore = "needs docker-registry, openssl and curl: scripts/test.sh runs it"
)]
fn refused_cached_token_is_replaced() {
    let storage = Storage::new().unwrap();
    let image = storage.seed("bay/rotated", 50_000, 7).unwrap();
    let layer_digest = Digest::parse(&image.layer_digest).unwrap();
    let repo = RepositoryName::parse("bay/rotated").unwrap();
    on_both_drivers(|driver| {
        let (storage, image, repo, layer_digest) = (&storage, &image, &repo, &layer_digest);
        async move {
            // Two signers the registry can be told to trust, one at a time.
            let first = TokenServer::start(bob()).unwrap();
            let second = TokenServer::start(bob()).unwrap();
            let on = RegistryOptions::plain().on_storage(storage);
            let registry = Registry::start(on.clone().with_token(&first)).unwrap();
            let port = registry.port();
            let name = registry.host();
            let config = RegistryConfig {
                insecure: vec![
                    name.clone(),
                    first.addr().to_string(),
                    second.addr().to_string(),
                ],
                ..RegistryConfig::default()
            };
            let client = bay_core::registry::RegistryClient::new(&name, config).unwrap();
            let bob = Auth::basic("bob", "t0ken-pw");
            client.head_blob(repo, layer_digest, &bob).await.unwrap();
            assert_eq!((first.count(), second.count()), (1, 0), "{driver}");

            drop(registry);
            let _registry = Registry::start(on.on_port(port).with_token(&second)).unwrap();
            let head = client.head_blob(repo, layer_digest, &bob).await.unwrap();
            assert_eq!(head.length, Some(image.layer.len() as u64));
            assert_eq!((first.count(), second.count()), (1, 1), "{driver}");
            client.head_blob(repo, layer_digest, &bob).await.unwrap();
            assert_eq!(second.count(), 1, "{driver}: new token not kept");
        }
    });
}
