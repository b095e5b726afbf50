//! Resolving the [`Principal`] of each request, before any handler runs.
//!
//! Which requests need one ([`needs_principal`]): everything under `/api/` and `/feeds/`
//! except `POST /api/v1/session` (the sign-in), and `GET /metrics` when
//! `[auth] open_metrics = false`. Unknown paths under `/api/` are refused like known ones,
//! so an anonymous caller cannot map the API.
//!
//! How ([`resolve`]), in this order:
//!
//! 1. `Authorization: Bearer <token>`: an API token that exists, is not revoked and has not
//!    expired. A malformed `Authorization` header is refused, never ignored.
//! 2. The `vigil_session` cookie: a session that has not ended (see [`super::session`]);
//!    a state-changing request must also carry `X-CSRF-Token` (403 otherwise).
//!
//! Nothing else: 401 with `WWW-Authenticate: Bearer realm="vigil"` and a JSON error that
//! says how to sign in. Each refusal is counted (`vigil_hub_auth_refusals_total`) by status
//! and reason. The handlers find the principal in the request's extensions.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use vigil_core::{SitePath, Timestamp};

use super::secret::digest;
use super::session::{self, changes_state, csrf_ok};
use super::{millis, Principal, Role, Via, TOKEN_ACTOR_PREFIX};
use crate::api::{ApiError, AppState};

/// The challenge sent with every 401.
pub const CHALLENGE: &str = "Bearer realm=\"vigil\"";

/// How often a token's `last_used` is written at most.
const TOKEN_TOUCH_MS: i64 = 60_000;

/// Whether a request to `path` with `method` needs a principal.
pub fn needs_principal(method: &Method, path: &str, open_metrics: bool) -> bool {
    if path == "/metrics" {
        return !open_metrics;
    }
    if *method == Method::POST && path == "/api/v1/session" {
        return false;
    }
    path == "/api" || path.starts_with("/api/") || path.starts_with("/feeds/")
}

/// Why a request was not let through.
#[derive(Debug)]
pub enum Refusal {
    /// 401: no credentials, or ones that sign nobody in.
    Unauthorized {
        /// For the metric label and the log.
        reason: &'static str,
        /// What to tell the caller.
        message: &'static str,
        /// Remove the session cookie (it names a session that has ended).
        clear_cookie: bool,
    },
    /// 403: a cookie-authenticated state change without the right CSRF token.
    Csrf,
    /// The store failed.
    Failed(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Failed(e)
    }
}

impl From<vigil_link::LinkError> for Refusal {
    fn from(e: vigil_link::LinkError) -> Self {
        Refusal::Failed(ApiError::from(e))
    }
}

const SIGN_IN: &str = "sign in first: POST /api/v1/session with {\"name\", \"password\"} \
                       (the console does), or send Authorization: Bearer <token>";

fn unauthorized(reason: &'static str) -> Refusal {
    Refusal::Unauthorized {
        reason,
        message: SIGN_IN,
        clear_cookie: false,
    }
}

fn ended(reason: &'static str) -> Refusal {
    Refusal::Unauthorized {
        reason,
        message: "the session has ended: sign in again (POST /api/v1/session)",
        clear_cookie: true,
    }
}

/// The 401 (or 403) response for `refusal`, counted.
pub fn refusal_response(state: &AppState, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Unauthorized {
            reason,
            message,
            clear_cookie,
        } => {
            state
                .metrics
                .auth_refusals
                .with_label_values(&["401", reason])
                .inc();
            tracing::debug!(reason, "request refused: not signed in");
            let mut resp = (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({ "error": message })),
            )
                .into_response();
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
            if clear_cookie {
                if let Ok(v) =
                    HeaderValue::from_str(&session::clear_cookie(state.auth.secure_cookie))
                {
                    resp.headers_mut().insert(SET_COOKIE, v);
                }
            }
            resp
        }
        Refusal::Csrf => {
            state
                .metrics
                .auth_refusals
                .with_label_values(&["403", "csrf"])
                .inc();
            ApiError::forbidden(
                "missing or wrong X-CSRF-Token: send the csrf value given at sign-in (or by \
                 GET /api/v1/session) with every POST and DELETE",
            )
            .into_response()
        }
        Refusal::Failed(e) => e.into_response(),
    }
}

