//! TLS for the client: the rustls configuration (trusted roots, ALPN);
//! the stream itself is `crate::tls_stream`.
//!
//! Trust: the system's roots (rustls-native-certs, which reads
//! `/etc/ssl/certs` or `SSL_CERT_FILE`/`SSL_CERT_DIR`), plus an optional PEM
//! file of extra CAs for registries signed by a private CA. ALPN offers only
//! `http/1.1`. SNI is sent for DNS names; IP literals are checked against the
//! certificate's IP addresses.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

pub(crate) use crate::tls_stream::{HandshakeError, TlsStream};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The extra CA file could not be read.
    #[error("reading CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The extra CA file has no usable certificate.
    #[error("CA file {path} has no PEM certificate: {reason}")]
    CaFilePem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused a root certificate.
    #[error("CA certificate refused: {0}")]
    Certificate(rustls::Error),
    /// rustls refused the protocol versions.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// Builds the client's rustls configuration: system roots plus the PEM
/// certificates in `extra_ca`, ALPN `http/1.1`.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::warn!(error = %err, "skipping unreadable system CA certificates");
    }
    // Some system stores carry certificates webpki cannot parse; one bad
    // entry must not cost the others.
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(added, ignored, "system CA certificates loaded");
    }
    if let Some(path) = extra_ca {
        for cert in read_pem_certs(path)? {
            roots.add(cert).map_err(TlsSetupError::Certificate)?;
        }
    }
    if roots.is_empty() {
        // Plain-HTTP-only deployments (a container without a CA bundle)
        // still work; every TLS handshake will fail as an unknown issuer.
        tracing::warn!("no trusted CA certificates: system store empty and no CA file");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::CaFile {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::CaFilePem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::CaFilePem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The name a connection to `host` checks the certificate against.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, rustls::Error> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| rustls::Error::General(format!("{host} is not a valid TLS server name")))
}
