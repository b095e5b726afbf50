//! `vigil-hub audit verify`: check the hub's audit log and the audit trails it holds of the
//! nodes below it (docs/ARCHITECTURE.md#audit-log). The chains and their checks
//! live in the store (`vigil_store::audit`, `vigil_store::audit_remote`); this opens the hub's
//! store and asks, once for its own log and once per origin held.

use std::fmt;
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
    /// `--node` names a node whose trail this hub does not hold.
    #[error("this hub holds no audit records of node {0} (is it below this hub? has it linked?)")]
    UnknownNode(String),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One chain checked: whose, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The node the chain belongs to.
    pub node: String,
    /// Whether it is this hub's own log (else a trail held of a node below).
    pub own: bool,
    /// The outcome.
    pub report: AuditReport,
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.own {
            write!(f, "{}", self.report)
        } else {
            write!(f, "node {}: {}", self.node, self.report)
        }
    }
}

/// Opens the store `config` names and verifies this hub's own audit chain and every trail it
/// holds of other nodes — or, with `node`, only that node's (this hub's id: its own log).
pub fn verify(config: &HubConfig, node: Option<&str>) -> Result<Vec<ChainReport>, AuditError> {
    let path = &config.store.path;
    if !path.is_file() {
        return Err(AuditError::NoStore(path.clone()));
    }
    let store = Store::open(path)?;
    let own_id = config.node.id.as_str();
    let mut out = Vec::new();
    if node.is_none_or(|n| n == own_id) {
        out.push(ChainReport {
            node: own_id.to_owned(),
            own: true,
            report: store.audit_verify()?,
        });
    }
    let origins = store.audit_remote_origins()?;
    if let Some(n) = node.filter(|n| *n != own_id) {
        if !origins.iter().any(|o| o == n) {
            return Err(AuditError::UnknownNode(n.to_owned()));
        }
    }
    for origin in origins {
        if node.is_some_and(|n| n != origin) {
            continue;
        }
        let report = store.audit_remote_verify(&origin)?;
        out.push(ChainReport {
            node: origin,
            own: false,
            report,
        });
    }
    Ok(out)
}
