//! `GET·POST /api/v1/directives`, `GET /api/v1/directives/{id}`
//! (docs/ARCHITECTURE.md#directives).
//!
//! `POST` issues a directive from this hub to a site subtree:
//!
//! ```json
//! {"target": "ministry/gd/gz/by", "deadline": "5m",
//!  "body": {"type": "posture", "until": "2026-12-08T02:00:00Z"}}
//! ```
//!
//! `body` is one of `posture` (`until`), `snapshot` (`zone`), `drill` (`start`, `end`,
//! `note`), `order` (`text`); `deadline` (a duration, default `5m`) is how long the nodes have
//! to acknowledge. It needs a supervisor or an admin (the roles that may close alerts) and a
//! target inside the caller's scope and this hub's site: 403 (audited) otherwise, 400 for a
//! body that cannot be right. The answer (201) is the directive as `GET` shows it.
//!
//! `GET` lists the directives this hub holds whose target intersects the caller's scope,
//! newest first (`?limit=`, default 100, at most 1000), each with every acknowledgement held
//! here (`acks`: node, outcome, reason, at, via) and the nodes still expected: `pending`
//! before the deadline, `missing` after it.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::{EventId, SitePath, Timestamp};
use vigil_store::{AuditEntry, DirectiveView};
use vigil_wire::directive::MAX_DIRECTIVE_TEXT;
use vigil_wire::{Directive, DirectiveBody};

use crate::api::access::{self, Denied};
use crate::api::{ApiError, AppState};
use crate::auth::{Permission, Principal};

/// The permission that sending a directive needs: the one supervisors and admins have and
/// operators do not.
pub const PERMISSION: Permission = Permission::Close;

/// The acknowledgement deadline when the request gives none.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// The longest deadline accepted.
pub const MAX_DEADLINE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// The `POST` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDirective {
    target: String,
    #[serde(default)]
    deadline: Option<String>,
    body: DirectiveBody,
}

/// The list's query.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// How many, at most.
    #[serde(default)]
    limit: Option<usize>,
}

fn text_ok(what: &str, text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.len() > MAX_DIRECTIVE_TEXT {
        return Err(ApiError::bad_request(format!(
            "{what} must be 1-{MAX_DIRECTIVE_TEXT} bytes and not blank"
        )));
    }
    Ok(())
}

/// The furthest ahead a posture may end or a drill may run to: 7 days.
const MAX_POSTURE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Checks a body's fields against `now`.
fn check_body(body: &DirectiveBody, now: Timestamp) -> Result<(), ApiError> {
    match body {
        DirectiveBody::Posture { until } if *until <= now => Err(ApiError::bad_request(
            "posture.until is not in the future: give the end of the raised posture",
        )),
        DirectiveBody::Posture { until }
            if until.as_millis() > now.as_millis().saturating_add(MAX_POSTURE_MS) =>
        {
            Err(ApiError::bad_request(
                "posture.until is more than 7 days ahead: a raised posture is for a while; send another directive to extend it",
            ))
        }
        DirectiveBody::Drill { end, .. }
            if end.as_millis() > now.as_millis().saturating_add(MAX_POSTURE_MS) =>
        {
            Err(ApiError::bad_request(
                "drill.end is more than 7 days ahead: announce a drill within the week",
            ))
        }
        DirectiveBody::Drill { start, end, .. } if end <= start => {
            Err(ApiError::bad_request("drill.end must be after drill.start"))
        }
        DirectiveBody::Drill { note: Some(n), .. } => text_ok("drill.note", n),
        DirectiveBody::Snapshot { zone } => text_ok("snapshot.zone", zone),
        DirectiveBody::Order { text } => text_ok("order.text", text),
        _ => Ok(()),
    }
}

/// A directive as the API shows it, at `now`.
pub fn view_json(view: &DirectiveView, now: Timestamp) -> Value {
    let d = &view.directive;
    let expected = view.missing();
    let overdue = now > d.deadline;
    let acks: Vec<Value> = view
        .acks
        .iter()
        .map(|a| {
            json!({
                "node": a.ack.node,
                "outcome": a.ack.outcome.as_str(),
                "reason": a.ack.reason,
                "at": a.ack.at.to_string(),
                "via": a.via,
                "received_at": a.received_at.to_string(),
                "relayed_to": a.ack.relayed_to,
            })
        })
        .collect();
    json!({
        "id": d.id.to_string(),
        "origin": d.origin,
        "target": d.target.as_str(),
        "kind": d.body.kind(),
        "body": d.body,
        "actor": d.actor,
        "issued_at": d.issued_at.to_string(),
        "deadline": d.deadline.to_string(),
        "issued_here": view.local,
        "received_from": view.received_from,
        "handled": view.handled,
        "delivered_to": view.delivered_to,
        "acks": acks,
        "pending": if overdue { Vec::new() } else { expected.clone() },
        "missing": if overdue { expected } else { Vec::new() },
        "overdue": overdue,
    })
}

