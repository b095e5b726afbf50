//! The alert manager: conditions in, alert events out, as a pure state machine.
//!
//! An alert's identity is its key, (this node, the condition's source, the condition's
//! kind). For each key the manager keeps at most one *open* alert (not closed) and its
//! folded view, and applies these rules:
//!
//! | condition | open alert of the key | events |
//! |---|---|---|
//! | active | none | a new alert id: `raised` (site from `[node] site`, latching and zone from the condition) |
//! | active | active | `value_updated` when the severity or the message changed, or the value changed and [`VALUE_UPDATE_INTERVAL`] has passed since the alert's last raise or update; otherwise nothing |
//! | active | returned (`rtn_unack`, `latched`) | `raised` again on the same alert id |
//! | clear | active | `cleared`, then `closed` if the alert is now `normal` |
//! | clear | none, or not active | nothing |
//!
//! An alert whose fold reaches `normal` — its condition cleared, acknowledged, and (if
//! latching) reset — is closed by the manager (`closed`, actor system), so the next
//! activation of its key opens a new alert. Acknowledgements and resets come from the hub
//! over the downlink and are applied to the agent's store by the link; the manager learns of
//! them through [`AlertManager::on_applied`] with the stored views.
//!
//! Every event is stamped by the node's hybrid logical clock, which resumes after the store's
//! greatest stamp and observes the stamps of applied views, so the manager's events always
//! fold after everything the store holds. Each event travels in the lane of its alert's
//! severity ([`Severity::lane`](vigil_core::Severity::lane): critical and major in the
//! critical lane).
//!
//! Conditions with a zone also feed the [`Correlator`]; when it fuses an incident the manager
//! handles the zone's `incident` condition like any other (key `zone:<zone>`/`incident`) and
//! marks each member alert `correlated` with the incident's id.
//!
//! After a restart, [`AlertManager::restore`] rebuilds the open alerts by key from the
//! store's views (and the incidents' memberships from their members' `incident` field).

use std::collections::HashMap;
use std::time::Duration;

use vigil_core::alert::KeyError;
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, AlertState, AlertView, Condition,
    ConditionKind, EventId, HlcClock, Lane, NodeId, SitePath, Timestamp,
};

use super::correlate::{Correlator, IncidentChange, Member};
use crate::detect::{elapsed, millis};

/// The least time between two value-only updates of one alert: a condition re-asserted with
/// a new value more often than this updates the alert at most once per interval.
pub const VALUE_UPDATE_INTERVAL: Duration = Duration::from_secs(10);

/// The reason written on alerts the manager closes.
pub const CLOSE_REASON: &str = "cleared and acknowledged";

/// An event and the outbox lane it travels in.
pub type LaneEvent = (Lane, AlertEvent);

/// A condition the manager cannot turn into an alert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    /// The condition's source cannot be part of an alert key.
    #[error("condition {kind} from {from:?} cannot name an alert: {error}")]
    Key {
        /// The condition's source.
        from: String,
        /// The condition's kind.
        kind: String,
        /// Why the key was refused.
        error: KeyError,
    },
}

/// What a condition did to its key's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Raised: a new alert or a new activation of the open one.
    Activated(AlertId),
    /// The open alert was updated.
    Updated,
    /// The open alert cleared.
    Cleared(AlertId),
}

/// An open alert as the manager tracks it.
#[derive(Debug, Clone)]
struct Tracked {
    view: AlertView,
    /// The wall time of the last raise or value update, for rate-limiting updates.
    last_update: Timestamp,
}

/// The alert manager of one node.
#[derive(Debug)]
pub struct AlertManager {
    node: NodeId,
    site: SitePath,
    clock: HlcClock,
    open: HashMap<AlertKey, Tracked>,
    keys: HashMap<AlertId, AlertKey>,
    correlator: Correlator,
    value_interval_ms: i64,
}

fn now_ms(now: Timestamp) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(0)
}

impl AlertManager {
    /// A manager for `node` at `site`, stamping with `clock` (resumed after the store's
    /// greatest stamp), correlating with `correlator`.
    pub fn new(node: NodeId, site: SitePath, clock: HlcClock, correlator: Correlator) -> Self {
        AlertManager {
            node,
            site,
            clock,
            open: HashMap::new(),
            keys: HashMap::new(),
            correlator,
            value_interval_ms: millis(VALUE_UPDATE_INTERVAL),
        }
    }

    /// The open alerts, in no particular order.
    pub fn open_alerts(&self) -> impl Iterator<Item = &AlertView> {
        self.open.values().map(|t| &t.view)
    }

    /// The ids of the open alerts.
    pub fn open_ids(&self) -> Vec<AlertId> {
        self.open.values().map(|t| t.view.id).collect()
    }

    /// The open alert of `key`, if any.
    pub fn open_alert(&self, key: &AlertKey) -> Option<&AlertView> {
        self.open.get(key).map(|t| &t.view)
    }

