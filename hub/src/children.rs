//! [`Children`]: what this hub knows of the nodes directly below it — their health, as the
//! link engine keeps it, and through which of them each alert origin is reached.
//!
//! There is one table of the children's health, and it is the link engine's
//! ([`vigil_link::Children`], one [`ChildInfo`] per child): the parent end of the links
//! (`vigil_link::Downlinks`) fills it from every retained status and last will on
//! `vigil/v1/status/{child}` and from every batch or ack a child sends (traffic proves a
//! child online), and publishes it on a watch channel. The hub [`follows`](Children::follow)
//! that channel instead of keeping a copy; before the links start (and in a hub whose link
//! side is not running) the table is empty.
//!
//! What the hub adds is the **routes**: the link side notes, for each origin node whose
//! admitted events a child's batch carried, the child it came through
//! ([`Children::note_route`]); an origin below a grandchild is reached through the child. A
//! direct child always wins over a learned route: it is never reached through another
//! child (docs/ARCHITECTURE.md#site-bindings-and-admission). Operator actions use
//! [`Children::downlink_for`] to pick the outbox (`child:{id}`) through which an action on
//! an alert flows back down to the node that raised it. Routes are memory only: after a
//! restart they refill as batches come in, and meanwhile a child whose status lists the
//! origin among its own children is taken, or else the origin itself (always right at a
//! county hub, whose children are the gateways). The routes are bounded ([`MAX_ROUTES`]): a
//! child hub naming ever new origins cannot grow them without end.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;
use vigil_core::NodeId;
use vigil_link::{ChildInfo, Children as ChildTable};
use vigil_wire::{ChildStatus, NodeState};

pub use vigil_link::{child_link, PARENT_LINK};

/// The most routes held. Past it, a new origin first drops the routes through the same
/// child (a child flooding new origins loses its own); when that frees less than a quarter,
/// all routes go (they refill from the next batches; meanwhile the children's statuses
/// route).
pub const MAX_ROUTES: usize = 100_000;

#[derive(Debug)]
struct Inner {
    /// The link engine's table of the children's health.
    table: watch::Receiver<ChildTable>,
    /// Origin node → the direct child it is reached through.
    routes: BTreeMap<NodeId, NodeId>,
}

/// The registry of this hub's direct children, shared (cheap to clone).
#[derive(Debug, Clone)]
pub struct Children(Arc<RwLock<Inner>>);

impl Default for Children {
    fn default() -> Self {
        // A table nobody will write to: empty until `follow`.
        let (_, table) = watch::channel(ChildTable::new());
        Children(Arc::new(RwLock::new(Inner {
            table,
            routes: BTreeMap::new(),
        })))
    }
}

impl Children {
    /// An empty registry.
    pub fn new() -> Self {
        Children::default()
    }

