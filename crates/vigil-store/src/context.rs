//! [`AlertContext`]: an alert as an escalation policy sees it — its folded view and the
//! highest severity it has had.
//!
//! A per-event policy sees only the event, so it can judge a raise (which carries the
//! severity) but not an acknowledgement or a clear, which say nothing of the alert they act
//! on. A per-alert policy gets the event's alert instead: folded from every event stored
//! here *and* the batch's own (so a raise and its acknowledgement arriving in one batch are
//! judged alike), with its peak severity.
//!
//! The store keeps both as events arrive — the view in `alerts.view`, the peak in
//! `alerts.peak_severity` — so [`Store::apply_batch_and_forward_by_alert`] hands a policy
//! the contexts of the alerts the batch touched as its own transaction leaves them, without
//! reading any alert's history. [`AlertContext::load`] builds one from the stored events for
//! callers outside a batch (its cost grows with the alert's history).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use vigil_core::{AlertEvent, AlertEventBody, AlertId, AlertView, Severity};

use crate::error::Result;
use crate::store::Store;

/// The alert an event belongs to, as a per-alert escalation policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertContext {
    /// The alert folded from every event of it stored here and in the batch being
    /// committed. Its `key` is `None` while no raise of it has arrived.
    pub view: AlertView,
    /// The highest severity any of those events gave the alert (its raises, and value
    /// updates that changed the severity); `None` when none did. An alert whose severity
    /// dropped keeps its peak here, so a policy can keep relaying an alert it once relayed.
    pub peak_severity: Option<Severity>,
}

impl AlertContext {
    /// The context of `alert` from its events (in any order, duplicates allowed; events of
    /// other alerts are ignored).
    pub fn from_events<'a>(
        alert: AlertId,
        events: impl IntoIterator<Item = &'a AlertEvent> + Clone,
    ) -> AlertContext {
        AlertContext {
            view: AlertView::fold(alert, events.clone()),
            peak_severity: peak_severity(events.into_iter().filter(|e| e.alert == alert)),
        }
    }

    /// The context of `alert` from what `store` holds of it and the `incoming` events not
    /// committed yet (events of other alerts among them are ignored). Reads every stored
    /// event of the alert.
    pub fn load(store: &Store, alert: AlertId, incoming: &[AlertEvent]) -> Result<AlertContext> {
        let stored = store.alert_events(alert)?;
        Ok(AlertContext::from_events(
            alert,
            stored.iter().chain(incoming.iter()),
        ))
    }

    /// The context of every alert that `events` touch, from `store` and `events`.
    pub fn load_all(
        store: &Store,
        events: &[AlertEvent],
    ) -> Result<BTreeMap<AlertId, AlertContext>> {
        let mut contexts = BTreeMap::new();
        for event in events {
            if let Entry::Vacant(slot) = contexts.entry(event.alert) {
                slot.insert(AlertContext::load(store, event.alert, events)?);
            }
        }
        Ok(contexts)
    }
}

/// The severity `event` gives its alert, if it gives one: a raise's, or a value update's
/// that sets one.
pub fn event_severity(event: &AlertEvent) -> Option<Severity> {
    match &event.body {
        AlertEventBody::Raised { severity, .. } => Some(*severity),
        AlertEventBody::ValueUpdated { severity, .. } => *severity,
        _ => None,
    }
}

/// The highest severity that `events` give their alert: the severity of each raise, and
/// of each value update that sets one.
pub fn peak_severity<'a>(events: impl IntoIterator<Item = &'a AlertEvent>) -> Option<Severity> {
    events.into_iter().filter_map(event_severity).max()
}

#[cfg(test)]
mod tests {
    use vigil_core::{Actor, AlertKey, ConditionKind, EventId, Hlc, NodeId, SitePath, Timestamp};

    use super::*;

    fn event(alert: AlertId, wall: u64, body: AlertEventBody) -> AlertEvent {
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: NodeId::new("gw-1").expect("valid"),
            hlc: Hlc::new(1_795_000_000_000 + wall, 0),
            actor: Actor::System,
            body,
            clamped_from: None,
        }
    }

    fn raise(alert: AlertId, wall: u64, severity: Severity) -> AlertEvent {
        let key = AlertKey::new(
            NodeId::new("gw-1").expect("valid"),
            "fence-1/zone1",
            ConditionKind::new("state").expect("kind"),
        )
        .expect("key");
        event(
            alert,
            wall,
            AlertEventBody::Raised {
                key,
                site: SitePath::new("ministry/gd/gz/by/p1").expect("site"),
                severity,
                message: "fence".into(),
                value: None,
                at: Timestamp::from_millis(1_795_000_000_000),
                latching: false,
                zone: None,
                evidence: Vec::new(),
            },
        )
    }

    #[test]
    fn contexts_fold_the_batch_and_keep_the_peak() {
        let a = AlertId::generate();
        let events = [
            raise(a, 1, Severity::Critical),
            event(
                a,
                2,
                AlertEventBody::ValueUpdated {
                    value: None,
                    severity: Some(Severity::Warning),
                    message: None,
                    at: Timestamp::from_millis(1_795_000_000_000),
                },
            ),
        ];
        let ctx = AlertContext::from_events(a, &events);
        assert_eq!(ctx.view.severity, Severity::Warning);
        assert_eq!(ctx.peak_severity, Some(Severity::Critical));
        let only_ack = [event(a, 3, AlertEventBody::Acknowledged { comment: None })];
        let ctx = AlertContext::from_events(a, &only_ack);
        assert!(ctx.view.key.is_none());
        assert_eq!(ctx.peak_severity, None);
        assert_eq!(peak_severity(&[]), None);
    }
}
