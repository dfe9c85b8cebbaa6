//! The host's image runtimes as the doctor sees them: which are
//! installed, whether each one's configuration sends pulls to the proxy
//! (read with the same parsers `setup` merges with), and, with `--image`,
//! a real pull through each.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{DoctorArgs, Finding};
use crate::setup::files::HostFs;
use crate::setup::{containerd, docker, podman, Runtime, DOCKER_HUB};

/// Whether `runtime` looks installed: its program on PATH, or its
/// configuration folder on the host.
pub fn installed(runtime: Runtime, host: &HostFs) -> bool {
    let (program, folder) = match runtime {
        Runtime::Containerd => ("containerd", "/etc/containerd"),
        Runtime::Docker => ("dockerd", "/etc/docker"),
        Runtime::Podman => ("podman", "/etc/containers"),
    };
    on_path(program) || host.real(folder).is_dir()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// How the runtime's configuration reaches the proxy.
#[derive(Debug, Default)]
pub struct Routes {
    /// Registries the runtime sends to the proxy.
    pub registries: Vec<String>,
    /// Whether those requests name their registry (containerd's `?ns=`,
    /// the `p2p-` prefix) or need the proxy's fixed `--upstream`.
    pub named: bool,
    /// containerd's hosts folder as this host sees it.
    pub hosts_dir: Option<PathBuf>,
}

/// Reads the runtime's configuration: the registries it sends to the
/// proxy at `proxy`, or a finding that says what is missing.
pub fn routes(
    runtime: Runtime,
    host: &HostFs,
    proxy: std::net::SocketAddr,
) -> Result<Routes, Finding> {
    let url = format!("http://{proxy}");
    let fix = |what: &str| format!("bay-proxy setup {} {what}", runtime.name());
    let unreadable = |path: &str, e: String| {
        Finding::fail(
            format!("{}: cannot read {path}: {e}", runtime.name()),
            format!("fix the file, then {}", fix("--registry REG")),
        )
    };
    match runtime {
        Runtime::Containerd => {
            let text = host
                .read(containerd::CONFIG)
                .map_err(|e| unreadable(containerd::CONFIG, e.to_string()))?;
            let dir = match text.as_deref().map(containerd::certs_dir) {
                Some(Ok(Some(dir))) => dir,
                Some(Err(p)) => return Err(unreadable(containerd::CONFIG, format!("{p:?}"))),
                _ => {
                    return Err(Finding::fail(
                        format!(
                            "containerd: {} sets no config_path, so its CRI plugin (the kubelet's pulls) \
                             reads no hosts.toml and never asks bay-proxy",
                            containerd::CONFIG
                        ),
                        format!("{}, then systemctl restart containerd", fix("--registry REG")),
                    ))
                }
            };
            let mut registries = Vec::new();
            let real = host.real(&dir);
            for entry in std::fs::read_dir(&real).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = format!("{dir}/{name}/hosts.toml");
                if let Ok(Some(text)) = host.read(&path) {
                    if containerd::hosts_point_at(&text, &url).unwrap_or(false) {
                        registries.push(name);
                    }
                }
            }
            registries.sort();
            Ok(Routes {
                registries,
                named: true,
                hosts_dir: Some(real),
            })
        }
        Runtime::Docker => {
            let mut routes = Routes {
                named: true,
                ..Routes::default()
            };
            if let Some(text) = host
                .read(docker::DAEMON_JSON)
                .map_err(|e| unreadable(docker::DAEMON_JSON, e.to_string()))?
            {
                if docker::mirrors_point_at(&text, &url)
                    .map_err(|p| unreadable(docker::DAEMON_JSON, format!("{p:?}")))?
                {
                    routes.registries.push(DOCKER_HUB.into());
                    routes.named = false;
                }
            }
            let hosts = host
                .read(docker::HOSTS)
                .map_err(|e| unreadable(docker::HOSTS, e.to_string()))?
                .unwrap_or_default();
            for line in hosts.lines() {
                let line = line.split('#').next().unwrap_or("");
                let mut fields = line.split_whitespace();
                let Some(addr) = fields.next() else { continue };
                if addr.parse() != Ok(proxy.ip()) {
                    continue;
                }
                for name in fields {
                    if let Some(reg) = name.strip_prefix(crate::route::HOST_PREFIX) {
                        routes.registries.push(reg.to_owned());
                    }
                }
            }
            Ok(routes)
        }
        Runtime::Podman => {
            let mut paths = vec![podman::MAIN.to_owned()];
            paths.extend(host.conf_files(podman::DROP_IN_DIR));
            let mut registries = Vec::new();
            for path in paths {
                let Some(text) = host
                    .read(&path)
                    .map_err(|e| unreadable(&path, e.to_string()))?
                else {
                    continue;
                };
                registries.extend(
                    podman::registries_through(&text, &proxy.to_string())
                        .map_err(|p| unreadable(&path, format!("{p:?}")))?,
                );
            }
            Ok(Routes {
                registries,
                named: false,
                hosts_dir: None,
            })
        }
    }
}

