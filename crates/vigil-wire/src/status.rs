//! The `status` payload: a node's health, retained on its status topic, and its last will.
//!
//! Every node publishes a retained [`Status`] on `vigil/v1/status/{node}` when it connects and
//! whenever its health changes: its children, its devices, the backlog of its outbox per lane,
//! the state of its own uplink. It registers [`Status::last_will`] — the same payload, tiny,
//! saying `offline` — with the broker, which publishes it when the node vanishes. So the level
//! above always holds each child's last word.
//!
//! Every field but `node` and `state` has a default and is omitted when it has it, which keeps
//! the last will to `{"v":1,"type":"status","node":"gw-prison-3","state":"offline"}`. Unlike
//! batches and acks, a status **ignores unknown fields** (see the crate docs): it is an advisory
//! snapshot, and a newer child reporting more must still be seen by an older parent.
//!
//! ```json
//! {"v": 1, "type": "status", "node": "county-baiyun", "state": "online", "level": "county",
//!  "at": "2026-11-29T12:05:00.000Z", "devices_online": 46, "devices_total": 48,
//!  "backlog": {"critical": 0, "normal": 12},
//!  "link": {"state": "connected", "last_ack_at": "2026-11-29T12:04:59.250Z"},
//!  "children": [{"node": "gw-prison-3", "state": "online", "devices_online": 20,
//!                "devices_total": 20}]},
//!  "audit": {"seq": 1042, "hash": "9f2c…"}
//! ```
//!
//! `audit` is the tail of the node's own audit chain. The parent holds a copy of the chain
//! (it travels up as `audit` link events), so it can tell when a node's log is shorter than
//! the copy, or differs from it: a log cut or rewritten on the node
//! (docs/ARCHITECTURE.md#audit-log).
//!
//! `bindings` (a hub's) lists the nodes enrolled in its subtree, each with the site subtree
//! it is bound to and the node it is enrolled with, so every ancestor knows which node may
//! speak for which sites (docs/ARCHITECTURE.md#site-bindings-and-admission). A parent records
//! them only when each lies inside the reporting child's own binding. Older parents ignore
//! the field.

use serde::{Deserialize, Serialize};
use vigil_core::{Level, NodeId, SitePath, Timestamp};

use crate::audit::AuditHash;
use crate::error::WireError;
use crate::message::MessageKind;

/// The tail of a node's own audit chain: its last record's number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditTail {
    /// The last record's number (from 1).
    pub seq: u64,
    /// The last record's hash.
    pub hash: AuditHash,
}

/// Whether a node is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Connected and running.
    Online,
    /// Gone: said by its last will, or by its parent when it stopped hearing from it.
    Offline,
}

/// The state of a node's link to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Connected to the parent's broker.
    Connected,
    /// Trying to connect (with backoff).
    Connecting,
    /// Not connected and not trying (e.g. not enrolled yet, or shutting down).
    Disconnected,
}

/// Events waiting in an outbox, per lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Backlog {
    /// Unacknowledged events in the critical lane.
    pub critical: u64,
    /// Unacknowledged events in the normal lane.
    pub normal: u64,
}

impl Backlog {
    /// Whether both lanes are empty.
    pub const fn is_empty(&self) -> bool {
        self.critical == 0 && self.normal == 0
    }

    /// Events waiting in both lanes together.
    pub const fn total(&self) -> u64 {
        self.critical.saturating_add(self.normal)
    }
}

/// The state of a node's uplink to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Whether the link is up.
    pub state: LinkState,
    /// When the parent last acknowledged a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ack_at: Option<Timestamp>,
}

/// What a node knows of one of its children.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ChildStatus {
    /// The child's id.
    pub node: NodeId,
    /// Whether the child is up, as its own status or last will said.
    pub state: NodeState,
    /// The child's level (absent for a gateway that did not say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Since when the child has been in `state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Devices answering in the child's subtree.
    #[serde(skip_serializing_if = "is_zero")]
    pub devices_online: u64,
    /// Devices configured in the child's subtree.
    #[serde(skip_serializing_if = "is_zero")]
    pub devices_total: u64,
    /// The child's outbox backlog towards this node, as it last reported.
    #[serde(skip_serializing_if = "Backlog::is_empty")]
    pub backlog: Backlog,
}

impl ChildStatus {
    /// A child known only by id and state; every other field at its default.
    pub fn new(node: NodeId, state: NodeState) -> Self {
        ChildStatus {
            node,
            state,
            level: None,
            since: None,
            devices_online: 0,
            devices_total: 0,
            backlog: Backlog::default(),
        }
    }
}

/// A node enrolled in the reporting node's subtree, and the site subtree it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BindingStatus {
    /// The node.
    pub node: NodeId,
    /// The site subtree it speaks for.
    pub site: SitePath,
    /// The node it is enrolled with (the reporting node, or a hub below it).
    pub parent: NodeId,
}

/// A node's health, as published on its status topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Status {
    /// The node the status is about: the topic's node.
    pub node: NodeId,
    /// Whether the node is up.
    pub state: NodeState,
    /// The node's level in the network (absent in the last will).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// When the node published this status (absent in the last will, which the broker sends
    /// at an unknown time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// Devices answering in the node's subtree.
    #[serde(skip_serializing_if = "is_zero")]
    pub devices_online: u64,
    /// Devices configured in the node's subtree.
    #[serde(skip_serializing_if = "is_zero")]
    pub devices_total: u64,
    /// The node's outbox backlog towards its parent.
    #[serde(skip_serializing_if = "Backlog::is_empty")]
    pub backlog: Backlog,
    /// The node's uplink (absent at the ministry, which has no parent, and in the last will).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkStatus>,
    /// The node's children, as it last heard from them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ChildStatus>,
    /// The tail of the node's own audit chain (absent while it is empty, and in the last
    /// will).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditTail>,
    /// The nodes enrolled in the node's subtree with their site bindings (a hub's; empty on
    /// a gateway and in the last will).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<BindingStatus>,
}

