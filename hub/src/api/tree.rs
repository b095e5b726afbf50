//! `GET /api/v1/tree`: the network under this hub with each node's health (see
//! [`crate::tree`] for what it holds and where each figure comes from).

use axum::extract::State;
use axum::Json;

use super::{ApiError, AppState};
use crate::tree::{build, TreeNode};

/// `GET /api/v1/tree`: this hub as the root, its children and theirs.
pub async fn tree(State(state): State<AppState>) -> Result<Json<TreeNode>, ApiError> {
    let (counts, lanes) = state
        .store
        .call(|s| Ok((s.open_alert_counts()?, s.outbox_lanes()?)))
        .await?;
    Ok(Json(build(
        &state.this,
        state.children.snapshot(),
        &state.children.routes(),
        &counts,
        &lanes,
    )))
}