/// `GET /api/v1/directives`.
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    access::require(&state, &who, Permission::Read, "directives", "directives").await?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let scope = who.scope.clone();
    let views = state
        .store
        .call(move |s| s.directives(limit, |v| v.in_scope(&scope)))
        .await?;
    let now = Timestamp::now();
    Ok(Json(json!({
        "directives": views.iter().map(|v| view_json(v, now)).collect::<Vec<_>>(),
    })))
}

fn directive_id(text: &str) -> Result<EventId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::not_found(format!("no directive {text:?}: ids are UUIDs")))
}

/// `GET /api/v1/directives/{id}`.
pub async fn one(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    access::require(&state, &who, Permission::Read, "directive", &id).await?;
    let id = directive_id(&id)?;
    let view = state.store.call(move |s| s.directive(&id)).await?;
    match view {
        // Out of scope reads as unknown, like an alert's.
        Some(view) if view.in_scope(&who.scope) => Ok(Json(view_json(&view, Timestamp::now()))),
        _ => Err(ApiError::not_found(format!(
            "no directive {id} in your scope"
        ))),
    }
}

/// `POST /api/v1/directives`.
pub async fn issue(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    access::require(&state, &who, PERMISSION, "directive.send", "directives").await?;
    let req: NewDirective = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    let target = SitePath::new(req.target.clone()).map_err(|e| {
        ApiError::bad_request(format!("target {:?} is not a site path: {e}", req.target))
    })?;
    if !target.is_within(&who.scope) {
        let mut refused = access::refuse(
            &state,
            &who,
            "directive.send",
            target.as_str(),
            Denied::Scope(Some(target.clone())),
        )
        .await;
        refused.message = format!(
            "the target {target} is outside your scope ({}): you can direct only your own subtree",
            who.scope
        );
        return Err(refused);
    }
    if let Some(site) = &state.this.site {
        if !super::intersects(&target, site) {
            return Err(ApiError::bad_request(format!(
                "target {target} is outside this hub's site ({site}): send it from a hub above it"
            )));
        }
    }
    let now = Timestamp::now();
    check_body(&req.body, now)?;
    let deadline = match req.deadline.as_deref() {
        None => DEFAULT_DEADLINE,
        Some(d) => humantime_serde::re::humantime::parse_duration(d).map_err(|e| {
            ApiError::bad_request(format!("deadline {d:?} is not a duration like 5m: {e}"))
        })?,
    };
    if deadline.is_zero() || deadline > MAX_DEADLINE {
        return Err(ApiError::bad_request(
            "deadline must be between 1s and 7 days",
        ));
    }
    let directive = Directive {
        id: EventId::generate(),
        origin: state.this.id.clone(),
        target,
        actor: who.name.clone(),
        issued_at: now,
        deadline: now.plus_millis(i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX)),
        body: req.body,
    };
    let audit = AuditEntry {
        at: now,
        node: state.this.id.to_string(),
        actor: who.name.clone(),
        action: "directive.issue".to_owned(),
        target: directive.id.to_string(),
        details: json!({
            "kind": directive.body.kind(),
            "target": directive.target.as_str(),
            "body": directive.body,
            "deadline": directive.deadline.to_string(),
        }),
    };
    let id = directive.id;
    let hub = super::HubDirectives {
        node: state.this.id.clone(),
        has_parent: state.actions.has_parent,
        site: state.this.site.clone(),
    };
    let (view, handled) = state
        .store
        .call(move |s| {
            s.directive_issue(&directive, &audit)?;
            // Passed on now rather than at the task's next poll.
            let handled = super::handle_pending(s, &hub)?;
            Ok((s.directive(&id)?, handled))
        })
        .await?;
    state
        .metrics
        .directives
        .with_label_values(&["issued"])
        .inc();
    handled.report(&state.metrics, &state.pokes);
    let view = view.ok_or_else(|| ApiError::internal(&"the directive was not stored"))?;
    tracing::info!(directive = %id, user = %who.name, kind = view.directive.body.kind(),
                   target = %view.directive.target, "directive issued");
    Ok((
        StatusCode::CREATED,
        Json(view_json(&view, Timestamp::now())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_cannot_be_right_are_refused() {
        let now = Timestamp::from_millis(10_000);
        let past = DirectiveBody::Posture {
            until: Timestamp::from_millis(5_000),
        };
        assert!(check_body(&past, now).is_err());
        let forever = DirectiveBody::Posture {
            until: Timestamp::from_millis(10_000 + MAX_POSTURE_MS + 1),
        };
        assert!(check_body(&forever, now).is_err(), "no posture for ever");
        let week = DirectiveBody::Posture {
            until: Timestamp::from_millis(10_000 + MAX_POSTURE_MS),
        };
        assert!(check_body(&week, now).is_ok());
        let backwards = DirectiveBody::Drill {
            start: Timestamp::from_millis(20_000),
            end: Timestamp::from_millis(20_000),
            note: None,
        };
        assert!(check_body(&backwards, now).is_err());
        let blank = DirectiveBody::Order { text: "  ".into() };
        assert!(check_body(&blank, now).is_err());
        let ok = DirectiveBody::Posture {
            until: Timestamp::from_millis(20_000),
        };
        assert!(check_body(&ok, now).is_ok());
    }
}