impl Status {
    /// An `online` status of `node` at `at`; every other field at its default.
    pub fn online(node: NodeId, level: Option<Level>, at: Timestamp) -> Self {
        Status {
            state: NodeState::Online,
            at: Some(at),
            level,
            ..Status::last_will(node)
        }
    }

    /// The last will the node registers with the broker: `offline`, and nothing else.
    pub fn last_will(node: NodeId) -> Self {
        Status {
            node,
            state: NodeState::Offline,
            level: None,
            at: None,
            devices_online: 0,
            devices_total: 0,
            backlog: Backlog::default(),
            link: None,
            children: Vec::new(),
            audit: None,
            bindings: Vec::new(),
        }
    }
}

/// For `skip_serializing_if`, which passes a reference.
const fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The status as read off the wire: node ids not yet checked, unknown fields ignored.
#[derive(Deserialize)]
pub(crate) struct RawStatus {
    node: String,
    state: NodeState,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    at: Option<Timestamp>,
    #[serde(default)]
    devices_online: u64,
    #[serde(default)]
    devices_total: u64,
    #[serde(default)]
    backlog: Backlog,
    #[serde(default)]
    link: Option<LinkStatus>,
    #[serde(default)]
    children: Vec<RawChildStatus>,
    #[serde(default)]
    audit: Option<AuditTail>,
    #[serde(default)]
    bindings: Vec<RawBindingStatus>,
}

/// A reported binding as read off the wire.
#[derive(Deserialize)]
pub(crate) struct RawBindingStatus {
    node: String,
    site: String,
    parent: String,
}

/// A child's status as read off the wire.
#[derive(Deserialize)]
pub(crate) struct RawChildStatus {
    node: String,
    state: NodeState,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    since: Option<Timestamp>,
    #[serde(default)]
    devices_online: u64,
    #[serde(default)]
    devices_total: u64,
    #[serde(default)]
    backlog: Backlog,
}

fn node_id(id: String, field: impl FnOnce() -> String) -> Result<NodeId, WireError> {
    NodeId::new(id).map_err(|source| WireError::InvalidNodeId {
        kind: MessageKind::Status,
        field: field(),
        source,
    })
}

impl TryFrom<RawStatus> for Status {
    type Error = WireError;

    fn try_from(raw: RawStatus) -> Result<Status, WireError> {
        let node = node_id(raw.node, || "node".to_owned())?;
        let children = raw
            .children
            .into_iter()
            .enumerate()
            .map(|(i, child)| {
                Ok(ChildStatus {
                    node: node_id(child.node, || format!("children[{i}].node"))?,
                    state: child.state,
                    level: child.level,
                    since: child.since,
                    devices_online: child.devices_online,
                    devices_total: child.devices_total,
                    backlog: child.backlog,
                })
            })
            .collect::<Result<_, WireError>>()?;
        let bindings = raw
            .bindings
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                Ok(BindingStatus {
                    node: node_id(b.node, || format!("bindings[{i}].node"))?,
                    site: SitePath::new(b.site).map_err(|source| WireError::InvalidNodeId {
                        kind: MessageKind::Status,
                        field: format!("bindings[{i}].site"),
                        source,
                    })?,
                    parent: node_id(b.parent, || format!("bindings[{i}].parent"))?,
                })
            })
            .collect::<Result<_, WireError>>()?;
        Ok(Status {
            node,
            state: raw.state,
            level: raw.level,
            at: raw.at,
            devices_online: raw.devices_online,
            devices_total: raw.devices_total,
            backlog: raw.backlog,
            link: raw.link,
            children,
            audit: raw.audit,
            bindings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_says_online_and_the_last_will_offline() {
        let node = NodeId::new("gw-1").expect("valid");
        let online = Status::online(
            node.clone(),
            Some(Level::Facility),
            Timestamp::from_millis(0),
        );
        assert_eq!(online.state, NodeState::Online);
        assert_eq!(Status::last_will(node).state, NodeState::Offline);
    }

    #[test]
    fn bindings_travel_and_an_older_status_has_none() {
        let mut status = Status::online(
            NodeId::new("county-1").expect("valid"),
            Some(Level::County),
            Timestamp::from_millis(0),
        );
        status.bindings.push(BindingStatus {
            node: NodeId::new("gw-1").expect("valid"),
            site: SitePath::new("m/p/c/k/f1").expect("valid"),
            parent: NodeId::new("county-1").expect("valid"),
        });
        let text = crate::encode(&crate::Message::Status(status.clone()));
        assert!(std::str::from_utf8(&text)
            .expect("utf-8")
            .contains(r#""bindings":[{"node":"gw-1","site":"m/p/c/k/f1","parent":"county-1"}]"#));
        assert_eq!(
            crate::decode(&text).expect("decodes"),
            crate::Message::Status(status)
        );
        let bad = br#"{"v":1,"type":"status","node":"c","state":"online","bindings":[{"node":"g","site":"a//b","parent":"c"}]}"#;
        assert!(crate::decode(bad).is_err());
    }
}
