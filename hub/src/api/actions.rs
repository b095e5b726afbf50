//! `POST /api/v1/alerts/{id}/{action}`: the operator actions.
//!
//! | action | body (JSON; may be empty where all is optional) |
//! |---|---|
//! | `ack` | `{"comment": "…"}` (optional) |
//! | `shelve` | `{"until": "2026-11-29T14:00:00Z"}` or `{"for": "30m"}`, and `"reason"` (optional) |
//! | `unshelve` | none |
//! | `comment` | `{"text": "…"}` |
//! | `assign` | `{"to": "…"}` |
//! | `close` | `{"reason": "…"}` (optional) |
//! | `reset` | none (ISA-18.2 reset of a latched alert) |
//!
//! Each becomes one alert event stamped with the hub's clock, created by this hub, with the
//! acting user as actor, recorded in the store and queued down to the child the alert came
//! through and up to the parent (see `action::record`); it is also published on the live
//! stream. The answer is `{"event": …, "alert": …}`: the event recorded and the alert as it
//! now is. Refusals: 404 for an unknown alert, 409 when its state refuses the action
//! (closed, already acknowledged, not shelved, not latched, still active), 400 for a body that
//! cannot be right.
//!
//! **Who acts.** The signed-in user (or `token:NAME` for an API token) is the event's actor
//! and the audit record's. Each action needs its permission ([`permission`]; the table is
//! `crate::auth::role`) and an alert in the caller's scope: 403 otherwise, with the refusal
//! audited (see [`super::access`]). The scope is checked under the store's lock, in the same
//! call that records the action.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use vigil_core::Timestamp;

use super::access::{self, check_scope};
use super::{alert_id, ApiError, AppState};
use crate::action::record::{record, ActionError};
use crate::action::Action;
use crate::alert_json::AlertJson;
use crate::auth::{Permission, Principal};

/// The longest comment or reason accepted, in characters.
pub const MAX_TEXT: usize = 4096;

/// The longest user or assignee name accepted, in characters.
pub const MAX_NAME: usize = 128;

fn name_ok(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{what} must be 1-{MAX_NAME} characters without control characters"
        )));
    }
    Ok(())
}

fn text_ok(what: &str, text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(format!(
            "{what} must be 1-{MAX_TEXT} characters and not blank"
        )));
    }
    Ok(())
}

fn optional_text(what: &str, text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => text_ok(what, &t).map(|()| Some(t)),
        None => Ok(None),
    }
}

/// The body as `T`; an empty body is `{}`.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// The permission `action` needs.
pub const fn permission(action: &Action) -> Permission {
    match action {
        Action::Ack { .. } => Permission::Ack,
        Action::Shelve { .. } | Action::Unshelve => Permission::Shelve,
        Action::Comment { .. } => Permission::Comment,
        Action::Assign { .. } => Permission::Assign,
        Action::Close { .. } => Permission::Close,
        Action::Reset => Permission::Reset,
    }
}

/// Records `action` on alert `id` for `who` and answers with the event and the alert.
async fn act(
    state: AppState,
    id: &str,
    who: Principal,
    action: Action,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = alert_id(id)?;
    let name = action.name();
    access::require(&state, &who, permission(&action), name, &id.to_string()).await?;
    let ctx = state.actions.clone();
    let node = ctx.node.to_string();
    let caller = who.clone();
    let now = Timestamp::now();
    let result = state
        .store
        .call(move |s| {
            if let Some(view) = s.alert(id)? {
                let target = id.to_string();
                let site = view.site.as_ref();
                if let Some(denied) = check_scope(s, &node, &caller, name, &target, site)? {
                    return Ok(Err(denied));
                }
            }
            Ok(Ok(record(s, &ctx, id, &action, &caller.name, now)))
        })
        .await?;
    let result = match result {
        Ok(result) => result,
        Err(denied) => {
            state
                .metrics
                .actions_refused
                .with_label_values(&[name, "forbidden"])
                .inc();
            return Err(access::forbidden(&state, &who, name, &denied));
        }
    };
    let refused = |reason: &str| {
        state
            .metrics
            .actions_refused
            .with_label_values(&[name, reason])
            .inc();
    };
    match result {
        Ok(recorded) => {
            state.metrics.actions.with_label_values(&[name]).inc();
            for link in &recorded.links {
                state.pokes.poke(link);
            }
            state.live.publish(&recorded.event, &recorded.view, now);
            Ok(Json(serde_json::json!({
                "event": recorded.event,
                "alert": AlertJson::new(&recorded.view, now),
            })))
        }
        Err(ActionError::NotFound(id)) => {
            refused("not_found");
            Err(ApiError::not_found(format!("no alert {id}")))
        }
        Err(ActionError::Refused(r)) if r.is_bad_request() => {
            refused("bad_request");
            Err(ApiError::bad_request(r.to_string()))
        }
        Err(ActionError::Refused(r)) => {
            refused("conflict");
            Err(ApiError::conflict(r.to_string()))
        }
        Err(e @ ActionError::Unstampable { .. }) => {
            refused("conflict");
            Err(ApiError::conflict(e.to_string()))
        }
        Err(ActionError::Store(e)) => Err(ApiError::from(e)),
    }
}

