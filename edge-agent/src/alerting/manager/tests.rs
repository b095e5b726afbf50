//! The alert manager's lifecycle rules, incident fusion and restart, without I/O.

use std::collections::HashMap;

use proptest::prelude::*;
use vigil_core::{Hlc, Severity, Value};

use super::*;
use crate::detect::condition_kind;

fn node() -> NodeId {
    NodeId::new("gw-1").expect("valid")
}

fn manager() -> AlertManager {
    AlertManager::new(
        node(),
        SitePath::new("ministry/p/c/county/prison-3").expect("valid"),
        HlcClock::default(),
        Correlator::default(),
    )
}

fn cond(source: &str, kind: &'static str, active: bool, sev: Severity, t_ms: i64) -> Condition {
    Condition {
        source: source.into(),
        kind: condition_kind(kind),
        active,
        severity: sev,
        value: Some(Value::Float(31.0)),
        message: format!("{source} {kind}"),
        ts: Timestamp::from_millis(t_ms),
        zone: None,
        latching: false,
        evidence: Vec::new(),
    }
}

fn hh(active: bool, t_ms: i64) -> Condition {
    cond(
        "fence/supply_voltage",
        ConditionKind::LIMIT_HH,
        active,
        Severity::Major,
        t_ms,
    )
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_795_000_000_000 + ms)
}

fn names(events: &[LaneEvent]) -> Vec<&'static str> {
    events.iter().map(|(_, e)| e.body.name()).collect()
}

/// Every event ever produced, as the store would hold them.
#[derive(Default)]
struct Log(Vec<AlertEvent>);

impl Log {
    fn add(&mut self, events: &[LaneEvent]) {
        self.0.extend(events.iter().map(|(_, e)| e.clone()));
    }

    fn view(&self, id: AlertId) -> AlertView {
        AlertView::fold(id, &self.0)
    }

