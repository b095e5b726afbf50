//! Trust in the hub during enrollment comes from the token's pin, never from system roots:
//! [`PinnedCaVerifier`] accepts an `https://` server only if its chain holds the CA
//! certificate whose SHA-256 the token carries and its certificate verifies against that CA
//! alone. The check runs in the TLS handshake, so a server without the pinned CA never
//! receives the token (`docs/ARCHITECTURE.md#trust-model`).

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::tls::provider;

/// The server certificate verifier of an `https://` enrollment: the server's chain must
/// hold a certificate whose SHA-256 is the token's pin (the hub's CA), and the server's
/// certificate must verify against that CA alone (validity, serverAuth). The host name is
/// not required to be in the certificate: the pinned CA only issues to its hub's listeners,
/// and an installer may reach the hub by an address its certificate does not list.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
    failure: Mutex<Option<String>>,
}

impl PinnedCaVerifier {
    /// A verifier for the CA whose DER hashes to `pin`.
    pub fn new(pin: [u8; 32]) -> PinnedCaVerifier {
        PinnedCaVerifier {
            pin,
            provider: provider(),
            failure: Mutex::new(None),
        }
    }

    /// Why the last verification failed, in words.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    fn fail(&self, reason: String, error: rustls::Error) -> rustls::Error {
        if let Ok(mut f) = self.failure.lock() {
            *f = Some(reason);
        }
        error
    }

    fn pinned<'a>(&self, certs: &'a [CertificateDer<'a>]) -> Option<&'a CertificateDer<'a>> {
        certs
            .iter()
            .find(|c| <[u8; 32]>::from(Sha256::digest(c.as_ref())) == self.pin)
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = self.pinned(intermediates) else {
            return Err(self.fail(
                format!(
                    "the hub's certificate chain does not hold the CA the token pins (SHA-256 {}): the address may not be your hub's, or someone is in between; nothing was sent",
                    crate::cert::hex(&self.pin)
                ),
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            ));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned()).map_err(|e| {
            self.fail(
                format!("the pinned CA is not a usable trust anchor: {e}"),
                rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
            )
        })?;
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        match webpki.verify_server_cert(end_entity, &[], server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(self.fail(
                format!("the hub's certificate does not verify against the pinned CA: {e}"),
                e,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
