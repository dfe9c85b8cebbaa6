//! `WWW-Authenticate` challenges and the registry token exchange.
//!
//! A registry answers an unauthenticated request with `401` and one or more
//! challenges (RFC 9110 §11.6.1): `Basic realm="..."`, or `Bearer
//! realm="...",service="...",scope="..."`, which sends the client to a token
//! server first. This module parses the header by the RFC's grammar (tokens,
//! quoted strings with `\` escapes, token68, lists with empty elements),
//! builds the token request URL for a Bearer challenge, and reads the token
//! server's JSON answer.
//!
//! The token answer is a credential: its `Debug` never shows the token, and
//! nothing here logs. Challenges hold no secrets, but a realm URL could
//! carry `user:password@`, so their `Debug` hides URL user info too.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest header value parsed.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// Most challenges read from one header value.
pub const MAX_CHALLENGES: usize = 16;

/// Most parameters read in one challenge.
pub const MAX_PARAMS: usize = 32;

/// Largest token server answer read.
pub const MAX_TOKEN_RESPONSE_LEN: usize = 1024 * 1024;

/// One challenge as the grammar sees it, whatever its scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as written (compare it case-insensitively).
    pub scheme: String,
    /// The token68 form of the challenge's data, when it uses that form.
    pub token68: Option<String>,
    /// The auth-params, names lowercased, values unquoted, in order.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of a parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Challenge {
    /// The challenge in header form; every value is written as a quoted
    /// string, which the grammar allows for every parameter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(t) = &self.token68 {
            return write!(f, " {t}");
        }
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{name}=")?;
            write_quoted(f, value)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<(&str, String)> = self
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), redact_userinfo(v)))
            .collect();
        f.debug_struct("Challenge")
            .field("scheme", &self.scheme)
            .field("token68", &self.token68.as_ref().map(|_| "<redacted>"))
            .field("params", &params)
            .finish()
    }
}

/// A Bearer challenge: where to get a token, and for what.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    /// URL of the token server.
    pub realm: String,
    /// The service the token is for.
    pub service: Option<String>,
    /// The access asked for, space-separated scopes such as
    /// `repository:library/ubuntu:pull`.
    pub scope: Option<String>,
    /// Why an earlier token was refused (`insufficient_scope`, ...).
    pub error: Option<String>,
}

impl BearerChallenge {
    /// The challenge's scopes, one by one.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
    }

    /// The scheme and `host[:port]` of the realm, when it is a plain
    /// `http` or `https` URL (no user info), so that a caller can check
    /// the token server against the hosts it may contact before sending it
    /// anyone's credentials. `None` for anything else.
    pub fn realm_origin(&self) -> Option<(&str, &str)> {
        let (scheme, rest) = self.realm.split_once("://")?;
        if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest.get(..end)?;
        let valid = !authority.is_empty()
            && authority.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        valid.then_some((scheme, authority))
    }

    /// The query string of a token request: `service=...` then one
    /// `scope=...` per scope, the challenge's own first, then `extra`
    /// (each at most once), all percent-encoded.
    pub fn token_query(&self, extra_scopes: &[&str]) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = &self.service {
            pairs.push(("service", service));
        }
        let mut seen: Vec<&str> = Vec::new();
        for scope in self.scopes().chain(extra_scopes.iter().copied()) {
            if !scope.is_empty() && !seen.contains(&scope) {
                seen.push(scope);
                pairs.push(("scope", scope));
            }
        }
        let mut query = String::new();
        for (name, value) in pairs {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(name);
            query.push('=');
            percent_encode_into(&mut query, value);
        }
        query
    }

    /// The URL to GET a token from: the realm with [`token_query`]
    /// appended (after `&` if the realm already has a query).
    ///
    /// [`token_query`]: BearerChallenge::token_query
    pub fn token_url(&self, extra_scopes: &[&str]) -> String {
        let query = self.token_query(extra_scopes);
        let realm = self
            .realm
            .split_once('#')
            .map_or(self.realm.as_str(), |(r, _)| r);
        if query.is_empty() {
            return realm.to_owned();
        }
        let joiner = match realm.contains('?') {
            true if realm.ends_with('?') || realm.ends_with('&') => "",
            true => "&",
            false => "?",
        };
        format!("{realm}{joiner}{query}")
    }

    fn to_challenge(&self) -> Challenge {
        let mut params = vec![("realm".to_owned(), self.realm.clone())];
        for (name, value) in [
            ("service", &self.service),
            ("scope", &self.scope),
            ("error", &self.error),
        ] {
            if let Some(v) = value {
                params.push((name.to_owned(), v.clone()));
            }
        }
        Challenge {
            scheme: "Bearer".to_owned(),
            token68: None,
            params,
        }
    }
}

