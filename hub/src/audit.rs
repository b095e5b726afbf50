//! `vigil-hub audit verify`: check the hub's audit log (DESIGN.md, "Security"). The chain and
//! its checks live in the store (`vigil_store::audit`); this opens the hub's store and asks.

use std::path::PathBuf;

use vigil_store::{AuditReport, Store, StoreError};

use crate::config::HubConfig;

/// Why the audit log could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The configured store file does not exist (verifying must not create an empty one).
    #[error(
        "no store at {} ([store] path): check the config, or run the hub once to create it",
        .0.display()
    )]
    NoStore(PathBuf),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens the store `config` names and verifies its audit chain.
pub fn verify(config: &HubConfig) -> Result<AuditReport, AuditError> {
    let path = &config.store.path;
    if !path.is_file() {
        return Err(AuditError::NoStore(path.clone()));
    }
    let store = Store::open(path)?;
    Ok(store.audit_verify()?)
}
