//! `apply_batch_and_forward`: a hub applies a child's batch and queues the new events for its
//! own parent in one transaction — only the new ones, only what the policy sends up, all or
//! nothing.

mod common;

use std::cell::Cell;

use common::*;
use vigil_core::{AlertEvent, AlertEventBody, Hlc, Lane, Severity};
use vigil_store::{BatchOutcome, Store};
use vigil_wire::LinkEvent;

const UP: &str = "parent";

fn store() -> Store {
    Store::open_in_memory().expect("open in memory")
}

fn stream(range: std::ops::RangeInclusive<u64>) -> Vec<AlertEvent> {
    range.map(|i| stream_event(i, 4, false)).collect()
}

/// Critical and major raises go up in the critical lane, other raises and clears in the
/// normal lane; everything else stays at the hub.
fn policy(event: &AlertEvent) -> Option<Lane> {
    match &event.body {
        AlertEventBody::Raised { severity, .. } if *severity >= Severity::Major => {
            Some(Lane::Critical)
        }
        AlertEventBody::Raised { .. } | AlertEventBody::Cleared { .. } => Some(Lane::Normal),
        _ => None,
    }
}

/// The events queued in `lane` of the forwarding link, decoded.
fn queued(s: &Store, lane: Lane) -> Vec<AlertEvent> {
    s.outbox_read(UP, lane, 0, 10_000, usize::MAX)
        .expect("read the outbox")
        .into_iter()
        .map(
            |r| match serde_json::from_slice::<LinkEvent>(&r.payload).expect("a link event") {
                LinkEvent::Alert(e) => e,
            },
        )
        .collect()
}

#[test]
fn new_events_are_applied_and_forwarded_by_policy_in_batch_order() {
    let mut s = store();
    let child = node("gw-1");
    let events = stream(1..=20);
    let out = s
        .apply_batch_and_forward(&child, Lane::Normal, 1, &events, Some(UP), policy)
        .expect("apply");
    assert_eq!(
        out.batch,
        BatchOutcome {
            ack_upto: 20,
            applied: 20,
            duplicates: 0,
            gap: false
        }
    );
    assert_eq!(out.fresh, (0..20).collect::<Vec<_>>());
    let expected: Vec<(Lane, &AlertEvent)> = events
        .iter()
        .filter_map(|e| policy(e).map(|lane| (lane, e)))
        .collect();
    assert_eq!(out.forwarded.len(), expected.len());
    for lane in Lane::ALL {
        let want: Vec<AlertEvent> = expected
            .iter()
            .filter(|(l, _)| *l == lane)
            .map(|(_, e)| (*e).clone())
            .collect();
        assert!(!want.is_empty(), "the stream exercises lane {lane}");
        assert_eq!(queued(&s, lane), want, "lane {lane} in batch order");
        let seqs: Vec<u64> = out
            .forwarded
            .iter()
            .filter(|(l, _)| *l == lane)
            .map(|(_, seq)| *seq)
            .collect();
        assert_eq!(seqs, (1..=want.len() as u64).collect::<Vec<_>>());
    }
    assert_eq!(s.event_count().expect("count"), 20);
    assert_eq!(s.inbox_cursor(&child, Lane::Normal).expect("cursor"), 20);
}

#[test]
fn a_resend_forwards_only_what_is_new() {
    let mut s = store();
    let child = node("gw-1");
    let all = stream(1..=30);
    s.apply_batch_and_forward(&child, Lane::Critical, 1, &all[..10], Some(UP), |_| {
        Some(Lane::Normal)
    })
    .expect("first");
    // The child did not get the ack and resends 1..=10 together with 11..=30.
    let out = s
        .apply_batch_and_forward(&child, Lane::Critical, 1, &all, Some(UP), |_| {
            Some(Lane::Normal)
        })
        .expect("resend");
    assert_eq!(
        (out.batch.ack_upto, out.batch.applied, out.batch.duplicates),
        (30, 20, 10)
    );
    assert_eq!(out.fresh, (10..30).collect::<Vec<_>>());
    assert_eq!(
        queued(&s, Lane::Normal),
        all,
        "each event queued exactly once"
    );
    // The very same batch again: nothing new, nothing forwarded.
    let again = s
        .apply_batch_and_forward(&child, Lane::Critical, 1, &all, Some(UP), |_| {
            Some(Lane::Normal)
        })
        .expect("again");
    assert!(again.fresh.is_empty() && again.forwarded.is_empty());
    assert_eq!(again.batch.duplicates, 30);
}

#[test]
fn a_batch_after_a_gap_applies_and_forwards_nothing() {
    let mut s = store();
    let child = node("gw-1");
    let out = s
        .apply_batch_and_forward(&child, Lane::Normal, 5, &stream(5..=9), Some(UP), |_| {
            Some(Lane::Critical)
        })
        .expect("gap");
    assert!(out.batch.gap);
    assert_eq!(out.batch.ack_upto, 0);
    assert!(out.fresh.is_empty() && out.forwarded.is_empty());
    assert_eq!(s.event_count().expect("count"), 0);
    assert_eq!(
        s.outbox_lane_state(UP, Lane::Critical)
            .expect("state")
            .head_seq,
        0
    );
}

#[test]
fn a_failure_commits_nothing_of_the_three() {
    let mut s = store();
    let child = node("gw-1");
    let mut events = stream(1..=5);
    events[4].hlc = Hlc::new(u64::MAX, 0);
    s.apply_batch_and_forward(&child, Lane::Normal, 1, &events, Some(UP), |_| {
        Some(Lane::Normal)
    })
    .expect_err("an unstorable stamp");
    assert_eq!(s.event_count().expect("count"), 0, "no events");
    assert_eq!(s.inbox_cursor(&child, Lane::Normal).expect("cursor"), 0);
    assert_eq!(
        s.outbox_lane_state(UP, Lane::Normal).expect("state"),
        Default::default(),
        "no forwarded records"
    );
}

#[test]
fn without_a_forward_link_the_policy_is_not_asked() {
    let mut s = store();
    let child = node("gw-1");
    let asked = Cell::new(0);
    let events = stream(1..=6);
    s.apply_events(&events[..2]).expect("two already here");
    let out = s
        .apply_batch_and_forward(&child, Lane::Normal, 1, &events, None, |_| {
            asked.set(asked.get() + 1);
            Some(Lane::Critical)
        })
        .expect("apply");
    assert_eq!(asked.get(), 0);
    assert_eq!(out.fresh, vec![2, 3, 4, 5]);
    assert!(out.forwarded.is_empty());
    assert!(s.outbox_lanes().expect("lanes").is_empty());
    // The plain apply reports the same outcome shape.
    let plain = s
        .apply_batch(&child, Lane::Normal, 1, &events)
        .expect("apply again");
    assert_eq!((plain.ack_upto, plain.duplicates), (6, 6));
}

#[test]
fn an_empty_batch_reports_the_cursor() {
    let mut s = store();
    let child = node("gw-1");
    s.apply_batch(&child, Lane::Normal, 1, &stream(1..=3))
        .expect("apply");
    let out = s
        .apply_batch_and_forward(&child, Lane::Normal, 4, &[], Some(UP), |_| {
            Some(Lane::Normal)
        })
        .expect("empty");
    assert_eq!(out.batch.ack_upto, 3);
    assert!(out.fresh.is_empty() && out.forwarded.is_empty());
}