impl fmt::Debug for BearerChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerChallenge")
            .field("realm", &redact_userinfo(&self.realm))
            .field("service", &self.service)
            .field("scope", &self.scope)
            .field("error", &self.error)
            .finish()
    }
}

/// A challenge, typed for the schemes registries use.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthChallenge {
    /// `Basic realm="..."`: send `Authorization: Basic` credentials.
    Basic {
        /// The protection space.
        realm: String,
    },
    /// `Bearer realm=...`: fetch a token from the realm first.
    Bearer(BearerChallenge),
    /// Any other scheme, or Basic/Bearer without the realm they need.
    Other(Challenge),
}

impl AuthChallenge {
    fn from_challenge(c: Challenge) -> AuthChallenge {
        let realm = c.param("realm").map(str::to_owned);
        match realm {
            Some(realm) if c.scheme.eq_ignore_ascii_case("basic") => AuthChallenge::Basic { realm },
            Some(realm) if c.scheme.eq_ignore_ascii_case("bearer") => {
                let owned = |name: &str| c.param(name).map(str::to_owned);
                AuthChallenge::Bearer(BearerChallenge {
                    realm,
                    service: owned("service"),
                    scope: owned("scope"),
                    error: owned("error"),
                })
            }
            _ => AuthChallenge::Other(c),
        }
    }

    /// The generic form, for writing the challenge back out.
    pub fn to_challenge(&self) -> Challenge {
        match self {
            AuthChallenge::Basic { realm } => Challenge {
                scheme: "Basic".to_owned(),
                token68: None,
                params: vec![("realm".to_owned(), realm.clone())],
            },
            AuthChallenge::Bearer(b) => b.to_challenge(),
            AuthChallenge::Other(c) => c.clone(),
        }
    }
}

impl fmt::Display for AuthChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_challenge().fmt(f)
    }
}

impl fmt::Debug for AuthChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthChallenge::Basic { realm } => f
                .debug_struct("Basic")
                .field("realm", &redact_userinfo(realm))
                .finish(),
            AuthChallenge::Bearer(b) => b.fmt(f),
            AuthChallenge::Other(c) => c.fmt(f),
        }
    }
}

/// Why a header value is not a list of challenges.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The value is longer than [`MAX_HEADER_LEN`].
    #[error("WWW-Authenticate value is {len} bytes, more than {MAX_HEADER_LEN}")]
    TooLong {
        /// Length of the value.
        len: usize,
    },
    /// The value holds no challenge.
    #[error("WWW-Authenticate value holds no challenge")]
    Empty,
    /// More than [`MAX_CHALLENGES`] challenges.
    #[error("WWW-Authenticate value has more than {MAX_CHALLENGES} challenges")]
    TooManyChallenges,
    /// More than [`MAX_PARAMS`] parameters in one challenge.
    #[error("challenge has more than {MAX_PARAMS} parameters")]
    TooManyParams,
    /// A parameter appears twice in one challenge.
    #[error("challenge repeats parameter {0:?}")]
    DuplicateParam(String),
    /// The grammar wanted something else here.
    #[error("WWW-Authenticate syntax error at offset {offset}: expected {expected}")]
    Syntax {
        /// Offset in the value.
        offset: usize,
        /// What the grammar wanted.
        expected: &'static str,
    },
    /// A value is not UTF-8 (obs-text that is not UTF-8).
    #[error("challenge parameter value is not UTF-8")]
    NotUtf8,
}

