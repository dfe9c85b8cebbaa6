//! The real upstream registry for end-to-end tests: CNCF distribution
//! (Debian `docker-registry`) on a free 127.0.0.1 port with filesystem
//! storage in a temporary folder, plain HTTP or TLS with a test CA, without auth or
//! with htpasswd basic auth or bearer tokens from a [`TokenServer`].
//!
//! It logs one JSON line per request with the bytes it wrote; [`Registry::requests`]
//! reads them back so tests can prove how often each layer left the registry.
//!
//! Test content goes in with curl ([`Registry::push_blob_bytes`],
//! [`Registry::push_image`]), with the registry's CA and credentials. A
//! registry that demands tokens cannot be pushed to that way: fill a
//! [`Storage`] through a plain registry first ([`Storage::seed`]), then start
//! the authenticating one on it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{HarnessError, Result};
use crate::netns::NetHost;
use crate::process::{command_in, free_port, listening_in, run, Daemon};
use crate::tls::{ServerCert, TestCa};
use crate::token::{self, TokenServer};

/// How long the registry gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Free ports tried before giving up on starting.
const START_ATTEMPTS: u32 = 3;

/// A user name and password for basic auth. Debug never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    /// `user:password`, the form skopeo's `--creds` flags take.
    pub fn joined(&self) -> String {
        format!("{}:{}", self.user, self.password)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// How to run the registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate from a fresh test CA.
    pub tls: bool,
    /// DNS names the server certificate is valid for, besides IP 127.0.0.1.
    pub dns_names: Vec<String>,
    /// Require these credentials (htpasswd, bcrypt).
    pub auth: Option<Credentials>,
    /// Require bearer tokens from this token server instead.
    pub token: Option<TokenAuth>,
    /// Run inside this namespace host, on its address and port
    /// [`NETNS_PORT`], instead of on 127.0.0.1.
    pub on: Option<NetHost>,
    /// Keep blobs in this folder (which outlives the registry) instead of
    /// one of its own.
    pub storage: Option<PathBuf>,
    /// Listen on this 127.0.0.1 port instead of a free one: to start a
    /// registry again where clients already know it.
    pub port: Option<u16>,
}

/// Token auth settings taken from a [`TokenServer`].
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// The token endpoint.
    pub realm: String,
    /// The signing certificate the registry trusts.
    pub cert: PathBuf,
    /// The credentials the token server accepts (what clients present).
    pub creds: Credentials,
}

/// The registry's port when it runs on a namespace host (the namespace is
/// fresh, so any port is free there).
pub const NETNS_PORT: u16 = 5000;

impl RegistryOptions {
    /// Plain HTTP, no auth.
    pub fn plain() -> RegistryOptions {
        RegistryOptions::default()
    }

    /// HTTPS with a test CA, certificate also valid for `dns_names`.
    pub fn tls(dns_names: &[&str]) -> RegistryOptions {
        RegistryOptions {
            tls: true,
            dns_names: dns_names.iter().map(|s| (*s).to_owned()).collect(),
            ..RegistryOptions::default()
        }
    }

    /// Requires bearer tokens issued by `server` (and no htpasswd).
    pub fn with_token(mut self, server: &TokenServer) -> RegistryOptions {
        self.token = Some(TokenAuth {
            realm: server.realm(),
            cert: server.cert().to_owned(),
            creds: server.credentials().clone(),
        });
        self.auth = None;
        self
    }

    /// Runs the registry on namespace host `host` instead of 127.0.0.1.
    pub fn on_host(mut self, host: &NetHost) -> RegistryOptions {
        self.on = Some(host.clone());
        self
    }

    /// Keeps blobs in `storage` (shared with registries before and after).
    pub fn on_storage(mut self, storage: &Storage) -> RegistryOptions {
        self.storage = Some(storage.path().to_owned());
        self
    }

