//! Every ISA-18.2 transition of the table in docs/ARCHITECTURE.md#states, and the fold's algebra as
//! properties.

use proptest::prelude::*;

use super::*;
use crate::alert::ConditionKind;
use crate::event::Actor;
use crate::node::NodeId;

const NOW: Timestamp = Timestamp::from_millis(1_000_000);

/// Builds events for one alert with increasing HLC stamps.
struct Script {
    alert: AlertId,
    clock: u64,
    events: Vec<AlertEvent>,
}

impl Script {
    fn new() -> Self {
        Script {
            alert: AlertId::from_bytes([7; 16]),
            clock: 500_000,
            events: Vec::new(),
        }
    }

    fn push(&mut self, body: AlertEventBody) -> &mut Self {
        self.clock += 10;
        let n = self.events.len() as u128 + 1;
        self.events.push(AlertEvent {
            id: EventId::from_uuid(uuid::Uuid::from_u128(n)),
            alert: self.alert,
            origin: NodeId::new("gw-1").expect("ok"),
            hlc: Hlc::new(self.clock, 0),
            actor: Actor::System,
            body,
            clamped_from: None,
        });
        self
    }

    fn raise(&mut self, latching: bool) -> &mut Self {
        self.push(raised(latching, Severity::Major, 1))
    }
    fn clear(&mut self) -> &mut Self {
        self.push(AlertEventBody::Cleared {
            value: None,
            at: NOW,
        })
    }
    fn ack(&mut self) -> &mut Self {
        self.push(AlertEventBody::Acknowledged { comment: None })
    }
    fn reset(&mut self) -> &mut Self {
        self.push(AlertEventBody::Reset)
    }

    fn view(&self) -> AlertView {
        AlertView::fold(self.alert, &self.events)
    }
    fn state(&self) -> AlertState {
        self.view().state_at(NOW)
    }
}

fn raised(latching: bool, severity: Severity, value: i64) -> AlertEventBody {
    AlertEventBody::Raised {
        key: AlertKey::new(
            NodeId::new("gw-1").expect("ok"),
            "door-3/forced",
            ConditionKind::new(ConditionKind::STATE).expect("ok"),
        )
        .expect("ok"),
        site: SitePath::new("ministry/p/c/k/prison-1").expect("ok"),
        severity,
        message: "Door 3 forced".into(),
        value: Some(Value::Int(value)),
        at: NOW,
        latching,
        zone: Some("block-a".into()),
        evidence: Vec::new(),
    }
}

#[test]
fn no_events_is_normal() {
    assert_eq!(Script::new().state(), AlertState::Normal);
}

#[test]
fn normal_raise_is_active_unack() {
    let mut s = Script::new();
    s.raise(false);
    assert_eq!(s.state(), AlertState::ActiveUnack);
    let v = s.view();
    assert!(v.active && !v.acknowledged);
    assert_eq!(v.raised_at, Some(NOW));
    assert_eq!(v.severity, Severity::Major);
}

#[test]
fn active_unack_ack_is_active_ack() {
    let mut s = Script::new();
    s.raise(false).ack();
    assert_eq!(s.state(), AlertState::ActiveAck);
}

#[test]
fn active_unack_clear_is_rtn_unack() {
    let mut s = Script::new();
    s.raise(false).clear();
    assert_eq!(s.state(), AlertState::RtnUnack);
}

#[test]
fn rtn_unack_ack_is_normal() {
    let mut s = Script::new();
    s.raise(false).clear().ack();
    assert_eq!(s.state(), AlertState::Normal);
}

#[test]
fn rtn_unack_raise_again_is_active_unack() {
    let mut s = Script::new();
    s.raise(false).clear().raise(false);
    assert_eq!(s.state(), AlertState::ActiveUnack);
}

#[test]
fn active_ack_clear_is_normal() {
    let mut s = Script::new();
    s.raise(false).ack().clear();
    assert_eq!(s.state(), AlertState::Normal);
}

#[test]
fn normal_after_ack_raise_needs_a_new_ack() {
    let mut s = Script::new();
    s.raise(false).ack().clear().raise(false);
    assert_eq!(s.state(), AlertState::ActiveUnack);
}

#[test]
fn raise_while_active_ack_keeps_the_ack() {
    let mut s = Script::new();
    s.raise(false).ack().raise(false);
    assert_eq!(s.state(), AlertState::ActiveAck);
}

#[test]
fn latching_active_ack_clear_is_latched_until_reset() {
    let mut s = Script::new();
    s.raise(true).ack().clear();
    assert_eq!(s.state(), AlertState::Latched);
    s.reset();
    assert_eq!(s.state(), AlertState::Normal);
}

