//! Real registries for the registry client's tests: CNCF distribution
//! (`docker-registry serve`) in plain HTTP, TLS, htpasswd and token-auth
//! configurations, the token server in fixtures/, nginx for redirects,
//! test certificates from the openssl CLI, and pushes over curl.
//!
//! Every server gets its own temporary directory and a loopback port, is
//! polled until it listens (with a deadline), and is killed when its
//! handle drops.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; panics report failures

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bay_wire::oci::Digest;

/// How long a server may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `test` on a fresh monoio runtime of each driver: epoll, then
/// io_uring when the kernel allows it.
pub fn on_both_drivers<F, Fut>(test: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    legacy.block_on(test("legacy"));
    match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut uring) => uring.block_on(test("io_uring")),
        Err(e) => eprintln!("io_uring unavailable here ({e}): tested the epoll driver only"),
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Deterministic bytes that do not compress.
pub fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Polls until `port` accepts connections, failing early if `child` exits.
pub fn wait_listening(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{what} exited ({status}) before listening on {port}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} not listening on {port} after {START_DEADLINE:?}"
        );
        std::thread::yield_now();
    }
}

/// Polls `cond` until it holds or the deadline passes.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// A child process killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a registry authenticates.
pub enum RegistryAuth {
    None,
    Htpasswd(PathBuf),
    Token {
        realm: String,
        service: String,
        issuer: String,
        root_cert: PathBuf,
    },
}

/// Writes a distribution config and starts `docker-registry serve` on it.
pub fn start_registry(
    dir: &Path,
    storage: &Path,
    tls: Option<&TlsFiles>,
    auth: &RegistryAuth,
) -> Server {
    start_registry_on(free_port(), dir, storage, tls, auth)
}

/// [`start_registry`] on a given port (to restart a registry in place).
pub fn start_registry_on(
    port: u16,
    dir: &Path,
    storage: &Path,
    tls: Option<&TlsFiles>,
    auth: &RegistryAuth,
) -> Server {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: bay-test-secret\n",
        storage.display()
    );
    if let Some(t) = tls {
        yaml += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            t.server_cert.display(),
            t.server_key.display()
        );
    }
    match auth {
        RegistryAuth::None => {}
        RegistryAuth::Htpasswd(path) => {
            yaml += &format!(
                "auth:\n  htpasswd:\n    realm: bay-test\n    path: {}\n",
                path.display()
            );
        }
        RegistryAuth::Token {
            realm,
            service,
            issuer,
            root_cert,
        } => {
            yaml += &format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                root_cert.display()
            );
        }
    }
    let config = dir.join(format!("registry-{port}.yml"));
    std::fs::write(&config, yaml).unwrap();
    let log = dir.join(format!("registry-{port}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("docker-registry (Debian package docker-registry) must be installed");
    wait_listening(port, &mut child, "docker-registry", &log);
    Server { child, port, log }
}

/// A pushed test image: a config, one layer of a given size, an OCI
/// manifest tagged `v1`.
pub struct Image {
    pub repo: String,
    pub layer: Vec<u8>,
    pub layer_digest: Digest,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

/// Pushes `Image` to the registry at `base` (`http://127.0.0.1:PORT`,
/// unauthenticated) with curl: monolithic blob uploads and a manifest PUT.
pub fn push_image(base: &str, repo: &str, layer_len: usize, seed: u64) -> Image {
    let layer = blob(layer_len, seed);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::sha256_of(&layer)
    );
    let layer_digest = push_blob(base, repo, &layer, &[]);
    let config_digest = push_blob(base, repo, config.as_bytes(), &[]);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &manifest,
        &format!("{base}/v2/{repo}/manifests/v1"),
    ]);
    Image {
        repo: repo.to_owned(),
        layer,
        layer_digest,
        config_digest,
        manifest_digest: Digest::sha256_of(manifest.as_bytes()),
        manifest: manifest.into_bytes(),
    }
}

/// Monolithic upload: POST for a session, PUT the bytes with the digest.
/// `opts` go to every curl call (`--cacert` for a TLS registry).
pub fn push_blob(base: &str, repo: &str, data: &[u8], opts: &[&str]) -> Digest {
    let digest = Digest::sha256_of(data);
    let with = |args: &[&str]| curl(&[opts, args].concat());
    let head = with(&[
        "-X",
        "POST",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/v2/{repo}/blobs/uploads/"),
    ]);
    let location = String::from_utf8_lossy(&head)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        })
        .expect("upload POST answered without Location");
    let location = if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location
    };
    let joiner = if location.contains('?') { '&' } else { '?' };
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), data).unwrap();
    with(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.path().display()),
        &format!("{location}{joiner}digest={digest}"),
    ]);
    digest
}

