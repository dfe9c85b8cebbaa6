//! skopeo as a client: `skopeo copy docker://REF dir:DIR`, then every blob
//! in the folder is hashed, so the report is what actually arrived.

use std::path::Path;
use std::process::Command;

use super::{manifest_layers, Access, PulledImage};
use crate::error::{HarnessError, Result};
use crate::image::file_digest;
use crate::process::{command_in, run};

/// Pulls `reference` (`HOST/REPO:TAG`) into a new temporary folder, checks
/// every blob against its digest, and removes the folder.
pub fn pull(reference: &str, access: &Access) -> Result<PulledImage> {
    let dir = tempfile::Builder::new()
        .prefix("bay-skopeo-")
        .tempdir()
        .map_err(|e| HarnessError::io("create temp dir", std::env::temp_dir(), e))?;
    pull_into(reference, access, &dir.path().join("image"))
}

/// Pulls `reference` into `dest` (skopeo's `dir:` layout) and checks it.
pub fn pull_into(reference: &str, access: &Access, dest: &Path) -> Result<PulledImage> {
    pull_into_in(None, reference, access, dest)
}

/// Pulls as [`pull_into`] does, with skopeo running inside network
/// namespace `netns`.
pub fn pull_into_in(
    netns: Option<&str>,
    reference: &str,
    access: &Access,
    dest: &Path,
) -> Result<PulledImage> {
    run(&mut copy_command(netns, reference, access, dest))?;
    read_dir_layout(dest)
}

/// The `skopeo copy docker://REF dir:DEST` command, for callers that start
/// many pulls at once and time each (check the result with
/// [`read_dir_layout`]). skopeo copies into `dir:` one layer at a time.
pub fn copy_command(netns: Option<&str>, reference: &str, access: &Access, dest: &Path) -> Command {
    let mut cmd = source_command(netns, reference, access);
    cmd.arg(format!("dir:{}", dest.display()));
    cmd
}

/// The `skopeo copy docker://REF oci:DEST` command: into an OCI layout
/// skopeo fetches several layers at once, as dockerd and containerd do
/// (check the result with [`read_oci_layout`]).
pub fn oci_copy_command(
    netns: Option<&str>,
    reference: &str,
    access: &Access,
    dest: &Path,
) -> Command {
    let mut cmd = source_command(netns, reference, access);
    cmd.arg("--preserve-digests");
    cmd.arg(format!("oci:{}", dest.display()));
    cmd
}

fn source_command(netns: Option<&str>, reference: &str, access: &Access) -> Command {
    let mut cmd = command_in(netns, "skopeo");
    cmd.args(["copy", "--quiet"]);
    cmd.arg(format!("--src-tls-verify={}", !access.plain_http));
    if let Some(dir) = &access.cert_dir {
        cmd.arg("--src-cert-dir").arg(dir);
    }
    if let Some(creds) = &access.creds {
        cmd.arg("--src-creds").arg(creds.joined());
    }
    cmd.arg(format!("docker://{reference}"));
    cmd
}

/// Reads a skopeo `dir:` layout: manifest digest and verified layers.
pub fn read_dir_layout(dir: &Path) -> Result<PulledImage> {
    let manifest_path = dir.join("manifest.json");
    let manifest =
        std::fs::read(&manifest_path).map_err(|e| HarnessError::io("read", &manifest_path, e))?;
    let layer_digests = checked_layers(&manifest, dir)?;
    Ok(PulledImage {
        manifest_digest: file_digest(&manifest_path)?,
        layer_digests,
    })
}

/// Reads a skopeo `oci:` layout (one image): manifest digest and verified
/// layers.
pub fn read_oci_layout(dir: &Path) -> Result<PulledImage> {
    let index_path = dir.join("index.json");
    let index = std::fs::read(&index_path).map_err(|e| HarnessError::io("read", &index_path, e))?;
    let index: serde_json::Value = serde_json::from_slice(&index)
        .map_err(|e| HarnessError::Mismatch(format!("{}: {e}", index_path.display())))?;
    let Some(manifest_digest) = index["manifests"][0]["digest"].as_str() else {
        return Err(HarnessError::Mismatch(format!(
            "{} names no manifest",
            index_path.display()
        )));
    };
    let blobs = dir.join("blobs").join("sha256");
    let manifest_path = blobs.join(hex_of(manifest_digest));
    let manifest =
        std::fs::read(&manifest_path).map_err(|e| HarnessError::io("read", &manifest_path, e))?;
    let layer_digests = checked_layers(&manifest, &blobs)?;
    Ok(PulledImage {
        manifest_digest: file_digest(&manifest_path)?,
        layer_digests,
    })
}

/// The manifest's layers, each checked against the file named by its hex
/// digest in `blobs`.
fn checked_layers(manifest: &[u8], blobs: &Path) -> Result<Vec<String>> {
    let layer_digests = manifest_layers(manifest)?;
    for digest in &layer_digests {
        let got = file_digest(&blobs.join(hex_of(digest)))?;
        if &got != digest {
            return Err(HarnessError::Mismatch(format!(
                "skopeo wrote blob {digest} with content {got}"
            )));
        }
    }
    Ok(layer_digests)
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}