    /// Reads the children's health from `table` from now on: the link engine's table
    /// (`DownlinksHandle::watch_children`).
    pub fn follow(&self, table: watch::Receiver<ChildTable>) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).table = table;
    }

    /// Notes that events raised by `origin` arrive through the direct child `via` (only
    /// admitted events' origins are noted: docs/ARCHITECTURE.md#site-bindings-and-admission).
    /// A direct child of this hub is never routed through another child: such a route is
    /// not noted.
    pub fn note_route(&self, origin: &NodeId, via: &NodeId) {
        let mut inner = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if origin != via && inner.table.borrow().get(origin).is_some() {
            tracing::debug!(%origin, %via, "no route through another child to a direct child");
            return;
        }
        if inner.routes.get(origin) != Some(via) {
            if !inner.routes.contains_key(origin) && inner.routes.len() >= MAX_ROUTES {
                let before = inner.routes.len();
                inner.routes.retain(|_, v| v != via);
                if inner.routes.len() > before - before / 4 {
                    inner.routes.clear();
                }
                tracing::warn!(%via, before, after = inner.routes.len(),
                    max = MAX_ROUTES, "too many routes: dropped routes to make room");
            }
            tracing::debug!(%origin, %via, "route noted");
            inner.routes.insert(origin.clone(), via.clone());
        }
    }

    /// The direct child through which `origin` is reached: a direct child itself (it
    /// always wins over a learned route), else a noted route, else the child whose last
    /// status lists `origin` among its own children; `None` when unknown.
    pub fn route(&self, origin: &NodeId) -> Option<NodeId> {
        let inner = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let table = inner.table.borrow();
        if table.get(origin).is_some() {
            return Some(origin.clone());
        }
        if let Some(via) = inner.routes.get(origin) {
            return Some(via.clone());
        }
        let via = table
            .iter()
            .find(|c| c.children.iter().any(|g| &g.node == origin))
            .map(|c| c.node.clone());
        via
    }

    /// The direct child through which an action on an alert raised by `origin` flows down:
    /// the child on the way, or `origin` itself while the way is unknown (the origin is
    /// then taken for a direct child).
    pub fn downlink_child(&self, origin: &NodeId) -> NodeId {
        self.route(origin).unwrap_or_else(|| origin.clone())
    }

    /// The outbox through which an action on an alert raised by `origin` flows down:
    /// `child:{`[`downlink_child`](Children::downlink_child)`}`.
    pub fn downlink_for(&self, origin: &NodeId) -> String {
        child_link(&self.downlink_child(origin))
    }

    /// Every direct child with its health, by id.
    pub fn snapshot(&self) -> Vec<ChildInfo> {
        let inner = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let table = inner.table.borrow();
        table.iter().cloned().collect()
    }

    /// Every direct child as an entry of this hub's own status (for its uplink).
    pub fn statuses(&self) -> Vec<ChildStatus> {
        let inner = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let table = inner.table.borrow();
        table.statuses()
    }

    /// Devices answering and configured in the whole subtree, as the children report: an
    /// offline child's devices count as configured, not as answering.
    pub fn devices(&self) -> (u64, u64) {
        let inner = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let table = inner.table.borrow();
        table.iter().fold((0, 0), |(online, total), c| {
            let answering = if c.state == NodeState::Online {
                c.devices_online
            } else {
                0
            };
            (
                online.saturating_add(answering),
                total.saturating_add(c.devices_total),
            )
        })
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
        let table = inner.table.borrow();
        table.counts()
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{Level, Timestamp};
    use vigil_wire::Status;

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid")
    }

    fn followed() -> (Children, watch::Sender<ChildTable>) {
        let (tx, rx) = watch::channel(ChildTable::new());
        let children = Children::new();
        children.follow(rx);
        (children, tx)
    }

    #[test]
    fn routes_come_from_notes_statuses_or_default_to_the_origin() {
        let (children, table) = followed();
        let t = Timestamp::from_millis(1_000);
        assert_eq!(children.downlink_for(&node("gw-1")), "child:gw-1");

        let mut county = Status::online(node("county-a"), Some(Level::County), t);
        county.children = vec![ChildStatus::new(node("gw-2"), NodeState::Online)];
        table.send_modify(|c| {
            c.on_status(county, t);
        });
        assert_eq!(children.route(&node("gw-2")), Some(node("county-a")));
        assert_eq!(children.downlink_for(&node("gw-2")), "child:county-a");
        assert_eq!(children.downlink_for(&node("county-a")), "child:county-a");

        children.note_route(&node("gw-9"), &node("county-b"));
        assert_eq!(children.downlink_for(&node("gw-9")), "child:county-b");
        assert_eq!(children.downlink_child(&node("gw-9")), node("county-b"));
    }

    #[test]
    fn a_direct_child_always_wins_over_a_learned_route() {
        let (children, table) = followed();
        let t = Timestamp::from_millis(1_000);
        table.send_modify(|c| {
            c.on_status(Status::online(node("gw-y"), None, t), t);
            c.on_status(Status::online(node("gw-x"), None, t), t);
        });
        // gw-x's events claimed gw-y as origin: no route to gw-y through gw-x.
        children.note_route(&node("gw-y"), &node("gw-x"));
        assert_eq!(children.downlink_for(&node("gw-y")), "child:gw-y");
        assert!(!children.routes().contains_key(&node("gw-y")));
        // A route noted before gw-z was heard of as a child gives way once it is.
        children.note_route(&node("gw-z"), &node("gw-x"));
        assert_eq!(children.downlink_for(&node("gw-z")), "child:gw-x");
        table.send_modify(|c| {
            c.on_status(Status::online(node("gw-z"), None, t), t);
        });
        assert_eq!(children.downlink_for(&node("gw-z")), "child:gw-z");
    }

    #[test]
    fn routes_are_bounded_and_a_flooding_child_loses_its_own_first() {
        let (children, _table) = followed();
        children.note_route(&node("gw-genuine"), &node("county-a"));
        for i in 0..MAX_ROUTES + 10 {
            children.note_route(&node(&format!("fake-{i}")), &node("county-b"));
            assert!(children.0.read().expect("lock").routes.len() <= MAX_ROUTES);
        }
        // county-b's flood dropped its own routes, not county-a's.
        assert_eq!(children.route(&node("gw-genuine")), Some(node("county-a")));
        assert!(children.routes().len() <= MAX_ROUTES);
    }

    #[test]
    fn health_is_the_link_tables() {
        let (children, table) = followed();
        let t = Timestamp::from_millis;
        let mut gw1 = Status::online(node("gw-1"), None, t(1));
        gw1.devices_online = 3;
        gw1.devices_total = 4;
        let mut gw2 = Status::online(node("gw-2"), None, t(1));
        gw2.devices_online = 5;
        gw2.devices_total = 5;
        table.send_modify(|c| {
            c.on_status(gw1, t(2));
            c.on_status(gw2, t(2));
            c.on_status(Status::last_will(node("gw-2")), t(3));
        });
        assert_eq!(children.counts(), (1, 1));
        assert_eq!(
            children.devices(),
            (3, 9),
            "offline gw-2's devices do not answer"
        );
        let snap = children.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[1].state, NodeState::Offline);
        assert_eq!(children.statuses().len(), 2);
        // A registry that follows nothing is empty.
        assert_eq!(Children::new().counts(), (0, 0));
    }
}
