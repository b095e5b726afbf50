//! Certificate revocation lists, for brokers that are not the hub's own gate.
//!
//! The hub's embedded broker checks revocations live ([`Revocations`](crate::Revocations));
//! an external broker (Mosquitto's `crlfile`) reads a CRL file instead. [`Ca::crl`] signs
//! one with the hub's CA from the revoked serials the hub's store holds.
//!
//! The trap: a broker reads its `crlfile` when it starts (Mosquitto: and on `SIGHUP`); a
//! CRL written later changes nothing until the broker reloads it.

use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};

use crate::ca::Ca;
use crate::error::{PkiError, Result};

/// How long a CRL from [`Ca::crl`] says it is good for (its `nextUpdate`): a broker that
/// checks it refuses every client once it has passed, so it is generous.
pub const CRL_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// One revoked certificate for a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSerial {
    /// Its serial, hex (any case, colons allowed).
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: SystemTime,
}

impl Ca {
    /// A CRL (PEM) signed by this CA listing `revoked`, issued now, with CRL number
    /// `number` (give a number that grows with every CRL, e.g. the count of revocations or
    /// the time in seconds).
    pub fn crl(&self, revoked: &[RevokedSerial], number: u64) -> Result<String> {
        let now = SystemTime::now();
        let mut revoked_certs = Vec::with_capacity(revoked.len());
        for r in revoked {
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial_bytes(&r.serial)?),
                revocation_time: crate::ca::datetime(r.revoked_at)?,
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: crate::ca::datetime(now - crate::ca::CLOCK_SKEW)?,
            next_update: crate::ca::datetime(now + CRL_VALIDITY)?,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(self.issuer())
            .map_err(PkiError::sign("sign the revocation list"))?;
        crl.pem()
            .map_err(PkiError::sign("encode the revocation list"))
    }
}

/// The bytes of a hex serial (normalised first), as DER wants them: positive, so a leading
/// zero byte when the top bit is set.
fn serial_bytes(serial: &str) -> Result<Vec<u8>> {
    let hex = crate::cert::normalize_serial(serial);
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    };
    let mut bytes = Vec::with_capacity(padded.len() / 2 + 1);
    for pair in padded.as_bytes().chunks(2) {
        let text = std::str::from_utf8(pair).unwrap_or("zz");
        let byte = u8::from_str_radix(text, 16).map_err(|_| {
            PkiError::cert("revocation list", format!("{serial:?} is not a hex serial"))
        })?;
        bytes.push(byte);
    }
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_become_positive_der_integers() {
        assert_eq!(serial_bytes("3fa1").expect("hex"), vec![0x3f, 0xa1]);
        assert_eq!(serial_bytes("fa1").expect("hex"), vec![0x0f, 0xa1]);
        assert_eq!(serial_bytes("FF:01").expect("hex"), vec![0x00, 0xff, 0x01]);
        assert!(serial_bytes("xyz").is_err());
    }

    #[test]
    fn a_crl_lists_the_revoked_serials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Ca::load_or_create(dir.path(), "test CA").expect("ca");
        let node = vigil_core::NodeId::new("gw-1").expect("node");
        let request = crate::node_key_and_csr(&node).expect("csr");
        let issued = ca
            .issue_node(&request.csr_pem, &node, Duration::from_secs(3600))
            .expect("issue");
        let pem = ca
            .crl(
                &[RevokedSerial {
                    serial: issued.serial.clone(),
                    revoked_at: SystemTime::now(),
                }],
                1,
            )
            .expect("crl");
        assert!(pem.starts_with("-----BEGIN X509 CRL-----"), "{pem}");
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateRevocationListDer::from_pem_slice(pem.as_bytes())
            .expect("pem");
        let (_, crl) = x509_parser::parse_x509_crl(der.as_ref()).expect("parses");
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| crate::cert::hex_serial(r.raw_serial()))
            .collect();
        assert_eq!(serials, vec![issued.serial]);
    }
}
