//! Reading certificates: PEM to DER, and what Vigil reads out of a peer's certificate — its
//! node id (the subject's common name), its serial (the revocation key), its validity and
//! its fingerprint.
//!
//! Serials are written as lowercase hex without leading zeros (`3f09…`), the form
//! [`Revocations`](crate::Revocations) normalises every serial to, whatever the source
//! (`openssl x509 -serial` prints `SERIAL=3F09…`, others separate bytes with colons).

use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use vigil_core::NodeId;
use x509_parser::certificate::X509Certificate;

use crate::error::{PkiError, Result};

/// Every certificate in `pem`, in order; an error naming `what` if there is none.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| PkiError::pem(what, format!("not valid PEM: {err}")))?;
    if certs.is_empty() {
        return Err(PkiError::pem(what, "holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The first certificate in `pem`.
pub fn cert_from_pem(pem: &str, what: &str) -> Result<CertificateDer<'static>> {
    certs_from_pem(pem, what).map(|mut certs| certs.swap_remove(0))
}

/// The private key in `pem` (PKCS#8, SEC1 or PKCS#1).
pub fn key_from_pem(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|err| PkiError::pem(what, format!("holds no usable private key: {err}")))
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|err| PkiError::cert(what, format!("not an X.509 certificate: {err}")))
}

/// The node a certificate was issued to: its subject's common name, which must be a valid
/// [`NodeId`]. The gate calls this on the verified client certificate of every connection.
pub fn node_of_certificate(der: &[u8]) -> Result<NodeId> {
    let cert = parse(der, "peer certificate")?;
    let mut names = cert.subject().iter_common_name();
    let (Some(cn), None) = (names.next(), names.next()) else {
        return Err(PkiError::cert(
            "peer certificate",
            "needs exactly one subject common name (the node id)",
        ));
    };
    let cn = cn.as_str().map_err(|err| {
        PkiError::cert(
            "peer certificate",
            format!("common name is not text: {err}"),
        )
    })?;
    NodeId::new(cn).map_err(|err| {
        PkiError::cert(
            "peer certificate",
            format!("common name is not a node id: {err}"),
        )
    })
}

/// A certificate's one subject common name, as text (a CA's: `Vigil county CA county-1`).
pub fn common_name_of_certificate(der: &[u8]) -> Result<String> {
    let cert = parse(der, "certificate")?;
    let mut names = cert.subject().iter_common_name();
    let (Some(cn), None) = (names.next(), names.next()) else {
        return Err(PkiError::cert(
            "certificate",
            "needs exactly one subject common name",
        ));
    };
    cn.as_str()
        .map(str::to_owned)
        .map_err(|err| PkiError::cert("certificate", format!("common name is not text: {err}")))
}

/// A certificate's serial number, as lowercase hex without leading zeros.
pub fn serial_of_certificate(der: &[u8]) -> Result<String> {
    let cert = parse(der, "certificate")?;
    Ok(hex_serial(cert.tbs_certificate.raw_serial()))
}

/// A certificate's validity: (not before, not after).
pub fn validity_of_certificate(der: &[u8]) -> Result<(SystemTime, SystemTime)> {
    let cert = parse(der, "certificate")?;
    let validity = cert.validity();
    Ok((
        system_time(validity.not_before.timestamp()),
        system_time(validity.not_after.timestamp()),
    ))
}

/// The SHA-256 fingerprint of a certificate's DER, as lowercase hex: what an installer
/// compares with what the hub shows (`openssl x509 -fingerprint -sha256` prints the same
/// digits, uppercase and colon-separated).
pub fn fingerprint(der: &[u8]) -> String {
    hex(&Sha256::digest(der))
}

/// The canonical form of a serial: lowercase hex, no separators, no leading zeros
/// (`"00:3F:a1"` → `"3fa1"`).
pub fn normalize_serial(serial: &str) -> String {
    let digits: String = serial
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

pub(crate) fn hex_serial(bytes: &[u8]) -> String {
    normalize_serial(&hex(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

pub(crate) fn system_time(unix: i64) -> SystemTime {
    if unix >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

/// The SubjectPublicKeyInfo's key bits of a certificate (to check a key belongs to it).
pub(crate) fn public_key_bits(der: &[u8], what: &str) -> Result<Vec<u8>> {
    let cert = parse(der, what)?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_normalise() {
        assert_eq!(normalize_serial("00:3F:a1"), "3fa1");
        assert_eq!(normalize_serial("3FA1"), "3fa1");
        assert_eq!(normalize_serial("0000"), "0");
        assert_eq!(hex_serial(&[0x00, 0x0a, 0xff]), "aff");
    }

    #[test]
    fn pem_errors_name_what() {
        let err = certs_from_pem("nothing here", "ca.pem").expect_err("empty");
        assert!(err.to_string().contains("ca.pem"), "{err}");
        let err = key_from_pem("nothing", "node.key").expect_err("no key");
        assert!(err.to_string().contains("node.key"), "{err}");
    }
}