/// The middleware: lets through what needs no principal, resolves the principal of the
/// rest (in the request's extensions for the handler), refuses the others.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !needs_principal(
        request.method(),
        request.uri().path(),
        state.auth.open_metrics,
    ) {
        return next.run(request).await;
    }
    match resolve(&state, request.method(), request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(refusal) => refusal_response(&state, refusal),
    }
}

/// The token in `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A stored role and scope, read back; a row the hub cannot read signs nobody in.
fn grant(role: &str, scope: &str, whose: &str) -> Result<(Role, SitePath), Refusal> {
    match (role.parse::<Role>(), SitePath::new(scope)) {
        (Ok(role), Ok(scope)) => Ok((role, scope)),
        (role, scope) => {
            tracing::error!(
                whose,
                ?role,
                ?scope,
                "stored role or scope is unreadable: refused; fix it with vigil-hub"
            );
            Err(unauthorized("unreadable_grant"))
        }
    }
}

/// The principal of a request with `method` and `headers`; see the module docs.
pub async fn resolve(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, Refusal> {
    let now = Timestamp::now();
    if let Some(value) = headers.get(AUTHORIZATION) {
        let token = bearer(value).ok_or_else(|| unauthorized("bad_authorization"))?;
        let hash = digest(token);
        let found = state.store.call(move |s| s.token_by_secret(&hash)).await?;
        let t = found.ok_or_else(|| unauthorized("unknown_token"))?;
        if t.revoked_at.is_some() {
            return Err(unauthorized("token_revoked"));
        }
        if t.expires_at.is_some_and(|e| now >= e) {
            return Err(unauthorized("token_expired"));
        }
        let (role, scope) = grant(&t.role, &t.scope, &t.name)?;
        if t.last_used
            .is_none_or(|l| now >= l.plus_millis(TOKEN_TOUCH_MS))
        {
            let name = t.name.clone();
            if let Err(error) = state.store.call(move |s| s.token_touch(&name, now)).await {
                tracing::warn!(%error, token = %t.name, "cannot record a token's use");
            }
        }
        return Ok(Principal {
            name: format!("{TOKEN_ACTOR_PREFIX}{}", t.name),
            role,
            scope,
            via: Via::Token { name: t.name },
        });
    }
    let Some(secret) = session::presented(headers) else {
        return Err(unauthorized("no_credentials"));
    };
    let hash = digest(secret);
    let found = state.store.call(move |s| s.session(&hash)).await?;
    let Some((stored, user)) = found else {
        return Err(ended("unknown_session"));
    };
    if let Err(why) = session::check(&stored, &user, now, state.auth.session_idle) {
        state
            .store
            .call(move |s| s.session_delete(&hash, None))
            .await?;
        return Err(ended(why.as_str()));
    }
    let (role, scope) = grant(&user.role, &user.scope, &user.name)?;
    if changes_state(method) && !csrf_ok(headers, &stored.csrf) {
        return Err(Refusal::Csrf);
    }
    if now
        >= stored
            .last_seen
            .plus_millis(millis(state.auth.touch_interval()))
    {
        state
            .store
            .call(move |s| s.session_touch(&hash, now))
            .await?;
    }
    Ok(Principal {
        name: user.name,
        role,
        scope,
        via: Via::Session {
            secret_hash: hash,
            csrf: stored.csrf,
            expires_at: stored.expires_at,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_needs_a_principal() {
        let open = |m: Method, p: &str| !needs_principal(&m, p, true);
        assert!(open(Method::GET, "/healthz"));
        assert!(open(Method::GET, "/metrics"));
        assert!(needs_principal(&Method::GET, "/metrics", false));
        assert!(open(Method::POST, "/api/v1/session"));
        assert!(!open(Method::GET, "/api/v1/session"));
        assert!(!open(Method::DELETE, "/api/v1/session"));
        assert!(!open(Method::GET, "/api/v1/alerts"));
        assert!(!open(Method::GET, "/api/v1/nothing-here"));
        assert!(!open(Method::GET, "/api"));
        assert!(!open(Method::GET, "/feeds/cap.atom"));
        assert!(open(Method::GET, "/"));
    }

    #[test]
    fn bearer_tokens() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer(&v("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&v("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&v("Basic abc")), None);
        assert_eq!(bearer(&v("Bearer")), None);
        assert_eq!(bearer(&v("Bearer ")), None);
    }
}
