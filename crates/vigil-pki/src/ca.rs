//! [`Ca`]: a hub's certificate authority, and what a gateway does to get a certificate from
//! it ([`node_key_and_csr`]).
//!
//! A hub is the CA of its children (docs/ARCHITECTURE.md#certificate-authority-and-enrollment).
//! Its CA lives in two files in the hub's PKI directory: `ca.pem` (the self-signed CA
//! certificate, 10 years, handed to every child at enrollment so that it trusts its parent's
//! broker) and `ca.key` (ECDSA P-256, mode 0600, never leaves the hub).
//!
//! Enrollment: the gateway makes its own key pair and a CSR ([`node_key_and_csr`]); the key
//! never leaves the gateway. The hub checks the CSR's signature (proof that the requester
//! holds the key) and takes **only its public key**: the subject is the node id the hub
//! bound to the enrollment token, whatever the CSR claims, and the certificate says
//! clientAuth only, with a random 128-bit serial ([`Ca::issue_node`]).
//!
//! The hub's own listener certificate (broker, HTTPS) comes from [`Ca::issue_server`].

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tracing::info;
use vigil_core::NodeId;

use crate::cert::{cert_from_pem, fingerprint, public_key_bits, serial_of_certificate};
use crate::error::{PkiError, Result};
use crate::files::{read_private_key, read_text, write_certificate, write_private_key};

/// The CA certificate's file name in the PKI directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file name in the PKI directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// How long a new CA is valid: 10 years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far back a new certificate's validity starts, for clocks a little behind.
pub const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// A certificate issued to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The node it names (its subject common name).
    pub node: NodeId,
    /// Its serial, lowercase hex without leading zeros: the key to revoke it by.
    pub serial: String,
    /// Valid from.
    pub not_before: SystemTime,
    /// Valid until.
    pub not_after: SystemTime,
    /// The certificate, PEM.
    pub cert_pem: String,
}

/// A server certificate and its key, for a hub's listener.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (write it with [`crate::write_private_key`]).
    pub key_pem: String,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What a gateway makes at enrollment: its private key (kept, mode 0600) and the CSR it
/// sends to the hub.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeRequest {
    /// The node's new private key, PEM (PKCS#8, ECDSA P-256). Never sent anywhere.
    pub key_pem: String,
    /// The certificate signing request, PEM, for the hub.
    pub csr_pem: String,
}

impl std::fmt::Debug for NodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRequest")
            .field("key_pem", &"<redacted>")
            .field("csr_pem", &self.csr_pem)
            .finish()
    }
}

