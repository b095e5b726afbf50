//! The `directive` and `directive_ack` link events: an operator's instruction travelling down
//! to a subtree, and each node's acknowledgement travelling back up to the hub it came from
//! (docs/ARCHITECTURE.md#directives).
//!
//! ```json
//! {"directive": {"id": "019ad2c4-…", "origin": "county-by", "target": "ministry/gd/gz/by",
//!                "actor": "alice", "issued_at": "2026-12-07T22:00:00.000Z",
//!                "deadline": "2026-12-07T22:05:00.000Z",
//!                "body": {"type": "posture", "until": "2026-12-08T02:00:00.000Z"}}}
//! {"directive_ack": {"directive": "019ad2c4-…", "node": "gw-prison-3",
//!                    "outcome": "applied", "at": "2026-12-07T22:00:01.250Z"}}
//! ```
//!
//! A directive is issued once, at its `origin` hub, and never changes: its id is its
//! idempotency key. A node acknowledges a directive once; the pair `(directive, node)` is the
//! acknowledgement's key ([`ack_event_id`]), so a resent acknowledgement is a no-op.
//!
//! Directives travel only down (a parent's `down` topic) and acknowledgements only up: the
//! link refuses either going the other way.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_core::{EventId, NodeId, SitePath, Timestamp};

/// The longest free text (an order, a drill's note, a refusal's reason), in bytes.
pub const MAX_DIRECTIVE_TEXT: usize = 2000;

/// An operator's instruction to every node of a site subtree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directive {
    /// Its id (a UUIDv7 from the origin hub): the key that makes applying it idempotent.
    pub id: EventId,
    /// The hub where it was issued; acknowledgements travel up to it.
    pub origin: NodeId,
    /// The site subtree it addresses: every node whose site intersects it receives it.
    pub target: SitePath,
    /// The operator who issued it (their user name at the origin).
    pub actor: String,
    /// When it was issued (the origin's clock).
    pub issued_at: Timestamp,
    /// Acknowledgements not in by then are flagged as missing.
    pub deadline: Timestamp,
    /// What it asks.
    pub body: DirectiveBody,
}

/// What a directive asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DirectiveBody {
    /// Raise the alert posture until `until`: agents arm their `[[posture]]` thresholds.
    Posture {
        /// When the raised posture ends.
        until: Timestamp,
    },
    /// Take snapshots from the cameras of `zone`.
    Snapshot {
        /// The zone whose cameras are asked.
        zone: String,
    },
    /// A drill from `start` to `end`: shown to operators; alerts are not changed.
    Drill {
        /// When the drill starts.
        start: Timestamp,
        /// When it ends.
        end: Timestamp,
        /// What operators are told.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A free-text order.
    Order {
        /// The order.
        text: String,
    },
}

impl DirectiveBody {
    /// The kind's name as on the wire (`posture`, `snapshot`, `drill`, `order`).
    pub const fn kind(&self) -> &'static str {
        match self {
            DirectiveBody::Posture { .. } => "posture",
            DirectiveBody::Snapshot { .. } => "snapshot",
            DirectiveBody::Drill { .. } => "drill",
            DirectiveBody::Order { .. } => "order",
        }
    }
}

/// What a node did with a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectiveOutcome {
    /// Applied (or, for a hub, stored, shown and passed down).
    Applied,
    /// Nothing on this node it applies to (e.g. a snapshot at a node with no cameras).
    NotApplicable,
    /// It could not be applied; the reason says why.
    Failed,
}

impl DirectiveOutcome {
    /// The outcome as on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            DirectiveOutcome::Applied => "applied",
            DirectiveOutcome::NotApplicable => "not_applicable",
            DirectiveOutcome::Failed => "failed",
        }
    }

    /// The outcome named `name` (as on the wire).
    pub fn from_name(name: &str) -> Option<DirectiveOutcome> {
        [
            DirectiveOutcome::Applied,
            DirectiveOutcome::NotApplicable,
            DirectiveOutcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }
}

/// One node's acknowledgement of a directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectiveAck {
    /// The directive acknowledged.
    pub directive: EventId,
    /// The node acknowledging.
    pub node: NodeId,
    /// What it did.
    pub outcome: DirectiveOutcome,
    /// Why (for `failed` and `not_applicable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When (the node's clock).
    pub at: Timestamp,
    /// The children a hub passed the directive on to: the nodes whose acknowledgements the
    /// hubs above then expect too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relayed_to: Vec<NodeId>,
}

impl DirectiveAck {
    /// The acknowledgement's idempotency key, [`ack_event_id`] of `(directive, node)`.
    pub fn event_id(&self) -> EventId {
        ack_event_id(&self.directive, &self.node)
    }
}

/// A directive record of a batch, as the store takes them apart from alert events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectiveRecord {
    /// A directive (travels down).
    Directive(Directive),
    /// An acknowledgement (travels up).
    Ack(DirectiveAck),
}

const ACK_ID_DOMAIN: &[u8] = b"vigil directive ack v1\0";

/// The id of `node`'s acknowledgement of `directive`: a UUIDv8 of a SHA-256 of the pair, so
/// every copy of it has one key.
pub fn ack_event_id(directive: &EventId, node: &NodeId) -> EventId {
    let mut h = Sha256::new();
    h.update(ACK_ID_DOMAIN);
    h.update(directive.as_bytes());
    h.update(node.as_str().as_bytes());
    crate::audit::derived_event_id(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directive_round_trips_in_its_documented_shape() {
        let json = r#"{"id": "019ad2c4-5a00-7000-8000-000000000001", "origin": "county-by",
            "target": "ministry/gd/gz/by", "actor": "alice",
            "issued_at": "2026-12-07T22:00:00.000Z", "deadline": "2026-12-07T22:05:00.000Z",
            "body": {"type": "posture", "until": "2026-12-08T02:00:00.000Z"}}"#;
        let directive: Directive = serde_json::from_str(json).expect("valid");
        assert_eq!(directive.body.kind(), "posture");
        let back: Directive =
            serde_json::from_str(&serde_json::to_string(&directive).expect("encode"))
                .expect("decode");
        assert_eq!(back, directive);
        let unknown = json.replace("\"actor\"", "\"extra\": 1, \"actor\"");
        assert!(serde_json::from_str::<Directive>(&unknown).is_err());
    }

    #[test]
    fn an_ack_omits_what_it_does_not_carry_and_has_one_key_per_node() {
        let ack = DirectiveAck {
            directive: EventId::from_bytes([1; 16]),
            node: NodeId::new("gw-1").expect("valid"),
            outcome: DirectiveOutcome::NotApplicable,
            reason: None,
            at: Timestamp::from_millis(5),
            relayed_to: Vec::new(),
        };
        let text = serde_json::to_string(&ack).expect("encode");
        assert!(
            !text.contains("reason") && !text.contains("relayed_to"),
            "{text}"
        );
        assert!(text.contains("\"not_applicable\""), "{text}");
        let other = DirectiveAck {
            node: NodeId::new("gw-2").expect("valid"),
            ..ack.clone()
        };
        assert_ne!(ack.event_id(), other.event_id());
        assert_eq!(
            ack.event_id(),
            DirectiveAck {
                outcome: DirectiveOutcome::Failed,
                ..ack.clone()
            }
            .event_id()
        );
        assert_eq!(
            DirectiveOutcome::from_name("not_applicable"),
            Some(DirectiveOutcome::NotApplicable)
        );
    }
}
