//! A small bearer-token server for the registry's token auth, the scheme
//! Docker Hub and most hosted registries use: the registry answers 401 with
//! `WWW-Authenticate: Bearer realm=…`, the client fetches a JWT here with
//! its basic credentials, and retries with it.
//!
//! Tokens are RS256 JWTs signed by a fresh self-signed key (openssl CLI),
//! whose certificate travels in the `x5c` header and is the registry's
//! `rootcertbundle`. A client with the right credentials gets every action
//! it asks for; an anonymous client gets a token granting nothing, so the
//! registry refuses it. Every request is recorded for tests to inspect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use tempfile::TempDir;

use crate::error::{HarnessError, Result};
use crate::process::run;
use crate::registry::Credentials;

/// The `service` (JWT audience) the registry is configured with.
pub const SERVICE: &str = "bay-test-registry";
/// The JWT issuer the registry is configured to trust.
pub const ISSUER: &str = "bay-test-token-issuer";
/// Standard base64 that takes padding or its absence: clients differ.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// How long an issued token is valid.
const TOKEN_LIFETIME_SECS: u64 = 300;
/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One token request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The user of valid basic credentials; `None` for anonymous requests.
    pub user: Option<String>,
    /// Requested scopes (`repository:NAME:ACTIONS`).
    pub scopes: Vec<String>,
    /// Whether credentials were presented and wrong (answered 401).
    pub rejected: bool,
}

/// A running token server; stopped on drop.
#[derive(Debug)]
pub struct TokenServer {
    addr: SocketAddr,
    cert: PathBuf,
    creds: Credentials,
    log: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: TempDir,
}

struct Signer {
    key: PathBuf,
    x5c: String,
    creds: Credentials,
}

impl TokenServer {
    /// Starts a token server on a free 127.0.0.1 port that accepts `creds`.
    pub fn start(creds: Credentials) -> Result<TokenServer> {
        let dir = crate::process::temp_dir("bay-token-")?;
        let key = dir.path().join("token.key");
        let cert = dir.path().join("token.crt");
        run(Command::new("openssl")
            .args(["req", "-x509", "-new", "-nodes", "-days", "3"])
            .args(["-newkey", "rsa:2048", "-subj", "/CN=bay test token signer"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert))?;
        let der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert))?
        .stdout;
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| HarnessError::io("bind token server on", "127.0.0.1", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("read address of", "token server", e))?;
        let signer = Signer {
            key,
            x5c: STANDARD.encode(&der),
            creds: creds.clone(),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || serve(listener, signer, log, stop))
        };
        Ok(TokenServer {
            addr,
            cert,
            creds,
            log,
            stop,
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The signing certificate, the registry's `rootcertbundle`.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// The credentials it accepts.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// How many token requests were served so far, refused ones included:
    /// what a test counts to prove a token was reused, not fetched again.
    pub fn count(&self) -> usize {
        self.log.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// The server's address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Gets a token for `scope` with the accepted credentials, the way a
    /// docker client would, without any bay code in between.
    pub fn fetch_token(&self, scope: &str) -> Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| HarnessError::io("connect to", "token server", e))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| HarnessError::io("set a timeout on", "token server", e))?;
        write!(
            stream,
            "GET /token?service={SERVICE}&scope={scope} HTTP/1.1\r\nHost: {}\r\n\
             Authorization: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            basic_authorization(&self.creds)
        )
        .map_err(|e| HarnessError::io("write to", "token server", e))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| HarnessError::io("read from", "token server", e))?;
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .ok_or_else(|| HarnessError::parse("token answer", "no end of head"))?;
        let value: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| HarnessError::parse("token answer", e.to_string()))?;
        value
            .get("token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| HarnessError::parse("token answer", format!("no token in {body}")))
    }
}

/// The `Authorization` value for basic auth with `creds`, for probes that
/// talk HTTP themselves (kept off command lines).
pub fn basic_authorization(creds: &Credentials) -> String {
    format!("Basic {}", STANDARD.encode(creds.joined()))
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    signer: Signer,
    log: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            handle(stream, &signer, &log);
        }
    }
}

