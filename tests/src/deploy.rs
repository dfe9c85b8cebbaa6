//! bay as operators install it: the container image built by
//! `deploy/image/build.sh`, containers and played pods run from it with
//! podman on the host's network, and the Kubernetes manifests turned into
//! pods that `podman kube play` runs (`tests/py/kube_pods.py`).
//!
//! Every container, pod and image lives in the [`Podman`] store of the
//! test (a temporary folder) under a name unique to the test process, and
//! is removed on drop, also when the test fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bins::{target_debug_dir, workspace_root};
use crate::clients::podman::Podman;
use crate::error::{HarnessError, Result};
use crate::libtorrent::PYTHON;
use crate::process::{run, run_stdout};

/// bay's image, built from the debug binaries into a test's store.
#[derive(Debug)]
pub struct BayImage {
    tag: String,
}

impl BayImage {
    /// Runs the image build script against the workspace's debug binaries.
    pub fn build(podman: &Podman, name: &str) -> Result<BayImage> {
        let tag = format!("localhost/{name}-{}:test", std::process::id());
        let mut cmd = Command::new(workspace_root().join("deploy/image/build.sh"));
        cmd.envs(podman.env())
            .env("BAY_PODMAN_ARGS", podman.global_flags().join(" "))
            .arg("--bin-dir")
            .arg(target_debug_dir())
            .arg("--tag")
            .arg(&tag);
        run(&mut cmd)?;
        Ok(BayImage { tag })
    }

    /// The image's name.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// The containers, pods and image of one test, force-removed on drop.
#[derive(Debug)]
pub struct Cleanup<'a> {
    podman: &'a Podman,
    containers: Vec<String>,
    pods: Vec<String>,
    image: Option<String>,
}

impl<'a> Cleanup<'a> {
    pub fn new(podman: &'a Podman) -> Cleanup<'a> {
        Cleanup {
            podman,
            containers: Vec::new(),
            pods: Vec::new(),
            image: None,
        }
    }

    /// Builds bay's image, removed at the end.
    pub fn build(&mut self, name: &str) -> Result<BayImage> {
        let image = BayImage::build(self.podman, name)?;
        self.image = Some(image.tag.clone());
        Ok(image)
    }

    /// `podman run -d --network host --name NAME EXTRA… IMAGE ARGS…`.
    pub fn run(
        &mut self,
        name: &str,
        image: &BayImage,
        extra: &[String],
        args: &[&str],
    ) -> Result<()> {
        self.containers.push(name.to_owned());
        let mut cmd = self.podman.command();
        cmd.args(["run", "-d", "--network", "host", "--name", name])
            .args(extra)
            .arg(&image.tag)
            .args(args);
        run(&mut cmd).map(drop)
    }

    /// `podman stop -t SECONDS NAME`, then the container's exit code.
    pub fn stop(&self, name: &str, seconds: u32) -> Result<i64> {
        run(self
            .podman
            .command()
            .args(["stop", "-t", &seconds.to_string(), name]))?;
        let out = run_stdout(self.podman.command().args([
            "inspect",
            "--format",
            "{{.State.ExitCode}}",
            name,
        ]))?;
        out.trim()
            .parse()
            .map_err(|_| HarnessError::parse("podman inspect", out))
    }

    /// The container's log (for failure messages).
    pub fn logs(&self, name: &str) -> String {
        self.podman
            .command()
            .args(["logs", name])
            .output()
            .map(|o| {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                text
            })
            .unwrap_or_default()
    }

    /// `podman kube play FILE`; the pods named are removed at the end.
    pub fn play(&mut self, file: &Path, pods: &[String]) -> Result<()> {
        self.pods.extend(pods.iter().cloned());
        run(self.podman.command().args(["kube", "play"]).arg(file)).map(drop)
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let podman = |args: &[&str]| {
            let _ = self
                .podman
                .command()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for pod in &self.pods {
            podman(&["pod", "rm", "-f", "-t", "0", pod]);
        }
        for c in &self.containers {
            podman(&["rm", "-f", "-t", "0", c]);
        }
        if let Some(image) = &self.image {
            podman(&["rmi", "-f", image]);
        }
    }
}

/// What replaces cluster-only values when the manifests are played here;
/// see `tests/py/kube_pods.py`.
#[derive(Debug, Default, serde::Serialize)]
pub struct PlaySpec {
    pub manifests: Vec<PathBuf>,
    pub image: String,
    pub suffix: String,
    pub config: BTreeMap<String, String>,
    pub host_paths: BTreeMap<String, PathBuf>,
    pub env: BTreeMap<String, BTreeMap<String, String>>,
    pub args: BTreeMap<String, Vec<String>>,
    pub volumes: BTreeMap<String, PathBuf>,
}

/// The manifests as pods and a ConfigMap, as `podman kube play` reads them.
pub fn kube_pods(spec: &PlaySpec) -> Result<String> {
    let script = workspace_root().join("tests/py/kube_pods.py");
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: "kube_pods.py".into(),
            source,
        })?;
    let json =
        serde_json::to_vec(spec).map_err(|e| HarnessError::parse("play spec", e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&json)
            .map_err(|e| HarnessError::io("write to", &script, e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| HarnessError::io("wait for", &script, e))?;
    if !out.status.success() {
        return Err(HarnessError::Failed {
            program: "kube_pods.py".into(),
            status: out.status,
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