/// Parses a `WWW-Authenticate` header value into its challenges.
///
/// Several header lines may be joined with `,` before parsing, as HTTP
/// allows for list-valued fields.
pub fn parse_www_authenticate(value: &[u8]) -> Result<Vec<AuthChallenge>, AuthError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(AuthError::TooLong { len: value.len() });
    }
    let mut cursor = Cursor { s: value, pos: 0 };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_list_separators();
        if cursor.at_end() {
            break;
        }
        if challenges.len() == MAX_CHALLENGES {
            return Err(AuthError::TooManyChallenges);
        }
        let challenge = cursor.challenge()?;
        challenges.push(AuthChallenge::from_challenge(challenge));
    }
    if challenges.is_empty() {
        return Err(AuthError::Empty);
    }
    Ok(challenges)
}

/// A read position in a header value.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn syntax(&self, expected: &'static str) -> AuthError {
        AuthError::Syntax {
            offset: self.pos,
            expected,
        }
    }

    /// Skips spaces and tabs; returns how many.
    fn skip_ows(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Skips whitespace and the empty list elements the `#` rule allows.
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    fn token(&mut self) -> &'a [u8] {
        self.take_while(is_tchar)
    }

    /// One challenge, with the cursor at its scheme.
    fn challenge(&mut self) -> Result<Challenge, AuthError> {
        let scheme = self.token();
        if scheme.is_empty() {
            return Err(self.syntax("an auth-scheme token"));
        }
        let mut challenge = Challenge {
            scheme: ascii(scheme),
            token68: None,
            params: Vec::new(),
        };
        let spaced = self.skip_ows() > 0;
        if self.at_end() || self.peek() == Some(b',') {
            return Ok(challenge);
        }
        if !spaced {
            return Err(self.syntax("a space after the auth-scheme"));
        }
        if let Some(token68) = self.token68() {
            challenge.token68 = Some(token68);
            return Ok(challenge);
        }
        loop {
            self.param(&mut challenge)?;
            self.skip_ows();
            if self.at_end() {
                return Ok(challenge);
            }
            if self.peek() != Some(b',') {
                return Err(self.syntax("',' between parameters"));
            }
            self.skip_list_separators();
            if self.at_end() || !self.param_follows() {
                return Ok(challenge);
            }
        }
    }

    /// A token68 ending the challenge, if that is what comes next; the
    /// cursor is left unmoved if not.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        let body = self.take_while(is_token68_char);
        if !body.is_empty() {
            self.take_while(|b| b == b'=');
            let end = self.pos;
            self.skip_ows();
            if self.at_end() || self.peek() == Some(b',') {
                return self.s.get(start..end).map(ascii);
            }
        }
        self.pos = start;
        None
    }

    /// Whether the next list element is `name=...` (a parameter of the
    /// current challenge) rather than the scheme of a new one.
    fn param_follows(&mut self) -> bool {
        let start = self.pos;
        let name = self.token();
        self.skip_ows();
        let follows = !name.is_empty() && self.peek() == Some(b'=');
        self.pos = start;
        follows
    }

    fn param(&mut self, challenge: &mut Challenge) -> Result<(), AuthError> {
        let name = self.token();
        if name.is_empty() {
            return Err(self.syntax("a parameter name"));
        }
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Err(self.syntax("'=' after the parameter name"));
        }
        self.pos += 1;
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            let token = self.token();
            if token.is_empty() {
                return Err(self.syntax("a token or quoted-string value"));
            }
            ascii(token)
        };
        let name = ascii(name).to_ascii_lowercase();
        if challenge.params.iter().any(|(n, _)| *n == name) {
            return Err(AuthError::DuplicateParam(name));
        }
        if challenge.params.len() == MAX_PARAMS {
            return Err(AuthError::TooManyParams);
        }
        challenge.params.push((name, value));
        Ok(())
    }

    /// A quoted-string, unescaped, with the cursor at its opening quote.
    fn quoted_string(&mut self) -> Result<String, AuthError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.syntax("a closing '\"'"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return String::from_utf8(out).map_err(|_| AuthError::NotUtf8);
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(e)
                            if e == b'\t'
                                || e == b' '
                                || (0x21..=0x7e).contains(&e)
                                || e >= 0x80 =>
                        {
                            out.push(e);
                            self.pos += 1;
                        }
                        _ => return Err(self.syntax("an escapable byte after '\\'")),
                    }
                }
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => {
                    out.push(b);
                    self.pos += 1;
                }
                _ => return Err(self.syntax("a quoted-string byte (no control characters)")),
            }
        }
    }
}

