//! Operator actions on an alert: acknowledge, shelve, unshelve, comment, assign, close and
//! reset (ISA-18.2), and the rules that say when each is allowed.
//!
//! An action becomes one immutable [`AlertEventBody`] — the same fact every replica folds —
//! so the rules here are checked against the folded [`AlertView`] at the moment of acting,
//! with no I/O ([`Action::check`]). [`record`] stamps the event and records it in the store
//! and the outboxes.
//!
//! The rules:
//!
//! | action | refused (409) when |
//! |---|---|
//! | every action | the alert is closed; its raise has not reached this hub |
//! | `ack` | already acknowledged |
//! | `shelve` | `until` is not in the future (400) |
//! | `unshelve` | not shelved now (a shelf that ended has ended) |
//! | `reset` | not latching or already reset; the condition is still active |
//! | `comment`, `assign`, `close` | only the common rules |

pub mod record;

use vigil_core::{AlertEventBody, AlertView, Timestamp};

/// The latest shelf end accepted: the last millisecond of the year 9999 (the wire refuses
/// later ones, and RFC 3339 cannot write them).
pub const MAX_SHELVE_UNTIL: Timestamp = Timestamp::from_millis(253_402_300_799_999);

/// One operator action, its parameters checked for form (not yet against the alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Acknowledge the alert's current activation.
    Ack {
        /// An optional note.
        comment: Option<String>,
    },
    /// Shelve the alert until a time.
    Shelve {
        /// When the shelf ends by itself.
        until: Timestamp,
        /// Why.
        reason: Option<String>,
    },
    /// End a shelf early.
    Unshelve,
    /// Add a comment.
    Comment {
        /// The text.
        text: String,
    },
    /// Assign the alert to someone.
    Assign {
        /// The user or team.
        to: String,
    },
    /// End the alert's episode.
    Close {
        /// Why.
        reason: Option<String>,
    },
    /// Reset a latched alert whose condition has cleared.
    Reset,
}

/// Why an action is refused on the alert as it is now (HTTP 409, or 400 for a shelf end in
/// the past).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The alert's episode is over.
    #[error("the alert is closed")]
    Closed,
    /// Only later events of the alert have arrived here.
    #[error("the alert's raise has not reached this hub yet; try again when it has")]
    NotRaised,
    /// Acknowledging twice.
    #[error("the alert is already acknowledged")]
    AlreadyAcknowledged,
    /// Unshelving what is not shelved.
    #[error("the alert is not shelved")]
    NotShelved,
    /// A shelf must end in the future.
    #[error("shelve until {until} is not in the future (now {now})")]
    UntilNotFuture {
        /// The requested end.
        until: Timestamp,
        /// The time of acting.
        now: Timestamp,
    },
    /// A shelf end beyond what can be written.
    #[error("shelve until {until} is after the year 9999")]
    UntilTooLate {
        /// The requested end.
        until: Timestamp,
    },
    /// Resetting an alert that does not need it.
    #[error(
        "the alert is not latched: only a latching alert that has not been reset can be reset"
    )]
    NotLatched,
    /// ISA-18.2: a latched alarm is reset only after its condition clears.
    #[error("the alert's condition is still active: it can be reset only once it clears")]
    StillActive,
}

impl Refused {
    /// Whether the refusal is about the request itself (400) rather than the alert's state
    /// (409).
    pub const fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Refused::UntilNotFuture { .. } | Refused::UntilTooLate { .. }
        )
    }
}

