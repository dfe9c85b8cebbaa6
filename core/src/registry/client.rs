//! [`RegistryClient`]: blob and manifest reads against one registry, and
//! the auth dance around each request.
//!
//! Every operation goes through one private `send`, which decides
//! which `Authorization` to send (the caller's own; a cached token; a token
//! fetched ahead because the registry is known to want one; Basic; or
//! nothing) and what to do with a 401 (fetch a token, or try Basic, once).
//! The operations then turn statuses into answers or [`RegistryError`]s.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bay_httpd::client::{Client, Request, Response, ResponseBody, Url};
use bay_wire::oci::{
    manifest::MAX_MANIFEST_SIZE, parse_www_authenticate, AuthChallenge, BearerChallenge, Digest,
    DigestVerifier, Reference, RepositoryName, TokenResponse,
};
use bytes::Bytes;

use super::cache::{AccessKey, BearerToken, TokenKey};
use super::config::{RegistryConfig, Upstream};
use super::credentials::Auth;
use super::error::{ChallengeProblem, RegistryError};
use super::range::{decimal, ByteRange, ContentRange};
use super::{lock, Learned, Registries, Shared};

/// Most bytes of an error page read to keep its connection for reuse.
const ERROR_BODY_DRAIN: usize = 64 * 1024;

/// Longest token lifetime believed, whatever the server says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A client for one registry on the current thread. Cheap to clone.
#[derive(Clone)]
pub struct RegistryClient {
    upstream: Upstream,
    http: Client,
    shared: Arc<Shared>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.upstream.name())
            .field("base", &self.upstream.base())
            .finish_non_exhaustive()
    }
}

/// What a blob HEAD said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHead {
    /// The blob's length, from `Content-Length`.
    pub length: Option<u64>,
    /// `Docker-Content-Digest`, if sent and valid.
    pub digest: Option<Digest>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
}

/// A blob read whose head has arrived (200 or 206); the body streams on
/// demand and is never held whole.
#[derive(Debug)]
pub struct BlobResponse {
    status: u16,
    content_length: Option<u64>,
    content_range: Option<ContentRange>,
    digest: Option<Digest>,
    content_type: Option<String>,
    body: ResponseBody,
}

impl BlobResponse {
    /// 200 (the whole blob) or 206 (the range in
    /// [`content_range`](Self::content_range)). A ranged request may get
    /// 200: the server then sent the whole blob.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Bytes in this body, when declared.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The range sent, for a 206.
    pub fn content_range(&self) -> Option<ContentRange> {
        self.content_range
    }

    /// `Docker-Content-Digest`, if sent and valid.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `Content-Type`, if sent.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// The next piece of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, bay_httpd::client::Error> {
        self.body.chunk().await
    }

    /// The body, to relay elsewhere.
    pub fn into_body(self) -> ResponseBody {
        self.body
    }
}

/// What a manifest HEAD said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Content-Type`: the manifest's media type.
    pub media_type: Option<String>,
    /// `Docker-Content-Digest`, if sent and valid.
    pub digest: Option<Digest>,
    /// `Content-Length`.
    pub length: Option<u64>,
}

/// A manifest read whole (they are small and bounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestResponse {
    /// `Content-Type`: the manifest's media type.
    pub media_type: Option<String>,
    /// The digest of `body`, checked against the reference when it is a
    /// digest and against `Docker-Content-Digest` when sent.
    pub digest: Digest,
    /// The manifest's bytes, exactly as served.
    pub body: Bytes,
}

/// What kind of credential a request carried, to decide what a 401 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Nothing,
    CachedToken,
    FreshToken,
    Basic,
}

/// One operation's context: what it is about, for errors and scopes.
struct Op<'a> {
    what: String,
    repo: &'a RepositoryName,
}

impl RegistryClient {
    /// A client with its own TLS set-up, caches and connection pool; for a
    /// program talking to one registry from one thread. Programs with
    /// several workers share a [`Registries`] instead.
    pub fn new(name: &str, config: RegistryConfig) -> Result<RegistryClient, RegistryError> {
        let registries = Registries::new(config)?;
        let http = registries.http_client();
        registries.client(name, &http)
    }

