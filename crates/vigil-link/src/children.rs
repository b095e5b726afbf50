//! What a parent knows of its children: the last status each reported (or its last will),
//! when it was last heard from, and whether it is online — the hub's tree one level down.
//!
//! [`Children`] is pure: the parent's event loop feeds it statuses and traffic with the time,
//! and it answers whether a child just came online or went offline, which is what starts and
//! stops the child's downlink. A child's own status is authoritative; traffic from a child
//! (a batch or an ack) also proves it online, which covers a retained status the broker lost
//! and a last will that raced a reconnect.

use std::collections::BTreeMap;

use vigil_core::{Level, NodeId, Timestamp};
use vigil_wire::{Backlog, ChildStatus, LinkStatus, NodeState, Status};

/// One child as its parent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// The child's id.
    pub node: NodeId,
    /// Online or offline, as its last status, last will or traffic said.
    pub state: NodeState,
    /// The child's level, as it reported.
    pub level: Option<Level>,
    /// Since when the child is in `state` (this node's clock).
    pub since: Timestamp,
    /// When this node last heard anything from the child.
    pub last_seen: Timestamp,
    /// The `at` of the child's last status (the child's clock).
    pub status_at: Option<Timestamp>,
    /// Devices answering in the child's subtree.
    pub devices_online: u64,
    /// Devices configured in the child's subtree.
    pub devices_total: u64,
    /// The child's outbox backlog towards this node.
    pub backlog: Backlog,
    /// The child's uplink, as it reported.
    pub link: Option<LinkStatus>,
    /// The child's own children, as it reported (the subtree's health).
    pub children: Vec<ChildStatus>,
}

impl ChildInfo {
    fn new(node: NodeId, state: NodeState, now: Timestamp) -> Self {
        ChildInfo {
            node,
            state,
            level: None,
            since: now,
            last_seen: now,
            status_at: None,
            devices_online: 0,
            devices_total: 0,
            backlog: Backlog::default(),
            link: None,
            children: Vec::new(),
        }
    }

    /// The child as an entry of this node's own status.
    pub fn to_child_status(&self) -> ChildStatus {
        ChildStatus {
            node: self.node.clone(),
            state: self.state,
            level: self.level,
            since: Some(self.since),
            devices_online: self.devices_online,
            devices_total: self.devices_total,
            backlog: self.backlog,
        }
    }
}

/// Whether an update changed a child's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The child is online now and was not (or was unknown).
    CameOnline,
    /// The child is offline now and was online.
    WentOffline,
    /// No change of state.
    Unchanged,
}

/// Every child heard of, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children {
    map: BTreeMap<NodeId, ChildInfo>,
}

impl Children {
    /// No children known.
    pub fn new() -> Self {
        Children::default()
    }

    /// Takes a child's status (or last will) received at `now`.
    pub fn on_status(&mut self, status: Status, now: Timestamp) -> Transition {
        let entry = self
            .map
            .entry(status.node.clone())
            .or_insert_with(|| ChildInfo::new(status.node.clone(), NodeState::Offline, now));
        let transition = transition(entry.state, status.state);
        if entry.state != status.state {
            entry.since = now;
        }
        entry.state = status.state;
        entry.last_seen = now;
        if status.state == NodeState::Online {
            entry.level = status.level.or(entry.level);
            entry.status_at = status.at;
            entry.devices_online = status.devices_online;
            entry.devices_total = status.devices_total;
            entry.backlog = status.backlog;
            entry.link = status.link;
            entry.children = status.children;
        } else {
            // A last will says nothing but "offline": keep the last figures, drop the link.
            entry.link = None;
        }
        transition
    }

    /// Takes traffic (a batch or an ack) from `node` at `now`: the child is online.
    pub fn on_traffic(&mut self, node: &NodeId, now: Timestamp) -> Transition {
        let entry = self
            .map
            .entry(node.clone())
            .or_insert_with(|| ChildInfo::new(node.clone(), NodeState::Offline, now));
        entry.last_seen = now;
        if entry.state == NodeState::Online {
            return Transition::Unchanged;
        }
        entry.state = NodeState::Online;
        entry.since = now;
        Transition::CameOnline
    }