/// Answers one request, and records it in `log` if it asked for a token.
/// The record goes in before the answer goes out, so a client that has its
/// answer always finds its request counted.
fn handle(mut stream: TcpStream, signer: &Signer, log: &Mutex<Vec<TokenRequest>>) {
    let record = |request: TokenRequest| {
        if let Ok(mut l) = log.lock() {
            l.push(request);
        }
    };
    let Some((target, authorization)) = read_head(&stream) else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/token" {
        let _ = respond(&mut stream, "404 Not Found", "{}");
        return;
    }
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "scope")
        .map(|(_, v)| percent_decode(v))
        .collect();
    let presented = authorization.as_deref().and_then(basic_credentials);
    let user = match &presented {
        Some((u, p)) if *u == signer.creds.user && *p == signer.creds.password => Some(u.clone()),
        Some(_) => {
            record(TokenRequest {
                user: None,
                scopes,
                rejected: true,
            });
            let _ = respond(
                &mut stream,
                "401 Unauthorized",
                r#"{"error":"bad credentials"}"#,
            );
            return;
        }
        None => None,
    };
    let body = match sign_token(signer, user.as_deref(), &scopes) {
        Ok(token) => format!(
            "{{\"token\":\"{token}\",\"access_token\":\"{token}\",\"expires_in\":{TOKEN_LIFETIME_SECS}}}"
        ),
        Err(e) => {
            let _ = respond(&mut stream, "500 Internal Server Error", &format!("{e}"));
            return;
        }
    };
    record(TokenRequest {
        user,
        scopes,
        rejected: false,
    });
    let _ = respond(&mut stream, "200 OK", &body);
}

/// Request target and Authorization header of a request head.
fn read_head(stream: &TcpStream) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(stream.take(MAX_HEAD as u64));
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?.to_owned());
    if method != "GET" {
        return None;
    }
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    Some((target, authorization))
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// User and password from `Basic <base64>`.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(LENIENT.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The access a scope grants: the requested actions if the user is known,
/// nothing otherwise.
fn access_entry(scope: &str, user: Option<&str>) -> Option<serde_json::Value> {
    let mut parts = scope.splitn(3, ':');
    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
    let actions: Vec<&str> = match user {
        Some(_) => actions.split(',').filter(|a| !a.is_empty()).collect(),
        None => Vec::new(),
    };
    Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
}

fn sign_token(signer: &Signer, user: Option<&str>, scopes: &[String]) -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| access_entry(s, user))
        .collect();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [signer.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": user.unwrap_or(""),
        "aud": SERVICE,
        "exp": now + TOKEN_LIFETIME_SECS,
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = openssl_sign(&signer.key, input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// RSASSA-PKCS1-v1_5 with SHA-256, as RS256 requires.
fn openssl_sign(key: &Path, data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: "openssl dgst".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(data)
            .map_err(|e| HarnessError::io("write to", "openssl dgst", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("wait for", "openssl dgst", e))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(HarnessError::Failed {
            program: "openssl dgst -sha256 -sign".into(),
            status: out.status,
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_and_scopes_decode() {
        let header = format!("Basic {}", STANDARD.encode("alice:pw:x"));
        assert_eq!(
            basic_credentials(&header),
            Some(("alice".into(), "pw:x".into()))
        );
        assert_eq!(
            percent_decode("repository%3Aa%2Fb%3Apull%2Cpush"),
            "repository:a/b:pull,push"
        );
    }

    #[test]
    fn anonymous_scopes_grant_nothing() {
        let entry = access_entry("repository:a/b:pull", None).expect("entry");
        assert_eq!(entry["actions"], serde_json::json!([]));
        let entry = access_entry("repository:a/b:pull,push", Some("u")).expect("entry");
        assert_eq!(entry["actions"], serde_json::json!(["pull", "push"]));
    }
}