#[test]
fn latching_rtn_unack_ack_is_latched() {
    let mut s = Script::new();
    s.raise(true).clear();
    assert_eq!(s.state(), AlertState::RtnUnack);
    s.ack();
    assert_eq!(s.state(), AlertState::Latched);
}

#[test]
fn reset_while_active_does_not_unlatch() {
    let mut s = Script::new();
    s.raise(true).ack().reset().clear();
    assert_eq!(s.state(), AlertState::Latched);
}

#[test]
fn latched_raise_is_active_unack() {
    let mut s = Script::new();
    s.raise(true).ack().clear().raise(true);
    assert_eq!(s.state(), AlertState::ActiveUnack);
}

#[test]
fn shelve_until_a_time_then_expiry_shows_the_condition() {
    let mut s = Script::new();
    let until = NOW.plus_millis(60_000);
    s.raise(false).push(AlertEventBody::Shelved {
        until,
        reason: Some("sensor fault".into()),
    });
    let v = s.view();
    assert_eq!(v.state_at(NOW), AlertState::Shelved);
    assert_eq!(v.shelved_until, Some(until));
    assert_eq!(
        v.state_at(until),
        AlertState::ActiveUnack,
        "expired at its time"
    );
}

#[test]
fn raises_and_clears_are_folded_while_shelved() {
    let mut s = Script::new();
    s.raise(false)
        .push(AlertEventBody::Shelved {
            until: NOW.plus_millis(60_000),
            reason: None,
        })
        .clear()
        .raise(false)
        .ack()
        .clear();
    assert_eq!(s.state(), AlertState::Shelved);
    s.push(AlertEventBody::Unshelved);
    assert_eq!(
        s.state(),
        AlertState::Normal,
        "unshelve shows what the condition implies"
    );
}

#[test]
fn suppressed_by_design_and_released() {
    let mut s = Script::new();
    s.raise(false)
        .push(AlertEventBody::Suppressed { active: true });
    assert_eq!(s.state(), AlertState::Suppressed);
    s.clear().push(AlertEventBody::Suppressed { active: false });
    assert_eq!(s.state(), AlertState::RtnUnack);
}

#[test]
fn out_of_service_and_returned() {
    let mut s = Script::new();
    s.push(AlertEventBody::OutOfService { active: true })
        .raise(false);
    assert_eq!(s.state(), AlertState::OutOfService);
    s.push(AlertEventBody::OutOfService { active: false });
    assert_eq!(s.state(), AlertState::ActiveUnack);
}

#[test]
fn overlays_take_precedence_in_order() {
    let mut s = Script::new();
    s.raise(false)
        .push(AlertEventBody::Shelved {
            until: NOW.plus_millis(1),
            reason: None,
        })
        .push(AlertEventBody::Suppressed { active: true })
        .push(AlertEventBody::OutOfService { active: true });
    assert_eq!(s.state(), AlertState::OutOfService);
    s.push(AlertEventBody::OutOfService { active: false });
    assert_eq!(s.state(), AlertState::Suppressed);
    s.push(AlertEventBody::Suppressed { active: false });
    assert_eq!(s.state(), AlertState::Shelved);
}

#[test]
fn value_updates_comment_assign_close_and_correlate() {
    let mut s = Script::new();
    s.raise(false)
        .push(AlertEventBody::ValueUpdated {
            value: Some(Value::Float(31.5)),
            severity: Some(Severity::Critical),
            message: None,
            at: NOW,
        })
        .push(AlertEventBody::Commented {
            text: "guard sent".into(),
        })
        .push(AlertEventBody::Assigned {
            to: "duty-officer".into(),
        })
        .push(AlertEventBody::Correlated {
            incident: AlertId::from_bytes([9; 16]),
        })
        .push(AlertEventBody::Closed { reason: None });
    let v = s.view();
    assert_eq!(v.value, Some(Value::Float(31.5)));
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(v.message, "Door 3 forced", "message kept when not updated");
    assert_eq!(v.comments, 1);
    assert_eq!(v.assigned_to.as_deref(), Some("duty-officer"));
    assert_eq!(v.incident, Some(AlertId::from_bytes([9; 16])));
    assert!(v.closed);
    assert_eq!(v.event_count, 6);
}

#[test]
fn ack_before_raise_in_fold_order_does_not_ack_the_raise() {
    // A replica may receive a stale ack first; order is by HLC, not arrival.
    let mut s = Script::new();
    s.ack().raise(false);
    let mut arrived = s.events.clone();
    arrived.reverse();
    let v = AlertView::fold(s.alert, &arrived);
    assert_eq!(v.state_at(NOW), AlertState::ActiveUnack);
}

