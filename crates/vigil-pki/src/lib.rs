//! Vigil's PKI: the certificates behind mTLS on every link (docs/ARCHITECTURE.md#trust-model).
//!
//! A hub is the certificate authority of its children. This crate holds everything about
//! certificates that a hub or a gateway needs, and no networking but enrollment's one POST:
//!
//! - [`Ca`] (module [`ca`]): the hub's CA in `ca.pem`/`ca.key` ([`Ca::load_or_create`]),
//!   issuing node certificates from CSRs ([`Ca::issue_node`]) and the hub's own server
//!   certificate ([`Ca::issue_server`]); [`node_key_and_csr`] is the gateway's side of
//!   enrollment.
//! - [`cert`]: what is read out of a certificate — [`node_of_certificate`] (the subject CN
//!   is the node id), [`serial_of_certificate`], [`fingerprint`].
//! - [`Revocations`]: the shared set of revoked serials, with change notification.
//! - [`tls`]: rustls configs on the ring provider — [`server_config_mtls`] (client
//!   certificate required, chained to the CA, not revoked), [`server_config`],
//!   [`client_config`].
//! - [`files`]: atomic writes, private keys at mode 0600 (and refused when looser), and
//!   [`TlsFiles`] for a node's `[tls] ca/cert/key`.
//! - [`crl`]: [`Ca::crl`], a signed revocation list for an external broker (Mosquitto's
//!   `crlfile`).
//! - [`enrollment`]: the enrollment token (`VGL1.<id>.<secret>.<pin>`) the hub issues and
//!   redeems and a node presents, the JSON of `POST /api/v1/enroll` and its client
//!   ([`enroll`]), the verifier that pins the hub's CA, and the one flow of a node's
//!   enrollment ([`enroll_node`]: checks before the token is spent, key and CSR made
//!   locally, the files and the config's link URL written), shared by `vigil-agent enroll`
//!   and `vigil-hub enroll`. The one part of this crate that talks to the network.
//!
//! # A hub and a gateway
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use std::time::Duration;
//! use vigil_pki::{client_config, node_key_and_csr, server_config_mtls, Ca, Revocations};
//!
//! // The hub, once: its CA, and a certificate for its broker listener.
//! let ca = Ca::load_or_create(&dir.path().join("pki"), "county-baiyun CA")?;
//! let server = ca.issue_server(&["127.0.0.1".to_owned(), "hub.local".to_owned()], Duration::from_secs(365 * 86400))?;
//! let revocations = Revocations::new(); // loaded from the hub's store
//! let _broker_tls = server_config_mtls(ca.cert_pem(), &server.cert_pem, &server.key_pem, revocations.clone())?;
//!
//! // A gateway at enrollment: its key stays on it; the CSR goes to the hub …
//! let node = vigil_core::NodeId::new("gw-prison-3")?;
//! let request = node_key_and_csr(&node)?;
//! // … which issues the certificate for the node the enrollment token names.
//! let issued = ca.issue_node(&request.csr_pem, &node, Duration::from_secs(365 * 86400))?;
//! let _uplink_tls = client_config(ca.cert_pem(), Some((&issued.cert_pem, &request.key_pem)))?;
//!
//! // Later, an operator revokes the gateway: its handshakes fail, its connection drops.
//! revocations.revoke(&issued.serial);
//! # Ok(()) }
//! ```

pub mod ca;
pub mod cert;
pub mod crl;
pub mod enrollment;
pub mod error;
pub mod files;
pub mod revocations;
pub mod tls;

pub use ca::{
    node_key_and_csr, Ca, IssuedCert, NodeRequest, ServerCert, CA_CERT_FILE, CA_KEY_FILE,
};
pub use cert::{
    common_name_of_certificate, fingerprint, node_of_certificate, normalize_serial,
    serial_of_certificate, validity_of_certificate,
};
pub use crl::RevokedSerial;
pub use enrollment::client::{
    enroll, enroll_as, EnrollError, EnrollKind, EnrollRequest, EnrollResponse, Enrolled,
};
pub use enrollment::flow::{enroll_node, EnrolledNode, FlowError, NodeEnrollment};
pub use enrollment::token::{pin_of, EnrollToken, TokenError};
pub use error::{PkiError, Result};
pub use files::{
    read_private_key, write_certificate, write_private_key, Identity, TlsFiles, TlsMaterial,
};
pub use revocations::Revocations;
pub use tls::{client_config, server_config, server_config_mtls, NodeCertVerifier};

// The rustls types the configs are made of, for owners that do not depend on rustls.
pub use rustls;
