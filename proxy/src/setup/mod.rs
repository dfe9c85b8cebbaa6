//! `bay-proxy setup docker|containerd|podman`: points a host's image
//! runtime at this proxy for the given registries by merging into the
//! runtime's own configuration, never replacing what the operator wrote.
//!
//! Each runtime's merge is a pure function from the files as they are to
//! the files as they should be ([`containerd`], [`docker`], [`podman`]);
//! [`files`] reads and writes them under the host's root with backups and
//! a record, which `--undo` uses to put them back. Every file is read and
//! every merge checked before the first write: a file that cannot be read
//! or parsed stops setup with nothing changed. A second run finds nothing
//! to change and writes nothing.
//!
//! `print-config` shows the same files as setup would write them on a
//! host that has none of them yet.

mod apply;
pub mod containerd;
pub mod diff;
pub mod docker;
pub mod files;
pub mod podman;

pub use apply::run;

use std::net::SocketAddr;
use std::path::PathBuf;

use files::HostFs;

/// Docker Hub's name as image references use it.
pub const DOCKER_HUB: &str = "docker.io";

/// An image runtime setup can point at the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    Containerd,
    Docker,
    Podman,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
        }
    }

    pub const ALL: [Runtime; 3] = [Runtime::Containerd, Runtime::Docker, Runtime::Podman];
}

/// Flags of `bay-proxy setup`.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// The runtime to point at bay-proxy.
    #[arg(value_enum)]
    pub runtime: Runtime,
    /// A registry whose pulls go through bay-proxy: registry.example.com,
    /// host:port, or docker.io. Repeatable. docker defaults to Docker Hub;
    /// containerd and podman need at least one.
    #[arg(long = "registry", value_name = "REG")]
    pub registries: Vec<String>,
    /// bay-proxy's address as the runtime reaches it (its --listen).
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub proxy: SocketAddr,
    /// Print what would change, as a diff, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Put back every file an earlier setup of this runtime changed, for
    /// every registry it named (the rest of the command line may stay as
    /// it was for setup).
    #[arg(long)]
    pub undo: bool,
    /// With --undo: put files back even if they changed since setup wrote
    /// them (those changes are lost).
    #[arg(long, requires = "undo")]
    pub force: bool,
    /// Where the host's root is mounted here (a node's / in a pod, or a
    /// scratch copy); paths written into files stay the host's own.
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root_dir: PathBuf,
    /// Where the originals of changed files and the record of changes are
    /// kept, on the host (one folder per runtime).
    #[arg(long, default_value = "/var/lib/bay-proxy/setup", value_name = "DIR")]
    pub backup_dir: String,
}

/// Why setup changed nothing, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("cannot read {path}: {source}; nothing was changed")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid {format} ({message}); nothing was changed: fix the file, then run setup again")]
    Malformed {
        path: String,
        format: &'static str,
        message: String,
    },
    #[error("{path}: {message}; nothing was changed")]
    Conflict { path: String, message: String },
    #[error("cannot write {path}: {source}; `bay-proxy setup --undo` puts back what was already written")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("nothing to undo: {dir}/record.json does not exist (setup never ran for this runtime, or was undone)")]
    NothingToUndo { dir: String },
    #[error("the backup {path} is missing; restore by hand")]
    BackupMissing { path: String },
    #[error("changed since setup wrote them: {}; nothing was put back. Check them, then run `setup --undo --force` to put back the originals anyway (kept in {dir})", paths.join(", "))]
    ChangedSince { paths: Vec<String>, dir: String },
}

/// What is wrong with one file's contents; the caller names the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    Malformed(&'static str, String),
    Conflict(String),
}

impl Problem {
    fn at(self, path: &str) -> SetupError {
        match self {
            Problem::Malformed(format, message) => SetupError::Malformed {
                path: path.into(),
                format,
                message,
            },
            Problem::Conflict(message) => SetupError::Conflict {
                path: path.into(),
                message,
            },
        }
    }
}

/// One file setup would write: its host path, its text now (`None`: no
/// such file) and the text it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub old: Option<String>,
    pub new: String,
}

/// Everything setup would do for one runtime.
#[derive(Debug, Default)]
pub struct Plan {
    /// Only files whose text changes.
    pub changes: Vec<Change>,
    /// What the operator must do or know afterwards.
    pub notes: Vec<String>,
}

impl Plan {
    fn change(&mut self, path: String, old: Option<String>, new: String) {
        if old.as_deref() != Some(new.as_str()) {
            self.changes.push(Change { path, old, new });
        }
    }
}

/// How the files of a host are read: the host itself, or (for
/// print-config) a host without any of them.
pub trait Files {
    fn read(&self, path: &str) -> Result<Option<String>, SetupError>;
    fn conf_files(&self, dir: &str) -> Vec<String>;
}

impl Files for HostFs {
    fn read(&self, path: &str) -> Result<Option<String>, SetupError> {
        HostFs::read(self, path)
    }
    fn conf_files(&self, dir: &str) -> Vec<String> {
        HostFs::conf_files(self, dir)
    }
}

/// A host with no configuration files at all.
#[derive(Debug)]
pub struct Blank;

