//! `GET /healthz` (200 while the hub serves) and `GET /metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use vigil_core::Timestamp;

use super::{ApiError, AppState};

/// `GET /healthz`: `ok` with 200 while the hub serves.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: every hub metric; the store-backed figures are read now.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let now = Timestamp::now();
    let (states, lanes) = state
        .store
        .call(move |s| Ok((s.alert_state_counts(now)?, s.outbox_lanes()?)))
        .await?;
    state
        .metrics
        .refresh(&states, &lanes, state.children.counts());
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    ))
}
