//! What the caller may do and see: the role check ([`require`]) and the scope check
//! ([`out_of_scope`]), each refusal a 403 that is counted
//! (`vigil_hub_auth_refusals_total{status="403", reason="role"|"scope"}`) and written to
//! the audit log as `access_denied`, with what was asked, of what, and why:
//!
//! ```json
//! {"request": "ack", "reason": "scope", "scope": "ministry/gd/gz/baiyun/prison-4",
//!  "site": "ministry/gd/gz/baiyun/prison-3"}
//! ```
//!
//! Lists, the tree and the live stream are filtered by scope instead of refused.

use vigil_core::{SitePath, Timestamp};
use vigil_store::{AuditEntry, Store};

use super::{ApiError, AppState};
use crate::auth::{Permission, Principal};

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The role does not allow it.
    Role(Permission),
    /// The thing lies outside the caller's scope (at `site`; `None`: nowhere yet).
    Scope(Option<SitePath>),
}

impl Denied {
    const fn reason(&self) -> &'static str {
        match self {
            Denied::Role(_) => "role",
            Denied::Scope(_) => "scope",
        }
    }
}

/// The audit record of a refusal of `request` on `target` to `who`, on hub `node`.
pub fn audit_entry(
    node: &str,
    who: &Principal,
    request: &str,
    target: &str,
    denied: &Denied,
    now: Timestamp,
) -> AuditEntry {
    let mut details = serde_json::json!({
        "request": request,
        "reason": denied.reason(),
        "role": who.role.as_str(),
        "scope": who.scope.as_str(),
    });
    match denied {
        Denied::Role(p) => details["needs"] = p.as_str().into(),
        Denied::Scope(site) => details["site"] = site.as_ref().map(SitePath::as_str).into(),
    }
    AuditEntry {
        at: now,
        node: node.to_owned(),
        actor: who.name.clone(),
        action: "access_denied".to_owned(),
        target: target.to_owned(),
        details,
    }
}

/// The 403 for `denied`, counted and logged (the audit record is the caller's: written
/// here by [`refuse`], or in the store call that found the refusal).
pub fn forbidden(state: &AppState, who: &Principal, request: &str, denied: &Denied) -> ApiError {
    state
        .metrics
        .auth_refusals
        .with_label_values(&["403", denied.reason()])
        .inc();
    tracing::info!(user = %who.name, role = %who.role, request, reason = denied.reason(), "request refused");
    match denied {
        Denied::Role(p) => ApiError::forbidden(format!(
            "your role ({}) does not allow {request} (it needs the {} permission)",
            who.role,
            p.as_str()
        )),
        Denied::Scope(_) => ApiError::forbidden(format!(
            "this alert is outside your scope ({}): you cannot see or act on it",
            who.scope
        )),
    }
}

/// Audits the refusal in its own transaction and returns its 403.
pub async fn refuse(
    state: &AppState,
    who: &Principal,
    request: &str,
    target: &str,
    denied: Denied,
) -> ApiError {
    let node = state.actions.node.to_string();
    let entry = audit_entry(&node, who, request, target, &denied, Timestamp::now());
    if let Err(error) = state.store.call(move |s| s.audit_append(&entry)).await {
        tracing::error!(%error, "cannot audit a refused request");
    }
    forbidden(state, who, request, &denied)
}

/// `Ok` when `who`'s role allows `p`; the audited 403 otherwise.
pub async fn require(
    state: &AppState,
    who: &Principal,
    p: Permission,
    request: &str,
    target: &str,
) -> Result<(), ApiError> {
    if who.can(p) {
        Ok(())
    } else {
        Err(refuse(state, who, request, target, Denied::Role(p)).await)
    }
}

/// Inside a store call: `Some(denial)`, already audited in `store`, when an alert at `site`
/// is outside `who`'s scope; `None` when it is in scope.
pub fn check_scope(
    store: &mut Store,
    node: &str,
    who: &Principal,
    request: &str,
    target: &str,
    site: Option<&SitePath>,
) -> Result<Option<Denied>, vigil_store::StoreError> {
    if who.sees(site) {
        return Ok(None);
    }
    let denied = Denied::Scope(site.cloned());
    store.audit_append(&audit_entry(
        node,
        who,
        request,
        target,
        &denied,
        Timestamp::now(),
    ))?;
    Ok(Some(denied))
}