    pub(crate) fn from_parts(upstream: Upstream, http: Client, shared: Arc<Shared>) -> Self {
        RegistryClient {
            upstream,
            http,
            shared,
        }
    }

    /// The registry's name (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        self.upstream.name()
    }

    /// The registry's name and API URL.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// HEAD of a blob: whether it exists for these credentials, and its
    /// length.
    pub async fn head_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: &Auth,
    ) -> Result<BlobHead, RegistryError> {
        let op = Op {
            what: format!("blob {digest} in {repo}"),
            repo,
        };
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self.send(&op, "HEAD", &path, Vec::new(), auth).await?;
        let resp = self.expect(&op, resp, &[200]).await?;
        Ok(BlobHead {
            length: declared_length(&resp, &op, self.registry())?,
            digest: header_digest(&resp),
            content_type: header_string(&resp, "content-type"),
        })
    }

    /// GET of a blob, whole or one range, streamed: the caller relays or
    /// stores the body. Anything but 200 or 206 is an error carrying the
    /// status, so an error page is never taken for blob bytes. The bytes
    /// are not checked here: see [`RegistryClient::fetch_blob_verified`].
    pub async fn get_blob(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        range: Option<ByteRange>,
        auth: &Auth,
    ) -> Result<BlobResponse, RegistryError> {
        let op = Op {
            what: format!("blob {digest} in {repo}"),
            repo,
        };
        let path = format!("/v2/{repo}/blobs/{digest}");
        let headers = range
            .iter()
            .map(|r| ("Range".to_owned(), r.header_value().into_bytes()))
            .collect();
        let resp = self.send(&op, "GET", &path, headers, auth).await?;
        let resp = self.expect(&op, resp, &[200, 206]).await?;
        let content_range = if resp.status() == 206 {
            let bad = |header| RegistryError::BadHeader {
                registry: self.registry().to_owned(),
                what: op.what.clone(),
                header,
            };
            let value = resp.header("content-range").ok_or(bad("Content-Range"))?;
            let parsed =
                ContentRange::parse(value).map_err(|source| RegistryError::ContentRange {
                    registry: self.registry().to_owned(),
                    what: op.what.clone(),
                    source,
                })?;
            let starts_right = match (parsed, range) {
                (ContentRange::Bytes { first, .. }, Some(asked)) => first == asked.start,
                _ => false,
            };
            if !starts_right {
                return Err(bad("Content-Range"));
            }
            Some(parsed)
        } else {
            None
        };
        Ok(BlobResponse {
            status: resp.status(),
            content_length: resp.content_length(),
            content_range,
            digest: header_digest(&resp),
            content_type: header_string(&resp, "content-type"),
            body: resp.into_parts().1,
        })
    }

    /// HEAD of a manifest, with every `accept` value sent as its own
    /// `Accept` field, in order.
    pub async fn head_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        accept: &[String],
        auth: &Auth,
    ) -> Result<ManifestHead, RegistryError> {
        let op = Op {
            what: format!("manifest {reference} in {repo}"),
            repo,
        };
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self
            .send(&op, "HEAD", &path, accept_headers(accept), auth)
            .await?;
        let resp = self.expect(&op, resp, &[200]).await?;
        Ok(ManifestHead {
            media_type: header_string(&resp, "content-type"),
            digest: header_digest(&resp),
            length: declared_length(&resp, &op, self.registry())?,
        })
    }

    /// GET of a manifest, with every `accept` value sent as its own
    /// `Accept` field, in order (distribution answers 404 to an OCI
    /// manifest asked for with Docker media types only). The body is read
    /// whole, at most [`MAX_MANIFEST_SIZE`] bytes, and its digest checked.
    pub async fn get_manifest(
        &self,
        repo: &RepositoryName,
        reference: &Reference,
        accept: &[String],
        auth: &Auth,
    ) -> Result<ManifestResponse, RegistryError> {
        let op = Op {
            what: format!("manifest {reference} in {repo}"),
            repo,
        };
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self
            .send(&op, "GET", &path, accept_headers(accept), auth)
            .await?;
        let resp = self.expect(&op, resp, &[200]).await?;
        let media_type = header_string(&resp, "content-type");
        let claimed = header_digest(&resp);
        let body = resp
            .bytes(MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| RegistryError::from_http(self.registry(), &op.what, e))?;
        // The reference pins the content when it is a digest; otherwise the
        // registry's claim is checked, and sha256 is the default.
        let expected = reference
            .digest()
            .cloned()
            .or(claimed)
            .unwrap_or_else(|| Digest::sha256_of(&body));
        let mut verifier = DigestVerifier::new(&expected);
        verifier.update(&body);
        let digest = verifier
            .finish()
            .map_err(|source| RegistryError::DigestMismatch {
                registry: self.registry().to_owned(),
                what: op.what.clone(),
                source,
            })?;
        Ok(ManifestResponse {
            media_type,
            digest,
            body,
        })
    }

    /// Whether `auth` may read the blob, by a HEAD with those credentials;
    /// the answer is kept for [`RegistryConfig::access_ttl`] by registry,
    /// repository, digest and credential. A refusal (401, 403, 404) is a
    /// `false` answer; a registry that cannot answer is an error, not kept,
    /// and the caller decides (see [`RegistryError::should_fall_back`]).
    pub async fn check_access(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: &Auth,
    ) -> Result<bool, RegistryError> {
        let key = AccessKey {
            registry: self.registry().to_owned(),
            repository: repo.as_str().to_owned(),
            digest: digest.clone(),
            credential: auth.id(),
        };
        if let Some(answer) = lock(&self.shared.access).get(&key, Instant::now()) {
            return Ok(answer);
        }
        let answer = match self.head_blob(repo, digest, auth).await {
            Ok(_) => true,
            Err(e) if e.is_refusal() => false,
            Err(e) => return Err(e),
        };
        lock(&self.shared.access).insert(key, answer, Instant::now());
        Ok(answer)
    }

    /// Sends one request with the right credentials, answering one 401
    /// with a token or Basic credentials when `auth` lets this client do
    /// so. A 401 that stands is returned as [`RegistryError::Unauthorized`];
    /// every other status is the caller's to read.
    async fn send(
        &self,
        op: &Op<'_>,
        method: &str,
        path: &str,
        headers: Vec<(String, Vec<u8>)>,
        auth: &Auth,
    ) -> Result<Response, RegistryError> {
        let url = self.upstream.url(path)?;
        if let Auth::Passthrough(value) = auth {
            let resp = self
                .exchange(op, method, &url, &headers, Some(value.as_bytes().to_vec()))
                .await?;
            return self.unless_unauthorized(op, resp).await;
        }
        let key = TokenKey {
            registry: self.registry().to_owned(),
            scope: format!("repository:{}:pull", op.repo),
            credential: auth.id(),
        };
        let (mut sent, mut authorization) = self.first_credential(op, &key, auth).await?;
        loop {
            let resp = self
                .exchange(op, method, &url, &headers, authorization.clone())
                .await?;
            if resp.status() != 401 {
                return Ok(resp);
            }
            let challenge = challenge_text(&resp);
            drain(resp).await;
            let unauthorized = || RegistryError::Unauthorized {
                registry: self.registry().to_owned(),
                what: op.what.clone(),
                challenge: challenge.clone(),
            };
            match sent {
                Sent::FreshToken | Sent::Basic => return Err(unauthorized()),
                Sent::CachedToken => lock(&self.shared.tokens).remove(&key),
                Sent::Nothing => {}
            }
            let learned = match &challenge {
                Some(text) => self.learn(op, text)?,
                None => None,
            };
            match (learned, auth) {
                (Some(Learned::Bearer(bearer)), _) => {
                    let token = self.token(op, &bearer, &key, auth, &challenge).await?;
                    authorization = Some(token.header_value());
                    sent = Sent::FreshToken;
                }
                (Some(Learned::Basic), Auth::Basic(credentials)) => {
                    authorization = Some(credentials.header_value());
                    sent = Sent::Basic;
                }
                _ => return Err(unauthorized()),
            }
        }
    }

    /// What to send first: a cached token; else a token fetched ahead when
    /// the registry is known to want one; else Basic when it is known to
    /// take that; else nothing, and see what the registry says.
    async fn first_credential(
        &self,
        op: &Op<'_>,
        key: &TokenKey,
        auth: &Auth,
    ) -> Result<(Sent, Option<Vec<u8>>), RegistryError> {
        if let Some(token) = lock(&self.shared.tokens).get(key, Instant::now()) {
            return Ok((Sent::CachedToken, Some(token.header_value())));
        }
        let learned = lock(&self.shared.learned).get(self.registry()).cloned();
        match (learned, auth) {
            (Some(Learned::Bearer(bearer)), _) => {
                // No 401 was seen this time; a refusal carries the
                // challenge the registry would have sent.
                let challenge = AuthChallenge::Bearer(BearerChallenge {
                    scope: Some(key.scope.clone()),
                    error: None,
                    ..bearer.clone()
                });
                let challenge = Some(challenge.to_string());
                let token = self.token(op, &bearer, key, auth, &challenge).await?;
                Ok((Sent::FreshToken, Some(token.header_value())))
            }
            (Some(Learned::Basic), Auth::Basic(credentials)) => {
                Ok((Sent::Basic, Some(credentials.header_value())))
            }
            _ => Ok((Sent::Nothing, None)),
        }
    }

    /// Reads a challenge and remembers the scheme it asks for.
    fn learn(&self, op: &Op<'_>, text: &str) -> Result<Option<Learned>, RegistryError> {
        let challenges =
            parse_www_authenticate(text.as_bytes()).map_err(|e| RegistryError::Challenge {
                registry: self.registry().to_owned(),
                what: op.what.clone(),
                reason: ChallengeProblem::Syntax(e),
            })?;
        let bearer = challenges.iter().find_map(|c| match c {
            AuthChallenge::Bearer(b) => Some(Learned::Bearer(b.clone())),
            _ => None,
        });
        let basic = || {
            challenges
                .iter()
                .any(|c| matches!(c, AuthChallenge::Basic { .. }))
                .then_some(Learned::Basic)
        };
        let learned = bearer.or_else(basic);
        if let Some(l) = &learned {
            lock(&self.shared.learned).insert(self.registry().to_owned(), l.clone());
        }
        Ok(learned)
    }

    /// Fetches a token for `key.scope` from the challenge's realm, with
    /// Basic credentials when `auth` has them, and caches it.
    async fn token(
        &self,
        op: &Op<'_>,
        bearer: &BearerChallenge,
        key: &TokenKey,
        auth: &Auth,
        challenge: &Option<String>,
    ) -> Result<BearerToken, RegistryError> {
        let registry = || self.registry().to_owned();
        let what = || format!("a token for {}", key.scope);
        // A challenge scoped to another repository (a stale one learned
        // earlier) must not widen what is asked for.
        let scoped = BearerChallenge {
            scope: None,
            error: None,
            ..bearer.clone()
        };
        let url = Url::parse(&scoped.token_url(&[key.scope.as_str()])).map_err(|_| {
            RegistryError::Challenge {
                registry: registry(),
                what: op.what.clone(),
                reason: ChallengeProblem::Realm,
            }
        })?;
        let mut request = Request::get(url);
        if let Auth::Basic(credentials) = auth {
            request = request.header("Authorization", credentials.header_value());
        }
        tracing::debug!(registry = self.registry(), scope = %key.scope, "fetching a registry token");
        let resp = self
            .http
            .send(request)
            .await
            .map_err(|e| RegistryError::from_http(self.registry(), &what(), e))?;
        match resp.status() {
            200 => {}
            401 | 403 => {
                drain(resp).await;
                return Err(RegistryError::Unauthorized {
                    registry: registry(),
                    what: what(),
                    challenge: challenge.clone(),
                });
            }
            status => {
                drain(resp).await;
                return Err(RegistryError::TokenServer {
                    registry: registry(),
                    what: what(),
                    status,
                });
            }
        }
        let body = resp
            .bytes(bay_wire::oci::auth::MAX_TOKEN_RESPONSE_LEN)
            .await
            .map_err(|e| RegistryError::from_http(self.registry(), &what(), e))?;
        let answer = TokenResponse::parse(&body).map_err(|source| RegistryError::Token {
            registry: registry(),
            what: what(),
            source,
        })?;
        let token = BearerToken::new(answer.bearer_token().unwrap_or_default());
        let lifetime = Duration::from_secs(answer.lifetime_secs()).min(MAX_TOKEN_LIFETIME);
        lock(&self.shared.tokens).insert(key.clone(), token.clone(), lifetime, Instant::now());
        Ok(token)
    }

    /// One request (redirects followed by the HTTP client, which drops
    /// `Authorization` when the origin changes).
    async fn exchange(
        &self,
        op: &Op<'_>,
        method: &str,
        url: &Url,
        headers: &[(String, Vec<u8>)],
        authorization: Option<Vec<u8>>,
    ) -> Result<Response, RegistryError> {
        let mut request = Request::new(method, url.clone()).headers(headers.iter().cloned());
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        self.http
            .send(request)
            .await
            .map_err(|e| RegistryError::from_http(self.registry(), &op.what, e))
    }

    /// Turns a 401 into [`RegistryError::Unauthorized`] with the challenge.
    async fn unless_unauthorized(
        &self,
        op: &Op<'_>,
        resp: Response,
    ) -> Result<Response, RegistryError> {
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = challenge_text(&resp);
        drain(resp).await;
        Err(RegistryError::Unauthorized {
            registry: self.registry().to_owned(),
            what: op.what.clone(),
            challenge,
        })
    }

    /// Passes a response with one of the `ok` statuses; turns any other
    /// into the matching error.
    async fn expect(
        &self,
        op: &Op<'_>,
        resp: Response,
        ok: &[u16],
    ) -> Result<Response, RegistryError> {
        let status = resp.status();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let challenge = challenge_text(&resp);
        drain(resp).await;
        let registry = self.registry().to_owned();
        let what = op.what.clone();
        Err(match status {
            401 => RegistryError::Unauthorized {
                registry,
                what,
                challenge,
            },
            403 => RegistryError::Denied { registry, what },
            404 => RegistryError::NotFound { registry, what },
            416 => RegistryError::RangeNotSatisfiable { registry, what },
            status => RegistryError::Status {
                registry,
                what,
                status,
            },
        })
    }
}

