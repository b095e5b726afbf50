//! The link protocol end to end, without a network: a sender's outbox, the wire codec and a
//! receiver's store, through a channel that drops, duplicates and reorders nothing but
//! loses messages at random and restarts both ends. At-least-once delivery must give an
//! exactly-once effect, and the critical lane must drain before the normal lane.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, AlertView, ConditionKind, EventId,
    HlcClock, Lane, NodeId, Severity, SitePath, Timestamp,
};
use vigil_store::{LaneCursors, Store};
use vigil_wire::{decode_for_topic, encode, Ack, Batch, LinkEvent, Message, Topic};

const LINK: &str = "parent";

fn events(n_alerts: usize, rng: &mut StdRng) -> Vec<AlertEvent> {
    let gw = NodeId::new("gw-prison-3").expect("valid");
    let site = SitePath::new("ministry/guangdong/guangzhou/baiyun/prison-3").expect("valid");
    let mut clock = HlcClock::default();
    let mut out = Vec::new();
    for a in 0..n_alerts {
        let alert = AlertId::generate();
        let severity = Severity::ALL[rng.random_range(0..5)];
        let key = AlertKey::new(
            gw.clone(),
            format!("dev-{a}/point"),
            ConditionKind::new("limit_h").expect("valid"),
        )
        .expect("valid");
        let n = rng.random_range(1..12);
        for i in 0..n {
            let body = match i % 4 {
                0 => AlertEventBody::Raised {
                    key: key.clone(),
                    site: site.clone(),
                    severity,
                    message: format!("alert {a}"),
                    value: None,
                    at: Timestamp::from_millis(1_795_000_000_000),
                    latching: false,
                    zone: None,
                    evidence: Vec::new(),
                },
                1 => AlertEventBody::Cleared {
                    value: None,
                    at: Timestamp::from_millis(1_795_000_000_000),
                },
                2 => AlertEventBody::Acknowledged { comment: None },
                _ => AlertEventBody::Commented { text: "c".into() },
            };
            out.push(AlertEvent {
                id: EventId::generate(),
                alert,
                origin: gw.clone(),
                hlc: clock.now(1_795_000_000_000 + out.len() as u64),
                actor: Actor::System,
                body,
                clamped_from: None,
            });
        }
    }
    out
}