    /// How many alerts are open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The key a condition's alert has on this node.
    pub fn key_of(&self, c: &Condition) -> Result<AlertKey, AlertError> {
        AlertKey::new(self.node.clone(), c.source.clone(), c.kind.clone()).map_err(|error| {
            AlertError::Key {
                from: c.source.clone(),
                kind: c.kind.to_string(),
                error,
            }
        })
    }

    /// Rebuilds the open alerts from the store's views after a restart: views of this node
    /// that are not closed, the most recently updated per key. Answers the events that
    /// restoring calls for: `closed` for alerts already `normal`, an incident's `cleared`
    /// when none of its members is active any more.
    pub fn restore(
        &mut self,
        views: impl IntoIterator<Item = AlertView>,
        now: Timestamp,
    ) -> Vec<LaneEvent> {
        for view in views {
            self.observe(&view, now);
            let Some(key) = view.key.clone() else {
                continue;
            };
            if view.closed || key.origin != self.node {
                continue;
            }
            if let Some(existing) = self.open.get(&key) {
                if existing.view.last >= view.last {
                    continue;
                }
                self.keys.remove(&existing.view.id);
            }
            self.keys.insert(view.id, key.clone());
            self.open.insert(
                key,
                Tracked {
                    last_update: view.updated_at,
                    view,
                },
            );
        }
        let mut out = Vec::new();
        let keys: Vec<AlertKey> = self.open.keys().cloned().collect();
        for key in &keys {
            self.close_if_normal(key, now, &mut out);
        }
        // Correlation: incidents and their members, and active zoned alerts.
        let incidents: HashMap<AlertId, String> = self
            .open
            .iter()
            .filter(|(k, t)| k.kind.as_str() == ConditionKind::INCIDENT && t.view.active)
            .filter_map(|(_, t)| t.view.zone.clone().map(|z| (t.view.id, z)))
            .collect();
        for (key, t) in &self.open {
            if key.kind.as_str() == ConditionKind::INCIDENT {
                continue;
            }
            let member = Member {
                alert: t.view.id,
                source: key.source.clone(),
                severity: t.view.severity,
                message: t.view.message.clone(),
                at: t.view.raised_at.unwrap_or(t.view.updated_at),
                active: t.view.active,
            };
            match t.view.incident.and_then(|i| incidents.get(&i)) {
                Some(zone) => self.correlator.restore(zone, member, true),
                None => {
                    if let (Some(zone), true) = (&t.view.zone, t.view.active) {
                        if !super::correlate::NOT_CORRELATED.contains(&key.kind.as_str()) {
                            self.correlator.restore(zone, member, false);
                        }
                    }
                }
            }
        }
        for change in self.correlator.take_spent_incidents(now) {
            self.apply_incident(change, now, &mut out);
        }
        out
    }

    /// Turns one condition into the events it calls for (see the module docs).
    pub fn on_condition(
        &mut self,
        c: &Condition,
        now: Timestamp,
    ) -> Result<Vec<LaneEvent>, AlertError> {
        let key = self.key_of(c)?;
        let mut out = Vec::new();
        let change = self.apply_condition(&key, c, now, &mut out);
        if c.kind.as_str() != ConditionKind::INCIDENT {
            let incident = match change {
                Some(Change::Activated(id)) => self.correlator.on_raise(id, c),
                Some(Change::Cleared(id)) => self.correlator.on_clear(id, c.ts),
                Some(Change::Updated) | None => None,
            };
            if let Some(incident) = incident {
                self.apply_incident(incident, now, &mut out);
            }
        }
        Ok(out)
    }

    /// Re-evaluates alerts after events from elsewhere (the hub's acknowledgements, resets,
    /// closes, shelving) were applied to the store: `views` are the stored views of the
    /// alerts those events touched (views of alerts the manager does not track are adopted
    /// when they are open alerts of this node without an open alert for their key). Answers
    /// `closed` for alerts that are now `normal`.
    pub fn on_applied(&mut self, views: &[AlertView], now: Timestamp) -> Vec<LaneEvent> {
        let mut out = Vec::new();
        for view in views {
            self.observe(view, now);
            let Some(key) = view.key.clone() else {
                continue;
            };
            if key.origin != self.node {
                continue;
            }
            match self.open.get_mut(&key) {
                Some(t) if t.view.id == view.id => {
                    t.view = view.clone();
                    if view.closed {
                        // Closed elsewhere (an operator): the episode is over.
                        self.open.remove(&key);
                        self.keys.remove(&view.id);
                        if let Some(change) = self.correlator.on_clear(view.id, now) {
                            self.apply_incident(change, now, &mut out);
                        }
                    } else {
                        self.close_if_normal(&key, now, &mut out);
                    }
                }
                // Another episode of the key is open: this view is an old one.
                Some(_) => {}
                None if !view.closed => {
                    self.keys.insert(view.id, key.clone());
                    self.open.insert(
                        key.clone(),
                        Tracked {
                            view: view.clone(),
                            last_update: view.updated_at,
                        },
                    );
                    self.close_if_normal(&key, now, &mut out);
                }
                None => {}
            }
        }
        out
    }