/// Text of bytes already checked to be ASCII token characters.
fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// Appends `value` percent-encoded: everything but RFC 3986 unreserved
/// characters is escaped.
fn percent_encode_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// `scheme://user:pass@host/...` with the user info hidden; other text as is.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..authority_end).unwrap_or_default();
    match authority.rfind('@') {
        Some(at) => format!(
            "{scheme}://<redacted>@{}",
            rest.get(at + 1..).unwrap_or_default()
        ),
        None => url.to_owned(),
    }
}

/// A token server's answer to a token request.
///
/// Holds a credential: `Debug` hides it, and it has no `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token (Docker's field name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The bearer token (OAuth 2's field name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Seconds the token is valid for from `issued_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// When the token was issued (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// A token to get further tokens with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Token servers must assume this lifetime when `expires_in` is absent.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 60;

/// Why a token server's answer is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The answer is larger than [`MAX_TOKEN_RESPONSE_LEN`].
    #[error("token response is {len} bytes, more than {MAX_TOKEN_RESPONSE_LEN}")]
    TooLarge {
        /// Size of the answer.
        len: usize,
    },
    /// The answer is not the expected JSON (the JSON error is not kept:
    /// it could quote the token).
    #[error("token response is not valid JSON")]
    Json,
    /// Neither `token` nor `access_token` is present and non-empty.
    #[error("token response has no token")]
    NoToken,
    /// The token has bytes that cannot go in an `Authorization` header.
    #[error("token has bytes not allowed in a header value")]
    BadToken,
}