#[test]
fn lossy_link_with_restarts_delivers_every_event_exactly_once_critical_first() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let dir = tempfile::tempdir().expect("tempdir");
    let (agent_db, hub_db) = (dir.path().join("agent.db"), dir.path().join("hub.db"));
    let gw = NodeId::new("gw-prison-3").expect("valid");
    let all = events(300, &mut rng);

    let mut agent = Store::open(&agent_db).expect("open");
    let items: Vec<(Lane, Vec<u8>)> = all
        .iter()
        .map(|e| {
            let lane = match &e.body {
                AlertEventBody::Raised { severity, .. } => severity.lane(),
                _ => Lane::Normal,
            };
            (lane, serde_json_bytes(e))
        })
        .collect();
    let critical_total = items.iter().filter(|(l, _)| *l == Lane::Critical).count();
    agent
        .outbox_append_many(LINK, items.iter().map(|(l, p)| (*l, p.as_slice())))
        .expect("append");
    let mut hub = Store::open(&hub_db).expect("open");

    let mut in_flight = agent.outbox_acked(LINK).expect("cursors");
    let (mut sent, mut lost, mut restarts, mut critical_applied) = (0u32, 0u32, 0u32, 0usize);
    for _step in 0..20_000 {
        if rng.random_bool(0.03) {
            // Both ends restart: the sender resumes after the last acknowledged sequence.
            drop(agent);
            drop(hub);
            agent = Store::open(&agent_db).expect("reopen");
            hub = Store::open(&hub_db).expect("reopen");
            in_flight = agent.outbox_acked(LINK).expect("cursors");
            restarts += 1;
        }
        let Some(batch) = agent
            .outbox_next_batch(LINK, in_flight, 50, 256 * 1024)
            .expect("read")
        else {
            let state = agent.outbox_lane_state(LINK, Lane::Normal).expect("state");
            if state.backlog_records == 0
                && agent
                    .outbox_lane_state(LINK, Lane::Critical)
                    .expect("state")
                    .backlog_records
                    == 0
            {
                break;
            }
            // Everything is in flight and its ack was lost: resend from the last ack.
            in_flight = agent.outbox_acked(LINK).expect("cursors");
            continue;
        };
        if batch.lane == Lane::Normal {
            assert_eq!(
                agent
                    .outbox_lane_state(LINK, Lane::Critical)
                    .expect("state")
                    .backlog_records,
                0,
                "normal sent while critical waits"
            );
        }
        in_flight.set(batch.lane, batch.last_seq());
        let link_events: Vec<LinkEvent> = batch
            .records
            .iter()
            .map(|r| LinkEvent::Alert(serde_json::from_slice(&r.payload).expect("stored event")))
            .collect();
        let wire = encode(&Message::Batch(
            Batch::new(gw.clone(), batch.lane, batch.first_seq, link_events).expect("valid batch"),
        ));
        sent += 1;
        for _copy in 0..if rng.random_bool(0.1) { 2 } else { 1 } {
            if rng.random_bool(0.15) {
                lost += 1;
                continue;
            }
            let Message::Batch(got) =
                decode_for_topic(&Topic::Up(gw.clone()), &wire).expect("decodes")
            else {
                panic!("not a batch")
            };
            let alert_events: Vec<AlertEvent> = got
                .events()
                .iter()
                .map(|e| match e {
                    LinkEvent::Alert(a) => a.clone(),
                    other => panic!("only alert events are sent here: {other:?}"),
                })
                .collect();
            let outcome = hub
                .apply_batch(got.node(), got.lane(), got.first_seq(), &alert_events)
                .expect("apply");
            if got.lane() == Lane::Critical {
                critical_applied += outcome.applied;
            }
            let ack = encode(&Message::Ack(Ack::new(got.lane(), outcome.ack_upto)));
            if rng.random_bool(0.15) {
                lost += 1;
                continue;
            }
            let Message::Ack(ack) =
                decode_for_topic(&Topic::Down(gw.clone()), &ack).expect("decodes")
            else {
                panic!("not an ack")
            };
            agent.outbox_ack(LINK, ack.lane, ack.upto_seq).expect("ack");
        }
        if rng.random_bool(0.2) {
            // A timeout: resend whatever is not acknowledged.
            in_flight = agent.outbox_acked(LINK).expect("cursors");
        }
    }
    assert!(
        lost > 0 && restarts > 0,
        "the faults were exercised: lost {lost}, restarts {restarts}"
    );
    assert_eq!(
        critical_applied, critical_total,
        "every critical event applied once"
    );
    assert_eq!(
        hub.event_count().expect("count") as usize,
        all.len(),
        "every event exactly once after {sent} batches"
    );
    for e in &all {
        assert!(hub.event(e.id).expect("read").is_some());
    }
    let mut by_alert = std::collections::BTreeMap::<AlertId, Vec<AlertEvent>>::new();
    for e in &all {
        by_alert.entry(e.alert).or_default().push(e.clone());
    }
    for (id, evs) in by_alert {
        assert_eq!(
            hub.alert(id).expect("read"),
            Some(AlertView::fold(id, &evs)),
            "hub's view is the fold of the events"
        );
    }
    assert_eq!(
        agent.outbox_acked(LINK).expect("cursors"),
        LaneCursors {
            critical: critical_total as u64,
            normal: (all.len() - critical_total) as u64
        }
    );
}

fn serde_json_bytes(e: &AlertEvent) -> Vec<u8> {
    serde_json::to_vec(e).expect("encodes")
}