    /// Keeps the clock ahead of every stamp in `view`, so later events fold after it.
    fn observe(&mut self, view: &AlertView, now: Timestamp) {
        if let Some((hlc, _)) = view.last {
            if hlc > self.clock.last() {
                if let Err(e) = self.clock.observe(hlc, now_ms(now)) {
                    tracing::warn!(alert = %view.id, error = %e, "alert event stamp ignored by the clock");
                }
            }
        }
    }

    /// The key logic for one condition on one key.
    fn apply_condition(
        &mut self,
        key: &AlertKey,
        c: &Condition,
        now: Timestamp,
        out: &mut Vec<LaneEvent>,
    ) -> Option<Change> {
        let raised = || AlertEventBody::Raised {
            key: key.clone(),
            site: self.site.clone(),
            severity: c.severity,
            message: c.message.clone(),
            value: c.value.clone(),
            at: c.ts,
            latching: c.latching,
            zone: c.zone.clone(),
            evidence: c.evidence.clone(),
        };
        let Some(t) = self.open.get(key) else {
            if !c.active {
                return None;
            }
            let id = AlertId::generate();
            let body = raised();
            self.keys.insert(id, key.clone());
            self.open.insert(
                key.clone(),
                Tracked {
                    view: AlertView::empty(id),
                    last_update: now,
                },
            );
            self.record(key, body, now, out);
            return Some(Change::Activated(id));
        };
        let id = t.view.id;
        match (c.active, t.view.active) {
            (true, true) => {
                let severity = (c.severity != t.view.severity).then_some(c.severity);
                let message = (c.message != t.view.message).then(|| c.message.clone());
                let value_changed = c.value.is_some() && c.value != t.view.value;
                let due = elapsed(t.last_update, now) >= self.value_interval_ms;
                if severity.is_none() && message.is_none() && !(value_changed && due) {
                    return None;
                }
                let body = AlertEventBody::ValueUpdated {
                    value: if value_changed { c.value.clone() } else { None },
                    severity,
                    message,
                    at: c.ts,
                };
                self.record(key, body, now, out);
                if let Some(t) = self.open.get_mut(key) {
                    t.last_update = now;
                }
                Some(Change::Updated)
            }
            (true, false) => {
                let body = raised();
                self.record(key, body, now, out);
                if let Some(t) = self.open.get_mut(key) {
                    t.last_update = now;
                }
                Some(Change::Activated(id))
            }
            (false, true) => {
                let body = AlertEventBody::Cleared {
                    value: c.value.clone(),
                    at: c.ts,
                };
                self.record(key, body, now, out);
                self.close_if_normal(key, now, out);
                Some(Change::Cleared(id))
            }
            (false, false) => None,
        }
    }

    /// The zone's incident condition through the key logic, then `correlated` events for
    /// the new members.
    fn apply_incident(&mut self, change: IncidentChange, now: Timestamp, out: &mut Vec<LaneEvent>) {
        let Ok(key) = self.key_of(&change.condition) else {
            // Zone names are checked by the config; a zone that cannot name a source
            // simply does not correlate.
            return;
        };
        self.apply_condition(&key, &change.condition, now, out);
        let Some(incident) = self.open.get(&key).map(|t| t.view.id) else {
            return;
        };
        for member in change.new_members {
            let Some(member_key) = self.keys.get(&member).cloned() else {
                continue;
            };
            let already = self
                .open
                .get(&member_key)
                .is_some_and(|t| t.view.incident == Some(incident));
            if !already {
                self.record(
                    &member_key,
                    AlertEventBody::Correlated { incident },
                    now,
                    out,
                );
            }
        }
    }

    /// Closes the open alert of `key` if its fold is `normal`.
    fn close_if_normal(&mut self, key: &AlertKey, now: Timestamp, out: &mut Vec<LaneEvent>) {
        let normal = self.open.get(key).is_some_and(|t| {
            !t.view.closed && t.view.key.is_some() && t.view.base_state() == AlertState::Normal
        });
        if !normal {
            return;
        }
        self.record(
            key,
            AlertEventBody::Closed {
                reason: Some(CLOSE_REASON.to_owned()),
            },
            now,
            out,
        );
        if let Some(t) = self.open.remove(key) {
            self.keys.remove(&t.view.id);
        }
    }

    /// Stamps an event of the open alert of `key`, folds it into the tracked view and
    /// queues it in the lane of the alert's severity.
    fn record(
        &mut self,
        key: &AlertKey,
        body: AlertEventBody,
        now: Timestamp,
        out: &mut Vec<LaneEvent>,
    ) {
        let Some(t) = self.open.get_mut(key) else {
            return;
        };
        let event = AlertEvent {
            id: EventId::generate(),
            alert: t.view.id,
            origin: self.node.clone(),
            hlc: self.clock.now(now_ms(now)),
            actor: Actor::System,
            body,
            clamped_from: None,
        };
        if let Err(e) = t.view.apply(&event) {
            // Cannot happen while the clock observes every view it is given; the stored
            // view (reconciled later) is the truth either way.
            tracing::warn!(alert = %t.view.id, error = %e, "alert view not updated");
        }
        out.push((t.view.severity.lane(), event));
    }
}

#[cfg(test)]
mod tests;