    fn ids(&self) -> Vec<AlertId> {
        let mut ids: Vec<AlertId> = self.0.iter().map(|e| e.alert).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    fn views(&self) -> Vec<AlertView> {
        self.ids().into_iter().map(|id| self.view(id)).collect()
    }

    /// An operator action from the hub, stamped after everything here.
    fn hub(&mut self, id: AlertId, body: AlertEventBody) -> AlertView {
        let last = self.0.iter().map(|e| e.hlc).max().unwrap_or_default();
        self.0.push(AlertEvent {
            id: EventId::generate(),
            alert: id,
            origin: NodeId::new("county-hub").expect("valid"),
            hlc: Hlc::new(last.wall + 5, 0),
            actor: Actor::User("op".into()),
            body,
            clamped_from: None,
        });
        self.view(id)
    }
}

#[test]
fn a_condition_raises_one_alert_then_clears_it() {
    let mut m = manager();
    let mut log = Log::default();
    let raised = m.on_condition(&hh(true, 1), t(0)).expect("valid");
    assert_eq!(names(&raised), ["raised"]);
    let (lane, e) = &raised[0];
    assert_eq!(*lane, Lane::Critical, "major travels in the critical lane");
    assert_eq!(e.actor, Actor::System);
    assert_eq!(e.origin, node());
    let AlertEventBody::Raised {
        key,
        site,
        severity,
        ..
    } = &e.body
    else {
        panic!("raised")
    };
    assert_eq!(key.to_string(), "gw-1/fence/supply_voltage/limit_hh");
    assert_eq!(site.as_str(), "ministry/p/c/county/prison-3");
    assert_eq!(*severity, Severity::Major);
    log.add(&raised);
    // The same verdict again: nothing.
    assert!(m
        .on_condition(&hh(true, 2), t(1))
        .expect("valid")
        .is_empty());
    let cleared = m.on_condition(&hh(false, 3), t(2)).expect("valid");
    assert_eq!(names(&cleared), ["cleared"]);
    log.add(&cleared);
    assert_eq!(log.view(e.alert).base_state(), AlertState::RtnUnack);
    // A clear of a key with no active alert: nothing.
    assert!(m
        .on_condition(&hh(false, 4), t(3))
        .expect("valid")
        .is_empty());
    assert!(m
        .on_condition(
            &cond("x/y", ConditionKind::STALE, false, Severity::Minor, 0),
            t(4)
        )
        .expect("valid")
        .is_empty());
    // Minor alerts go in the normal lane.
    let minor = m
        .on_condition(
            &cond("x/y", ConditionKind::LIMIT_H, true, Severity::Minor, 0),
            t(5),
        )
        .expect("valid");
    assert_eq!(minor[0].0, Lane::Normal);
}

#[test]
fn value_updates_are_rate_limited_but_severity_and_message_changes_are_not() {
    let mut m = manager();
    assert_eq!(
        names(&m.on_condition(&hh(true, 0), t(0)).expect("ok")),
        ["raised"]
    );
    let mut c = hh(true, 0);
    c.value = Some(Value::Float(32.0));
    assert!(
        m.on_condition(&c, t(5_000)).expect("ok").is_empty(),
        "within 10 s"
    );
    let upd = m.on_condition(&c, t(10_000)).expect("ok");
    assert_eq!(names(&upd), ["value_updated"]);
    let AlertEventBody::ValueUpdated {
        value,
        severity,
        message,
        ..
    } = &upd[0].1.body
    else {
        panic!("update")
    };
    assert_eq!(value, &Some(Value::Float(32.0)));
    assert_eq!((severity, message), (&None, &None));
    assert!(
        m.on_condition(&c, t(30_000)).expect("ok").is_empty(),
        "value unchanged"
    );
    c.value = Some(Value::Float(33.0));
    c.severity = Severity::Critical;
    let upd = m.on_condition(&c, t(31_000)).expect("ok");
    let AlertEventBody::ValueUpdated {
        value, severity, ..
    } = &upd[0].1.body
    else {
        panic!("update")
    };
    assert_eq!(*severity, Some(Severity::Critical));
    assert_eq!(value, &Some(Value::Float(33.0)), "the value rides along");
    c.message = "new words".into();
    assert_eq!(
        names(&m.on_condition(&c, t(31_500)).expect("ok")),
        ["value_updated"]
    );
    assert_eq!(m.open_count(), 1);
}

#[test]
fn a_returned_alert_is_raised_again_and_closed_once_normal() {
    let mut m = manager();
    let mut log = Log::default();
    let r = m.on_condition(&hh(true, 0), t(0)).expect("ok");
    let id = r[0].1.alert;
    log.add(&r);
    log.add(&m.on_condition(&hh(false, 1), t(1)).expect("ok"));
    // Raised again while rtn_unack: same alert.
    let again = m.on_condition(&hh(true, 2), t(2)).expect("ok");
    assert_eq!(names(&again), ["raised"]);
    assert_eq!(again[0].1.alert, id);
    log.add(&again);
    assert_eq!(log.view(id).base_state(), AlertState::ActiveUnack);
    // The hub acknowledges while active: nothing to close yet.
    let acked = log.hub(id, AlertEventBody::Acknowledged { comment: None });
    assert!(m.on_applied(&[acked], t(3)).is_empty());
    // Cleared after the ack: normal at once, so closed in the same step.
    let cleared = m.on_condition(&hh(false, 4), t(4)).expect("ok");
    assert_eq!(names(&cleared), ["cleared", "closed"]);
    log.add(&cleared);
    let view = log.view(id);
    assert!(view.closed);
    assert!(
        cleared[1].1.hlc
            > log
                .0
                .iter()
                .find(|e| e.origin.as_str() == "county-hub")
                .expect("ack")
                .hlc,
        "the close folds after the hub's ack"
    );
    // The next activation is a new alert.
    let next = m.on_condition(&hh(true, 5), t(5)).expect("ok");
    assert_eq!(names(&next), ["raised"]);
    assert_ne!(next[0].1.alert, id);
}

#[test]
fn an_ack_after_the_clear_closes_and_a_reraise_makes_a_new_alert() {
    let mut m = manager();
    let mut log = Log::default();
    let r = m.on_condition(&hh(true, 0), t(0)).expect("ok");
    let id = r[0].1.alert;
    log.add(&r);
    log.add(&m.on_condition(&hh(false, 1), t(1)).expect("ok"));
    let acked = log.hub(id, AlertEventBody::Acknowledged { comment: None });
    assert_eq!(acked.base_state(), AlertState::Normal);
    let closed = m.on_applied(&[acked], t(2));
    assert_eq!(names(&closed), ["closed"]);
    let AlertEventBody::Closed { reason } = &closed[0].1.body else {
        panic!("closed")
    };
    assert_eq!(reason.as_deref(), Some(CLOSE_REASON));
    assert_eq!(closed[0].1.actor, Actor::System);
    assert_eq!(m.open_count(), 0);
    let next = m.on_condition(&hh(true, 3), t(3)).expect("ok");
    assert_ne!(next[0].1.alert, id);
}

#[test]
fn a_latching_alert_stays_open_until_reset() {
    let mut m = manager();
    let mut log = Log::default();
    let mut door = cond(
        "doors/door1_forced",
        ConditionKind::STATE,
        true,
        Severity::Critical,
        0,
    );
    door.latching = true;
    let r = m.on_condition(&door, t(0)).expect("ok");
    let AlertEventBody::Raised { latching, .. } = &r[0].1.body else {
        panic!("raised")
    };
    assert!(*latching);
    assert_eq!(r[0].0, Lane::Critical);
    let id = r[0].1.alert;
    log.add(&r);
    door.active = false;
    log.add(&m.on_condition(&door, t(1)).expect("ok"));
    let acked = log.hub(id, AlertEventBody::Acknowledged { comment: None });
    assert_eq!(acked.base_state(), AlertState::Latched);
    assert!(
        m.on_applied(&[acked], t(2)).is_empty(),
        "latched: stays open"
    );
    let reset = log.hub(id, AlertEventBody::Reset);
    assert_eq!(names(&m.on_applied(&[reset], t(3))), ["closed"]);
}

#[test]
fn an_operator_close_ends_the_episode() {
    let mut m = manager();
    let mut log = Log::default();
    let r = m.on_condition(&hh(true, 0), t(0)).expect("ok");
    let id = r[0].1.alert;
    log.add(&r);
    let closed = log.hub(id, AlertEventBody::Closed { reason: None });
    assert!(m.on_applied(&[closed], t(1)).is_empty());
    assert_eq!(m.open_count(), 0);
    assert!(m.on_condition(&hh(false, 2), t(2)).expect("ok").is_empty());
}

#[test]
fn invalid_sources_are_errors() {
    let mut m = manager();
    let bad = cond("a b", ConditionKind::STATE, true, Severity::Minor, 0);
    let err = m.on_condition(&bad, t(0)).expect_err("a space");
    assert!(err.to_string().contains("\"a b\""), "{err}");
}

fn zoned(source: &str, kind: &'static str, active: bool, sev: Severity, t_ms: i64) -> Condition {
    Condition {
        zone: Some("north".into()),
        ..cond(source, kind, active, sev, t_ms)
    }
}

#[test]
fn conditions_in_one_zone_fuse_into_an_incident() {
    let mut m = manager();
    let mut log = Log::default();
    let fence = m
        .on_condition(
            &zoned(
                "fence/zone1_alarm",
                ConditionKind::STATE,
                true,
                Severity::Major,
                0,
            ),
            t(0),
        )
        .expect("ok");
    assert_eq!(names(&fence), ["raised"]);
    log.add(&fence);
    let motion = m
        .on_condition(
            &zoned(
                "cam-1",
                ConditionKind::MOTION,
                true,
                Severity::Minor,
                20_000,
            ),
            t(20_000),
        )
        .expect("ok");
    assert_eq!(
        names(&motion),
        ["raised", "raised", "correlated", "correlated"]
    );
    log.add(&motion);
    let incident = &motion[1];
    assert_eq!(incident.0, Lane::Critical);
    let AlertEventBody::Raised {
        key,
        severity,
        message,
        zone,
        ..
    } = &incident.1.body
    else {
        panic!("incident raised")
    };
    assert_eq!(key.to_string(), "gw-1/zone:north/incident");
    assert_eq!(*severity, Severity::Critical);
    assert!(
        message.contains("fence/zone1_alarm") && message.contains("cam-1"),
        "{message}"
    );
    assert_eq!(zone.as_deref(), Some("north"));
    let incident_id = incident.1.alert;
    for (_, e) in &motion[2..] {
        assert_eq!(
            e.body,
            AlertEventBody::Correlated {
                incident: incident_id
            }
        );
    }
    assert_eq!(log.view(fence[0].1.alert).incident, Some(incident_id));
    assert_eq!(motion[3].0, Lane::Normal, "the minor member's lane");
    // A health condition in the zone does not join.
    let stale = m
        .on_condition(
            &zoned(
                "fence/supply_voltage",
                ConditionKind::STALE,
                true,
                Severity::Minor,
                21_000,
            ),
            t(21_000),
        )
        .expect("ok");
    assert_eq!(names(&stale), ["raised"]);
    // The incident clears when all members have.
    let c1 = m
        .on_condition(
            &zoned(
                "fence/zone1_alarm",
                ConditionKind::STATE,
                false,
                Severity::Major,
                30_000,
            ),
            t(30_000),
        )
        .expect("ok");
    assert_eq!(names(&c1), ["cleared"]);
    let c2 = m
        .on_condition(
            &zoned(
                "cam-1",
                ConditionKind::MOTION,
                false,
                Severity::Minor,
                31_000,
            ),
            t(31_000),
        )
        .expect("ok");
    assert_eq!(names(&c2), ["cleared", "cleared"]);
    assert_eq!(c2[1].1.alert, incident_id);
}

#[test]
fn restart_rebuilds_open_alerts_without_duplicates() {
    let mut store = vigil_store::Store::open_in_memory().expect("store");
    let mut m = manager();
    let mut all = Vec::new();
    all.extend(m.on_condition(&hh(true, 0), t(0)).expect("ok"));
    all.extend(
        m.on_condition(
            &zoned(
                "fence/zone1_alarm",
                ConditionKind::STATE,
                true,
                Severity::Major,
                0,
            ),
            t(1),
        )
        .expect("ok"),
    );
    all.extend(
        m.on_condition(
            &zoned("cam-1", ConditionKind::MOTION, true, Severity::Minor, 1),
            t(2),
        )
        .expect("ok"),
    );
    store.record_events("parent", &all).expect("recorded");
    let hh_id = all[0].1.alert;
    let incident_id = all
        .iter()
        .find(|(_, e)| matches!(&e.body, AlertEventBody::Raised { key, .. } if key.kind.as_str() == "incident"))
        .expect("incident")
        .1
        .alert;

    // A new process: the clock resumes after the store, the alerts come back by key.
    let max = store.max_hlc().expect("read").expect("some");
    let mut m = AlertManager::new(
        node(),
        SitePath::new("ministry/p/c/county/prison-3").expect("valid"),
        HlcClock::resume(max, HlcClock::DEFAULT_MAX_SKEW_MS),
        Correlator::default(),
    );
    let views = store.list_alerts(usize::MAX).expect("list");
    assert!(m.restore(views, t(10)).is_empty());
    assert_eq!(m.open_count(), 4);
    // Still active after the restart: no second alert, no event.
    assert!(m
        .on_condition(&hh(true, 100), t(100))
        .expect("ok")
        .is_empty());
    let cleared = m.on_condition(&hh(false, 200), t(200)).expect("ok");
    assert_eq!(names(&cleared), ["cleared"]);
    assert_eq!(cleared[0].1.alert, hh_id);
    assert!(cleared[0].1.hlc > max);
    // The restored incident clears with its restored members.
    assert!(
        m.on_condition(
            &zoned(
                "fence/zone1_alarm",
                ConditionKind::STATE,
                false,
                Severity::Major,
                300
            ),
            t(300)
        )
        .expect("ok")
        .len()
            == 1
    );
    let last = m
        .on_condition(
            &zoned("cam-1", ConditionKind::MOTION, false, Severity::Minor, 301),
            t(301),
        )
        .expect("ok");
    assert_eq!(names(&last), ["cleared", "cleared"]);
    assert_eq!(last[1].1.alert, incident_id);
}

#[test]
fn restoring_closes_normal_alerts_and_spent_incidents() {
    let mut log = Log::default();
    let mut m = manager();
    let r = m.on_condition(&hh(true, 0), t(0)).expect("ok");
    let id = r[0].1.alert;
    log.add(&r);
    log.add(&m.on_condition(&hh(false, 1), t(1)).expect("ok"));
    log.add(
        &m.on_condition(
            &zoned("a/p", ConditionKind::STATE, true, Severity::Minor, 0),
            t(2),
        )
        .expect("ok"),
    );
    log.add(
        &m.on_condition(
            &zoned("b/p", ConditionKind::STATE, true, Severity::Minor, 0),
            t(3),
        )
        .expect("ok"),
    );
    log.add(
        &m.on_condition(
            &zoned("a/p", ConditionKind::STATE, false, Severity::Minor, 0),
            t(4),
        )
        .expect("ok"),
    );
    // b's clear never reached the manager before the "crash"; the hub acked hh meanwhile.
    log.hub(id, AlertEventBody::Acknowledged { comment: None });
    let mut m = manager();
    let out = m.restore(log.views(), t(10));
    assert_eq!(names(&out), ["closed"]);
    assert_eq!(out[0].1.alert, id);
    // b clears: the incident with it.
    let out = m
        .on_condition(
            &zoned("b/p", ConditionKind::STATE, false, Severity::Minor, 20),
            t(20),
        )
        .expect("ok");
    assert_eq!(names(&out), ["cleared", "cleared"]);
}

proptest! {
    /// A flapping condition, with acknowledgements from the hub at random moments: at most
    /// one open alert per key at every step, a new alert only after the previous one closed,
    /// and without acknowledgements exactly one alert for the whole history.
    #[test]
    fn flapping_never_opens_two_alerts_for_one_key(
        steps in prop::collection::vec((any::<bool>(), 0i64..20_000, 0u8..4), 1..120),
        acks in any::<bool>(),
    ) {
        let mut m = manager();
        let mut log = Log::default();
        let mut now = 0;
        let mut closed_before: Vec<AlertId> = Vec::new();
        for (active, dt, action) in steps {
            now += dt;
            let mut c = hh(active, now);
            c.value = Some(Value::Int(now));
            let out = m.on_condition(&c, t(now)).expect("valid");
            log.add(&out);
            if acks && action == 0 {
                if let Some(open) = m.open_alert(&m.key_of(&c).expect("key")).map(|v| v.id) {
                    let view = log.hub(open, AlertEventBody::Acknowledged { comment: None });
                    log.add(&m.on_applied(&[view], t(now)));
                }
            }
            let views = log.views();
            let open: Vec<&AlertView> = views.iter().filter(|v| !v.closed).collect();
            prop_assert!(open.len() <= 1, "two open alerts: {open:?}");
            for v in &views {
                if v.closed && !closed_before.contains(&v.id) {
                    closed_before.push(v.id);
                }
            }
            // Every alert but the newest is closed.
            let ids = log.ids();
            let mut by_first: HashMap<AlertId, Hlc> = HashMap::new();
            for e in &log.0 {
                let first = by_first.entry(e.alert).or_insert(e.hlc);
                *first = (*first).min(e.hlc);
            }
            let newest = ids.iter().max_by_key(|id| by_first[*id]).copied();
            for id in &ids {
                if Some(*id) != newest {
                    prop_assert!(log.view(*id).closed, "an older alert is still open");
                }
            }
        }
        if !acks {
            prop_assert!(log.ids().len() <= 1, "without acks one alert only");
        }
        // Events of one alert are raised/cleared alternately (no double raise, no double clear).
        for id in log.ids() {
            let mut active = false;
            let mut events: Vec<&AlertEvent> = log.0.iter().filter(|e| e.alert == id).collect();
            events.sort_by_key(|e| e.order_key());
            for e in events {
                match e.body {
                    AlertEventBody::Raised { .. } => { prop_assert!(!active); active = true; }
                    AlertEventBody::Cleared { .. } => { prop_assert!(active); active = false; }
                    AlertEventBody::ValueUpdated { .. } => prop_assert!(active),
                    _ => {}
                }
            }
        }
    }
}
