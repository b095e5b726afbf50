//! [`Children`]: what this hub knows of the nodes directly below it — their last status,
//! when it last heard from them, and through which of them each alert origin is reached.
//!
//! The link side (the parent end of the link protocol, `crates/vigil-link`) fills it:
//!
//! - [`Children::update`] with every retained status and last will received on
//!   `vigil/v1/status/{child}`;
//! - [`Children::touch`] whenever anything arrives from a child (a batch, an ack);
//! - [`Children::note_route`] when it applies a child's batch, for each origin node whose
//!   events the batch carried (an origin below a grandchild is reached through the child).
//!
//! The API reads it for `GET /api/v1/tree` and the metrics, and operator actions use
//! [`Children::downlink_for`] to pick the outbox (`child:{id}`) through which an action on an
//! alert flows back down to the node that raised it. The registry is memory only: after a
//! restart it refills as the children's retained statuses arrive (at once, on connect) and
//! their batches come in; until then an origin is assumed to be a direct child, which is
//! always right at a county hub, whose children are the gateways.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use vigil_core::{NodeId, Timestamp};
use vigil_wire::{NodeState, Status};

/// The name of the outbox towards the parent hub (the link engine's name for it).
pub const PARENT_LINK: &str = "parent";

/// The name of the downlink outbox towards the direct child `child` (the link engine's name
/// for it): `child:{id}`.
pub fn child_link(child: &NodeId) -> String {
    format!("child:{child}")
}

/// What the hub knows of one direct child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildEntry {
    /// The child's last status (its last will says `offline`). Its `state` is the child's
    /// state as this hub sees it: traffic from an `offline` child turns it `online`.
    pub status: Status,
    /// Since when the child has been in that state (this hub's clock).
    pub since: Timestamp,
    /// When the hub last heard anything from the child.
    pub last_seen: Timestamp,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: BTreeMap<NodeId, ChildEntry>,
    /// Origin node → the direct child it is reached through.
    routes: BTreeMap<NodeId, NodeId>,
}

/// The registry of this hub's direct children, shared (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Children(Arc<RwLock<Inner>>);

impl Children {
    /// An empty registry.
    pub fn new() -> Self {
        Children::default()
    }

    /// Records a status received from `status.node` at `seen` (its retained status or its
    /// last will).
    pub fn update(&self, status: Status, seen: Timestamp) {
        let mut inner = self.0.write().unwrap_or_else(PoisonError::into_inner);
        let node = status.node.clone();
        inner.routes.insert(node.clone(), node.clone());
        let since = match inner.nodes.get(&node) {
            Some(e) if e.status.state == status.state => e.since,
            _ => seen,
        };
        let last_seen = inner
            .nodes
            .get(&node)
            .map_or(seen, |e| e.last_seen.max(seen));
        inner.nodes.insert(
            node,
            ChildEntry {
                status,
                since,
                last_seen,
            },
        );
    }

    /// Notes that `child` was heard from at `seen` (a batch, an ack): it is online. A child
    /// not known yet is entered as online with nothing else known.
    pub fn touch(&self, child: &NodeId, seen: Timestamp) {
        let mut inner = self.0.write().unwrap_or_else(PoisonError::into_inner);
        inner.routes.insert(child.clone(), child.clone());
        let entry = inner
            .nodes
            .entry(child.clone())
            .or_insert_with(|| ChildEntry {
                status: Status::online(child.clone(), None, seen),
                since: seen,
                last_seen: seen,
            });
        entry.last_seen = entry.last_seen.max(seen);
        // Also for a fresh entry: `Status::online` keeps the last will's `offline` state.
        if entry.status.state != NodeState::Online {
            entry.status.state = NodeState::Online;
            entry.since = seen;
        }
    }

    /// Notes that events raised by `origin` arrive through the direct child `via`.
    pub fn note_route(&self, origin: &NodeId, via: &NodeId) {
        let mut inner = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if inner.routes.get(origin) != Some(via) {
            inner.routes.insert(origin.clone(), via.clone());
        }
    }

    /// The direct child through which `origin` is reached: a noted route, else the child
    /// whose last status lists `origin` among its own children; `None` when unknown.
    pub fn route(&self, origin: &NodeId) -> Option<NodeId> {
        let inner = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(via) = inner.routes.get(origin) {
            return Some(via.clone());
        }
        inner
            .nodes
            .iter()
            .find(|(_, e)| e.status.children.iter().any(|c| &c.node == origin))
            .map(|(id, _)| id.clone())
    }

    /// The outbox through which an action on an alert raised by `origin` flows down:
    /// `child:{the child on the way}`, or `child:{origin}` while the way is unknown (the
    /// origin is then taken for a direct child).
    pub fn downlink_for(&self, origin: &NodeId) -> String {
        child_link(&self.route(origin).unwrap_or_else(|| origin.clone()))
    }

    /// Every direct child, by id.
    pub fn snapshot(&self) -> Vec<(NodeId, ChildEntry)> {
        let inner = self.0.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .nodes
            .iter()
            .map(|(id, e)| (id.clone(), e.clone()))
            .collect()
    }

    /// Every noted route, origin → direct child.
    pub fn routes(&self) -> BTreeMap<NodeId, NodeId> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .routes
            .clone()
    }

    /// How many direct children are online and offline.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let online = inner
            .nodes
            .values()
            .filter(|e| e.status.state == NodeState::Online)
            .count();
        (online, inner.nodes.len() - online)
    }
}

#[cfg(test)]
mod tests {
    use vigil_wire::ChildStatus;

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid")
    }

    #[test]
    fn routes_come_from_notes_statuses_or_default_to_the_origin() {
        let children = Children::new();
        let t = Timestamp::from_millis(1_000);
        assert_eq!(children.downlink_for(&node("gw-1")), "child:gw-1");

        let mut county = Status::online(node("county-a"), None, t);
        county.state = NodeState::Online;
        county.children = vec![ChildStatus::new(node("gw-2"), NodeState::Online)];
        children.update(county, t);
        assert_eq!(children.route(&node("gw-2")), Some(node("county-a")));
        assert_eq!(children.downlink_for(&node("gw-2")), "child:county-a");

        children.note_route(&node("gw-9"), &node("county-b"));
        assert_eq!(children.downlink_for(&node("gw-9")), "child:county-b");
        assert_eq!(children.downlink_for(&node("county-a")), "child:county-a");
    }

    #[test]
    fn statuses_touches_and_counts() {
        let children = Children::new();
        let t = Timestamp::from_millis;
        children.touch(&node("gw-1"), t(5));
        children.touch(&node("gw-1"), t(3));
        children.update(Status::last_will(node("gw-2")), t(4));
        let snap = children.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].1.last_seen, t(5));
        assert_eq!(snap[0].1.since, t(5));
        assert_eq!(snap[0].1.status.state, NodeState::Online);
        assert_eq!(snap[1].1.since, t(4));
        assert_eq!(children.counts(), (1, 1));

        // Offline since its last will; a repeated last will keeps the time; traffic turns
        // it online again.
        children.update(Status::last_will(node("gw-2")), t(6));
        assert_eq!(children.snapshot()[1].1.since, t(4));
        children.touch(&node("gw-2"), t(8));
        let gw2 = &children.snapshot()[1].1;
        assert_eq!(
            (gw2.status.state, gw2.since, gw2.last_seen),
            (NodeState::Online, t(8), t(8))
        );
        assert_eq!(children.counts(), (2, 0));
    }
}
