//! Fetching a whole blob into a caller's sink while checking its digest:
//! the origin seeder's and preheat's way to read a blob, so that only the
//! bytes the digest names are ever kept.
//!
//! The sink sees every byte as it arrives (the seeder hashes pieces and
//! publishes them while the fetch runs), so it must treat what it holds as
//! unverified until [`RegistryClient::fetch_blob_verified`] returns `Ok`,
//! and discard it on any error.

use std::future::Future;
use std::io;

use bay_wire::oci::{Digest, DigestVerifier, RepositoryName};
use bytes::Bytes;

use super::client::RegistryClient;
use super::credentials::Auth;
use super::error::RegistryError;

/// Where a fetched blob's bytes go, in order.
pub trait BlobSink {
    /// Takes the next piece of the blob.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = io::Result<()>>;
}

/// Collects the blob in memory (small blobs and tests).
impl BlobSink for Vec<u8> {
    async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        self.extend_from_slice(&chunk);
        Ok(())
    }
}

impl RegistryClient {
    /// Streams the whole blob into `sink`, checking it against `digest` on
    /// the way. Fails on any status but 200 (an error page never reaches
    /// the sink) and, after the last byte, when the content does not hash
    /// to `digest`. Returns the blob's length.
    pub async fn fetch_blob_verified<S: BlobSink>(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: &Auth,
        sink: &mut S,
    ) -> Result<u64, RegistryError> {
        self.fetch_into(repo, digest, auth, sink, Some(DigestVerifier::new(digest)))
            .await
    }

    /// [`RegistryClient::fetch_blob_verified`] without the digest check,
    /// for a sink that checks the digest itself before keeping anything
    /// (the origin's store hashes the blob as its pieces come in): one
    /// pass over the bytes instead of two.
    pub async fn fetch_blob_unchecked<S: BlobSink>(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: &Auth,
        sink: &mut S,
    ) -> Result<u64, RegistryError> {
        self.fetch_into(repo, digest, auth, sink, None).await
    }

    async fn fetch_into<S: BlobSink>(
        &self,
        repo: &RepositoryName,
        digest: &Digest,
        auth: &Auth,
        sink: &mut S,
        mut verifier: Option<DigestVerifier>,
    ) -> Result<u64, RegistryError> {
        let what = || format!("blob {digest} in {repo}");
        let mut blob = self.get_blob(repo, digest, None, auth).await?;
        if blob.status() != 200 {
            return Err(RegistryError::Status {
                registry: self.registry().to_owned(),
                what: what(),
                status: blob.status(),
            });
        }
        let mut len = 0u64;
        while let Some(chunk) = blob
            .chunk()
            .await
            .map_err(|e| RegistryError::from_http(self.registry(), &what(), e))?
        {
            if let Some(v) = &mut verifier {
                v.update(&chunk);
            }
            len += chunk.len() as u64;
            sink.write(chunk)
                .await
                .map_err(|source| RegistryError::Sink {
                    registry: self.registry().to_owned(),
                    what: what(),
                    source,
                })?;
        }
        if let Some(v) = verifier {
            v.finish().map_err(|source| RegistryError::DigestMismatch {
                registry: self.registry().to_owned(),
                what: what(),
                source,
            })?;
        }
        Ok(len)
    }
}