impl Action {
    /// The action's name, as in its URL (`ack`, `shelve`, …) and metric label.
    pub const fn name(&self) -> &'static str {
        match self {
            Action::Ack { .. } => "ack",
            Action::Shelve { .. } => "shelve",
            Action::Unshelve => "unshelve",
            Action::Comment { .. } => "comment",
            Action::Assign { .. } => "assign",
            Action::Close { .. } => "close",
            Action::Reset => "reset",
        }
    }

    /// The request's salient fields, for the audit record (docs/ARCHITECTURE.md#audit-log): a
    /// comment's text, a shelf's end and reason, an assignee.
    pub fn audit_details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Action::Ack { comment } => json!({ "comment": comment }),
            Action::Shelve { until, reason } => {
                json!({ "until": until.to_string(), "reason": reason })
            }
            Action::Unshelve | Action::Reset => json!({}),
            Action::Comment { text } => json!({ "text": text }),
            Action::Assign { to } => json!({ "to": to }),
            Action::Close { reason } => json!({ "reason": reason }),
        }
    }

    /// The event this action makes of `view` at `now`, or why it is refused.
    pub fn check(&self, view: &AlertView, now: Timestamp) -> Result<AlertEventBody, Refused> {
        if view.closed {
            return Err(Refused::Closed);
        }
        if view.key.is_none() {
            return Err(Refused::NotRaised);
        }
        Ok(match self {
            Action::Ack { comment } => {
                if view.acknowledged {
                    return Err(Refused::AlreadyAcknowledged);
                }
                AlertEventBody::Acknowledged {
                    comment: comment.clone(),
                }
            }
            Action::Shelve { until, reason } => {
                if *until <= now {
                    return Err(Refused::UntilNotFuture { until: *until, now });
                }
                if *until > MAX_SHELVE_UNTIL {
                    return Err(Refused::UntilTooLate { until: *until });
                }
                AlertEventBody::Shelved {
                    until: *until,
                    reason: reason.clone(),
                }
            }
            Action::Unshelve => {
                if view.shelved_until.is_none_or(|until| until <= now) {
                    return Err(Refused::NotShelved);
                }
                AlertEventBody::Unshelved
            }
            Action::Comment { text } => AlertEventBody::Commented { text: text.clone() },
            Action::Assign { to } => AlertEventBody::Assigned { to: to.clone() },
            Action::Close { reason } => AlertEventBody::Closed {
                reason: reason.clone(),
            },
            Action::Reset => {
                if !(view.latching && view.needs_reset) {
                    return Err(Refused::NotLatched);
                }
                if view.active {
                    return Err(Refused::StillActive);
                }
                AlertEventBody::Reset
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::{
        Actor, AlertEvent, AlertId, AlertKey, AlertState, EventId, Hlc, NodeId, Severity, SitePath,
    };

    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_795_000_100_000);

    fn view(latching: bool, bodies: Vec<AlertEventBody>) -> AlertView {
        let alert = AlertId::generate();
        let key: AlertKey = "gw-1/door-3/forced/state".parse().expect("key");
        let mut events = vec![AlertEventBody::Raised {
            key,
            site: SitePath::new("ministry/gd").expect("site"),
            severity: Severity::Critical,
            message: "door forced".into(),
            value: None,
            at: Timestamp::from_millis(1_795_000_000_000),
            latching,
            zone: None,
            evidence: Vec::new(),
        }];
        events.extend(bodies);
        let events: Vec<AlertEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, body)| AlertEvent {
                id: EventId::generate(),
                alert,
                origin: NodeId::new("gw-1").expect("node"),
                hlc: Hlc::new(1_795_000_000_000 + i as u64, 0),
                actor: Actor::System,
                body,
                clamped_from: None,
            })
            .collect();
        AlertView::fold(alert, &events)
    }

    fn cleared() -> AlertEventBody {
        AlertEventBody::Cleared {
            value: None,
            at: NOW,
        }
    }

    fn ack() -> AlertEventBody {
        AlertEventBody::Acknowledged { comment: None }
    }

    #[test]
    fn ack_once() {
        let v = view(false, vec![]);
        assert_eq!(
            Action::Ack { comment: None }.check(&v, NOW),
            Ok(AlertEventBody::Acknowledged { comment: None })
        );
        let v = view(false, vec![ack()]);
        assert_eq!(
            Action::Ack { comment: None }.check(&v, NOW),
            Err(Refused::AlreadyAcknowledged)
        );
    }

    #[test]
    fn nothing_on_a_closed_alert_or_before_its_raise() {
        let v = view(false, vec![AlertEventBody::Closed { reason: None }]);
        for action in [
            Action::Ack { comment: None },
            Action::Comment { text: "x".into() },
            Action::Close { reason: None },
            Action::Reset,
        ] {
            assert_eq!(action.check(&v, NOW), Err(Refused::Closed), "{action:?}");
        }
        let empty = AlertView::empty(AlertId::generate());
        assert_eq!(
            Action::Comment { text: "x".into() }.check(&empty, NOW),
            Err(Refused::NotRaised)
        );
    }

    #[test]
    fn shelving_needs_a_future_end_and_unshelving_a_shelf_in_force() {
        let v = view(false, vec![]);
        let past = Action::Shelve {
            until: NOW,
            reason: None,
        };
        let err = past.check(&v, NOW).expect_err("not in the future");
        assert!(err.is_bad_request());
        let too_late = Action::Shelve {
            until: MAX_SHELVE_UNTIL.plus_millis(1),
            reason: None,
        };
        assert!(too_late
            .check(&v, NOW)
            .expect_err("too late")
            .is_bad_request());
        assert!(Action::Shelve {
            until: NOW.plus_millis(1),
            reason: None
        }
        .check(&v, NOW)
        .is_ok());
        assert_eq!(Action::Unshelve.check(&v, NOW), Err(Refused::NotShelved));
        let shelved = view(
            false,
            vec![AlertEventBody::Shelved {
                until: NOW.plus_millis(60_000),
                reason: None,
            }],
        );
        assert_eq!(
            Action::Unshelve.check(&shelved, NOW),
            Ok(AlertEventBody::Unshelved)
        );
        assert_eq!(
            Action::Unshelve.check(&shelved, NOW.plus_millis(60_000)),
            Err(Refused::NotShelved),
            "a shelf that ended has ended"
        );
    }

    #[test]
    fn reset_only_a_cleared_latching_alert() {
        assert_eq!(
            Action::Reset.check(&view(false, vec![cleared(), ack()]), NOW),
            Err(Refused::NotLatched)
        );
        assert_eq!(
            Action::Reset.check(&view(true, vec![ack()]), NOW),
            Err(Refused::StillActive)
        );
        let latched = view(true, vec![ack(), cleared()]);
        assert_eq!(latched.state_at(NOW), AlertState::Latched);
        assert_eq!(
            Action::Reset.check(&latched, NOW),
            Ok(AlertEventBody::Reset)
        );
        let reset = view(true, vec![ack(), cleared(), AlertEventBody::Reset]);
        assert_eq!(Action::Reset.check(&reset, NOW), Err(Refused::NotLatched));
    }
}