/// `ack` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    #[serde(default)]
    comment: Option<String>,
}

/// `shelve` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShelveBody {
    #[serde(default)]
    until: Option<String>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// A body that must carry nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoBody {}

/// `comment` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    text: String,
}

/// `assign` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    to: String,
}

/// `close` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    #[serde(default)]
    reason: Option<String>,
}

/// The end of a shelf from `until` or `for`, exactly one of them.
fn shelf_end(b: &ShelveBody, now: Timestamp) -> Result<Timestamp, ApiError> {
    match (&b.until, &b.for_) {
        (Some(until), None) => until.parse::<Timestamp>().map_err(|e| {
            ApiError::bad_request(format!("until: {e}"))
        }),
        (None, Some(d)) => {
            let d = humantime_serde::re::humantime::parse_duration(d).map_err(|e| {
                ApiError::bad_request(format!("for: {d:?}: {e} (write e.g. 30m or 8h)"))
            })?;
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            Ok(now.plus_millis(ms))
        }
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "give either until (an RFC 3339 time) or for (a duration like 30m), not both",
        )),
        (None, None) => Err(ApiError::bad_request(
            "shelve needs until (an RFC 3339 time such as 2026-11-29T14:00:00Z) or for (a duration like 30m)",
        )),
    }
}

/// `POST /api/v1/alerts/{id}/ack`.
pub async fn ack(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: AckBody = body(&bytes)?;
    let comment = optional_text("comment", b.comment)?;
    act(state, &id, who, Action::Ack { comment }).await
}

/// `POST /api/v1/alerts/{id}/shelve`.
pub async fn shelve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: ShelveBody = body(&bytes)?;
    let until = shelf_end(&b, Timestamp::now())?;
    let reason = optional_text("reason", b.reason)?;
    act(state, &id, who, Action::Shelve { until, reason }).await
}

/// `POST /api/v1/alerts/{id}/unshelve`.
pub async fn unshelve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let NoBody {} = body(&bytes)?;
    act(state, &id, who, Action::Unshelve).await
}

/// `POST /api/v1/alerts/{id}/comment`.
pub async fn comment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: CommentBody = body(&bytes)?;
    text_ok("text", &b.text)?;
    act(state, &id, who, Action::Comment { text: b.text }).await
}

/// `POST /api/v1/alerts/{id}/assign`.
pub async fn assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: AssignBody = body(&bytes)?;
    let to = b.to.trim().to_owned();
    name_ok("to", &to)?;
    act(state, &id, who, Action::Assign { to }).await
}

/// `POST /api/v1/alerts/{id}/close`.
pub async fn close(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: CloseBody = body(&bytes)?;
    let reason = optional_text("reason", b.reason)?;
    act(state, &id, who, Action::Close { reason }).await
}

/// `POST /api/v1/alerts/{id}/reset`.
pub async fn reset(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Extension(who): Extension<Principal>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let NoBody {} = body(&bytes)?;
    act(state, &id, who, Action::Reset).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_needs_its_permission() {
        use crate::auth::Role;
        let ack = Action::Ack { comment: None };
        assert!(!Role::Viewer.allows(permission(&ack)));
        assert!(Role::Operator.allows(permission(&ack)));
        assert!(Role::Operator.allows(permission(&Action::Unshelve)));
        assert!(!Role::Operator.allows(permission(&Action::Close { reason: None })));
        assert!(Role::Supervisor.allows(permission(&Action::Reset)));
    }

    #[test]
    fn shelf_ends() {
        let now = Timestamp::from_millis(1_000_000);
        let b = |until: Option<&str>, f: Option<&str>| ShelveBody {
            until: until.map(Into::into),
            for_: f.map(Into::into),
            reason: None,
        };
        assert_eq!(
            shelf_end(&b(None, Some("30m")), now),
            Ok(now.plus_millis(1_800_000))
        );
        assert_eq!(
            shelf_end(&b(Some("1970-01-01T00:20:00Z"), None), now),
            Ok(Timestamp::from_millis(1_200_000))
        );
        assert!(shelf_end(&b(None, None), now).is_err());
        assert!(shelf_end(&b(Some("x"), Some("1m")), now).is_err());
        assert!(shelf_end(&b(Some("tomorrow"), None), now).is_err());
        assert!(shelf_end(&b(None, Some("a while")), now).is_err());
    }

    #[test]
    fn bodies() {
        let empty = Bytes::from_static(b"  ");
        assert!(body::<AckBody>(&empty).is_ok());
        assert!(body::<CommentBody>(&empty).is_err(), "text is required");
        assert!(body::<NoBody>(&Bytes::from_static(b"{\"x\":1}")).is_err());
        assert!(body::<AckBody>(&Bytes::from_static(b"not json")).is_err());
    }
}