    /// Whether `node` is known and online.
    pub fn is_online(&self, node: &NodeId) -> bool {
        self.map
            .get(node)
            .is_some_and(|c| c.state == NodeState::Online)
    }

    /// One child.
    pub fn get(&self, node: &NodeId) -> Option<&ChildInfo> {
        self.map.get(node)
    }

    /// Every child, by id.
    pub fn iter(&self) -> impl Iterator<Item = &ChildInfo> {
        self.map.values()
    }

    /// How many children are online and offline.
    pub fn counts(&self) -> (usize, usize) {
        let online = self
            .map
            .values()
            .filter(|c| c.state == NodeState::Online)
            .count();
        (online, self.map.len() - online)
    }

    /// Every child as an entry of this node's own status.
    pub fn statuses(&self) -> Vec<ChildStatus> {
        self.map.values().map(ChildInfo::to_child_status).collect()
    }

    /// The map itself (for the owner's snapshot).
    pub fn as_map(&self) -> &BTreeMap<NodeId, ChildInfo> {
        &self.map
    }
}

fn transition(before: NodeState, after: NodeState) -> Transition {
    match (before, after) {
        (NodeState::Offline, NodeState::Online) => Transition::CameOnline,
        (NodeState::Online, NodeState::Offline) => Transition::WentOffline,
        _ => Transition::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use vigil_wire::LinkState;

    use super::*;

    fn node(id: &str) -> NodeId {
        NodeId::new(id).expect("valid")
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_795_000_000_000 + ms)
    }

    fn online(id: &str) -> Status {
        let mut s = Status::online(node(id), Some(Level::Facility), t(0));
        s.devices_online = 3;
        s.devices_total = 4;
        s.backlog = Backlog {
            critical: 1,
            normal: 9,
        };
        s.link = Some(LinkStatus {
            state: LinkState::Connected,
            last_ack_at: None,
        });
        s
    }

    #[test]
    fn statuses_and_wills_move_children_on_and_off_line() {
        let mut c = Children::new();
        assert_eq!(c.on_status(online("gw-1"), t(10)), Transition::CameOnline);
        assert_eq!(c.on_status(online("gw-1"), t(20)), Transition::Unchanged);
        let info = c.get(&node("gw-1")).expect("known");
        assert_eq!((info.since, info.last_seen), (t(10), t(20)));
        assert_eq!(info.backlog.normal, 9);
        assert_eq!(
            c.on_status(Status::last_will(node("gw-1")), t(30)),
            Transition::WentOffline
        );
        let info = c.get(&node("gw-1")).expect("known");
        assert_eq!(info.state, NodeState::Offline);
        assert_eq!(info.devices_total, 4, "the last figures are kept");
        assert_eq!(info.link, None);
        assert_eq!(info.since, t(30));
        // A retained will of a child never seen online.
        assert_eq!(
            c.on_status(Status::last_will(node("gw-2")), t(40)),
            Transition::Unchanged
        );
        assert_eq!(c.counts(), (0, 2));
    }

    #[test]
    fn traffic_proves_a_child_online() {
        let mut c = Children::new();
        assert_eq!(c.on_traffic(&node("gw-1"), t(1)), Transition::CameOnline);
        assert_eq!(c.on_traffic(&node("gw-1"), t(2)), Transition::Unchanged);
        assert!(c.is_online(&node("gw-1")));
        c.on_status(Status::last_will(node("gw-1")), t(3));
        assert!(!c.is_online(&node("gw-1")));
        assert_eq!(c.on_traffic(&node("gw-1"), t(4)), Transition::CameOnline);
        let statuses = c.statuses();
        assert_eq!(statuses.len(), 1);
        assert_eq!(statuses[0].state, NodeState::Online);
        assert_eq!(statuses[0].since, Some(t(4)));
    }
}