/// The registry an image reference names (Docker Hub when it names none).
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => DOCKER_HUB,
    }
}

/// A reference with its registry and Docker Hub's `library/` spelled
/// out, as ctr needs it.
fn qualified(reference: &str) -> String {
    let registry = registry_of(reference);
    let rest = reference
        .strip_prefix(registry)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(reference);
    if registry == DOCKER_HUB && !rest.contains('/') {
        format!("{DOCKER_HUB}/library/{rest}")
    } else {
        format!("{registry}/{rest}")
    }
}

/// What one pull did.
#[derive(Debug)]
pub enum Pulled {
    /// The runtime fetched the image.
    Fetched,
    /// The runtime had it already, so nothing was fetched.
    Present,
}

/// Pulls `reference` through `runtime` without touching the images the
/// host keeps: containerd into a namespace of its own, podman into
/// storage of its own (both removed after), dockerd only when it does not
/// hold the image already (removed after).
pub fn pull(
    runtime: Runtime,
    reference: &str,
    routes: &Routes,
    args: &DoctorArgs,
) -> Result<Pulled, String> {
    match runtime {
        Runtime::Containerd => {
            let ctr = |extra: &[&str]| {
                let mut cmd = Command::new("ctr");
                cmd.arg("--address")
                    .arg(&args.containerd_address)
                    .args(["--namespace", "bay-doctor"])
                    .args(extra);
                cmd
            };
            let qualified = qualified(reference);
            let mut cmd = ctr(&["images", "pull"]);
            if let Some(dir) = &routes.hosts_dir {
                cmd.arg("--hosts-dir").arg(dir);
            }
            cmd.arg(&qualified);
            let result = run(cmd);
            let _ = run(ctr(&["images", "rm", "--sync", &qualified]));
            let _ = Command::new("ctr")
                .arg("--address")
                .arg(&args.containerd_address)
                .args(["namespaces", "rm", "bay-doctor"])
                .output();
            result.map(|()| Pulled::Fetched)
        }
        Runtime::Docker => {
            let name = if registry_of(reference) == DOCKER_HUB {
                reference.to_owned()
            } else {
                format!("{}{reference}", crate::route::HOST_PREFIX)
            };
            let docker = |extra: &[&str]| {
                let mut cmd = Command::new("docker");
                cmd.arg("--host").arg(&args.docker_host).args(extra);
                cmd
            };
            if run(docker(&["image", "inspect", &name])).is_ok() {
                return Ok(Pulled::Present);
            }
            let result = run(docker(&["pull", "--quiet", &name]));
            let _ = run(docker(&["rmi", &name]));
            result.map(|()| Pulled::Fetched)
        }
        Runtime::Podman => {
            // podman refuses a runroot longer than 50 characters, which
            // a TMPDIR can make it.
            let dir = PathBuf::from(format!("/tmp/bay-doctor-{}", std::process::id()));
            let mut cmd = Command::new("podman");
            cmd.arg("--root")
                .arg(dir.join("root"))
                .arg("--runroot")
                .arg(dir.join("run"))
                .args(["--storage-driver", "vfs", "pull", "--quiet", reference]);
            let result = run(cmd);
            remove_tree(&dir);
            result.map(|()| Pulled::Fetched)
        }
    }
}

fn remove_tree(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a command; its error output when it fails.
fn run(mut cmd: Command) -> Result<(), String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(3).collect();
    Err(format!(
        "{program} failed ({}): {}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_their_registry() {
        assert_eq!(registry_of("alpine"), "docker.io");
        assert_eq!(registry_of("team/app:1"), "docker.io");
        assert_eq!(registry_of("reg.test:5000/team/app:1"), "reg.test:5000");
        assert_eq!(qualified("alpine:3"), "docker.io/library/alpine:3");
        assert_eq!(qualified("reg.test/a/b:1"), "reg.test/a/b:1");
    }
}
