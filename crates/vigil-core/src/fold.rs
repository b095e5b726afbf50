//! The ISA-18.2 fold: an alert's state as a deterministic function of its event set.
//!
//! Events are applied in `(HLC, event id)` order, each once. Because the order is a property
//! of the events and not of their arrival, every replica holding the same set of events holds
//! the same [`AlertView`] — replication between hubs is the union of event sets, with no
//! coordination and no conflict resolution beyond this function.
//!
//! The state machine follows ISA-18.2 (see docs/ARCHITECTURE.md#states):
//!
//! ```text
//!            raise               ack
//!  normal ─────────▶ active_unack ───▶ active_ack
//!    ▲                   │ clear           │ clear
//!    │ ack               ▼                 ▼
//!    └──────────── rtn_unack        normal (latching: latched ──reset──▶ normal)
//! ```
//!
//! Shelving, suppression by design and out-of-service are overlays: raises and clears are
//! still folded underneath, and when the overlay ends the alert shows what its condition
//! implies. A shelf expires by itself, so the displayed state depends on the time of asking:
//! [`AlertView::state_at`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::alert::{AlertKey, Evidence};
use crate::event::{AlertEvent, AlertEventBody};
use crate::hlc::Hlc;
use crate::id::{AlertId, EventId};
use crate::node::SitePath;
use crate::reading::Value;
use crate::severity::Severity;
use crate::time::Timestamp;

/// The ISA-18.2 state an operator sees (`state` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Normal,
    ActiveUnack,
    ActiveAck,
    RtnUnack,
    Latched,
    Shelved,
    Suppressed,
    OutOfService,
}

impl AlertState {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Normal => "normal",
            AlertState::ActiveUnack => "active_unack",
            AlertState::ActiveAck => "active_ack",
            AlertState::RtnUnack => "rtn_unack",
            AlertState::Latched => "latched",
            AlertState::Shelved => "shelved",
            AlertState::Suppressed => "suppressed",
            AlertState::OutOfService => "out_of_service",
        }
    }

    /// Whether an operator is being alarmed: the states that demand attention.
    pub const fn is_annunciated(self) -> bool {
        matches!(
            self,
            AlertState::ActiveUnack
                | AlertState::ActiveAck
                | AlertState::RtnUnack
                | AlertState::Latched
        )
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alert as folded from its events.
///
/// Fields that come from the raise are `None` until a `raised` event is in the set (a
/// replica may receive an acknowledgement before the raise it acknowledges).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: AlertId,
    pub key: Option<AlertKey>,
    pub site: Option<SitePath>,
    pub severity: Severity,
    pub message: String,
    pub value: Option<Value>,
    pub zone: Option<String>,
    pub latching: bool,
    pub evidence: Vec<Evidence>,
    /// When the condition was first detected in this alert.
    pub raised_at: Option<Timestamp>,
    /// The wall time of the last event folded.
    pub updated_at: Timestamp,
    /// The condition holds.
    pub active: bool,
    /// The last activation has been acknowledged (a cleared, acknowledged alert is `true`).
    pub acknowledged: bool,
    /// A latching alert that activated and has not been reset since.
    pub needs_reset: bool,
    pub shelved_until: Option<Timestamp>,
    pub suppressed: bool,
    pub out_of_service: bool,
    pub closed: bool,
    pub assigned_to: Option<String>,
    pub comments: u32,
    pub incident: Option<AlertId>,
    /// The fold position of the last event applied.
    pub last: Option<(Hlc, EventId)>,
    /// How many distinct events were folded.
    pub event_count: u32,
}

/// An event that cannot be applied to this view incrementally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    #[error("event {event} belongs to alert {event_alert}, not {alert}")]
    WrongAlert {
        event: EventId,
        event_alert: AlertId,
        alert: AlertId,
    },
    #[error("event {event} sorts before the last folded event; refold the whole set")]
    OutOfOrder { event: EventId },
}

impl AlertView {
    /// An alert with no events folded yet.
    pub fn empty(id: AlertId) -> Self {
        AlertView {
            id,
            key: None,
            site: None,
            severity: Severity::Info,
            message: String::new(),
            value: None,
            zone: None,
            latching: false,
            evidence: Vec::new(),
            raised_at: None,
            updated_at: Timestamp::EPOCH,
            active: false,
            acknowledged: true,
            needs_reset: false,
            shelved_until: None,
            suppressed: false,
            out_of_service: false,
            closed: false,
            assigned_to: None,
            comments: 0,
            incident: None,
            last: None,
            event_count: 0,
        }
    }