impl Files for Blank {
    fn read(&self, _: &str) -> Result<Option<String>, SetupError> {
        Ok(None)
    }
    fn conf_files(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

/// A registry as image references name it: no scheme, no slash, Docker
/// Hub's aliases as `docker.io`.
pub fn normalize_registry(input: &str) -> Result<String, SetupError> {
    let name = input
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    if name.is_empty() || name.contains(['/', ' ', '"', '\'', '[', ']', '#', '\\']) {
        return Err(SetupError::Usage(format!(
            "--registry {input:?}: name a registry host (registry.example.com, host:port or docker.io)"
        )));
    }
    Ok(match name.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.into(),
        _ => name,
    })
}

/// The registries to set up: the flags, or Docker Hub for dockerd.
pub fn registries(runtime: Runtime, given: &[String]) -> Result<Vec<String>, SetupError> {
    let mut out: Vec<String> = Vec::new();
    for r in given {
        let r = normalize_registry(r)?;
        if !out.contains(&r) {
            out.push(r);
        }
    }
    if out.is_empty() {
        if runtime == Runtime::Docker {
            out.push(DOCKER_HUB.into());
        } else {
            return Err(SetupError::Usage(format!(
                "name the registries to pull through bay-proxy: bay-proxy setup {} --registry REG",
                runtime.name()
            )));
        }
    }
    Ok(out)
}

/// What setup would change for `runtime` on the host `files` reads.
pub fn plan(
    runtime: Runtime,
    registries: &[String],
    proxy: SocketAddr,
    files: &dyn Files,
) -> Result<Plan, SetupError> {
    let mut plan = Plan::default();
    let url = format!("http://{proxy}");
    match runtime {
        Runtime::Containerd => {
            let old = files.read(containerd::CONFIG)?;
            let merged =
                containerd::merge_config(old.as_deref()).map_err(|p| p.at(containerd::CONFIG))?;
            if let Some(new) = merged.new_text {
                plan.change(containerd::CONFIG.into(), old, new);
                plan.notes.push(
                    "containerd reads config.toml only when it starts: restart it \
                     (systemctl restart containerd) so that its CRI plugin reads the hosts files"
                        .into(),
                );
            }
            for registry in registries {
                let path = format!("{}/{registry}/hosts.toml", merged.certs_dir);
                let old = files.read(&path)?;
                let new = containerd::merge_hosts(old.as_deref(), registry, &url)
                    .map_err(|p| p.at(&path))?;
                plan.change(path, old, new);
            }
            plan.notes.push(format!(
                "hosts.toml files are read at every pull; ctr ignores config_path: \
                 ctr images pull --hosts-dir {} ...",
                merged.certs_dir
            ));
        }
        Runtime::Docker => {
            if registries.iter().any(|r| r == DOCKER_HUB) {
                let old = files.read(docker::DAEMON_JSON)?;
                let new = docker::merge_daemon_json(old.as_deref(), &url)
                    .map_err(|p| p.at(docker::DAEMON_JSON))?;
                if old.as_deref() != Some(new.as_str()) {
                    plan.notes.push(
                        "dockerd reads registry-mirrors at start and on reload: \
                         systemctl reload docker (or restart it)"
                            .into(),
                    );
                }
                plan.change(docker::DAEMON_JSON.into(), old, new);
                plan.notes.push(format!(
                    "dockerd's mirror requests do not name the registry: the bay-proxy at {proxy} \
                     must run with --upstream registry-1.docker.io"
                ));
            }
            let names: Vec<String> = registries
                .iter()
                .filter(|r| *r != DOCKER_HUB)
                .map(|r| docker::p2p_name(r))
                .collect();
            if !names.is_empty() {
                let old = files.read(docker::HOSTS)?;
                let new = docker::merge_hosts(old.as_deref().unwrap_or(""), proxy.ip(), &names)
                    .map_err(|p| p.at(docker::HOSTS))?;
                plan.change(docker::HOSTS.into(), old, new);
                for r in registries.iter().filter(|r| *r != DOCKER_HUB) {
                    plan.notes.push(format!(
                        "pull {r} images as {}{r}/IMAGE; dockerd connects to port {} of {}, \
                         where bay-proxy must listen",
                        crate::route::HOST_PREFIX,
                        r.rsplit_once(':').map_or("443, then 80,", |(_, p)| p),
                        proxy.ip()
                    ));
                }
            }
        }
        Runtime::Podman => {
            let ours = files.read(podman::DROP_IN)?;
            let mut others = Vec::new();
            let mut paths = vec![podman::MAIN.to_owned()];
            paths.extend(
                files
                    .conf_files(podman::DROP_IN_DIR)
                    .into_iter()
                    .filter(|p| p != podman::DROP_IN),
            );
            for path in &paths {
                if let Some(text) = files.read(path)? {
                    podman::check_other(&text).map_err(|p| p.at(path))?;
                    others.push(text);
                }
            }
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            let new =
                podman::merge_drop_in(ours.as_deref(), &others, registries, &proxy.to_string())
                    .map_err(|p| p.at(podman::DROP_IN))?;
            plan.change(podman::DROP_IN.into(), ours, new);
            plan.notes.push(format!(
                "podman's mirror requests do not name the registry: the bay-proxy at {proxy} \
                 must run with --upstream REG, one proxy listener per registry"
            ));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests;
