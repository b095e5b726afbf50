//! Update events in the agent store's hash-chained audit log, with the API the hub uses for
//! operator actions (`vigil_store::Store::audit_append`), so they travel up the link like
//! any audit record and `audit verify` covers them.
//!
//! | action | when | target | details |
//! |---|---|---|---|
//! | `update.apply` | a bundle was installed and `current` switched | `vigil-agent <version>` | `bundle`, `version`, `key_id`, `previous`, `files` |
//! | `update.refuse` | a bundle was refused (signature, key, tampering, rollback, …) | `bundle <file>` | `bundle`, `reason` |
//! | `update.fail` | a good bundle could not be installed (disk, permissions) | `bundle <file>` | `bundle`, `reason` |
//! | `update.fallback` | a version failed its trial and the previous one was restored | `vigil-agent <version>` | `from`, `to`, `reason` |
//! | `update.commit` | a version ran healthy for its whole trial and was kept | `vigil-agent <version>` | `version`, `trial` |
//!
//! The actor of `apply`, `refuse` and `fail` is the local user who ran the command
//! (`SUDO_USER`, else `USER`); that of `fallback` and `commit` is `supervisor`.

use std::path::Path;

use vigil_core::Timestamp;
use vigil_store::{AuditEntry, AuditRecord, Store};

use super::UpdateError;

/// The actor of the supervisor's records.
pub const SUPERVISOR: &str = "supervisor";

/// The local user running this command, for the audit record's actor.
pub fn local_actor() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "installer".to_owned())
}

/// Where update events are audited: the store at `[store] path` and the node's id.
#[derive(Debug, Clone)]
pub struct AuditLog<'a> {
    /// The store file.
    pub store_path: &'a Path,
    /// The node the records name.
    pub node: &'a str,
}

impl AuditLog<'_> {
    /// Opens the store (creating it and its directory if needed) to check that records can
    /// be written before anything is changed.
    pub fn open(&self) -> Result<Store, UpdateError> {
        crate::alerting::open_store(self.store_path).map_err(|e| UpdateError::Audit {
            path: self.store_path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Appends one record in its own durable transaction.
    pub fn record(
        &self,
        store: &mut Store,
        actor: &str,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> Result<AuditRecord, UpdateError> {
        let entry = AuditEntry {
            at: Timestamp::now(),
            node: self.node.to_owned(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            details,
        };
        store.audit_append(&entry).map_err(|e| UpdateError::Audit {
            path: self.store_path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Opens the store and appends one record (the supervisor's way: it keeps no store open).
    pub fn append(
        &self,
        actor: &str,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> Result<AuditRecord, UpdateError> {
        let mut store = self.open()?;
        self.record(&mut store, actor, action, target, details)
    }
}
