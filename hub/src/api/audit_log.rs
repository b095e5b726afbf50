//! `GET /api/v1/audit?node=&after=&limit=`: the audit records this hub holds — its own log
//! and the trails of the nodes below it (README, "Audit log") — for the `auditor` and `admin`
//! roles (the `audit` permission; others get the audited 403).
//!
//! Records come newest first, ordered by `(at, node, seq)`, `limit` at a time (default 100,
//! at most 1000). A page that may have more names `next`: pass it as `after` for the next,
//! older page (keyset paging: records appended meanwhile do not shift the pages). `node`
//! keeps one node's records (this hub's id: its own log). Each record is returned as stored —
//! `details` as JSON, the hashes in hex — without checking: `vigil-hub audit verify` checks.
//! The audit log is not scoped by site: the audit permission reads all of it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use vigil_store::AuditListCursor;

use super::{access, ApiError, AppState};
use crate::auth::{Permission, Principal};

/// The default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest page.
pub const MAX_LIMIT: usize = 1000;

/// The query parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    node: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// One page.
#[derive(Debug, Serialize)]
pub struct AuditPage {
    /// The records, newest first.
    pub records: Vec<serde_json::Value>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /api/v1/audit`.
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    access::require(&state, &who, Permission::ReadAudit, "audit", "audit").await?;
    let Query(params) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "{}; parameters are node, after, limit",
            e.body_text()
        ))
    })?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit {text:?}: a number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let after = params
        .after
        .as_deref()
        .map(str::parse::<AuditListCursor>)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("after: {e}")))?;
    let own = state.actions.node.clone();
    let node = params.node;
    let records = state
        .store
        .call(move |s| s.audit_list(&own, node.as_deref(), after.as_ref(), limit))
        .await?;
    let next = (records.len() == limit)
        .then(|| records.last())
        .flatten()
        .map(|r| {
            AuditListCursor {
                at: r.at.as_millis(),
                origin: r.origin.to_string(),
                seq: r.seq,
            }
            .to_string()
        });
    let records = records
        .into_iter()
        .map(|r| {
            let details = serde_json::from_str(&r.details)
                .unwrap_or_else(|_| serde_json::Value::String(r.details.clone()));
            serde_json::json!({
                "node": r.origin,
                "seq": r.seq,
                "at": r.at,
                "on": r.node,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "details": details,
                "prev_hash": r.prev_hash,
                "hash": r.hash,
            })
        })
        .collect();
    Ok(Json(AuditPage { records, next }))
}
