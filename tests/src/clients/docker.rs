//! dockerd 20.10 as a client: a daemon with data root, exec root, pid file,
//! socket and config file in a temporary folder (vfs storage, no bridge, no
//! iptables), attached to a containerd of its own, driven with the docker
//! CLI under a private DOCKER_CONFIG.
//!
//! Also [`HostsEntry`], which maps a name to 127.0.0.1 in /etc/hosts for
//! its lifetime: dockerd treats a registry whose name resolves to
//! 127.0.0.0/8 as plain HTTP, which is how `docker pull p2p-<registry>/…`
//! reaches a local proxy.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use super::containerd::Containerd;
use super::podman::parse_inspect;
use super::{Access, PulledImage};
use crate::error::{HarnessError, Result};
use crate::process::{run, Daemon};
use crate::registry::Credentials;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// dockerd's configuration file contents the tests vary.
#[derive(Debug, Clone, Default)]
pub struct DockerdOptions {
    /// `insecure-registries` (host:port or CIDR).
    pub insecure_registries: Vec<String>,
    /// `registry-mirrors` (Docker Hub only).
    pub registry_mirrors: Vec<String>,
    /// A daemon.json of the caller's (the two settings above are then
    /// ignored).
    pub config_file: Option<PathBuf>,
}

/// A running dockerd; stopped with its containerd and folders removed on drop.
#[derive(Debug)]
pub struct Dockerd {
    daemon: Daemon,
    socket: PathBuf,
    docker_config: PathBuf,
    // Dropped after the daemon: dockerd must go first.
    _containerd: Containerd,
    dir: TempDir,
}

impl Dockerd {
    /// Starts containerd and dockerd and waits until `docker version` answers.
    pub fn start(options: &DockerdOptions) -> Result<Dockerd> {
        let containerd = Containerd::start()?;
        let dir = tempfile::Builder::new()
            .prefix("bay-dockerd-")
            .tempdir()
            .map_err(|e| HarnessError::io("create temp dir", std::env::temp_dir(), e))?;
        let d = dir.path();
        let socket = d.join("docker.sock");
        let docker_config = d.join("client");
        std::fs::create_dir_all(&docker_config)
            .map_err(|e| HarnessError::io("create", &docker_config, e))?;
        let config_file = match &options.config_file {
            Some(file) => file.clone(),
            None => {
                let file = d.join("daemon.json");
                let config = serde_json::json!({
                    "insecure-registries": options.insecure_registries,
                    "registry-mirrors": options.registry_mirrors,
                });
                std::fs::write(&file, config.to_string())
                    .map_err(|e| HarnessError::io("write", &file, e))?;
                file
            }
        };
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--containerd")
            .arg(containerd.socket())
            .arg("--config-file")
            .arg(&config_file)
            .args(["--storage-driver", "vfs"])
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"]);
        let mut daemon = Daemon::spawn("dockerd", cmd, d)?;
        let mut dockerd_probe = docker_cli(&socket, &docker_config);
        dockerd_probe.arg("version");
        daemon.wait_until("dockerd to answer on its socket", START_TIMEOUT, || {
            dockerd_probe
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })?;
        Ok(Dockerd {
            daemon,
            socket,
            docker_config,
            _containerd: containerd,
            dir,
        })
    }

    /// The daemon's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon handle (log tail, pid).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// The folder dockerd keeps its state in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `docker -H unix://SOCK` with this daemon's private client config.
    pub fn docker(&self) -> Command {
        docker_cli(&self.socket, &self.docker_config)
    }