/// Makes a gateway's key pair (ECDSA P-256) and a CSR naming `node`, signed with the key.
pub fn node_key_and_csr(node: &NodeId) -> Result<NodeRequest> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(PkiError::sign("generate a node key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = name(node.as_str());
    let csr = params
        .serialize_request(&key)
        .map_err(PkiError::sign("sign the certificate request"))?;
    Ok(NodeRequest {
        key_pem: key.serialize_pem(),
        csr_pem: csr
            .pem()
            .map_err(PkiError::sign("encode the certificate request"))?,
    })
}

/// A hub's certificate authority.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Loads the CA from `dir/ca.pem` and `dir/ca.key`, or creates both (the directory too,
    /// mode 0700) if neither exists: a self-signed CA named `common_name`, valid 10 years,
    /// that may sign only end-entity certificates. Refuses a key readable by group or
    /// others, a key that does not belong to the certificate, and one file without the
    /// other.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<Ca> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Ca::load(dir),
            (false, false) => Ca::create(dir, common_name),
            (true, false) => Err(PkiError::IncompleteCa {
                present: cert_path,
                missing: key_path,
            }),
            (false, true) => Err(PkiError::IncompleteCa {
                present: key_path,
                missing: cert_path,
            }),
        }
    }

    /// Loads an existing CA from `dir`.
    pub fn load(dir: &Path) -> Result<Ca> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let key_pem = read_private_key(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|err| {
            PkiError::pem(
                key_path.display().to_string(),
                format!("not a usable private key: {err}"),
            )
        })?;
        let cert_pem = read_text(&cert_path)?;
        let what = cert_path.display().to_string();
        let cert_der = cert_from_pem(&cert_pem, &what)?;
        if public_key_bits(&cert_der, &what)? != key.der_bytes() {
            return Err(PkiError::cert(
                what,
                format!("does not belong to the key in {}", key_path.display()),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|err| PkiError::cert(what, format!("not a usable CA certificate: {err}")))?;
        Ok(Ca {
            cert_pem,
            cert_der,
            issuer,
            dir: dir.to_owned(),
        })
    }

    fn create(dir: &Path, common_name: &str) -> Result<Ca> {
        create_private_dir(dir)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(PkiError::sign("generate the CA key"))?;
        let now = SystemTime::now();
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = datetime(now - CLOCK_SKEW)?;
        params.not_after = datetime(now + CA_VALIDITY)?;
        params.serial_number = Some(random_serial());
        let cert = params
            .self_signed(&key)
            .map_err(PkiError::sign("self-sign the CA certificate"))?;
        // The certificate first: a crash between the two renames leaves a certificate
        // without its key, which `load_or_create` refuses rather than replaces.
        write_certificate(&dir.join(CA_CERT_FILE), &cert.pem())?;
        write_private_key(&dir.join(CA_KEY_FILE), &key.serialize_pem())?;
        let ca = Ca::load(dir)?;
        info!(dir = %dir.display(), common_name, fingerprint = %ca.fingerprint(), "created a new certificate authority");
        Ok(ca)
    }

    /// The CA certificate, PEM: what every child trusts (its `[tls] ca`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the CA certificate's DER, lowercase hex: what an installer checks the
    /// hub's CA by at enrollment.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// The directory the CA's files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA as an rcgen issuer (for [`Ca::crl`](crate::crl)).
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Issues a client certificate for `node` from a CSR, valid from now (less an hour of
    /// clock skew) for `validity`. The CSR's signature must verify and its key be ECDSA
    /// P-256; only its public key is used — the subject is `node`, the only EKU clientAuth.
    pub fn issue_node(
        &self,
        csr_pem: &str,
        node: &NodeId,
        validity: Duration,
    ) -> Result<IssuedCert> {
        let now = SystemTime::now();
        self.issue_node_with_validity(csr_pem, node, now - CLOCK_SKEW, now + validity)
    }

    /// [`issue_node`](Ca::issue_node) with an explicit validity period, which may lie in the
    /// past (to test that expired certificates are refused).
    pub fn issue_node_with_validity(
        &self,
        csr_pem: &str,
        node: &NodeId,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<IssuedCert> {
        if not_after <= not_before {
            return Err(PkiError::Validity(
                "not_after must come after not_before".into(),
            ));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|err| PkiError::Csr(err.to_string()))?;
        let key = &csr.public_key;
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256
            || key.der_bytes().len() != 65
            || key.der_bytes()[0] != 0x04
        {
            return Err(PkiError::Csr("the key must be ECDSA P-256".into()));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = name(node.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = datetime(not_before)?;
        params.not_after = datetime(not_after)?;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let request = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let cert = request
            .signed_by(&self.issuer)
            .map_err(PkiError::sign("sign the node certificate"))?;
        let (not_before, not_after) = crate::cert::validity_of_certificate(cert.der())?;
        Ok(IssuedCert {
            node: node.clone(),
            serial: serial_of_certificate(cert.der())?,
            not_before,
            not_after,
            cert_pem: cert.pem(),
        })
    }

    /// Issues a server certificate (and its new key) for a hub listener reachable as
    /// `names`: each a DNS name or an IP address (`127.0.0.1`, `::1`), all put in the
    /// subject alternative names; the first is also the common name. EKU serverAuth.
    pub fn issue_server(&self, names: &[String], validity: Duration) -> Result<ServerCert> {
        let Some(first) = names.first() else {
            return Err(PkiError::cert(
                "server certificate",
                "needs at least one name",
            ));
        };
        let mut sans = Vec::with_capacity(names.len());
        for n in names {
            let san = match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => {
                    let not_dns = |reason: String| {
                        PkiError::cert(
                            "server certificate",
                            format!("{n:?} is neither an IP address nor a DNS name: {reason}"),
                        )
                    };
                    rustls_pki_types::DnsName::try_from(n.as_str())
                        .map_err(|err| not_dns(err.to_string()))?;
                    SanType::DnsName(
                        n.clone()
                            .try_into()
                            .map_err(|err: rcgen::Error| not_dns(err.to_string()))?,
                    )
                }
            };
            sans.push(san);
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(PkiError::sign("generate a server key"))?;
        let now = SystemTime::now();
        let mut params = CertificateParams::default();
        params.distinguished_name = name(first);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = datetime(now - CLOCK_SKEW)?;
        params.not_after = datetime(now + validity)?;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(PkiError::sign("sign the server certificate"))?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// 16 random bytes, positive and without a leading zero byte (so the DER is minimal).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    if bytes[0] == 0 {
        bytes[0] = 1;
    }
    SerialNumber::from_slice(&bytes)
}

pub(crate) fn datetime(at: SystemTime) -> Result<OffsetDateTime> {
    let secs = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    OffsetDateTime::from_unix_timestamp(secs).map_err(|err| {
        PkiError::Validity(format!("{at:?} cannot be written in a certificate: {err}"))
    })
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| PkiError::io("cannot create the directory", dir, e))
}
