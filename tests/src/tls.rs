//! A throw-away certificate authority for tests, made with the openssl
//! command line: one CA and server certificates it signs, valid for
//! 127.0.0.1 and whatever DNS names a test needs, so TLS paths are tested
//! with real verification instead of switched off.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{HarnessError, Result};
use crate::process::run;

/// A CA certificate and key on disk.
#[derive(Debug, Clone)]
pub struct TestCa {
    cert: PathBuf,
    key: PathBuf,
    dir: PathBuf,
}

/// A server certificate and its key, signed by a [`TestCa`].
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (unencrypted).
    pub key: PathBuf,
}

impl TestCa {
    /// Makes a new CA in `dir` (which must exist).
    pub fn create(dir: &Path) -> Result<TestCa> {
        let cert = dir.join("ca.crt");
        let key = dir.join("ca.key");
        run(Command::new("openssl")
            .args(["req", "-x509", "-new", "-nodes", "-days", "3"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", "/CN=bay test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert))?;
        Ok(TestCa {
            cert,
            key,
            dir: dir.to_owned(),
        })
    }

    /// The CA certificate (PEM), what clients must trust.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// Issues a server certificate named `name` for IP 127.0.0.1, `ips` and
    /// `dns_names`.
    pub fn issue_server(
        &self,
        name: &str,
        ips: &[IpAddr],
        dns_names: &[String],
    ) -> Result<ServerCert> {
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let cert = self.dir.join(format!("{name}.crt"));
        let ext = self.dir.join(format!("{name}.ext"));
        let mut san = String::from("subjectAltName=IP:127.0.0.1");
        for ip in ips {
            san.push_str(&format!(",IP:{ip}"));
        }
        for dns in dns_names {
            san.push_str(",DNS:");
            san.push_str(dns);
        }
        let ext_text = format!(
            "{san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        );
        std::fs::write(&ext, ext_text).map_err(|e| HarnessError::io("write", &ext, e))?;
        run(Command::new("openssl")
            .args(["req", "-new", "-nodes"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr))?;
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&self.cert)
            .arg("-CAkey")
            .arg(&self.key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert))?;
        Ok(ServerCert { cert, key })
    }
}