#[test]
fn incremental_apply_matches_fold_and_refuses_out_of_order() {
    let mut s = Script::new();
    s.raise(false).ack().clear();
    let mut v = AlertView::empty(s.alert);
    for e in &s.events {
        assert_eq!(v.apply(e), Ok(true));
    }
    assert_eq!(
        v.apply(&s.events[2]),
        Ok(false),
        "duplicate of the last is a no-op"
    );
    assert_eq!(v, s.view());
    assert!(matches!(
        v.apply(&s.events[0]),
        Err(FoldError::OutOfOrder { .. })
    ));
    let mut other = s.events[0].clone();
    other.alert = AlertId::from_bytes([1; 16]);
    assert!(matches!(v.apply(&other), Err(FoldError::WrongAlert { .. })));
}

fn arb_body() -> impl Strategy<Value = AlertEventBody> {
    prop_oneof![
        (any::<bool>(), 0usize..5, any::<i64>()).prop_map(|(l, s, v)| raised(
            l,
            Severity::ALL[s],
            v
        )),
        any::<i32>().prop_map(|v| AlertEventBody::ValueUpdated {
            value: Some(Value::Int(v.into())),
            severity: None,
            message: None,
            at: NOW
        }),
        Just(AlertEventBody::Cleared {
            value: None,
            at: NOW
        }),
        Just(AlertEventBody::Acknowledged { comment: None }),
        Just(AlertEventBody::Reset),
        (0i64..120_000).prop_map(|d| AlertEventBody::Shelved {
            until: NOW.plus_millis(d - 60_000),
            reason: None
        }),
        Just(AlertEventBody::Unshelved),
        Just(AlertEventBody::Commented { text: "c".into() }),
        "[a-z]{1,4}".prop_map(|to| AlertEventBody::Assigned { to }),
        Just(AlertEventBody::Closed { reason: None }),
        any::<bool>().prop_map(|active| AlertEventBody::Suppressed { active }),
        any::<bool>().prop_map(|active| AlertEventBody::OutOfService { active }),
    ]
}

/// An event set with colliding HLC stamps (small walls and counters), so that the event id
/// tie-break is exercised.
fn arb_events() -> impl Strategy<Value = Vec<AlertEvent>> {
    prop::collection::vec((0u64..8, 0u16..3, any::<u128>(), arb_body()), 0..40).prop_map(|v| {
        v.into_iter()
            .map(|(wall, logical, id, body)| AlertEvent {
                id: EventId::from_uuid(uuid::Uuid::from_u128(id)),
                alert: AlertId::from_bytes([7; 16]),
                origin: NodeId::new("gw-1").expect("ok"),
                hlc: Hlc::new(500_000 + wall, logical),
                actor: Actor::System,
                body,
                clamped_from: None,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn fold_of_any_permutation_is_the_same(events in arb_events(), seed in any::<u64>()) {
        let id = AlertId::from_bytes([7; 16]);
        let reference = AlertView::fold(id, &events);
        let mut shuffled = events.clone();
        // Fisher-Yates driven by the seed: a permutation proptest can shrink.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let folded = AlertView::fold(id, &shuffled);
        prop_assert_eq!(&folded, &reference);
        prop_assert_eq!(folded.state_at(NOW), reference.state_at(NOW));
    }

    #[test]
    fn applying_an_event_twice_changes_nothing(events in arb_events(), dup in any::<prop::sample::Index>()) {
        let id = AlertId::from_bytes([7; 16]);
        let once = AlertView::fold(id, &events);
        let mut twice = events.clone();
        if !events.is_empty() {
            twice.push(events[dup.index(events.len())].clone());
        }
        twice.extend(events.iter().cloned());
        prop_assert_eq!(AlertView::fold(id, &twice), once);
    }

    #[test]
    fn in_order_incremental_apply_equals_fold(events in arb_events()) {
        let id = AlertId::from_bytes([7; 16]);
        let mut sorted = events.clone();
        sorted.sort_by_key(AlertEvent::order_key);
        let mut v = AlertView::empty(id);
        for e in &sorted {
            v.apply(e).expect("sorted input applies");
        }
        prop_assert_eq!(v, AlertView::fold(id, &events));
    }

    #[test]
    fn state_is_consistent_with_flags(events in arb_events()) {
        let v = AlertView::fold(AlertId::from_bytes([7; 16]), &events);
        match v.base_state() {
            AlertState::ActiveUnack => prop_assert!(v.active && !v.acknowledged),
            AlertState::ActiveAck => prop_assert!(v.active && v.acknowledged),
            AlertState::RtnUnack => prop_assert!(!v.active && !v.acknowledged),
            AlertState::Latched => prop_assert!(!v.active && v.acknowledged && v.latching),
            AlertState::Normal => prop_assert!(!v.active && v.acknowledged),
            other => prop_assert!(false, "base state cannot be {other}"),
        }
    }
}