    /// Folds an alert's event set: sorts by `(HLC, event id)`, applies each distinct event
    /// once. Events of other alerts are ignored. The result does not depend on the order or
    /// multiplicity of `events`.
    pub fn fold<'a>(id: AlertId, events: impl IntoIterator<Item = &'a AlertEvent>) -> Self {
        let ordered: BTreeMap<(Hlc, EventId), &AlertEvent> = events
            .into_iter()
            .filter(|e| e.alert == id)
            .map(|e| (e.order_key(), e))
            .collect();
        let mut view = AlertView::empty(id);
        for event in ordered.values() {
            view.apply_unchecked(event);
        }
        view
    }

    /// Applies one event that sorts after every event already folded: the fast path when
    /// events arrive in order. A duplicate of the last event is a no-op; anything sorting
    /// earlier is [`FoldError::OutOfOrder`], and the caller refolds the set.
    pub fn apply(&mut self, event: &AlertEvent) -> Result<bool, FoldError> {
        if event.alert != self.id {
            return Err(FoldError::WrongAlert {
                event: event.id,
                event_alert: event.alert,
                alert: self.id,
            });
        }
        match self.last {
            Some(last) if event.order_key() == last => return Ok(false),
            Some(last) if event.order_key() < last => {
                return Err(FoldError::OutOfOrder { event: event.id })
            }
            _ => {}
        }
        self.apply_unchecked(event);
        Ok(true)
    }

    fn apply_unchecked(&mut self, event: &AlertEvent) {
        self.last = Some(event.order_key());
        self.event_count += 1;
        self.updated_at = self.updated_at.max(event.hlc.timestamp());
        match &event.body {
            AlertEventBody::Raised {
                key,
                site,
                severity,
                message,
                value,
                at,
                latching,
                zone,
                evidence,
            } => {
                if !self.active {
                    // A new activation needs a new acknowledgement.
                    self.acknowledged = false;
                }
                self.active = true;
                self.key = Some(key.clone());
                self.site = Some(site.clone());
                self.severity = *severity;
                self.message.clone_from(message);
                self.value.clone_from(value);
                self.latching = *latching;
                self.needs_reset |= *latching;
                self.zone.clone_from(zone);
                self.evidence.extend(evidence.iter().cloned());
                self.raised_at = Some(self.raised_at.map_or(*at, |r| r.min(*at)));
            }
            AlertEventBody::ValueUpdated {
                value,
                severity,
                message,
                at: _,
            } => {
                if value.is_some() {
                    self.value.clone_from(value);
                }
                if let Some(severity) = severity {
                    self.severity = *severity;
                }
                if let Some(message) = message {
                    self.message.clone_from(message);
                }
            }
            AlertEventBody::Cleared { value, at: _ } => {
                self.active = false;
                if value.is_some() {
                    self.value.clone_from(value);
                }
            }
            AlertEventBody::Acknowledged { .. } => self.acknowledged = true,
            AlertEventBody::Reset => {
                // ISA-18.2: a latched alarm can be reset only once its condition has cleared.
                if !self.active {
                    self.needs_reset = false;
                }
            }
            AlertEventBody::Shelved { until, .. } => self.shelved_until = Some(*until),
            AlertEventBody::Unshelved => self.shelved_until = None,
            AlertEventBody::Commented { .. } => self.comments += 1,
            AlertEventBody::Assigned { to } => self.assigned_to = Some(to.clone()),
            AlertEventBody::Closed { .. } => self.closed = true,
            AlertEventBody::Suppressed { active } => self.suppressed = *active,
            AlertEventBody::OutOfService { active } => self.out_of_service = *active,
            AlertEventBody::Correlated { incident } => self.incident = Some(*incident),
        }
    }

    /// The state its condition and acknowledgement imply, ignoring shelving, suppression
    /// and out-of-service.
    pub fn base_state(&self) -> AlertState {
        match (self.active, self.acknowledged) {
            (true, false) => AlertState::ActiveUnack,
            (true, true) => AlertState::ActiveAck,
            (false, false) => AlertState::RtnUnack,
            (false, true) if self.latching && self.needs_reset => AlertState::Latched,
            (false, true) => AlertState::Normal,
        }
    }

    /// The state an operator sees at `now`: out-of-service over suppressed over shelved
    /// (a shelf past its time has expired) over the base state.
    pub fn state_at(&self, now: Timestamp) -> AlertState {
        if self.out_of_service {
            AlertState::OutOfService
        } else if self.suppressed {
            AlertState::Suppressed
        } else if self.shelved_until.is_some_and(|until| until > now) {
            AlertState::Shelved
        } else {
            self.base_state()
        }
    }
}

#[cfg(test)]
mod tests;