/// Reads and drops a small error body so the connection can be reused.
async fn drain(resp: Response) {
    let _ = resp.bytes(ERROR_BODY_DRAIN).await;
}

/// Every `WWW-Authenticate` value joined into one list, as HTTP allows.
fn challenge_text(resp: &Response) -> Option<String> {
    let values: Vec<String> = resp
        .head()
        .headers_named("www-authenticate")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn accept_headers(accept: &[String]) -> Vec<(String, Vec<u8>)> {
    accept
        .iter()
        .map(|a| ("Accept".to_owned(), a.as_bytes().to_vec()))
        .collect()
}

fn header_string(resp: &Response, name: &str) -> Option<String> {
    resp.header(name)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|s| s.trim().to_owned())
}

fn header_digest(resp: &Response) -> Option<Digest> {
    header_string(resp, "docker-content-digest").and_then(|s| Digest::parse(&s).ok())
}

/// `Content-Length` as a header (a HEAD response has no body to frame, so
/// the framing says 0).
fn declared_length(
    resp: &Response,
    op: &Op<'_>,
    registry: &str,
) -> Result<Option<u64>, RegistryError> {
    resp.header("content-length")
        .map(|v| {
            decimal(v.trim_ascii()).map_err(|_| RegistryError::BadHeader {
                registry: registry.to_owned(),
                what: op.what.clone(),
                header: "Content-Length",
            })
        })
        .transpose()
}
