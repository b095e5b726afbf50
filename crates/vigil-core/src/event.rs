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
}
