//! containerd 1.6 as a client: a daemon with its own root, state, socket and
//! config in a temporary folder (CRI plugin off), driven with `ctr`.
//!
//! Mirrors are configured the way operators do it, with a hosts folder
//! (`HOSTS_DIR/<registry host>/hosts.toml`) passed as `--hosts-dir`. Note
//! that containerd falls back to `server` request by request when a mirror
//! fails or answers 404; a test that must prove the mirror served the pull
//! points `server` at a closed port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{manifest_layers, Access, PulledImage};
use crate::error::{HarnessError, Result};
use crate::process::{run, run_stdout, Daemon};

/// Namespace the tests' images live in.
pub const NAMESPACE: &str = "test";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running containerd; stopped and its folders removed on drop.
#[derive(Debug)]
pub struct Containerd {
    daemon: Daemon,
    socket: PathBuf,
    dir: TempDir,
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` answers on its socket.
    pub fn start() -> Result<Containerd> {
        let dir = tempfile::Builder::new()
            .prefix("bay-ctrd-")
            .tempdir()
            .map_err(|e| HarnessError::io("create temp dir", std::env::temp_dir(), e))?;
        let root = dir.path();
        let socket = root.join("containerd.sock");
        let config = root.join("config.toml");
        let text = format!(
            "version = 2\n\
             root = \"{root}/root\"\n\
             state = \"{root}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n\
             [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [debug]\n  address = \"\"\n  level = \"info\"\n\
             [metrics]\n  address = \"\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{root}/opt\"\n",
            root = root.display(),
            sock = socket.display()
        );
        std::fs::write(&config, text).map_err(|e| HarnessError::io("write", &config, e))?;
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(&config);
        let mut daemon = Daemon::spawn("containerd", cmd, root)?;
        let probe = socket.clone();
        daemon.wait_until("containerd to answer on its socket", START_TIMEOUT, || {
            Command::new("ctr")
                .arg("--address")
                .arg(&probe)
                .arg("version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })?;
        Ok(Containerd {
            daemon,
            socket,
            dir,
        })
    }

    /// The daemon's gRPC socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon handle (log tail, pid).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// A folder under this daemon's temporary folder (created).
    pub fn scratch_dir(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).map_err(|e| HarnessError::io("create", &path, e))?;
        Ok(path)
    }

    /// `ctr --address SOCK -n test ARGS…`.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["-n", NAMESPACE]);
        cmd
    }

    /// Pulls `reference` with `ctr images pull` and reports what the content
    /// store holds for it. `hosts_dir` is passed as `--hosts-dir`.
    pub fn pull(
        &self,
        reference: &str,
        access: &Access,
        hosts_dir: Option<&Path>,
    ) -> Result<PulledImage> {
        let mut cmd = self.ctr();
        cmd.args(["images", "pull"]);
        if access.plain_http {
            cmd.arg("--plain-http");
        }
        let hosts_dir = match (hosts_dir, access.ca_cert()) {
            (None, Some(ca)) => {
                // ctr speaks plain HTTP to loopback registries unless a
                // hosts.toml names the https scheme.
                let host = reference.split('/').next().unwrap_or(reference);
                let mirror = MirrorHost {
                    ca: Some(ca),
                    ..MirrorHost::pull_resolve(&format!("https://{host}"))
                };
                let dir = self.scratch_dir("tls-hosts.d")?;
                let server = format!("https://{host}");
                Some(write_hosts_toml(&dir, host, &server, &[mirror])?)
            }
            (dir, _) => dir.map(Path::to_path_buf),
        };
        if let Some(creds) = &access.creds {
            cmd.arg("--user").arg(creds.joined());
        }
        if let Some(dir) = &hosts_dir {
            cmd.arg("--hosts-dir").arg(dir);
        }
        cmd.arg(reference);
        run(&mut cmd)?;
        self.inspect(reference)
    }

    /// The manifest digest of `reference` and its layers, each checked to be
    /// present in the content store.
    pub fn inspect(&self, reference: &str) -> Result<PulledImage> {
        let listing = run_stdout(self.ctr().args(["images", "ls"]))?;
        let manifest_digest = listing
            .lines()
            .filter_map(|line| {
                let mut cols = line.split_whitespace();
                let name = cols.next()?;
                let _type = cols.next()?;
                let digest = cols.next()?;
                (name == reference).then(|| digest.to_owned())
            })
            .next()
            .ok_or_else(|| {
                HarnessError::parse("ctr images ls", format!("no {reference} in:\n{listing}"))
            })?;
        let manifest = run(self.ctr().args(["content", "get", &manifest_digest]))?.stdout;
        let layer_digests = manifest_layers(&manifest)?;
        let content = run_stdout(self.ctr().args(["content", "ls", "-q"]))?;
        for layer in &layer_digests {
            if !content.lines().any(|l| l.trim() == layer) {
                return Err(HarnessError::Mismatch(format!(
                    "layer {layer} is not in containerd's content store"
                )));
            }
        }
        Ok(PulledImage {
            manifest_digest,
            layer_digests,
        })
    }

    /// Removes an image and lets containerd collect its content, so the
    /// next pull fetches every blob again.
    pub fn remove(&self, reference: &str) -> Result<()> {
        run(self.ctr().args(["images", "rm", "--sync", reference])).map(drop)
    }
}

/// One `[host."URL"]` section of a hosts.toml.
#[derive(Debug, Clone)]
pub struct MirrorHost {
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub url: String,
    /// Capabilities, e.g. `["pull", "resolve"]`.
    pub capabilities: Vec<String>,
    /// CA certificate to trust for this host.
    pub ca: Option<PathBuf>,
    /// Skip TLS verification for this host.
    pub skip_verify: bool,
}

impl MirrorHost {
    /// A pull-and-resolve mirror at `url`.
    pub fn pull_resolve(url: &str) -> MirrorHost {
        MirrorHost {
            url: url.to_owned(),
            capabilities: vec!["pull".into(), "resolve".into()],
            ca: None,
            skip_verify: false,
        }
    }
}

/// Writes `hosts_dir/<registry_host>/hosts.toml` naming `server` as the
/// upstream and `mirrors` in order; returns `hosts_dir` for `--hosts-dir`.
pub fn write_hosts_toml(
    hosts_dir: &Path,
    registry_host: &str,
    server: &str,
    mirrors: &[MirrorHost],
) -> Result<PathBuf> {
    let dir = hosts_dir.join(registry_host);
    std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io("create", &dir, e))?;
    let path = dir.join("hosts.toml");
    std::fs::write(&path, hosts_toml(server, mirrors))
        .map_err(|e| HarnessError::io("write", &path, e))?;
    Ok(hosts_dir.to_owned())
}

/// The text of a hosts.toml.
pub fn hosts_toml(server: &str, mirrors: &[MirrorHost]) -> String {
    let mut text = format!("server = {}\n", toml_string(server));
    for m in mirrors {
        let caps: Vec<String> = m.capabilities.iter().map(|c| toml_string(c)).collect();
        text.push_str(&format!(
            "\n[host.{}]\n  capabilities = [{}]\n",
            toml_string(&m.url),
            caps.join(", ")
        ));
        if let Some(ca) = &m.ca {
            text.push_str(&format!(
                "  ca = {}\n",
                toml_string(&ca.display().to_string())
            ));
        }
        if m.skip_verify {
            text.push_str("  skip_verify = true\n");
        }
    }
    text
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_names_server_and_mirror() {
        let text = hosts_toml(
            "http://127.0.0.1:1",
            &[MirrorHost::pull_resolve("http://127.0.0.1:2")],
        );
        assert_eq!(
            text,
            "server = \"http://127.0.0.1:1\"\n\n[host.\"http://127.0.0.1:2\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
    }
}