    /// Listens on 127.0.0.1:`port`.
    pub fn on_port(mut self, port: u16) -> RegistryOptions {
        self.port = Some(port);
        self
    }

    /// Adds htpasswd basic auth with these credentials.
    pub fn with_auth(mut self, creds: Credentials) -> RegistryOptions {
        self.auth = Some(creds);
        self.token = None;
        self
    }
}

/// TLS material of a registry started with [`RegistryOptions::tls`].
#[derive(Debug, Clone)]
pub struct RegistryTls {
    /// The test CA.
    pub ca: TestCa,
    /// The registry's certificate and key.
    pub server: ServerCert,
    /// A folder holding only `ca.crt`, the layout skopeo's and podman's
    /// `--cert-dir` and containerd's per-host folders expect.
    pub cert_dir: PathBuf,
}

/// One request as the registry logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Request target (path and query).
    pub uri: String,
    /// Response status.
    pub status: u16,
    /// Response body bytes written.
    pub written: u64,
}

impl RequestRecord {
    /// The digest if this is a request for `/v2/<name>/blobs/<digest>`.
    pub fn blob_digest(&self) -> Option<&str> {
        let path = self.uri.split('?').next()?;
        let rest = path.strip_prefix("/v2/")?;
        let (_, digest) = rest.rsplit_once("/blobs/")?;
        (digest.contains(':') && !digest.contains('/')).then_some(digest)
    }
}

/// The media type of the manifests [`Registry::push_image`] writes.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// An image [`Registry::push_image`] pushed: what tests compare against.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// Repository name.
    pub repo: String,
    /// The layer's bytes.
    pub layer: Vec<u8>,
    /// `sha256:<hex>` of the layer.
    pub layer_digest: String,
    /// `sha256:<hex>` of the config blob.
    pub config_digest: String,
    /// The manifest's bytes, as pushed.
    pub manifest: Vec<u8>,
    /// `sha256:<hex>` of the manifest.
    pub manifest_digest: String,
}

/// A registry storage folder that outlives the registries started on it.
#[derive(Debug)]
pub struct Storage {
    dir: TempDir,
}

impl Storage {
    /// An empty storage folder.
    pub fn new() -> Result<Storage> {
        let dir = crate::process::temp_dir("bay-registry-storage-")?;
        Ok(Storage { dir })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Pushes [`Registry::push_image`]'s image through a plain registry
    /// started on this storage for the purpose and stopped afterwards: the
    /// way to fill a registry that demands credentials.
    pub fn seed(&self, repo: &str, layer_len: usize, seed: u64) -> Result<PushedImage> {
        let open = Registry::start(RegistryOptions::plain().on_storage(self))?;
        open.push_image(repo, layer_len, seed)
    }
}

/// A running registry; stopped and its own storage removed on drop.
#[derive(Debug)]
pub struct Registry {
    daemon: Option<Daemon>,
    ip: Ipv4Addr,
    netns: Option<String>,
    port: u16,
    tls: Option<RegistryTls>,
    auth: Option<Credentials>,
    token_auth: bool,
    config: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry and waits until it listens.
    pub fn start(options: RegistryOptions) -> Result<Registry> {
        let dir = crate::process::temp_dir("bay-registry-")?;
        let root = dir.path();
        let storage = options
            .storage
            .clone()
            .unwrap_or_else(|| root.join("storage"));
        mkdir(&storage)?;
        let ip = options.on.as_ref().map_or(Ipv4Addr::LOCALHOST, |h| h.ip);
        let netns = options.on.as_ref().map(|h| h.netns.clone());
        let tls = match options.tls {
            true => Some(make_tls(root, ip, &options.dns_names)?),
            false => None,
        };
        let auth = match (&options.auth, &options.token) {
            (Some(creds), _) => Some(AuthConfig::Htpasswd(write_htpasswd(root, creds)?)),
            (None, Some(token)) => {
                let cert = root.join("token-signer.crt");
                std::fs::copy(&token.cert, &cert)
                    .map_err(|e| HarnessError::io("copy token certificate to", &cert, e))?;
                Some(AuthConfig::Token {
                    realm: token.realm.clone(),
                    cert,
                })
            }
            (None, None) => None,
        };
        let mut registry = Registry {
            daemon: None,
            ip,
            netns,
            port: NETNS_PORT,
            tls,
            token_auth: options.auth.is_none() && options.token.is_some(),
            auth: options.auth.or(options.token.map(|t| t.creds)),
            config: root.join("config.yml"),
            dir,
        };
        let mut attempt = 1;
        loop {
            if registry.netns.is_none() {
                registry.port = match options.port {
                    Some(port) => port,
                    None => free_port()?,
                };
            }
            let text = config_yaml(
                registry.addr(),
                &storage,
                registry.tls.as_ref(),
                auth.as_ref(),
            );
            std::fs::write(&registry.config, text)
                .map_err(|e| HarnessError::io("write", &registry.config, e))?;
            match registry.restart() {
                // Another program may take the free port before the
                // registry binds it: try another.
                Err(HarnessError::Exited { .. })
                    if attempt < START_ATTEMPTS && options.port.is_none() =>
                {
                    attempt += 1
                }
                other => return other.map(|()| registry),
            }
        }
    }

