//! Real image clients the tests pull with: skopeo, containerd (via ctr),
//! podman and dockerd. Each pulls one image reference and reports the
//! manifest digest and layer digests it ended up with, so a test can check
//! them against the [`TestImage`](crate::image::TestImage) that was pushed.
//!
//! Daemons (containerd, dockerd) and podman's storage live in temporary
//! folders owned by their handles and are removed on drop.

pub mod containerd;
pub mod docker;
pub mod podman;
pub mod skopeo;

use std::path::PathBuf;

use crate::registry::{Credentials, Registry};

/// What a client holds after a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// Digest of the manifest the client resolved the reference to.
    pub manifest_digest: String,
    /// Digests of the image's layers, base first (for uncompressed layers
    /// these equal the diff_ids docker and podman report).
    pub layer_digests: Vec<String>,
}

/// How a client reaches a registry (or a proxy standing in for one).
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Speak plain HTTP (or, where a client cannot be told, skip TLS checks).
    pub plain_http: bool,
    /// A folder holding `ca.crt` to trust for HTTPS.
    pub cert_dir: Option<PathBuf>,
    /// Basic-auth credentials.
    pub creds: Option<Credentials>,
}

impl Access {
    /// Access to `registry` directly: its scheme, CA and credentials.
    pub fn to_registry(registry: &Registry) -> Access {
        Access {
            plain_http: registry.tls().is_none(),
            cert_dir: registry.tls().map(|t| t.cert_dir.clone()),
            creds: registry.credentials().cloned(),
        }
    }

    /// The CA certificate file inside [`Access::cert_dir`].
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.cert_dir.as_ref().map(|d| d.join("ca.crt"))
    }
}

/// The layer digests listed in an image manifest's JSON.
pub fn manifest_layers(manifest: &[u8]) -> crate::error::Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| crate::error::HarnessError::parse("image manifest", e.to_string()))?;
    let layers = value
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| crate::error::HarnessError::parse("image manifest", "no layers array"))?;
    layers
        .iter()
        .map(|l| {
            l.get("digest")
                .and_then(|d| d.as_str())
                .map(str::to_owned)
                .ok_or_else(|| {
                    crate::error::HarnessError::parse("image manifest", "layer without digest")
                })
        })
        .collect()
}

/// Reads a JSON string array at `value[key]`.
fn string_array(value: &serde_json::Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
