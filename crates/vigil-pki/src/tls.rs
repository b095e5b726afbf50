//! rustls configs for every Vigil link, built on the **ring** provider only (no process-wide
//! provider needs installing, and aws-lc is not in the build).
//!
//! - [`server_config_mtls`]: the hub's broker listener. A client certificate is
//!   **required**; it must chain to the hub's CA, be within its validity, carry the
//!   clientAuth EKU, name a valid node id as its common name, and not be in the
//!   [`Revocations`] set — checked at every handshake by [`NodeCertVerifier`], which wraps
//!   rustls's `WebPkiClientVerifier`.
//! - [`server_config`]: a listener without client certificates (the hub's HTTPS).
//! - [`client_config`]: trusts only the given CA (no system roots: a link trusts its own
//!   PKI and nothing else), optionally presenting a client certificate.
//!
//! TLS 1.3 and 1.2 are offered (rustls's safe defaults).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::cert::{
    cert_from_pem, certs_from_pem, key_from_pem, node_of_certificate, serial_of_certificate,
};
use crate::error::{PkiError, Result};
use crate::revocations::Revocations;

/// The crypto provider of every config: rustls's ring provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &str, side: &'static str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem, "the CA certificate")? {
        roots.add(cert).map_err(|err| PkiError::Tls {
            side,
            reason: format!("the CA certificate is not a usable trust anchor: {err}"),
        })?;
    }
    Ok(roots)
}

fn tls(side: &'static str) -> impl Fn(rustls::Error) -> PkiError {
    move |err| PkiError::Tls {
        side,
        reason: err.to_string(),
    }
}

/// A server config for the hub's broker: client certificates required, chained to
/// `ca_pem`, within validity, not revoked in `revocations` (checked at each handshake, so a
/// revocation takes effect on the next connection at once). `cert_pem`/`key_pem` are the
/// server's own (from [`Ca::issue_server`](crate::Ca::issue_server)).
pub fn server_config_mtls(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
    revocations: Revocations,
) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let verifier = NodeCertVerifier::new(ca_pem, revocations, provider.clone())?;
    let certs = certs_from_pem(cert_pem, "the server certificate")?;
    let key = key_from_pem(key_pem, "the server key")?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls("server"))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(certs, key)
        .map_err(tls("server"))?;
    Ok(Arc::new(config))
}

/// A server config without client authentication (the hub's HTTPS listener).
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>> {
    let certs = certs_from_pem(cert_pem, "the server certificate")?;
    let key = key_from_pem(key_pem, "the server key")?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls("server"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls("server"))?;
    Ok(Arc::new(config))
}

/// A client config that trusts only `ca_pem` and, with `identity = Some((cert_pem,
/// key_pem))`, presents that certificate. The server's name is checked against its
/// certificate's SANs (DNS names, or IP addresses for `127.0.0.1` / `::1` style hosts).
pub fn client_config(ca_pem: &str, identity: Option<(&str, &str)>) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls("client"))?
        .with_root_certificates(roots(ca_pem, "client")?);
    let config = match identity {
        Some((cert_pem, key_pem)) => {
            let certs = certs_from_pem(cert_pem, "the client certificate")?;
            let key = key_from_pem(key_pem, "the client key")?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(tls("client"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The client certificate verifier of [`server_config_mtls`]: rustls's WebPKI verifier (chain
/// to the CA, validity, clientAuth EKU, handshake signatures), then Vigil's own checks — the
/// common name is a node id, and the serial is not revoked.
#[derive(Debug)]
pub struct NodeCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revocations: Revocations,
}

impl NodeCertVerifier {
    /// A verifier trusting `ca_pem` and refusing what `revocations` holds.
    pub fn new(
        ca_pem: &str,
        revocations: Revocations,
        provider: Arc<CryptoProvider>,
    ) -> Result<NodeCertVerifier> {
        // Fail early, naming the CA, on a CA file that holds no certificate.
        cert_from_pem(ca_pem, "the CA certificate")?;
        let inner = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(ca_pem, "server")?),
            provider,
        )
        .build()
        .map_err(|err| PkiError::Tls {
            side: "server",
            reason: format!("client verifier: {err}"),
        })?;
        Ok(NodeCertVerifier { inner, revocations })
    }
}

impl ClientCertVerifier for NodeCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let serial = serial_of_certificate(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.revocations.is_revoked(&serial) {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Revoked));
        }
        node_of_certificate(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        })?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
