//! Escalation, in one place: what this hub sends up to its parent of what its children
//! send and of its operators' actions (docs/ARCHITECTURE.md#escalation: "each node decides
//! what goes up") — the `[escalation]` section ([`EscalationSection`]) and the `vigil_link`
//! alert policy built from it ([`policy`]).
//!
//! A raise says its severity; an acknowledgement, a clear, a shelve or a comment does
//! not. So the policy judges each event by **its alert**, as it stands with the batch
//! committed ([`AlertContext`]: the alert folded from every event stored here and in the
//! batch, with its peak severity, as the transaction that commits the batch and queues what
//! goes up leaves it — the store keeps both per alert, so no alert's history is re-read):
//!
//! - an event goes up when its alert's raise is here and the alert's severity **at its
//!   highest so far** reaches `min_severity` ([`EscalationSection::escalates_history`]).
//!   So every event of an alert whose raise qualified follows it up — value updates,
//!   clears, operator actions taken below — and an alert whose severity later drops keeps
//!   going up, so the parent's copy does not freeze in a state the child has left. An
//!   alert that rises above the threshold goes up from the event that raised it (the
//!   parent gets the raise with it only if both arrive in the same batch; a later raise or
//!   value update carries the key and severity anyway);
//! - an event whose alert's raise has not arrived here stays here (the parent would have
//!   no alert to fold it into);
//! - it travels in the lane of the alert's current severity (critical and major:
//!   `critical`), like the hub's own operator actions.
//!
//! Operator actions taken at this hub follow the same rule (`action::record`). Health
//! summaries always go up, in the uplink's retained status, whatever the policy.

use serde::Deserialize;
use vigil_core::{AlertEvent, AlertView, Lane, Severity};
use vigil_link::AlertContext;

/// `[escalation]`: the policy of what goes up (docs/ARCHITECTURE.md#escalation).
/// Health summaries always go up; alerts and the actions on them go up when they pass it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSection {
    /// The least severity of an alert that the parent sees (`critical`, `major`, `minor`,
    /// `warning`, `info`).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
}

impl Default for EscalationSection {
    fn default() -> Self {
        EscalationSection {
            min_severity: default_min_severity(),
        }
    }
}

const fn default_min_severity() -> Severity {
    Severity::Minor
}

impl EscalationSection {
    /// Whether an alert of `severity` goes up to the parent.
    pub fn escalates(&self, severity: Severity) -> bool {
        severity >= self.min_severity
    }

    /// Whether events of this alert go up: its raise has arrived and its severity passes.
    pub fn escalates_alert(&self, view: &AlertView) -> bool {
        view.key.is_some() && self.escalates(view.severity)
    }

    /// Whether events of this alert go up, judged on its whole history: its raise has
    /// arrived and its severity at its highest (`peak`, see
    /// [`vigil_link::escalation::peak_severity`]) or now passes. An alert that went up once
    /// keeps going up when its severity drops, so the parent's copy is cleared,
    /// acknowledged and closed like the child's. The policy the hub relays its children's
    /// events and its operators' actions by.
    pub fn escalates_history(&self, view: &AlertView, peak: Option<Severity>) -> bool {
        view.key.is_some() && self.escalates(peak.map_or(view.severity, |p| p.max(view.severity)))
    }
}

/// The policy for relaying children's events up, by `escalation`; see the module docs.
pub fn policy(
    escalation: EscalationSection,
) -> impl Fn(&AlertEvent, &AlertContext) -> Option<Lane> + Send + Sync + 'static {
    move |_event, ctx| {
        escalation
            .escalates_history(&ctx.view, ctx.peak_severity)
            .then(|| ctx.view.severity.lane())
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{
        Actor, AlertEventBody, AlertId, AlertKey, ConditionKind, EventId, Hlc, NodeId, Severity,
        SitePath, Timestamp,
    };

    use super::*;

    fn event(alert: AlertId, wall: u64, body: AlertEventBody) -> AlertEvent {
        AlertEvent {
            id: EventId::generate(),
            alert,
            origin: NodeId::new("gw-1").expect("node"),
            hlc: Hlc::new(1_795_000_000_000 + wall, 0),
            actor: Actor::System,
            body,
            clamped_from: None,
        }
    }

    fn raise(alert: AlertId, wall: u64, severity: Severity) -> AlertEvent {
        event(
            alert,
            wall,
            AlertEventBody::Raised {
                key: AlertKey::new(
                    NodeId::new("gw-1").expect("node"),
                    "fence-1/zone1",
                    ConditionKind::new("state").expect("kind"),
                )
                .expect("key"),
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

    fn decide(policy: &EscalationSection, events: &[AlertEvent]) -> Option<Lane> {
        let last = events.last().expect("an event");
        let ctx = AlertContext::from_events(last.alert, events);
        super::policy(policy.clone())(last, &ctx)
    }

    #[test]
    fn events_follow_an_alert_whose_severity_qualified() {
        let minor = EscalationSection {
            min_severity: Severity::Minor,
        };
        let a = AlertId::generate();
        let ack = |wall| event(a, wall, AlertEventBody::Acknowledged { comment: None });
        let critical = raise(a, 1, Severity::Critical);
        assert_eq!(
            decide(&minor, std::slice::from_ref(&critical)),
            Some(Lane::Critical)
        );
        assert_eq!(
            decide(&minor, &[critical.clone(), ack(2)]),
            Some(Lane::Critical)
        );
        // Dropped to a warning: it still goes up, in the normal lane.
        let lower = event(
            a,
            3,
            AlertEventBody::ValueUpdated {
                value: None,
                severity: Some(Severity::Warning),
                message: None,
                at: Timestamp::from_millis(1_795_000_000_000),
            },
        );
        assert_eq!(
            decide(&minor, &[critical, lower, ack(4)]),
            Some(Lane::Normal)
        );
        // Below the threshold, or without its raise: it stays.
        let b = AlertId::generate();
        assert_eq!(decide(&minor, &[raise(b, 1, Severity::Warning)]), None);
        assert_eq!(decide(&minor, &[ack(5)]), None);
    }

    #[test]
    fn escalation_follows_an_alert_that_went_up() {
        let policy = EscalationSection::default();
        let mut view = AlertView::empty(AlertId::generate());
        view.severity = Severity::Critical;
        assert!(
            !policy.escalates_history(&view, Some(Severity::Critical)),
            "no raise here yet"
        );
        view.key = Some(
            vigil_core::AlertKey::new(
                NodeId::new("gw-1").expect("node"),
                "fence-1/zone1",
                vigil_core::ConditionKind::new("state").expect("kind"),
            )
            .expect("key"),
        );
        assert!(policy.escalates_history(&view, Some(Severity::Critical)));
        view.severity = Severity::Warning;
        assert!(!policy.escalates_alert(&view));
        assert!(
            policy.escalates_history(&view, Some(Severity::Critical)),
            "it went up as critical: it keeps going up"
        );
        assert!(!policy.escalates_history(&view, Some(Severity::Warning)));
        assert!(!policy.escalates_history(&view, None));
    }
}
