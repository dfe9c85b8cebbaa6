//! Encrypted peer links for untrusted networks: TLS 1.3 around the whole
//! peer connection, keyed mode only.
//!
//! Every host derives the same Ed25519 key and self-signed certificate
//! from each fleet key, presents the current key's certificate as server
//! and as client, and accepts exactly the certificates of the keys it
//! holds. So a host needs nothing but its fleet key file, a stranger
//! without the key can neither complete the TLS handshake nor read what
//! flows, and during a key change (two keys in the file) old and new
//! hosts still accept each other. No name or CA is involved: the
//! certificate is the fleet key's public half, pinned.
//!
//! This module only builds configurations and connections; the engine's
//! connection task moves the bytes.

use std::sync::Arc;

use bay_wire::fleet::{FleetKey, FleetKeys};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, DistinguishedName, ServerConfig,
    ServerConnection, SignatureScheme,
};

/// The name both sides use; it is never checked against anything.
const FLEET_NAME: &str = "bay-fleet";
/// What the fleet key is stretched into the TLS key with.
const KEY_LABEL: &[u8] = b"bay peer tls ed25519 v1";
/// PKCS#8 v1 wrapping of a raw Ed25519 seed (RFC 8410).
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[derive(Debug, thiserror::Error)]
pub enum PeerTlsError {
    #[error("cannot make the fleet's peer certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot set up TLS for peer links: {0}")]
    Tls(#[from] rustls::Error),
}

/// TLS for peer links under one set of fleet keys.
#[derive(Clone)]
pub struct PeerTls {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    pub fn from_keys(keys: &FleetKeys) -> Result<PeerTls, PeerTlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert, key) = identity(keys.current())?;
        let accepted = keys
            .all()
            .iter()
            .map(|k| identity(k).map(|(c, _)| c))
            .collect::<Result<Vec<_>, _>>()?;
        let pinned = Arc::new(Pinned {
            accepted,
            algorithms: provider.signature_verification_algorithms,
        });
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(pinned.clone())
            .with_client_auth_cert(vec![cert.clone()], key.clone_key())?;
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(pinned)
            .with_single_cert(vec![cert], key)?;
        // Peers never resume: a ticket would only be bytes on the wire.
        server.send_tls13_tickets = 0;
        Ok(PeerTls {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// The TLS side of a connection we dialled.
    pub fn dialled(&self) -> Result<rustls::Connection, rustls::Error> {
        let mut conn: rustls::Connection = self.client_connection()?.into();
        // The engine feeds TLS one chunk at a time and only once the
        // socket took the last: the chunk may be larger than the default.
        conn.set_buffer_limit(None);
        Ok(conn)
    }

    /// A client side for blocking use (tools, benchmarks).
    pub fn client_connection(&self) -> Result<ClientConnection, rustls::Error> {
        let name = ServerName::try_from(FLEET_NAME)
            .map_err(|_| rustls::Error::General("bad fleet name".into()))?;
        ClientConnection::new(self.client.clone(), name)
    }

    /// The TLS side of a connection we accepted.
    pub fn accepted(&self) -> Result<rustls::Connection, rustls::Error> {
        let mut conn: rustls::Connection = ServerConnection::new(self.server.clone())?.into();
        conn.set_buffer_limit(None);
        Ok(conn)
    }
}

/// The certificate and private key every host derives from `key`.
fn identity(
    key: &FleetKey,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), PeerTlsError> {
    let seed = key.tag(&[KEY_LABEL]);
    let mut pkcs8 = PKCS8_ED25519_PREFIX.to_vec();
    pkcs8.extend_from_slice(&seed);
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)?;
    // Fixed fields and a deterministic signature: every host makes the
    // same bytes, so the certificate can be pinned whole.
    let mut params = rcgen::CertificateParams::new(vec![FLEET_NAME.to_string()])?;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[1]));
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(9999, 12, 31);
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, FLEET_NAME);
    params.distinguished_name = name;
    let cert = params.self_signed(&pair)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(der)))
}

/// Accepts exactly the fleet's certificates, in both directions.
#[derive(Debug)]
struct Pinned {
    accepted: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if self.accepted.iter().any(|c| c.as_ref() == cert.as_ref()) {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

fn no_tls12() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

/// The signature checks both verifier traits ask for, the same on either
/// side of a link: TLS 1.3 only, with the pinned key's algorithms.
macro_rules! signatures_tls13_only {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(no_tls12())
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.tls13(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    signatures_tls13_only!();
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    signatures_tls13_only!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn keys(text: &str) -> FleetKeys {
        FleetKeys::parse(text).unwrap()
    }

    const A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    /// Moves what `from` has to send into `to`; false if `to` refuses it.
    fn pass(from: &mut rustls::Connection, to: &mut rustls::Connection) -> bool {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        buf.is_empty() || (to.read_tls(&mut &buf[..]).is_ok() && to.process_new_packets().is_ok())
    }

    /// Runs a handshake between two in-memory ends; true if both finish.
    fn talk(client: &PeerTls, server: &PeerTls) -> bool {
        let mut c = client.dialled().unwrap();
        let mut s = server.accepted().unwrap();
        for _ in 0..10 {
            if !pass(&mut c, &mut s) || !pass(&mut s, &mut c) {
                return false;
            }
            if !c.is_handshaking() && !s.is_handshaking() {
                c.writer().write_all(b"hello").unwrap();
                assert!(pass(&mut c, &mut s));
                let mut got = [0u8; 5];
                s.reader().read_exact(&mut got).unwrap();
                return &got == b"hello";
            }
        }
        false
    }

    #[test]
    fn hosts_with_the_key_connect_and_strangers_do_not() {
        let a = PeerTls::from_keys(&keys(A)).unwrap();
        let a_again = PeerTls::from_keys(&keys(A)).unwrap();
        let b = PeerTls::from_keys(&keys(B)).unwrap();
        assert!(talk(&a, &a_again));
        assert!(!talk(&a, &b));
        assert!(!talk(&b, &a));
    }

    #[test]
    fn during_a_key_change_old_and_new_hosts_connect() {
        // First every host learns the new key, then each starts using it.
        let old = PeerTls::from_keys(&keys(A)).unwrap();
        let learned = PeerTls::from_keys(&keys(&format!("{A}\n{B}\n"))).unwrap();
        let switched = PeerTls::from_keys(&keys(&format!("{B}\n{A}\n"))).unwrap();
        assert!(talk(&old, &learned) && talk(&learned, &old));
        assert!(talk(&learned, &switched) && talk(&switched, &learned));
        assert!(!talk(&old, &switched));
    }
}