/// Runs curl, failing the test on an HTTP error; returns stdout.
pub fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Starts an unauthenticated registry on `storage`, pushes an image, and
/// stops it: the way to fill a registry that demands credentials.
pub fn seed_storage(dir: &Path, storage: &Path, repo: &str, layer_len: usize) -> Image {
    let open = start_registry(dir, storage, None, &RegistryAuth::None);
    let image = push_image(
        &format!("http://127.0.0.1:{}", open.port),
        repo,
        layer_len,
        7,
    );
    drop(open);
    image
}

/// Test certificates: a CA and a server certificate for 127.0.0.1 it
/// signed, plus an unrelated CA.
pub struct TlsFiles {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

pub fn make_tls(dir: &Path) -> TlsFiles {
    let p = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for ca in ["ca", "other-ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            p(&format!("{ca}.key")).to_str().unwrap(),
            "-out",
            p(&format!("{ca}.pem")).to_str().unwrap(),
            "-days",
            "2",
            "-subj",
            &format!("/CN=bay test {ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        p("server.key").to_str().unwrap(),
        "-out",
        p("server.csr").to_str().unwrap(),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        p("server.csr").to_str().unwrap(),
        "-CA",
        p("ca.pem").to_str().unwrap(),
        "-CAkey",
        p("ca.key").to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        p("server.ext").to_str().unwrap(),
        "-out",
        p("server.pem").to_str().unwrap(),
    ]);
    TlsFiles {
        ca: p("ca.pem"),
        other_ca: p("other-ca.pem"),
        server_cert: p("server.pem"),
        server_key: p("server.key"),
    }
}

/// An htpasswd file with one bcrypt entry (distribution accepts only
/// bcrypt), made by apache2-utils' htpasswd.
pub fn make_htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("htpasswd (Debian package apache2-utils) must be installed");
    assert!(out.status.success());
    let path = dir.join("htpasswd");
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// The token server in fixtures/, run with Debian's python (python3-jwt,
/// python3-cryptography).
pub struct TokenServer {
    pub server: Server,
    pub cert: PathBuf,
    pub service: String,
    pub issuer: String,
}

impl TokenServer {
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.pem");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=bay test token issuer"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port_file = dir.join("token-port");
        let log = dir.join("token.log");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry_token_server.py");
        let (service, issuer) = ("bay-test-registry".to_owned(), "bay-test-issuer".to_owned());
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg("--key")
            .arg(&key)
            .args(["--issuer", &issuer, "--service", &service])
            .args(["--user", &format!("{user}:{password}")])
            .arg("--port-file")
            .arg(&port_file)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("token.err")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + START_DEADLINE;
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = text.trim().parse::<u16>() {
                    break port;
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "token server exited ({status}):\n{}",
                    std::fs::read_to_string(dir.join("token.err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "token server did not start");
            std::thread::yield_now();
        };
        wait_listening(port, &mut child, "token server", &dir.join("token.err"));
        TokenServer {
            server: Server { child, port, log },
            cert,
            service,
            issuer,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.port)
    }

    /// Token requests served so far (asked of the server itself).
    pub fn hits(&self) -> u64 {
        let body = http_get(self.server.port, "/hits");
        body.trim().parse().unwrap()
    }
}

/// A bare HTTP/1.0 GET on loopback, for fixtures' own endpoints.
pub fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Starts nginx (Debian nginx-light) in the foreground, one process, with
/// `servers` as the body of its `http` block. `{dir}` in it is replaced by
/// the state directory.
pub fn start_nginx(dir: &Path, servers: &str, port: u16) -> Server {
    let state = dir.join("nginx");
    std::fs::create_dir_all(&state).unwrap();
    let s = state.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {s}/nginx.pid;\nerror_log {s}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  client_body_temp_path {s}/body;\n  proxy_temp_path {s}/proxy;\n\
         fastcgi_temp_path {s}/fastcgi;\n  uwsgi_temp_path {s}/uwsgi;\n  scgi_temp_path {s}/scgi;\n\
         log_format auth '$server_port $request_method $request_uri auth=\"$http_authorization\"';\n\
         {}\n}}\n",
        servers.replace("{dir}", &s.to_string())
    );
    let path = state.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let log = state.join("error.log");
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(&state)
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx (Debian package nginx-light) must be installed");
    wait_listening(port, &mut child, "nginx", &log);
    Server { child, port, log }
}
