//! Alert events: the immutable facts an alert's state is folded from.
//!
//! Every change to an alert — raised, value updated, cleared, acknowledged, shelved, … — is
//! an [`AlertEvent`] with its own UUIDv7 id, the alert's id, the node that created it, an HLC
//! stamp and the actor. Events are never edited or deleted; replication between nodes is the
//! union of event sets, and the alert's state is [`crate::fold`]'s function of that set.

use serde::{Deserialize, Serialize};

use crate::alert::{AlertKey, Evidence};
use crate::hlc::Hlc;
use crate::id::{AlertId, EventId};
use crate::node::{NodeId, SitePath};
use crate::reading::Value;
use crate::severity::Severity;
use crate::time::Timestamp;

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The node's own logic: a detector, the alert manager, an expiry.
    System,
    /// A signed-in user, by user name, acting on the node that created the event.
    User(String),
}

/// What happened to the alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertEventBody {
    /// The condition became active: a new alert, or a new activation of an open one.
    Raised {
        key: AlertKey,
        site: SitePath,
        severity: Severity,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
        /// When the condition was detected.
        at: Timestamp,
        #[serde(default)]
        latching: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        evidence: Vec<Evidence>,
    },
    /// The condition is still active with a new value (and possibly severity or message).
    ValueUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<Severity>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        at: Timestamp,
    },
    /// The condition returned to normal.
    Cleared {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
        at: Timestamp,
    },
    /// An operator acknowledged the alert.
    Acknowledged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// An operator reset a latched alert (its condition has cleared and it was acknowledged).
    Reset,
    /// An operator shelved the alert until a time.
    Shelved {
        until: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An operator unshelved the alert before its shelf expired.
    Unshelved,
    Commented {
        text: String,
    },
    Assigned {
        to: String,
    },
    /// The alert episode is over; a later raise of the same key opens a new alert.
    Closed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Suppressed by design (`active: true`, e.g. the equipment is off) or released.
    Suppressed {
        active: bool,
    },
    /// Taken out of service for maintenance (`active: true`) or returned.
    OutOfService {
        active: bool,
    },
    /// The alert became a member of a fused incident.
    Correlated {
        incident: AlertId,
    },
}

impl AlertEventBody {
    /// The event's name as in the API and logs (`raised`, `acknowledged`, …).
    pub const fn name(&self) -> &'static str {
        match self {
            AlertEventBody::Raised { .. } => "raised",
            AlertEventBody::ValueUpdated { .. } => "value_updated",
            AlertEventBody::Cleared { .. } => "cleared",
            AlertEventBody::Acknowledged { .. } => "acknowledged",
            AlertEventBody::Reset => "reset",
            AlertEventBody::Shelved { .. } => "shelved",
            AlertEventBody::Unshelved => "unshelved",
            AlertEventBody::Commented { .. } => "commented",
            AlertEventBody::Assigned { .. } => "assigned",
            AlertEventBody::Closed { .. } => "closed",
            AlertEventBody::Suppressed { .. } => "suppressed",
            AlertEventBody::OutOfService { .. } => "out_of_service",
            AlertEventBody::Correlated { .. } => "correlated",
        }
    }
}

/// One immutable change to one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertEvent {
    pub id: EventId,
    pub alert: AlertId,
    /// The node that created this event (a gateway for a raise, a hub for an ack).
    pub origin: NodeId,
    pub hlc: Hlc,
    pub actor: Actor,
    pub body: AlertEventBody,
    /// The stamp the origin gave the event, when the first hub that received it found it
    /// further ahead of its own wall clock than its `[link] max_clock_skew` and clamped
    /// `hlc` to its clock (docs/ARCHITECTURE.md#clocks-and-skew). `None` for an event
    /// stamped within the bound; left out of the JSON then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clamped_from: Option<Hlc>,
}

impl AlertEvent {
    /// The position of this event in its alert's fold: `(HLC, event id)`.
    pub fn order_key(&self) -> (Hlc, EventId) {
        (self.hlc, self.id)
    }

    /// Moves the event to `stamp`, keeping the stamp its origin gave it in
    /// [`clamped_from`](AlertEvent::clamped_from) — the first one, if it was clamped before
    /// (docs/ARCHITECTURE.md#clocks-and-skew).
    pub fn clamp_to(&mut self, stamp: Hlc) {
        self.clamped_from.get_or_insert(self.hlc);
        self.hlc = stamp;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> AlertEvent {
        AlertEvent {
            id: EventId::from_bytes([1; 16]),
            alert: AlertId::from_bytes([2; 16]),
            origin: NodeId::new("gw-1").expect("node"),
            hlc: Hlc::new(5_000, 1),
            actor: Actor::System,
            body: AlertEventBody::Reset,
            clamped_from: None,
        }
    }

    #[test]
    fn clamping_keeps_the_first_original_stamp() {
        let mut e = event();
        e.clamp_to(Hlc::new(4_000, 0));
        assert_eq!(
            (e.hlc, e.clamped_from),
            (Hlc::new(4_000, 0), Some(Hlc::new(5_000, 1)))
        );
        e.clamp_to(Hlc::new(3_000, 0));
        assert_eq!(
            (e.hlc, e.clamped_from),
            (Hlc::new(3_000, 0), Some(Hlc::new(5_000, 1)))
        );
    }

    #[test]
    fn clamped_from_is_in_the_json_only_when_set() {
        let plain = serde_json::to_string(&event()).expect("encode");
        assert!(!plain.contains("clamped_from"), "{plain}");
        assert_eq!(
            serde_json::from_str::<AlertEvent>(&plain).expect("decode"),
            event()
        );
        let mut clamped = event();
        clamped.clamp_to(Hlc::new(4_000, 0));
        let json = serde_json::to_string(&clamped).expect("encode");
        assert!(
            json.ends_with(r#","clamped_from":{"wall":5000,"logical":1}}"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<AlertEvent>(&json).expect("decode"),
            clamped
        );
    }
}
