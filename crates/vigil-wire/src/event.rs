//! What travels in a batch: [`LinkEvent`], one immutable, idempotent record of an outbox.
//!
//! A link replicates records, not commands: each one has an id, so applying it twice is a
//! no-op and at-least-once delivery gives an exactly-once effect. The kinds are alert events
//! and audit records ([`AuditEvent`], keyed by `(origin, seq)`); directives and health
//! summaries join as new variants.
//!
//! On the wire each event is a JSON object with exactly one key naming its kind:
//! `{"alert": {…}}`. The set is closed on purpose (no `#[non_exhaustive]`): adding a kind
//! makes every `match` in the workspace fail to compile until each consumer decides what to do
//! with it, and an older receiver refuses a kind it does not know instead of dropping it (see
//! the crate docs on compatibility). A batch holding a kind the receiver does not know is
//! refused whole and never acknowledged, so the sender resends it until the receiver is
//! upgraded: upgrade a parent before (or with) its children when a kind is added — the `audit`
//! kind is one.

use serde::{Deserialize, Serialize};
use vigil_core::{AlertEvent, EventId};

use crate::audit::AuditEvent;
use crate::directive::{Directive, DirectiveAck, DirectiveRecord};

/// One record carried by a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkEvent {
    /// One immutable change to one alert (raised, acknowledged, shelved, …).
    Alert(AlertEvent),
    /// One record of a node's hash-chained audit log.
    Audit(AuditEvent),
    /// An operator's directive to a subtree (travels down only).
    Directive(Directive),
    /// A node's acknowledgement of a directive (travels up only).
    DirectiveAck(DirectiveAck),
}

impl LinkEvent {
    /// The record's id: the key that makes applying it idempotent. An alert event's own
    /// UUIDv7; for an audit record, derived from `(origin, seq)` ([`AuditEvent::event_id`]).
    pub fn id(&self) -> EventId {
        match self {
            LinkEvent::Alert(event) => event.id,
            LinkEvent::Audit(record) => record.event_id(),
            LinkEvent::Directive(directive) => directive.id,
            LinkEvent::DirectiveAck(ack) => ack.event_id(),
        }
    }

    /// The kind's name as on the wire (`alert`), for logs and metric labels.
    pub const fn kind(&self) -> &'static str {
        match self {
            LinkEvent::Alert(_) => "alert",
            LinkEvent::Audit(_) => "audit",
            LinkEvent::Directive(_) => "directive",
            LinkEvent::DirectiveAck(_) => "directive_ack",
        }
    }
}

impl From<AlertEvent> for LinkEvent {
    fn from(event: AlertEvent) -> Self {
        LinkEvent::Alert(event)
    }
}

impl From<DirectiveRecord> for LinkEvent {
    fn from(record: DirectiveRecord) -> Self {
        match record {
            DirectiveRecord::Directive(directive) => LinkEvent::Directive(directive),
            DirectiveRecord::Ack(ack) => LinkEvent::DirectiveAck(ack),
        }
    }
}

impl From<AuditEvent> for LinkEvent {
    fn from(record: AuditEvent) -> Self {
        LinkEvent::Audit(record)
    }
}
