//! The node admin endpoints (role `installer` or `admin`: the `nodes` permission):
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /api/v1/nodes/{id}/revoke` (body optional: `{"serial": "3fa1…"}`) | revokes every certificate of the node, or the one serial; **live**: the node's connections through the broker gate close at once and it cannot reconnect. 200 `{"node", "revoked": [serials newly revoked]}`; 404 when the node has no such certificate |
//! | `GET /api/v1/nodes/{id}/certificates` | `{"node", "certificates": [{"serial", "not_before", "not_after", "issued_at", "fingerprint", "status", "revoked_at", "revoked_by", "site"}]}`, `status` being `valid`, `expired` or `revoked`, `site` the site the certificate's token bound the node to |
//!
//! A revocation is recorded and audited (action `node.revoke`) in one transaction.
//!
//! Both are in scope like alerts: the node's site is its binding here
//! (docs/ARCHITECTURE.md#site-bindings-and-admission), or this hub's own site for a node
//! bound nowhere here (one certified before bindings); a node outside the caller's scope is
//! a 403, counted and audited (`access_denied`, reason `scope`). Without a site at all only
//! a caller whose scope is a whole tree (one segment) may.

use axum::extract::{Path, Request, State};
use axum::{Extension, Json};
use serde::Deserialize;
use vigil_core::{NodeId, SitePath, Timestamp};
use vigil_store::{NodeCertificate, RevokeError};

use super::revocation::revoke_in_store;
use crate::api::access::{refuse, require, Denied};
use crate::api::{ApiError, AppState};
use crate::auth::{Permission, Principal};

/// The optional body of a revoke.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    serial: Option<String>,
}

fn node_id(text: &str) -> Result<NodeId, ApiError> {
    NodeId::new(text).map_err(|e| ApiError::not_found(format!("no node {text:?}: {e}")))
}

/// The site `node` is judged at: its binding here, else this hub's own site.
async fn node_site(state: &AppState, node: &NodeId) -> Result<Option<SitePath>, ApiError> {
    let lookup = node.clone();
    let bound = state.store.call(move |s| s.node_binding(&lookup)).await?;
    Ok(bound.map(|b| b.site).or_else(|| state.this.site.clone()))
}

/// `Ok` when `node` lies inside `who`'s scope; the audited 403 otherwise.
async fn require_node_in_scope(
    state: &AppState,
    who: &Principal,
    request: &str,
    node: &NodeId,
) -> Result<(), ApiError> {
    let site = node_site(state, node).await?;
    let in_scope = match &site {
        Some(site) => site.is_within(&who.scope),
        None => who.scope.depth() == 1,
    };
    if in_scope {
        return Ok(());
    }
    let mut error = refuse(
        state,
        who,
        request,
        node.as_str(),
        Denied::Scope(site.clone()),
    )
    .await;
    error.message = format!(
        "node {node} ({}) is outside your scope ({}): you cannot see or act on it",
        site.as_ref().map_or("no site", SitePath::as_str),
        who.scope
    );
    Err(error)
}

/// `POST /api/v1/nodes/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &who, Permission::ManageNodes, "revoke", &id).await?;
    let node = node_id(&id)?;
    require_node_in_scope(&state, &who, "revoke", &node).await?;
    let bytes = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::bad_request("the body is too large"))?;
    let body: RevokeBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        RevokeBody::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be empty or {{\"serial\": \"<hex serial>\"}}: {e}"
            ))
        })?
    };
    let serial = body.serial.as_deref().map(vigil_pki::normalize_serial);
    let enroll = state.enroll.clone();
    let actor = who.name.clone();
    let target = node.clone();
    let wanted = serial.clone();
    let outcome = state
        .store
        .call(move |s| {
            let outcome = revoke_in_store(s, &enroll, &actor, &target, wanted.as_deref(), "api");
            if matches!(&outcome, Ok(revoked) if !revoked.is_empty()) {
                super::revocation::rewrite_crl(s, &enroll);
            }
            match outcome {
                Err(RevokeError::Store(e)) => Err(e),
                other => Ok(other),
            }
        })
        .await?;
    let revoked = match outcome {
        Ok(revoked) => revoked,
        Err(e) => return Err(ApiError::not_found(e.to_string())),
    };
    // Live: the gate drops the node's connections that presented these certificates.
    for serial in &revoked {
        state.enroll.pki.revocations().revoke(serial);
    }
    state
        .enroll
        .metrics
        .revocations
        .inc_by(revoked.len() as u64);
    tracing::info!(node = %node, by = %who.name, revoked = ?revoked, "certificates revoked");
    Ok(Json(
        serde_json::json!({ "node": node, "revoked": revoked }),
    ))
}

/// `GET /api/v1/nodes/{id}/certificates`.
pub async fn certificates(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &who, Permission::ManageNodes, "certificates", &id).await?;
    let node = node_id(&id)?;
    require_node_in_scope(&state, &who, "certificates", &node).await?;
    let lookup = node.to_string();
    let certs = state
        .store
        .call(move |s| s.node_certificates(&lookup))
        .await?;
    let now = Timestamp::now();
    let certs: Vec<serde_json::Value> = certs.iter().map(|c| certificate_json(c, now)).collect();
    Ok(Json(
        serde_json::json!({ "node": node, "certificates": certs }),
    ))
}

/// One certificate as the API shows it.
pub fn certificate_json(c: &NodeCertificate, now: Timestamp) -> serde_json::Value {
    let status = if c.revoked_at.is_some() {
        "revoked"
    } else if c.not_after <= now {
        "expired"
    } else {
        "valid"
    };
    serde_json::json!({
        "serial": c.serial,
        "not_before": c.not_before,
        "not_after": c.not_after,
        "issued_at": c.issued_at,
        "fingerprint": c.fingerprint,
        "status": status,
        "revoked_at": c.revoked_at,
        "revoked_by": c.revoked_by,
        "site": c.site,
    })
}