    /// `docker login` with the password on stdin (never on a command line).
    pub fn login(&self, registry_host: &str, creds: &Credentials) -> Result<()> {
        let mut child = self
            .docker()
            .args([
                "login",
                "--password-stdin",
                "--username",
                &creds.user,
                registry_host,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                program: "docker login".into(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(creds.password.as_bytes())
                .map_err(|e| HarnessError::io("write password to", "docker login", e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| HarnessError::io("wait for", "docker login", e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(HarnessError::Failed {
                program: "docker login".into(),
                status: out.status,
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Pulls `reference`; credentials in `access` are used through `docker
    /// login`. TLS trust for dockerd goes by its certs.d, which tests do not
    /// set up: use plain HTTP registries (any 127.0.0.0/8 name) with dockerd.
    pub fn pull(&self, reference: &str, access: &Access) -> Result<PulledImage> {
        if let Some(creds) = &access.creds {
            let host = reference.split('/').next().unwrap_or(reference);
            self.login(host, creds)?;
        }
        run(self.docker().args(["pull", "--quiet", reference]))?;
        self.inspect(reference)
    }

    /// Manifest digest (from RepoDigests) and layer diff_ids of an image.
    pub fn inspect(&self, reference: &str) -> Result<PulledImage> {
        let out = run(self.docker().args(["image", "inspect", reference]))?;
        parse_inspect(
            &String::from_utf8_lossy(&out.stdout),
            "docker image inspect",
        )
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // dockerd must stop before its containerd, which drops after.
        self.daemon.stop();
    }
}

fn docker_cli(socket: &Path, config: &Path) -> Command {
    // The CLI of the docker.io package matches the daemon; another docker
    // earlier on PATH may be a different major version.
    let program = if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    let mut cmd = Command::new(program);
    cmd.env("DOCKER_CONFIG", config)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()));
    cmd
}

/// Serialises edits of /etc/hosts between guards in one test process.
static HOSTS_LOCK: Mutex<()> = Mutex::new(());
const HOSTS_FILE: &str = "/etc/hosts";

/// An `IP NAME` line (127.0.0.1 unless told) in /etc/hosts for the guard's lifetime. The file
/// is edited in place (it is often a bind mount) and the line removed on
/// drop, leaving the file byte for byte as it was.
///
/// Go programs (dockerd, containerd) cache /etc/hosts for a few seconds:
/// add entries before starting the daemons that must see them.
#[derive(Debug)]
pub struct HostsEntry {
    line: String,
    path: PathBuf,
}

impl HostsEntry {
    /// Adds `127.0.0.1 NAME` to /etc/hosts.
    pub fn add(name: &str) -> Result<HostsEntry> {
        HostsEntry::add_to(Path::new(HOSTS_FILE), name)
    }

    /// Adds `IP NAME` to /etc/hosts (another loopback address lets a proxy
    /// and the registry it stands for share a port number).
    pub fn add_ip(ip: Ipv4Addr, name: &str) -> Result<HostsEntry> {
        HostsEntry::add_ip_to(Path::new(HOSTS_FILE), ip, name)
    }

    /// Adds `127.0.0.1 NAME` to the hosts file at `path`.
    pub fn add_to(path: &Path, name: &str) -> Result<HostsEntry> {
        HostsEntry::add_ip_to(path, Ipv4Addr::LOCALHOST, name)
    }

    /// Adds `IP NAME` to the hosts file at `path`.
    pub fn add_ip_to(path: &Path, ip: Ipv4Addr, name: &str) -> Result<HostsEntry> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '#') {
            return Err(HarnessError::parse(
                "host name",
                format!("{name:?} is not a plain name"),
            ));
        }
        let line = format!("{ip} {name} # bay test\n");
        let _lock = HOSTS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut text =
            std::fs::read_to_string(path).map_err(|e| HarnessError::io("read", path, e))?;
        if !text.is_empty() && !text.ends_with('\n') {
            // Keep the exact original: remember that no newline ended it by
            // adding ours in front of the line, removed again on drop.
            text.push('\n');
            let entry = HostsEntry {
                line: format!("\n{}", line.trim_end_matches('\n')),
                path: path.to_owned(),
            };
            text.push_str(line.trim_end_matches('\n'));
            std::fs::write(path, text).map_err(|e| HarnessError::io("write", path, e))?;
            return Ok(entry);
        }
        text.push_str(&line);
        std::fs::write(path, text).map_err(|e| HarnessError::io("write", path, e))?;
        Ok(HostsEntry {
            line,
            path: path.to_owned(),
        })
    }
}

impl Drop for HostsEntry {
    fn drop(&mut self) {
        let _lock = HOSTS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            if let Some(at) = text.rfind(&self.line) {
                let mut restored = text[..at].to_owned();
                restored.push_str(&text[at + self.line.len()..]);
                let _ = std::fs::write(&self.path, restored);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_entry_restores_file_exactly() {
        for original in ["127.0.0.1 localhost\n", "127.0.0.1 localhost", ""] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("hosts");
            std::fs::write(&path, original).expect("write");
            {
                let _a = HostsEntry::add_to(&path, "p2p-registry.test").expect("add");
                let _b = HostsEntry::add_to(&path, "p2p-other.test").expect("add");
                let text = std::fs::read_to_string(&path).expect("read");
                assert!(text.contains("127.0.0.1 p2p-registry.test"), "{text}");
                assert!(text.contains("127.0.0.1 p2p-other.test"), "{text}");
            }
            assert_eq!(std::fs::read_to_string(&path).expect("read"), original);
        }
    }
}
