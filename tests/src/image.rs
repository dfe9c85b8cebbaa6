//! Test images built without any image builder: layers are uncompressed tar
//! files of deterministic pseudo-random bytes ([`crate::content`]), written
//! with their config, OCI manifest, `index.json` and `oci-layout` into an
//! OCI image layout on disk, then pushed to a test registry with skopeo.
//!
//! Layers are uncompressed so that a layer's blob digest equals its diff_id:
//! clients that only report diff_ids (docker, podman) can then be checked
//! against the blobs that were pushed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::clients::PulledImage;
use crate::content;
use crate::error::{HarnessError, Result};
use crate::process::{command_in, run};
use crate::registry::Registry;

/// Media type of the OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

const MIB: u64 = 1024 * 1024;
const TAR_BLOCK: u64 = 512;
/// Layer content is generated and hashed this many bytes at a time.
const CHUNK: u64 = 1 << 20;

/// What image to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Size of the one file in each layer, in bytes (the layer's tar is a
    /// little larger: a header and padding).
    pub layer_sizes: Vec<u64>,
    /// Seed of the content; different seeds give images sharing no layer.
    pub seed: u64,
    /// Tag the image is stored and pushed under.
    pub tag: String,
}

impl ImageSpec {
    /// Three small layers (about 4.3 MiB in all): fast to build and pull.
    pub fn small(seed: u64) -> ImageSpec {
        ImageSpec {
            layer_sizes: vec![MIB, 256 * 1024, 3 * MIB],
            seed,
            tag: "small".into(),
        }
    }

    /// Three layers, one over 100 MiB: for tests about big blobs.
    pub fn big(seed: u64) -> ImageSpec {
        ImageSpec {
            layer_sizes: vec![100 * MIB + 12345, 8 * MIB, 512 * 1024],
            seed,
            tag: "big".into(),
        }
    }
}

/// A content-addressed blob: digest (`sha256:<hex>`) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// An image in an OCI layout on disk; removed on drop.
#[derive(Debug)]
pub struct TestImage {
    /// The manifest blob.
    pub manifest: Blob,
    /// The config blob.
    pub config: Blob,
    /// The layers, base first.
    pub layers: Vec<Blob>,
    /// The tag in the layout's index.json.
    pub tag: String,
    layout: PathBuf,
    _dir: TempDir,
}

impl TestImage {
    /// Builds the image described by `spec` in a new temporary folder.
    pub fn build(spec: &ImageSpec) -> Result<TestImage> {
        let dir = tempfile::Builder::new()
            .prefix("bay-image-")
            .tempdir()
            .map_err(|e| HarnessError::io("create temp dir", std::env::temp_dir(), e))?;
        let layout = dir.path().join("layout");
        let blobs = layout.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| HarnessError::io("create", &blobs, e))?;
        let mut layers = Vec::new();
        for (i, &size) in spec.layer_sizes.iter().enumerate() {
            let seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            layers.push(write_layer(&blobs, i, size, seed)?);
        }
        let config_json = config_json(&layers);
        let config = write_blob(&blobs, config_json.as_bytes())?;
        let manifest_json = manifest_json(&config, &layers);
        let manifest = write_blob(&blobs, manifest_json.as_bytes())?;
        write_file(
            &layout.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": manifest.digest,
                "size": manifest.size,
                "annotations": {"org.opencontainers.image.ref.name": spec.tag},
            }],
        });
        write_file(&layout.join("index.json"), index.to_string().as_bytes())?;
        Ok(TestImage {
            manifest,
            config,
            layers,
            tag: spec.tag.clone(),
            layout,
            _dir: dir,
        })
    }

    /// The OCI layout folder.
    pub fn layout(&self) -> &Path {
        &self.layout
    }

    /// Sum of the layer blob sizes.
    pub fn layer_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// `HOST/REPO:TAG` for this image in `registry`.
    pub fn reference(&self, registry: &Registry, repo: &str) -> String {
        format!("{}/{repo}:{}", registry.host(), self.tag)
    }

    /// Pushes the image to `registry` as `repo:TAG` with skopeo, keeping
    /// every digest as built.
    pub fn push(&self, registry: &Registry, repo: &str) -> Result<()> {
        self.push_from(registry.netns(), registry, repo)
    }

    /// Pushes as [`TestImage::push`] does, running skopeo inside network
    /// namespace `netns` (for a registry on a namespace host).
    pub fn push_from(&self, netns: Option<&str>, registry: &Registry, repo: &str) -> Result<()> {
        let mut cmd = command_in(netns, "skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if let Some(tls) = registry.tls() {
            cmd.arg("--dest-cert-dir").arg(&tls.cert_dir);
        }
        if let Some(creds) = registry.credentials() {
            cmd.arg("--dest-creds").arg(creds.joined());
        }
        cmd.arg(format!("oci:{}:{}", self.layout.display(), self.tag));
        cmd.arg(format!("docker://{}", self.reference(registry, repo)));
        run(&mut cmd).map(drop)
    }

    /// Fails unless `pulled` has this image's manifest digest and layers.
    pub fn check(&self, pulled: &PulledImage) -> Result<()> {
        if pulled.manifest_digest != self.manifest.digest {
            return Err(HarnessError::Mismatch(format!(
                "manifest {} but pushed {}",
                pulled.manifest_digest, self.manifest.digest
            )));
        }
        let want: Vec<&str> = self.layers.iter().map(|l| l.digest.as_str()).collect();
        let got: Vec<&str> = pulled.layer_digests.iter().map(String::as_str).collect();
        if want != got {
            return Err(HarnessError::Mismatch(format!(
                "layers {got:?} but pushed {want:?}"
            )));
        }
        Ok(())
    }

    /// Fails unless each of this image's layers left `registry` exactly
    /// once (bay fetched it for its clients, nothing else did).
    pub fn check_served_once(&self, registry: &Registry) -> Result<()> {
        let served = registry.blob_bytes_served()?;
        for layer in &self.layers {
            let bytes = served.get(&layer.digest).copied().unwrap_or(0);
            if bytes != layer.size {
                return Err(HarnessError::Mismatch(format!(
                    "layer {} left the registry as {bytes} bytes, not {} once: {served:?}",
                    layer.digest, layer.size
                )));
            }
        }
        Ok(())
    }
}