    /// Starts the registry again after [`Registry::stop`], on the same port
    /// with the same storage.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let mut cmd = command_in(self.netns.as_deref(), "docker-registry");
        cmd.arg("serve").arg(&self.config);
        let mut daemon = Daemon::spawn("registry", cmd, self.dir.path())?;
        match &self.netns {
            Some(ns) => {
                let port = self.port;
                daemon.wait_until("registry to listen", START_TIMEOUT, || {
                    listening_in(ns, port)
                })?
            }
            None => daemon.wait_for_port(self.addr(), START_TIMEOUT)?,
        }
        self.daemon = Some(daemon);
        Ok(())
    }

    /// Stops the registry (its storage stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
    }

    /// The registry's address (127.0.0.1, or its namespace host's address,
    /// reachable only from inside the namespaces).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    /// The registry's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The namespace it runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// `IP:PORT`, the registry part of image references.
    pub fn host(&self) -> String {
        self.addr().to_string()
    }

    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The TLS material, if the registry serves HTTPS.
    pub fn tls(&self) -> Option<&RegistryTls> {
        self.tls.as_ref()
    }

    /// The credentials it requires, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.auth.as_ref()
    }

    /// The registry's log file (JSON lines plus an access log).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Every completed request logged so far, in order.
    pub fn requests(&self) -> Result<Vec<RequestRecord>> {
        let path = self.log_path();
        let text =
            std::fs::read_to_string(&path).map_err(|e| HarnessError::io("read", &path, e))?;
        Ok(parse_log(&text))
    }

    /// Response bytes written for successful `GET /v2/*/blobs/<digest>`,
    /// summed per digest: how much of each blob left the registry.
    pub fn blob_bytes_served(&self) -> Result<BTreeMap<String, u64>> {
        Ok(blob_bytes(&self.requests()?))
    }

    /// Uploads `file` as a blob of `repo`: a POST opens the upload, a PUT
    /// of the whole body closes it. Returns the blob's digest.
    pub fn push_blob(&self, repo: &str, file: &Path) -> Result<String> {
        let digest = crate::content::file_digest(file)?;
        let mut open = self.curl();
        open.args(["-o", "/dev/null", "-D", "-", "-X", "POST"])
            .arg(format!("{}/v2/{repo}/blobs/uploads/", self.url()));
        let head = String::from_utf8_lossy(&run(&mut open)?.stdout).into_owned();
        let location = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("location")
                    .then(|| value.trim().to_owned())
            })
            .ok_or_else(|| HarnessError::parse("blob upload", "no Location"))?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url())
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let mut put = self.curl();
        put.args(["-o", "/dev/null", "-X", "PUT"])
            .args(["-H", "Content-Type: application/octet-stream"])
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!("{location}{sep}digest={digest}"));
        run(&mut put)?;
        Ok(digest)
    }

    /// Uploads `data` as a blob of `repo`; returns its digest.
    pub fn push_blob_bytes(&self, repo: &str, data: &[u8]) -> Result<String> {
        let file = self.scratch_file(data)?;
        self.push_blob(repo, file.path())
    }

    /// Pushes a minimal image to `repo`, tagged `v1`: `layer_len` bytes of
    /// [`crate::content::bytes`] with `seed` as its one layer, a config
    /// naming it, and an OCI manifest of the two.
    pub fn push_image(&self, repo: &str, layer_len: usize, seed: u64) -> Result<PushedImage> {
        let layer = crate::content::bytes(layer_len, seed);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            crate::content::digest_of(&layer)
        );
        let layer_digest = self.push_blob_bytes(repo, &layer)?;
        let config_digest = self.push_blob_bytes(repo, config.as_bytes())?;
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let file = self.scratch_file(manifest.as_bytes())?;
        let mut put = self.curl();
        put.args(["-o", "/dev/null", "-X", "PUT"])
            .args(["-H", &format!("Content-Type: {OCI_MANIFEST}")])
            .arg("--data-binary")
            .arg(format!("@{}", file.path().display()))
            .arg(format!("{}/v2/{repo}/manifests/v1", self.url()));
        run(&mut put)?;
        Ok(PushedImage {
            repo: repo.to_owned(),
            manifest_digest: crate::content::digest_of(manifest.as_bytes()),
            manifest: manifest.into_bytes(),
            layer,
            layer_digest,
            config_digest,
        })
    }

    /// curl set up for this registry: failing on HTTP errors, trusting its
    /// CA, sending its basic credentials (masked in error messages).
    fn curl(&self) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--fail"]);
        if let Some(tls) = &self.tls {
            cmd.arg("--cacert").arg(tls.ca.cert());
        }
        if let (Some(creds), false) = (&self.auth, self.token_auth) {
            cmd.args(["--user", &creds.joined()]);
        }
        cmd
    }

    /// A file holding `data` in the registry's folder, removed on drop.
    fn scratch_file(&self, data: &[u8]) -> Result<tempfile::NamedTempFile> {
        let mut file = tempfile::NamedTempFile::new_in(self.dir.path())
            .map_err(|e| HarnessError::io("create a file in", self.dir.path(), e))?;
        file.write_all(data)
            .map_err(|e| HarnessError::io("write", file.path(), e))?;
        Ok(file)
    }

    /// Number of successful `GET /v2/*/blobs/<digest>` per digest.
    pub fn blob_gets(&self) -> Result<BTreeMap<String, u32>> {
        let mut out = BTreeMap::new();
        for r in self.requests()?.iter().filter(|r| is_blob_get(r)) {
            if let Some(digest) = r.blob_digest() {
                *out.entry(digest.to_owned()).or_insert(0) += 1;
            }
        }
        Ok(out)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses distribution's JSON log lines; lines of other shapes (the access
/// log, start-up messages) are skipped.
pub fn parse_log(text: &str) -> Vec<RequestRecord> {
    text.lines().filter_map(parse_log_line).collect()
}

fn parse_log_line(line: &str) -> Option<RequestRecord> {
    let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let written = value.get("http.response.written")?.as_u64()?;
    Some(RequestRecord {
        method: value.get("http.request.method")?.as_str()?.to_owned(),
        uri: value.get("http.request.uri")?.as_str()?.to_owned(),
        status: u16::try_from(value.get("http.response.status")?.as_u64()?).ok()?,
        written,
    })
}

/// Sums bytes written by successful blob GETs per digest.
pub fn blob_bytes(records: &[RequestRecord]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for r in records.iter().filter(|r| is_blob_get(r)) {
        if let Some(digest) = r.blob_digest() {
            *out.entry(digest.to_owned()).or_insert(0) += r.written;
        }
    }
    out
}

fn is_blob_get(r: &RequestRecord) -> bool {
    r.method == "GET" && (200..300).contains(&r.status) && r.blob_digest().is_some()
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| HarnessError::io("create dir", path, e))
}

