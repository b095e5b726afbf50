//! `/api/v1/session`: signing in and out of the console.
//!
//! | request | answer |
//! |---|---|
//! | `POST` `{"name": "li.na", "password": "…"}` (`Content-Type: application/json`) | 200 `{"user", "role", "scope", "csrf", "expires_at"}` and the cookie `vigil_session`; 401 for a wrong name or password (which of the two is not said); 429 with `Retry-After` while the name at this client address, or the address, must wait, or while another sign-in from the address is being checked ([`crate::auth::limiter`]); 503 with `Retry-After: 1` while `[auth] sign_in_concurrency` passwords are being checked hub-wide |
//! | `GET` | who the caller is: `{"user", "role", "scope", "via": "session" or "token", "csrf", "expires_at"}` |
//! | `DELETE` (with `X-CSRF-Token`) | ends the session and removes the cookie: `{"signed_out": "li.na"}` |
//!
//! **Hostile load.** An attempt is counted as a failure *before* its password is checked
//! (and taken back if it is right), so parallel guesses cannot slip under the limit; an
//! address has one attempt being checked at a time; and at most `[auth]
//! sign_in_concurrency` checks run hub-wide (argon2id holds 19 MiB for tens of
//! milliseconds): one more is answered 503 at once instead of queueing on the blocking pool.
//! A check whose client went away runs to its end and is counted.
//!
//! Every sign-in is audited (`sign_in`, details `{"outcome": "success" | "failure",
//! "reason", "client"}`; the actor of a failure is `unauthenticated`, its target the name
//! tried), and every sign-out (`sign_out`). An attempt answered 429 is not checked and not
//! audited one by one — an attacker could otherwise fill the log at network speed — but the
//! failure that starts each wait is (`"wait_s"`), and all are counted
//! (`vigil_hub_sign_ins_total{outcome="rate_limited" | "in_progress" | "overloaded"}`). The password is never logged or
//! audited.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use vigil_core::{SitePath, Timestamp};
use vigil_store::{AuditEntry, NewSession};

use super::{ApiError, AppState};
use crate::auth::limiter::Refusal;
use crate::auth::middleware::CHALLENGE;
use crate::auth::session::{clear_cookie, set_cookie};
use crate::auth::{check_name, millis, password, secret, Principal, Role, Via};

/// The largest sign-in body accepted.
const MAX_BODY: usize = 16 * 1024;

/// The sign-in body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    name: String,
    password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `POST /api/v1/session`.
pub async fn sign_in(State(state): State<AppState>, request: Request) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match attempt(&state, client, request).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn body(request: Request) -> Result<SignIn, ApiError> {
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(ApiError::bad_request(
            "send {\"name\": …, \"password\": …} as JSON (Content-Type: application/json)",
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| ApiError::bad_request("the sign-in body is too large"))?;
    serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::bad_request(
            "the sign-in body must be {\"name\": \"…\", \"password\": \"…\"} and nothing else",
        )
    })
}

fn sign_in_audit(
    state: &AppState,
    actor: &str,
    name: &str,
    details: serde_json::Value,
    now: Timestamp,
) -> AuditEntry {
    AuditEntry {
        at: now,
        node: state.actions.node.to_string(),
        actor: actor.to_owned(),
        action: "sign_in".to_owned(),
        target: name.to_owned(),
        details,
    }
}

/// The name as it may appear in the audit log: printable, at most 64 characters.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(crate::auth::MAX_NAME_LEN)
        .collect()
}