/// A plain-HTTP registry holding a small test image (from `seed`) at `repo`.
pub fn registry_with_image(seed: u64, repo: &str) -> Result<(Registry, TestImage)> {
    let registry = Registry::start(crate::registry::RegistryOptions::plain())?;
    let image = TestImage::build(&ImageSpec::small(seed))?;
    image.push(&registry, repo)?;
    Ok((registry, image))
}

/// Writes everything to a file and into a SHA-256 at once.
struct HashingFile {
    out: BufWriter<File>,
    hash: Sha256,
    size: u64,
    path: PathBuf,
}

impl HashingFile {
    fn create(path: PathBuf) -> Result<HashingFile> {
        let file = File::create(&path).map_err(|e| HarnessError::io("create", &path, e))?;
        Ok(HashingFile {
            out: BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            size: 0,
            path,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|e| HarnessError::io("write", &self.path, e))
    }

    /// Flushes and moves the file to `dir/<hex>`.
    fn finish_into(mut self, dir: &Path) -> Result<Blob> {
        self.out
            .flush()
            .map_err(|e| HarnessError::io("flush", &self.path, e))?;
        let hex = hex(&self.hash.finalize());
        let dest = dir.join(&hex);
        std::fs::rename(&self.path, &dest).map_err(|e| HarnessError::io("rename to", &dest, e))?;
        Ok(Blob {
            digest: format!("sha256:{hex}"),
            size: self.size,
        })
    }
}

fn write_layer(blobs: &Path, index: usize, size: u64, seed: u64) -> Result<Blob> {
    let mut file = HashingFile::create(blobs.join(format!(".layer-{index}.tmp")))?;
    file.write(&tar_header(&format!("bay-layer-{index}.bin"), size)?)?;
    // Content comes in 1 MiB chunks, each from its own seed, so a big
    // layer never sits in memory whole.
    let mut left = size;
    let mut chunk_no = 0u64;
    while left > 0 {
        let n = left.min(CHUNK);
        let chunk_seed = seed.wrapping_add(chunk_no.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        file.write(&content::bytes(usize::try_from(n).unwrap_or(0), chunk_seed))?;
        left -= n;
        chunk_no += 1;
    }
    let pad = (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
    // Padding to the block, then the two zero blocks that end an archive.
    let zeros = vec![0u8; usize::try_from(pad + 2 * TAR_BLOCK).unwrap_or(0)];
    file.write(&zeros)?;
    file.finish_into(blobs)
}

/// A ustar header for a regular file `name` of `size` bytes, mode 0644,
/// owned by root, mtime 0.
fn tar_header(name: &str, size: u64) -> Result<[u8; 512]> {
    let mut h = [0u8; 512];
    if name.len() >= 100 {
        return Err(HarnessError::parse(
            "tar entry name",
            "longer than 99 bytes",
        ));
    }
    if size >= 8 << 30 {
        return Err(HarnessError::parse("tar entry size", "8 GiB or more"));
    }
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 148, b"        ");
    h[156] = b'0';
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    put(&mut h, 265, b"root");
    put(&mut h, 297, b"root");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

fn put(header: &mut [u8; 512], at: usize, bytes: &[u8]) {
    header[at..at + bytes.len()].copy_from_slice(bytes);
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<Blob> {
    let hex = hex(&Sha256::digest(bytes));
    write_file(&blobs.join(&hex), bytes)?;
    Ok(Blob {
        digest: format!("sha256:{hex}"),
        size: bytes.len() as u64,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| HarnessError::io("write", path, e))
}

fn config_json(layers: &[Blob]) -> String {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    serde_json::json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string()
}

fn manifest_json(config: &Blob, layers: &[Blob]) -> String {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(
            |l| serde_json::json!({"mediaType": OCI_LAYER_TAR, "digest": l.digest, "size": l.size}),
        )
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": layers,
    })
    .to_string()
}

pub use bay_testkit::content::{file_digest, hex};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_header_checksum_matches_ustar_rule() {
        let h = tar_header("a.bin", 1000).expect("header");
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|&b| u32::from(b)).sum();
        let stored = std::str::from_utf8(&h[148..154]).expect("octal");
        assert_eq!(u32::from_str_radix(stored, 8).expect("octal"), sum);
        assert_eq!(&h[124..136], b"00000001750\0");
    }

    #[test]
    fn tar_header_rejects_long_names() {
        assert!(tar_header(&"x".repeat(100), 1).is_err());
    }
}