impl TokenResponse {
    /// Parses and checks a token server's JSON answer.
    pub fn parse(body: &[u8]) -> Result<TokenResponse, TokenError> {
        if body.len() > MAX_TOKEN_RESPONSE_LEN {
            return Err(TokenError::TooLarge { len: body.len() });
        }
        let response: TokenResponse = serde_json::from_slice(body).map_err(|_| TokenError::Json)?;
        let token = response.bearer_token().ok_or(TokenError::NoToken)?;
        if !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(TokenError::BadToken);
        }
        Ok(response)
    }

    /// The token to send as `Authorization: Bearer <token>`.
    pub fn bearer_token(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|t| !t.is_empty())
    }

    /// Seconds the token may be used for.
    pub fn lifetime_secs(&self) -> u64 {
        self.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS)
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |t: &Option<String>| t.as_ref().map(|_| "<redacted>");
        f.debug_struct("TokenResponse")
            .field("token", &hidden(&self.token))
            .field("access_token", &hidden(&self.access_token))
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
            .field("refresh_token", &hidden(&self.refresh_token))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bearer(v: &str) -> BearerChallenge {
        match parse_www_authenticate(v.as_bytes()).unwrap().remove(0) {
            AuthChallenge::Bearer(b) => b,
            other => panic!("not bearer: {other:?}"),
        }
    }

    #[test]
    fn docker_token_spec_example() {
        let b = bearer(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(b.realm, "https://auth.docker.io/token");
        assert_eq!(b.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            b.token_url(&[]),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Asamalba%2Fmy-app%3Apull%2Cpush"
        );
    }

    /// Challenges as sent by CNCF distribution 2.8 with token and htpasswd
    /// auth configured.
    #[test]
    fn challenges_sent_by_distribution() {
        let b = bearer(
            r#"Bearer realm="http://127.0.0.1:5999/auth/token?x=1",service="bay-test-registry",scope="repository:test/img:pull,push""#,
        );
        assert_eq!(
            b.scopes().collect::<Vec<_>>(),
            ["repository:test/img:pull,push"]
        );
        assert_eq!(
            b.token_url(&[]),
            "http://127.0.0.1:5999/auth/token?x=1&service=bay-test-registry&scope=repository%3Atest%2Fimg%3Apull%2Cpush"
        );
        assert_eq!(b.realm_origin(), Some(("http", "127.0.0.1:5999")));
        let base = bearer(
            r#"Bearer realm="http://127.0.0.1:5999/auth/token?x=1",service="bay-test-registry""#,
        );
        assert_eq!(base.scope, None);
        assert_eq!(
            parse_www_authenticate(br#"Basic realm="Registry Realm""#),
            Ok(vec![AuthChallenge::Basic {
                realm: "Registry Realm".into()
            }])
        );
    }

    #[test]
    fn rfc_example_with_two_challenges_and_escapes() {
        let v = br#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#;
        let c = parse_www_authenticate(v).unwrap();
        assert_eq!(c.len(), 2);
        let AuthChallenge::Other(newauth) = &c[0] else {
            panic!("{c:?}")
        };
        assert_eq!(newauth.scheme, "Newauth");
        assert_eq!(newauth.param("type"), Some("1"));
        assert_eq!(newauth.param("TITLE"), Some("Login to \"apps\""));
        assert_eq!(
            c[1],
            AuthChallenge::Basic {
                realm: "simple".into()
            }
        );
    }

    #[test]
    fn lenient_where_the_grammar_is() {
        let c = parse_www_authenticate(
            b" , bearer  REALM = \"r\" ,, Service=s ,  Negotiate, Foo abc==",
        )
        .unwrap();
        assert_eq!(c.len(), 3);
        let AuthChallenge::Bearer(b) = &c[0] else {
            panic!("{c:?}")
        };
        assert_eq!((b.realm.as_str(), b.service.as_deref()), ("r", Some("s")));
        let AuthChallenge::Other(n) = &c[1] else {
            panic!("{c:?}")
        };
        assert_eq!((n.scheme.as_str(), n.params.len()), ("Negotiate", 0));
        let AuthChallenge::Other(foo) = &c[2] else {
            panic!("{c:?}")
        };
        assert_eq!(foo.token68.as_deref(), Some("abc=="));
        // Basic without a realm stays generic.
        assert!(matches!(
            parse_www_authenticate(b"Basic charset=\"UTF-8\"").unwrap()[0],
            AuthChallenge::Other(_)
        ));
    }

    #[test]
    fn rejects_hostile_values() {
        use AuthError::*;
        let syntax = |v: &[u8]| matches!(parse_www_authenticate(v), Err(Syntax { .. }));
        assert_eq!(parse_www_authenticate(b""), Err(Empty));
        assert_eq!(parse_www_authenticate(b" , ,"), Err(Empty));
        assert!(syntax(b"Bearer realm=\"unterminated"));
        assert!(syntax(b"Bearer realm=\"a\nb\""));
        assert!(syntax(b"Bearer realm=\"a\0b\""));
        assert!(syntax(b"Bearer realm=\"a\\"));
        assert!(syntax(b"Bearer a=b, c="));
        // `realm=` alone is a valid token68, so it parses, as generic.
        assert!(matches!(
            parse_www_authenticate(b"Bearer realm=").unwrap()[0],
            AuthChallenge::Other(_)
        ));
        assert!(syntax(b"Bearer realm=\"a\" service=\"b\""));
        assert!(syntax(b"Bearer realm=a=b"));
        assert!(syntax(b"\"Bearer\""));
        assert!(syntax(b"Bearer=x"));
        assert!(syntax(b"Bearer \x01"));
        assert_eq!(
            parse_www_authenticate(b"Bearer realm=a, Realm=b"),
            Err(DuplicateParam("realm".into()))
        );
        assert_eq!(
            parse_www_authenticate(b"Bearer realm=\"\xff\""),
            Err(NotUtf8)
        );
        let many = "A, ".repeat(MAX_CHALLENGES + 1);
        assert_eq!(
            parse_www_authenticate(many.as_bytes()),
            Err(TooManyChallenges)
        );
        let params: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        let v = format!("X {}", params.join(","));
        assert_eq!(parse_www_authenticate(v.as_bytes()), Err(TooManyParams));
        let long = vec![b'a'; MAX_HEADER_LEN + 1];
        assert!(matches!(parse_www_authenticate(&long), Err(TooLong { .. })));
    }

    #[test]
    fn realm_origin_only_for_plain_http_urls() {
        let with_realm = |realm: &str| BearerChallenge {
            realm: realm.into(),
            service: None,
            scope: None,
            error: None,
        };
        assert_eq!(
            with_realm("https://auth.docker.io/token").realm_origin(),
            Some(("https", "auth.docker.io"))
        );
        assert_eq!(
            with_realm("http://[::1]:5001?x").realm_origin(),
            Some(("http", "[::1]:5001"))
        );
        for bad in [
            "https://user:pw@auth.example/token",
            "file:///etc/passwd",
            "/token",
            "https:///token",
            "https://a b/",
        ] {
            assert_eq!(with_realm(bad).realm_origin(), None, "{bad}");
        }
    }

    #[test]
    fn token_url_joins_queries_and_scopes() {
        let b = BearerChallenge {
            realm: "https://auth.example/token?x=1#frag".into(),
            service: Some("reg example".into()),
            scope: Some("repository:a:pull  repository:b:pull".into()),
            error: None,
        };
        assert_eq!(
            b.token_url(&["repository:b:pull", "repository:c:pull,push"]),
            "https://auth.example/token?x=1&service=reg%20example&scope=repository%3Aa%3Apull&scope=repository%3Ab%3Apull&scope=repository%3Ac%3Apull%2Cpush"
        );
        let bare = BearerChallenge {
            realm: "https://auth.example/token".into(),
            service: None,
            scope: None,
            error: None,
        };
        assert_eq!(bare.token_url(&[]), "https://auth.example/token");
    }

    #[test]
    fn debug_hides_credentials() {
        let t = TokenResponse::parse(br#"{"token":"s3cr3t","access_token":"s3cr3t2","refresh_token":"r3fr3sh","expires_in":300}"#).unwrap();
        assert_eq!(t.bearer_token(), Some("s3cr3t"));
        assert_eq!(t.lifetime_secs(), 300);
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains("r3fr3sh"), "{dbg}");

        let c = parse_www_authenticate(
            b"Bearer realm=\"https://user:pw@auth.example/t\", Foo c2VjcmV0",
        )
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pw@") && !dbg.contains("c2VjcmV0"), "{dbg}");
        assert!(dbg.contains("auth.example/t"), "{dbg}");
    }

    #[test]
    fn token_response_checks() {
        let only_access = TokenResponse::parse(br#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(only_access.bearer_token(), Some("abc"));
        assert_eq!(only_access.lifetime_secs(), DEFAULT_TOKEN_LIFETIME_SECS);
        assert_eq!(
            TokenResponse::parse(br#"{"token":""}"#),
            Err(TokenError::NoToken)
        );
        assert_eq!(
            TokenResponse::parse(br#"{"token":"a\r\nX: y"}"#),
            Err(TokenError::BadToken)
        );
        assert_eq!(TokenResponse::parse(b"{"), Err(TokenError::Json));
    }

    fn challenge_strategy() -> impl Strategy<Value = AuthChallenge> {
        let value = "[ -~\t\u{80}-\u{10ffff}]{0,12}";
        let name = "[a-z0-9!#$%&'*+.^_`|~-]{1,8}";
        prop_oneof![
            value.prop_map(|realm| AuthChallenge::Basic { realm }),
            (
                value,
                proptest::option::of(value),
                proptest::option::of(value),
                proptest::option::of(value)
            )
                .prop_map(|(realm, service, scope, error)| AuthChallenge::Bearer(
                    BearerChallenge {
                        realm,
                        service,
                        scope,
                        error
                    }
                )),
            (
                "X[a-zA-Z0-9]{0,6}",
                proptest::collection::btree_map(name, value, 0..4)
            )
                .prop_map(|(scheme, params)| {
                    AuthChallenge::Other(Challenge {
                        scheme,
                        token68: None,
                        params: params.into_iter().collect(),
                    })
                }),
            ("X[a-zA-Z0-9]{0,6}", "[a-zA-Z0-9._~+/-]{1,10}={0,2}").prop_map(|(scheme, t)| {
                AuthChallenge::Other(Challenge {
                    scheme,
                    token68: Some(t),
                    params: Vec::new(),
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(challenges in proptest::collection::vec(challenge_strategy(), 1..4)) {
            let header: Vec<String> = challenges.iter().map(ToString::to_string).collect();
            let header = header.join(", ");
            prop_assert_eq!(parse_www_authenticate(header.as_bytes()), Ok(challenges));
        }

        #[test]
        fn parse_never_panics(v in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(c) = parse_www_authenticate(&v) {
                let header: Vec<String> = c.iter().map(ToString::to_string).collect();
                prop_assert_eq!(parse_www_authenticate(header.join(", ").as_bytes()), Ok(c));
            }
        }
    }
}