/// A refusal without checking the password: `status`, `Retry-After` and the outcome counted.
fn refused(
    state: &AppState,
    status: StatusCode,
    wait: Duration,
    outcome: &str,
    message: &str,
) -> Response {
    state.metrics.sign_ins.with_label_values(&[outcome]).inc();
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut resp = (
        status,
        Json(serde_json::json!({
            "error": format!("{message}: try again in {secs} s"),
            "retry_after": secs,
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    resp
}

async fn attempt(state: &AppState, client: IpAddr, request: Request) -> Result<Response, ApiError> {
    let SignIn { name, password } = body(request).await?;
    // Counted as a failure before the check: parallel guesses cannot pass the limit.
    let attempt = match state.auth.limiter.begin(&name, client, Instant::now()) {
        Ok(attempt) => attempt,
        Err(Refusal::Wait(wait)) => {
            // Not a warning each: an attacker would fill the log at network speed. The
            // failure that started the wait was logged and audited; this one is counted.
            tracing::debug!(name = %printable(&name), %client, wait_s = wait.as_secs_f64(), "sign-in refused: too many failures");
            return Ok(refused(
                state,
                StatusCode::TOO_MANY_REQUESTS,
                wait,
                "rate_limited",
                "too many failed sign-ins",
            ));
        }
        Err(Refusal::InProgress) => {
            tracing::debug!(name = %printable(&name), %client, "sign-in refused: another from this address is being checked");
            return Ok(refused(
                state,
                StatusCode::TOO_MANY_REQUESTS,
                Duration::from_secs(1),
                "in_progress",
                "another sign-in from this address is being checked",
            ));
        }
    };

    // Hub-wide: a place among the checks that may run at once, or 503 now (and the
    // attempt is not counted: the password was not checked).
    let Ok(check) = Arc::clone(&state.auth.password_checks).try_acquire_owned() else {
        attempt.cancel();
        tracing::debug!(name = %printable(&name), %client, "sign-in refused: too many being checked");
        return Ok(refused(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(1),
            "overloaded",
            "too many sign-ins are being checked",
        ));
    };

    let lookup = name.clone();
    let user = if check_name(&name).is_ok() {
        state.store.call(move |s| s.user(&lookup)).await?
    } else {
        None
    };
    // The same work whether the user exists or not: the timing tells nothing. The check
    // keeps its place and the attempt until it ends, even if the client goes away.
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    let (matches, attempt) = tokio::task::spawn_blocking(move || {
        let matches = password::verify_or_dummy(&password, phc.as_deref());
        drop(check);
        (matches, attempt)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let now = Timestamp::now();
    let granted = match &user {
        None => Err("unknown_user"),
        Some(_) if !matches => Err("wrong_password"),
        Some(u) if u.disabled => Err("user_disabled"),
        Some(u) => match (u.role.parse::<Role>(), SitePath::new(u.scope.as_str())) {
            (Ok(role), Ok(scope)) => Ok((u.name.clone(), role, scope)),
            _ => {
                tracing::error!(user = %u.name, "stored role or scope is unreadable: sign-in refused");
                Err("unreadable_grant")
            }
        },
    };
    let (user, role, scope) = match granted {
        Ok(g) => g,
        Err(reason) => {
            // Counted when the attempt began; dropping it lets the address try again.
            let wait = attempt.wait();
            drop(attempt);
            let mut details = serde_json::json!({
                "outcome": "failure",
                "reason": reason,
                "client": client.to_string(),
            });
            if let Some(w) = wait {
                details["wait_s"] = w.as_secs_f64().into();
            }
            let entry = sign_in_audit(state, "unauthenticated", &printable(&name), details, now);
            state.store.call(move |s| s.audit_append(&entry)).await?;
            state.metrics.sign_ins.with_label_values(&["failure"]).inc();
            tracing::info!(name = %printable(&name), %client, reason, "sign-in failed");
            let mut resp = ApiError {
                status: StatusCode::UNAUTHORIZED,
                message: "wrong user name or password".to_owned(),
            }
            .into_response();
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
            return Ok(resp);
        }
    };

    attempt.succeeded();
    let cookie_secret = secret::new_secret().map_err(|e| ApiError::internal(&e))?;
    let csrf = secret::new_secret().map_err(|e| ApiError::internal(&e))?;
    let expires_at = now.plus_millis(millis(state.auth.session_max));
    let session = NewSession {
        secret_hash: secret::digest(&cookie_secret),
        user: user.clone(),
        csrf: csrf.clone(),
        created_at: now,
        expires_at,
    };
    let idle_before = now.plus_millis(-millis(state.auth.session_idle));
    let entry = sign_in_audit(
        state,
        &user,
        &user,
        serde_json::json!({ "outcome": "success", "client": client.to_string() }),
        now,
    );
    state
        .store
        .call(move |s| s.session_create(&session, idle_before, &entry))
        .await?;
    state.metrics.sign_ins.with_label_values(&["success"]).inc();
    tracing::info!(%user, role = %role, %client, "signed in");
    let cookie = set_cookie(
        &cookie_secret,
        state.auth.session_max,
        state.auth.secure_cookie,
    );
    let mut resp = Json(serde_json::json!({
        "user": user,
        "role": role.as_str(),
        "scope": scope,
        "csrf": csrf,
        "expires_at": expires_at,
    }))
    .into_response();
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?;
    resp.headers_mut().insert(SET_COOKIE, cookie);
    Ok(resp)
}

/// `GET /api/v1/session`: who the caller is.
pub async fn who(Extension(who): Extension<Principal>) -> Json<serde_json::Value> {
    let (via, csrf, expires_at) = match &who.via {
        Via::Session {
            csrf, expires_at, ..
        } => ("session", Some(csrf.clone()), Some(*expires_at)),
        Via::Token { .. } => ("token", None, None),
    };
    Json(serde_json::json!({
        "user": who.name,
        "role": who.role.as_str(),
        "scope": who.scope,
        "via": via,
        "csrf": csrf,
        "expires_at": expires_at,
    }))
}

/// `DELETE /api/v1/session`: sign out.
pub async fn sign_out(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    let Via::Session { secret_hash, .. } = who.via else {
        return Err(ApiError::bad_request(
            "a bearer token has no session to end: revoke it with vigil-hub token revoke",
        ));
    };
    let entry = AuditEntry {
        at: Timestamp::now(),
        node: state.actions.node.to_string(),
        actor: who.name.clone(),
        action: "sign_out".to_owned(),
        target: who.name.clone(),
        details: serde_json::json!({}),
    };
    state
        .store
        .call(move |s| s.session_delete(&secret_hash, Some(&entry)))
        .await?;
    tracing::info!(user = %who.name, "signed out");
    let mut resp = Json(serde_json::json!({ "signed_out": who.name })).into_response();
    let cookie = HeaderValue::from_str(&clear_cookie(state.auth.secure_cookie))
        .map_err(|e| ApiError::internal(&e))?;
    resp.headers_mut().insert(SET_COOKIE, cookie);
    Ok(resp)
}
