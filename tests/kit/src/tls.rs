//! A throw-away certificate authority for tests: one CA and the server
//! certificates it signs, valid for 127.0.0.1 and whatever names a test
//! needs, written as PEM files, so TLS paths are tested with real
//! verification instead of switched off. Made in-process with rcgen, so a
//! test that only needs certificates needs no openssl program.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::error::{HarnessError, Result};

/// A CA certificate on disk, and what it takes to sign with it.
#[derive(Clone)]
pub struct TestCa {
    cert: PathBuf,
    dir: PathBuf,
    params: CertificateParams,
    key_pem: String,
}

/// A server certificate and its key, signed by a [`TestCa`].
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (unencrypted).
    pub key: PathBuf,
}

impl fmt::Debug for TestCa {
    // The key stays out of test output, as a real one would.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// Makes a new CA in `dir` (which must exist): `dir/ca.crt`.
    pub fn create(dir: &Path) -> Result<TestCa> {
        TestCa::create_named(dir, "ca")
    }

    /// Makes a new CA in `dir` as `dir/<name>.crt`, for tests that need a
    /// second, unrelated CA beside the first.
    pub fn create_named(dir: &Path, name: &str) -> Result<TestCa> {
        let key = KeyPair::generate().map_err(|e| cert_error("a CA key", e))?;
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("bay test {name}"));
        let ca = params
            .clone()
            .self_signed(&key)
            .map_err(|e| cert_error("a CA certificate", e))?;
        let cert = dir.join(format!("{name}.crt"));
        write(&cert, &ca.pem())?;
        Ok(TestCa {
            cert,
            dir: dir.to_owned(),
            params,
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA certificate (PEM), what clients must trust.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// Issues a server certificate named `name` (files `<name>.crt` and
    /// `<name>.key` beside the CA) for IP 127.0.0.1, `ips` and `dns_names`.
    pub fn issue_server(
        &self,
        name: &str,
        ips: &[IpAddr],
        dns_names: &[String],
    ) -> Result<ServerCert> {
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(|e| cert_error("the CA key", e))?;
        // Re-signing the same parameters with the same key gives an issuer
        // with the name and key identifier the CA file carries.
        let ca = self
            .params
            .clone()
            .self_signed(&ca_key)
            .map_err(|e| cert_error("the CA certificate", e))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let mut all_ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
        for ip in ips {
            if !all_ips.contains(ip) {
                all_ips.push(*ip);
            }
        }
        params.subject_alt_names = all_ips.into_iter().map(SanType::IpAddress).collect();
        for dns in dns_names {
            let dns = dns
                .clone()
                .try_into()
                .map_err(|e| cert_error("a DNS name", e))?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(|e| cert_error("a server key", e))?;
        let leaf = params
            .signed_by(&key, &ca, &ca_key)
            .map_err(|e| cert_error("a server certificate", e))?;
        let cert = self.dir.join(format!("{name}.crt"));
        let key_path = self.dir.join(format!("{name}.key"));
        write(&cert, &leaf.pem())?;
        write(&key_path, &key.serialize_pem())?;
        Ok(ServerCert {
            cert,
            key: key_path,
        })
    }
}

fn cert_error(what: &str, e: rcgen::Error) -> HarnessError {
    HarnessError::Certificate {
        what: what.to_owned(),
        detail: e.to_string(),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| HarnessError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_pem_files_for_loopback_and_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::create(dir.path()).expect("CA");
        let other = TestCa::create_named(dir.path(), "other-ca").expect("second CA");
        assert_ne!(ca.cert(), other.cert());
        let server = ca
            .issue_server("server", &[], &["localhost".to_owned()])
            .expect("server certificate");
        let cert = std::fs::read_to_string(&server.cert).expect("cert file");
        let key = std::fs::read_to_string(&server.key).expect("key file");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(key.contains("PRIVATE KEY-----"), "key is PEM");
        assert!(!format!("{ca:?}").contains("PRIVATE"), "Debug shows no key");
    }
}
