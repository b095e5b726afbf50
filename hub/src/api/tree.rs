//! `GET /api/v1/tree`: the network under this hub with each node's health (see
//! [`crate::tree`] for what it holds and where each figure comes from).
//!
//! **Scope.** The caller sees the part of the tree its scope covers: alert counts only of
//! alerts in scope, and only the nodes whose site overlaps the scope (lies within it, or
//! holds it) or that have alerts in scope. This hub is always the root.

use axum::extract::State;
use axum::{Extension, Json};

use super::{access, ApiError, AppState};
use crate::auth::{Permission, Principal};
use crate::tree::{build, TreeNode};

/// Drops the children of `node` (at every depth) that are outside `who`'s part of the tree.
fn prune(node: &mut TreeNode, who: &Principal) {
    node.children.retain(|child| {
        child.alerts.open > 0 || child.site.as_ref().is_some_and(|s| who.overlaps(s))
    });
    for child in &mut node.children {
        prune(child, who);
    }
}

/// `GET /api/v1/tree`: this hub as the root, its children and theirs.
pub async fn tree(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<TreeNode>, ApiError> {
    access::require(&state, &who, Permission::Read, "tree", "tree").await?;
    let (mut counts, lanes) = state
        .store
        .call(|s| Ok((s.open_alert_counts()?, s.outbox_lanes()?)))
        .await?;
    counts.retain(|c| who.sees(c.site.as_ref()));
    let mut root = build(
        &state.this,
        state.children.snapshot(),
        &state.children.routes(),
        &counts,
        &lanes,
    );
    prune(&mut root, &who);
    Ok(Json(root))
}
