//! The hub's HTTP interface (docs/ARCHITECTURE.md#hub-http-api), all on one listener:
//!
//! | endpoint | file |
//! |---|---|
//! | `GET /healthz`, `GET /metrics` | [`health`] |
//! | `POST`, `GET`, `DELETE /api/v1/session` (sign in, who am I, sign out) | [`session`] |
//! | `GET /api/v1/alerts`, `GET /api/v1/alerts/{id}` | [`alerts`] |
//! | `POST /api/v1/alerts/{id}/{ack,shelve,unshelve,comment,assign,close,reset}` | [`actions`] |
//! | `GET /api/v1/tree` | [`tree`] |
//! | `GET·POST /api/v1/directives`, `GET /api/v1/directives/{id}` | [`crate::directives::api`] |
//! | `GET /api/v1/audit` (this hub's audit log and the trails it holds) | [`audit_log`] |
//! | `GET /api/v1/stream` (Server-Sent Events) | [`stream`] |
//! | `POST /api/v1/enroll` (no session: the token is the credential) | [`crate::enroll::endpoint`] |
//! | `POST /api/v1/nodes/{id}/revoke`, `GET /api/v1/nodes/{id}/certificates` | [`crate::nodes::api`] |
//!
//! Every request under `/api/` but the sign-in comes from a signed-in user or an API token
//! ([`crate::auth`]): 401 without one. The caller's role decides what it may do and its
//! scope what it sees ([`access`]).
//!
//! Every error is JSON, `{"error": "what is wrong and what to do"}`, with 400 for a request
//! that cannot be right, 401 without valid credentials, 403 for what the caller's role,
//! scope or a missing CSRF token forbids, 404 for an unknown alert or endpoint, 409 for an
//! action the alert's state refuses, 429 for sign-ins that must wait, 500 when the store
//! fails. Every request is counted and timed by route template in the metrics.
//!
//! Handlers never block the runtime: the store is reached through
//! [`SharedStore::call`](vigil_link::SharedStore::call).

pub mod access;
pub mod actions;
pub mod alerts;
pub mod audit_log;
pub mod health;
pub mod session;
pub mod stream;
pub mod tree;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use vigil_link::{LinkError, SharedStore};

use crate::action::record::ActionContext;
use crate::auth::middleware::authenticate;
use crate::auth::AuthContext;
use crate::children::Children;
use crate::link::OutboxPokes;
use crate::live::LiveStream;
use crate::metrics::HubMetrics;
use crate::tree::ThisHub;

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store.
    pub store: SharedStore,
    /// The metrics.
    pub metrics: HubMetrics,
    /// The live stream.
    pub live: LiveStream,
    /// What operator actions need (node, clock, children, escalation).
    pub actions: ActionContext,
    /// Wakes the link side's drainers after an action is queued.
    pub pokes: OutboxPokes,
    /// The children registry (same as `actions.children`).
    pub children: Children,
    /// This hub, for the tree.
    pub this: ThisHub,
    /// How long one request may take, body included (`[http] request_timeout`); the live
    /// stream is exempt.
    pub request_timeout: std::time::Duration,
    /// How often a quiet live stream sends a keep-alive ([`stream::keep_alive_for`] the
    /// listener's idle timeout).
    pub stream_keep_alive: std::time::Duration,
    /// Cancelled at shutdown: ends the streams so the server can stop.
    pub shutdown: CancellationToken,
    /// Sign-in settings and the failed sign-in counts.
    pub auth: AuthContext,
    /// The CA, enrollment and revocation ([`crate::enroll`]).
    pub enroll: crate::enroll::EnrollState,
}

/// An API error: a status and a message, answered as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What is wrong, for the operator or the script.
    pub message: String,
}

impl ApiError {
    /// 400: the request cannot be right.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 403: the caller may not do this (role, scope, CSRF).
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// 409: the alert's state refuses it.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }

    /// 500: the hub failed; the details go to the log, not to the client.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "the hub could not complete the request; see its log".to_owned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        ApiError::internal(&e)
    }
}

impl From<vigil_store::StoreError> for ApiError {
    fn from(e: vigil_store::StoreError) -> Self {
        ApiError::internal(&e)
    }
}

/// Counts and times every request by route template (`/api/v1/alerts/{id}`, not the raw
/// path, so ids do not explode the label set; unknown paths count as `unmatched`).
async fn track(State(metrics): State<HubMetrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn no_such_endpoint() -> ApiError {
    ApiError::not_found("no such endpoint: see /api/v1/alerts, /api/v1/tree, /api/v1/stream")
}

/// The hub's router, every endpoint of the module docs.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route(
            "/api/v1/session",
            post(session::sign_in)
                .get(session::who)
                .delete(session::sign_out),
        )
        .route("/api/v1/alerts", get(alerts::list))
        .route("/api/v1/alerts/{id}", get(alerts::one))
        .route("/api/v1/alerts/{id}/ack", post(actions::ack))
        .route("/api/v1/alerts/{id}/shelve", post(actions::shelve))
        .route("/api/v1/alerts/{id}/unshelve", post(actions::unshelve))
        .route("/api/v1/alerts/{id}/comment", post(actions::comment))
        .route("/api/v1/alerts/{id}/assign", post(actions::assign))
        .route("/api/v1/alerts/{id}/close", post(actions::close))
        .route("/api/v1/alerts/{id}/reset", post(actions::reset))
        .route(
            "/api/v1/directives",
            get(crate::directives::api::list).post(crate::directives::api::issue),
        )
        .route("/api/v1/directives/{id}", get(crate::directives::api::one))
        .route("/api/v1/tree", get(tree::tree))
        .route("/api/v1/audit", get(audit_log::list))
        .route("/api/v1/stream", get(stream::stream))
        .route("/api/v1/nodes/{id}/revoke", post(crate::nodes::api::revoke))
        .route(
            "/api/v1/nodes/{id}/certificates",
            get(crate::nodes::api::certificates),
        )
        .fallback(no_such_endpoint)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // After the authentication layer: enrollment needs no session, the token is the
        // credential (the endpoint rate-limits and audits every attempt itself).
        .route("/api/v1/enroll", post(crate::enroll::endpoint::enroll))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .with_state(state)
        .layer(middleware::from_fn_with_state(metrics, track))
}

/// Bounds a request, from its headers to its answer and its body included, by
/// `[http] request_timeout`: the listener's idle timer is reset by every byte, so without
/// this a client sending its body a byte at a time would hold its connection for as long
/// as it likes (docs/ARCHITECTURE.md#security-hardening). The live stream is exempt: it is
/// meant to last. A request past the deadline is answered 408 and its connection closed.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/api/v1/stream" {
        return next.run(req).await;
    }
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            state
                .metrics
                .http_connection_timeouts
                .with_label_values(&["request"])
                .inc();
            let mut response = ApiError {
                status: StatusCode::REQUEST_TIMEOUT,
                message: format!(
                    "the request took longer than {} s, its body included",
                    state.request_timeout.as_secs_f64()
                ),
            }
            .into_response();
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

/// Parses an alert id from the path.
fn alert_id(text: &str) -> Result<vigil_core::AlertId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::not_found(format!(
            "no alert {text:?}: alert ids are UUIDs like 0192f4c0-7d3e-7c1a-9b2e-3f4a5b6c7d8e"
        ))
    })
}
