//! podman 4 as a client, run as root with all its state in a temporary
//! folder: vfs storage (works on any file system, needs no fuse), cgroupfs
//! and a file events backend (no systemd needed), its own registries.conf,
//! containers.conf and signature policy so the host's are never read, and
//! file locks and libpod state under the temporary folder instead of
//! /dev/shm and /run/libpod, so parallel tests never share them.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::{string_array, Access, PulledImage};
use crate::error::{HarnessError, Result};
use crate::process::{run, run_stdout};

/// podman with private storage; removed on drop.
#[derive(Debug)]
pub struct Podman {
    dir: TempDir,
    registries_conf: PathBuf,
    policy: PathBuf,
    drop_ins: Option<PathBuf>,
}

impl Podman {
    /// podman whose registries.conf marks `insecure_registries` (host:port)
    /// as plain HTTP / unverified.
    pub fn new(insecure_registries: &[&str]) -> Result<Podman> {
        let mut conf = String::from("unqualified-search-registries = []\n");
        for host in insecure_registries {
            conf.push_str(&format!(
                "\n[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"
            ));
        }
        Podman::with_registries_conf(&conf)
    }

    /// podman whose pulls of `upstream` (host:port) go to `mirror` first
    /// (plain HTTP when `mirror_insecure`), then to `upstream` itself.
    pub fn with_mirror(upstream: &str, mirror: &str, mirror_insecure: bool) -> Result<Podman> {
        Podman::with_registries_conf(&mirror_registries_conf(upstream, mirror, mirror_insecure))
    }

    /// podman with a registries.conf of the caller's making (for mirrors).
    pub fn with_registries_conf(text: &str) -> Result<Podman> {
        let dir = tempfile::Builder::new()
            .prefix("bay-podman-")
            .tempdir()
            .map_err(|e| HarnessError::io("create temp dir", std::env::temp_dir(), e))?;
        let registries_conf = dir.path().join("registries.conf");
        std::fs::write(&registries_conf, text)
            .map_err(|e| HarnessError::io("write", &registries_conf, e))?;
        let policy = dir.path().join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .map_err(|e| HarnessError::io("write", &policy, e))?;
        let d = dir.path();
        let containers_conf = d.join("containers.conf");
        // Containers get limits every sandbox allows: podman's own
        // defaults for root exceed the hard limits of some.
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=16384:16384\", \"nproc=4096:4096\"]\n\n\
             [engine]\nlock_type = \"file\"\ntmp_dir = \"{}\"\nevents_logfile_path = \"{}\"\n\n[network]\nnetwork_config_dir = \"{}\"\n",
            d.join("libpod").display(),
            d.join("events.log").display(),
            d.join("networks").display()
        );
        std::fs::write(&containers_conf, conf)
            .map_err(|e| HarnessError::io("write", &containers_conf, e))?;
        for sub in ["root", "runroot", "tmp", "libpod", "networks"] {
            let p = dir.path().join(sub);
            std::fs::create_dir_all(&p).map_err(|e| HarnessError::io("create", &p, e))?;
        }
        Ok(Podman {
            dir,
            registries_conf,
            policy,
            drop_ins: None,
        })
    }

    /// Runs podman with `dir` as its drop-in folder of registries.conf
    /// files: bound over /etc/containers/registries.conf.d in a mount
    /// namespace of podman's own (podman 4 has no other way to name it for
    /// root), so the system's folder is never touched.
    pub fn set_drop_in_dir(&mut self, dir: &Path) {
        self.drop_ins = Some(dir.to_owned());
    }

    /// `program` run as [`Podman::set_drop_in_dir`] says: inside a mount
    /// namespace with the drop-in folder bound, or as it is.
    pub fn in_namespace(&self, program: &Path) -> Command {
        match &self.drop_ins {
            None => Command::new(program),
            Some(dir) => {
                let mut cmd = Command::new("unshare");
                cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/containers/registries.conf.d && exec \"$@\"")
                    .arg(dir)
                    .arg(program);
                cmd
            }
        }
    }

    /// The environment [`Podman::command`] sets.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        let d = self.dir.path();
        vec![
            ("CONTAINERS_REGISTRIES_CONF", self.registries_conf.clone()),
            ("CONTAINERS_CONF", d.join("containers.conf")),
            ("TMPDIR", d.join("tmp")),
        ]
    }

    /// The global flags [`Podman::command`] passes, for scripts that run
    /// podman themselves.
    pub fn global_flags(&self) -> Vec<String> {
        let d = self.dir.path();
        vec![
            "--root".into(),
            d.join("root").display().to_string(),
            "--runroot".into(),
            d.join("runroot").display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    /// The signature policy that accepts any image.
    pub fn policy(&self) -> &Path {
        &self.policy
    }

    /// The registries.conf in use.
    pub fn registries_conf(&self) -> &Path {
        &self.registries_conf
    }

    /// `podman` with the private storage and configuration flags.
    pub fn command(&self) -> Command {
        let mut cmd = self.in_namespace(Path::new("podman"));
        cmd.envs(self.env()).args(self.global_flags());
        cmd
    }

    /// Pulls `reference` and reports the manifest digest and layer diff_ids
    /// podman stored.
    pub fn pull(&self, reference: &str, access: &Access) -> Result<PulledImage> {
        let mut cmd = self.command();
        cmd.args(["pull", "--quiet"])
            .arg("--signature-policy")
            .arg(&self.policy);
        if access.plain_http {
            cmd.arg("--tls-verify=false");
        }
        if let Some(dir) = &access.cert_dir {
            cmd.arg("--cert-dir").arg(dir);
        }
        if let Some(creds) = &access.creds {
            cmd.arg("--creds").arg(creds.joined());
        }
        cmd.arg(reference);
        run(&mut cmd)?;
        self.inspect(reference)
    }

    /// Manifest digest and layer diff_ids of a stored image.
    pub fn inspect(&self, reference: &str) -> Result<PulledImage> {
        let out = run_stdout(self.command().args(["image", "inspect", reference]))?;
        parse_inspect(&out, "podman image inspect")
    }
}

/// A registries.conf sending pulls of `upstream` to `mirror` first.
pub fn mirror_registries_conf(upstream: &str, mirror: &str, mirror_insecure: bool) -> String {
    format!(
        "unqualified-search-registries = []\n\n\
         [[registry]]\nprefix = \"{upstream}\"\nlocation = \"{upstream}\"\ninsecure = true\n\n\
         [[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = {mirror_insecure}\n"
    )
}

/// Reads `Digest` and `RootFS.Layers` from the first object of an inspect
/// JSON array (podman's and docker's shapes share these fields).
pub(crate) fn parse_inspect(out: &str, what: &str) -> Result<PulledImage> {
    let value: serde_json::Value =
        serde_json::from_str(out).map_err(|e| HarnessError::parse(what, e.to_string()))?;
    let first = value
        .get(0)
        .ok_or_else(|| HarnessError::parse(what, "empty array"))?;
    let manifest_digest = match first.get("Digest").and_then(|d| d.as_str()) {
        Some(d) => d.to_owned(),
        None => string_array(first, "RepoDigests")
            .first()
            .and_then(|r| r.split_once('@'))
            .map(|(_, d)| d.to_owned())
            .ok_or_else(|| HarnessError::parse(what, "no Digest or RepoDigests"))?,
    };
    let layer_digests = first
        .get("RootFS")
        .map(|r| string_array(r, "Layers"))
        .unwrap_or_default();
    Ok(PulledImage {
        manifest_digest,
        layer_digests,
    })
}