fn make_tls(root: &Path, ip: Ipv4Addr, dns_names: &[String]) -> Result<RegistryTls> {
    let pki = root.join("pki");
    mkdir(&pki)?;
    let ca = TestCa::create(&pki)?;
    let ips = [IpAddr::V4(ip)];
    let server = ca.issue_server("registry", &ips, dns_names)?;
    let cert_dir = root.join("certs.d");
    mkdir(&cert_dir)?;
    let ca_copy = cert_dir.join("ca.crt");
    std::fs::copy(ca.cert(), &ca_copy).map_err(|e| HarnessError::io("copy CA to", &ca_copy, e))?;
    Ok(RegistryTls {
        ca,
        server,
        cert_dir,
    })
}

/// Writes a bcrypt htpasswd file; the password goes over stdin so it never
/// appears on a command line.
fn write_htpasswd(root: &Path, creds: &Credentials) -> Result<PathBuf> {
    let mut child = Command::new("htpasswd")
        .args(["-niB", &creds.user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: "htpasswd".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(format!("{}\n", creds.password).as_bytes())
            .map_err(|e| HarnessError::io("write password to", "htpasswd", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("wait for", "htpasswd", e))?;
    if !out.status.success() {
        return Err(HarnessError::Failed {
            program: "htpasswd -niB".into(),
            status: out.status,
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let path = root.join("htpasswd");
    std::fs::write(&path, &out.stdout).map_err(|e| HarnessError::io("write", &path, e))?;
    Ok(path)
}

/// How the registry authenticates clients.
enum AuthConfig {
    Htpasswd(PathBuf),
    Token { realm: String, cert: PathBuf },
}

fn config_yaml(
    addr: SocketAddr,
    storage: &Path,
    tls: Option<&RegistryTls>,
    auth: Option<&AuthConfig>,
) -> String {
    let mut y = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: json\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: bay-test-secret\n",
        storage.display()
    );
    if let Some(tls) = tls {
        y.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            tls.server.cert.display(),
            tls.server.key.display()
        ));
    }
    match auth {
        Some(AuthConfig::Htpasswd(path)) => y.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: bay-test\n    path: {}\n",
            path.display()
        )),
        Some(AuthConfig::Token { realm, cert }) => y.push_str(&format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            token::SERVICE,
            token::ISSUER,
            cert.display()
        )),
        None => {}
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_digest_only_for_blob_paths() {
        let rec = |uri: &str| RequestRecord {
            method: "GET".into(),
            uri: uri.into(),
            status: 200,
            written: 5,
        };
        assert_eq!(
            rec("/v2/a/b/blobs/sha256:ab?ns=x").blob_digest(),
            Some("sha256:ab")
        );
        assert_eq!(rec("/v2/a/manifests/latest").blob_digest(), None);
        assert_eq!(rec("/v2/a/blobs/uploads/").blob_digest(), None);
    }

    #[test]
    fn log_lines_of_other_shapes_are_skipped() {
        let text = "127.0.0.1 - - [x] \"GET /v2/ HTTP/1.1\" 200 2\n\
            {\"http.request.method\":\"GET\",\"http.request.uri\":\"/v2/r/blobs/sha256:00\",\"http.response.status\":200,\"http.response.written\":7}\n\
            {\"msg\":\"listening\"}\n";
        let recs = parse_log(text);
        assert_eq!(recs.len(), 1);
        assert_eq!(blob_bytes(&recs).get("sha256:00"), Some(&7));
    }

    #[test]
    fn credentials_debug_hides_password() {
        let shown = format!("{:?}", Credentials::new("alice", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
