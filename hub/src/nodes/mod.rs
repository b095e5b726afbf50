//! The nodes this hub certified, after enrollment ([`crate::enroll`]): their certificates
//! and their revocation (docs/ARCHITECTURE.md#certificate-authority-and-enrollment).
//!
//! | what | where |
//! |---|---|
//! | `POST /api/v1/nodes/{id}/revoke`, `GET /api/v1/nodes/{id}/certificates` | [`api`] |
//! | recording a revocation (API and CLI), the running hub following the CLI's, the CRL | [`revocation`] |
//!
//! What an external Mosquitto needs to enforce revocations (its CRL and config) is the MQTT
//! side's: `crate::link::mosquitto`; the gate's denials in the audit log:
//! `crate::link::denials`.

pub mod api;
pub mod revocation;
