//! `apply_batch_and_forward`: a hub applies a child's batch and queues the new events for its
//! own parent in one transaction — only the new ones, only what the policy sends up, all or
//! nothing.

mod common;

use std::cell::Cell;

use common::*;
use vigil_core::{AlertEvent, AlertEventBody, Hlc, Lane, Severity};
use vigil_store::{AlertContext, BatchOutcome, ForwardOutcome, InboundBatch, Store};
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
                other => panic!("not an alert event in the alert relay: {other:?}"),
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

/// Applies `batches` one by one, each in its own transaction, with `policy`.
fn one_by_one(
    s: &mut Store,
    batches: &[InboundBatch<'_>],
    policy: impl Fn(&AlertEvent) -> Option<Lane>,
) -> Vec<ForwardOutcome> {
    batches
        .iter()
        .map(|b| {
            s.apply_batch_and_forward(b.peer, b.lane, b.first_seq, b.events, Some(UP), &policy)
                .expect("apply")
        })
        .collect()
}

#[test]
fn a_group_of_batches_commits_together_what_one_by_one_would() {
    let (a, b) = (node("gw-1"), node("gw-2"));
    let events = stream(1..=40);
    let batches = [
        InboundBatch {
            peer: &a,
            lane: Lane::Normal,
            first_seq: 1,
            events: &events[..10],
            audit: &[],
            bodies: None,
            directives: Default::default(),
        },
        InboundBatch {
            peer: &b,
            lane: Lane::Critical,
            first_seq: 1,
            events: &events[10..20],
            audit: &[],
            bodies: None,
            directives: Default::default(),
        },
        // The next batch of the first peer's lane, in the same group.
        InboundBatch {
            peer: &a,
            lane: Lane::Normal,
            first_seq: 11,
            events: &events[20..30],
            audit: &[],
            bodies: None,
            directives: Default::default(),
        },
        // A resend overlapping what the group already applied.
        InboundBatch {
            peer: &a,
            lane: Lane::Normal,
            first_seq: 6,
            events: &events[5..30],
            audit: &[],
            bodies: None,
            directives: Default::default(),
        },
        // After a gap: not applied.
        InboundBatch {
            peer: &b,
            lane: Lane::Critical,
            first_seq: 15,
            events: &events[30..40],
            audit: &[],
            bodies: None,
            directives: Default::default(),
        },
        InboundBatch {
            peer: &b,
            lane: Lane::Normal,
            first_seq: 1,
            events: &[],
            audit: &[],
            bodies: None,
            directives: Default::default(),
        },
    ];
    let mut grouped = store();
    let out = grouped
        .apply_batches_and_forward(&batches, Some(UP), |e, _| policy(e))
        .expect("group");
    let mut single = store();
    let expected = one_by_one(&mut single, &batches, policy);
    assert_eq!(out, expected);
    assert_eq!(
        out.iter().map(|o| o.batch.ack_upto).collect::<Vec<_>>(),
        [10, 10, 20, 30, 10, 0]
    );
    assert!(out[4].batch.gap);
    assert_eq!(out[3].batch.duplicates, 25);
    for lane in Lane::ALL {
        assert_eq!(queued(&grouped, lane), queued(&single, lane), "lane {lane}");
    }
    assert_eq!(grouped.event_count().expect("count"), 30);
    assert_eq!(grouped.inbox_cursor(&a, Lane::Normal).expect("cursor"), 30);
}

/// Bodies the caller encoded (off the store's thread) are what the store keeps and forwards:
/// the same rows, the same relay, the same outcome as when the store encodes them itself.
#[test]
fn bodies_given_with_a_batch_are_stored_and_forwarded_as_encoded() {
    let a = node("gw-1");
    let events = stream(1..=12);
    let bodies: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    let batch = |bodies| InboundBatch {
        peer: &a,
        lane: Lane::Normal,
        first_seq: 1,
        events: &events,
        audit: &[],
        bodies,
        directives: Default::default(),
    };
    let mut given = store();
    let out_given = given
        .apply_batches_and_forward(&[batch(Some(&bodies))], Some(UP), |e, _| policy(e))
        .expect("apply with bodies");
    let mut own = store();
    let out_own = own
        .apply_batches_and_forward(&[batch(None)], Some(UP), |e, _| policy(e))
        .expect("apply");
    assert_eq!(out_given, out_own);
    for lane in Lane::ALL {
        assert_eq!(queued(&given, lane), queued(&own, lane), "lane {lane}");
    }
    for event in &events {
        assert_eq!(given.event(event.id).expect("read").as_ref(), Some(event));
    }
    // Bodies that do not match the events in number are not used.
    let mut short = store();
    let out_short = short
        .apply_batches_and_forward(&[batch(Some(&bodies[..3]))], Some(UP), |e, _| policy(e))
        .expect("apply with too few bodies");
    assert_eq!(out_short, out_own);
}

#[test]
fn a_group_with_a_bad_batch_commits_nothing() {
    let (a, b) = (node("gw-1"), node("gw-2"));
    let good = stream(1..=5);
    let mut bad = stream(6..=10);
    bad[2].hlc = Hlc::new(u64::MAX, 0);
    let mut s = store();
    for batches in [
        vec![
            InboundBatch {
                peer: &a,
                lane: Lane::Normal,
                first_seq: 1,
                events: &good,
                audit: &[],
                bodies: None,
                directives: Default::default(),
            },
            InboundBatch {
                peer: &b,
                lane: Lane::Normal,
                first_seq: 1,
                events: &bad,
                audit: &[],
                bodies: None,
                directives: Default::default(),
            },
        ],
        vec![
            InboundBatch {
                peer: &a,
                lane: Lane::Normal,
                first_seq: 1,
                events: &good,
                audit: &[],
                bodies: None,
                directives: Default::default(),
            },
            InboundBatch {
                peer: &b,
                lane: Lane::Normal,
                first_seq: 0,
                events: &good,
                audit: &[],
                bodies: None,
                directives: Default::default(),
            },
        ],
    ] {
        s.apply_batches_and_forward(&batches, Some(UP), |_, _| Some(Lane::Normal))
            .expect_err("one bad batch fails the group");
        assert_eq!(s.event_count().expect("count"), 0);
        assert_eq!(s.inbox_cursor(&a, Lane::Normal).expect("cursor"), 0);
        assert_eq!(
            s.outbox_lane_state(UP, Lane::Normal).expect("state"),
            Default::default()
        );
    }
}

#[test]
fn an_alert_policy_sees_the_alert_as_the_transaction_leaves_it() {
    let mut s = store();
    let child = node("gw-1");
    let (loud, quiet) = (alert_id(1), alert_id(2));
    let k = key("door-1");
    // Raised critical, then downgraded: the peak stays critical.
    let first = [
        event(1, loud, T0 + 1, raised(&k, Severity::Critical)),
        event(2, quiet, T0 + 2, raised(&key("door-2"), Severity::Warning)),
    ];
    let seen = std::cell::RefCell::new(Vec::new());
    let minor_and_up = |e: &AlertEvent, ctx: &AlertContext| {
        seen.borrow_mut().push((e.id, ctx.clone()));
        (ctx.view.key.is_some() && ctx.peak_severity.is_some_and(|p| p >= Severity::Minor))
            .then(|| ctx.view.severity.lane())
    };
    let out = s
        .apply_batch_and_forward_by_alert(&child, Lane::Critical, 1, &first, UP, minor_and_up)
        .expect("apply");
    assert_eq!(out.forwarded, [(Lane::Critical, 1)]);
    let downgrade = AlertEventBody::ValueUpdated {
        value: None,
        severity: Some(Severity::Warning),
        message: None,
        at: vigil_core::Timestamp::from_millis(1_795_000_000_000),
    };
    let second = [
        event(3, loud, T0 + 3, downgrade),
        event(4, loud, T0 + 4, acknowledged()),
        event(5, quiet, T0 + 5, acknowledged()),
    ];
    seen.borrow_mut().clear();
    let out = s
        .apply_batch_and_forward_by_alert(&child, Lane::Critical, 3, &second, UP, minor_and_up)
        .expect("apply");
    // The downgraded alert keeps going up (in the normal lane now); the quiet one stays.
    assert_eq!(out.forwarded, [(Lane::Normal, 1), (Lane::Normal, 2)]);
    let all: Vec<AlertEvent> = first.iter().chain(&second).cloned().collect();
    for (id, ctx) in seen.borrow().iter() {
        let alert = all.iter().find(|e| e.id == *id).expect("an event").alert;
        // Exactly what folding the whole history gives.
        assert_eq!(*ctx, AlertContext::from_events(alert, &all), "event {id}");
        assert_eq!(*ctx, AlertContext::load(&s, alert, &[]).expect("load"));
        assert_eq!(Some(ctx), s.alert_context(alert).expect("read").as_ref());
    }
}

#[test]
fn the_peak_survives_a_refold_and_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hub.db");
    let a = alert_id(1);
    let k = key("fence-1");
    let mut s = Store::open(&path).expect("open");
    s.apply_events(&[event(2, a, T0 + 2, raised(&k, Severity::Major))])
        .expect("apply");
    // A late raise that sorts first makes the store refold the alert.
    s.apply_events(&[event(1, a, T0 + 1, raised(&k, Severity::Critical))])
        .expect("apply late");
    drop(s);
    let mut s = Store::open(&path).expect("reopen");
    let seen = std::cell::Cell::new(None);
    s.apply_batch_and_forward_by_alert(
        &node("gw-1"),
        Lane::Normal,
        1,
        &[event(3, a, T0 + 3, acknowledged())],
        UP,
        |_, ctx| {
            seen.set(ctx.peak_severity);
            None
        },
    )
    .expect("apply");
    assert_eq!(seen.get(), Some(Severity::Critical));
}

#[test]
fn a_version_2_file_gets_its_state_columns_and_peaks_filled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hub.db");
    let a = alert_id(7);
    let k = key("fence-7");
    let events = [
        event(1, a, T0 + 1, raised(&k, Severity::Critical)),
        event(
            2,
            a,
            T0 + 2,
            AlertEventBody::Shelved {
                until: vigil_core::Timestamp::from_millis(1_900_000_000_000),
                reason: None,
            },
        ),
    ];
    let view = vigil_core::AlertView::fold(a, &events);
    {
        // The schema as version 2 left it, with one alert in it.
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(include_str!("../migrations/0001_init.sql"))
            .expect("schema 1");
        conn.execute_batch(include_str!("../migrations/0002_alert_queries.sql"))
            .expect("schema 2");
        conn.pragma_update(None, "user_version", 2)
            .expect("version 2");
        for e in &events {
            conn.execute(
                "INSERT INTO events (id, alert, hlc, origin, kind, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    &e.id.as_bytes()[..],
                    &e.alert.as_bytes()[..],
                    i64::try_from(e.hlc.pack()).expect("fits"),
                    e.origin.as_str(),
                    e.body.name(),
                    serde_json::to_string(e).expect("json"),
                ],
            )
            .expect("event");
        }
        conn.execute(
            "INSERT INTO alerts (id, key, site, severity, active, acknowledged, closed, updated_at,
                                 last_hlc, last_event_id, event_count, view)
             VALUES (?1, ?2, 'ministry/gd', 'critical', 1, 0, 0, ?3, ?4, ?5, 2, ?6)",
            rusqlite::params![
                &a.as_bytes()[..],
                k.to_string(),
                view.updated_at.as_millis(),
                i64::try_from(events[1].hlc.pack()).expect("fits"),
                &events[1].id.as_bytes()[..],
                serde_json::to_string(&view).expect("json"),
            ],
        )
        .expect("alert");
    }
    let mut s = Store::open(&path).expect("open and migrate");
    assert_eq!(
        s.schema_version().expect("version"),
        vigil_store::SCHEMA_VERSION
    );
    let conn = rusqlite::Connection::open(&path).expect("second connection");
    let row: (Option<String>, i64, i64, i64, Option<String>) = conn
        .query_row(
            "SELECT shelved_until, suppressed, out_of_service, awaiting_reset, peak_severity
             FROM alerts WHERE id = ?1",
            [&a.as_bytes()[..]],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("row");
    assert_eq!(
        row,
        (
            view.shelved_until.map(|t| t.to_string()),
            0,
            0,
            0,
            Some("critical".to_owned())
        )
    );
    // The writer keeps the same columns as events arrive.
    let seen = std::cell::RefCell::new(None);
    s.apply_batch_and_forward_by_alert(
        &node("gw-1"),
        Lane::Normal,
        1,
        &[event(3, a, T0 + 3, AlertEventBody::Unshelved)],
        UP,
        |_, ctx| {
            *seen.borrow_mut() = Some(ctx.clone());
            None
        },
    )
    .expect("apply");
    let ctx = seen.into_inner().expect("asked");
    assert_eq!(ctx.peak_severity, Some(Severity::Critical));
    let shelved: Option<String> = conn
        .query_row(
            "SELECT shelved_until FROM alerts WHERE id = ?1",
            [&a.as_bytes()[..]],
            |r| r.get(0),
        )
        .expect("row");
    assert_eq!(shelved, None);
}

#[test]
fn a_version_3_file_loses_the_event_foreign_key_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hub.db");
    let a = alert_id(7);
    let b = alert_id(8);
    let ka = key("fence-7");
    let kb = key("fence-8");
    let events = [
        event(1, a, T0 + 1, raised(&ka, Severity::Critical)),
        event(
            2,
            a,
            T0 + 2,
            AlertEventBody::Shelved {
                until: vigil_core::Timestamp::from_millis(1_900_000_000_000),
                reason: None,
            },
        ),
        event(3, b, T0 + 3, raised(&kb, Severity::Minor)),
        event(4, b, T0 + 4, closed()),
    ];
    // Every stored column of `alerts` (not the generated `origin`), in rowid order.
    const ROWS: &str = "SELECT id, key, site, severity, active, acknowledged, closed, updated_at,
                               last_hlc, last_event_id, event_count, view, shelved_until,
                               suppressed, out_of_service, awaiting_reset, peak_severity, origin
                        FROM alerts ORDER BY rowid";
    type Row = Vec<rusqlite::types::Value>;
    let rows = |conn: &rusqlite::Connection| -> Vec<Row> {
        let mut stmt = conn.prepare(ROWS).expect("prepare");
        stmt.query_map([], |r| {
            (0..18)
                .map(|i| r.get::<_, rusqlite::types::Value>(i))
                .collect()
        })
        .expect("query")
        .collect::<rusqlite::Result<Vec<Row>>>()
        .expect("rows")
    };
    let before = {
        // The schema as version 3 left it, written by the version 3 writer.
        let mut conn = rusqlite::Connection::open(&path).expect("open");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("foreign keys");
        let tx = conn.transaction().expect("begin");
        tx.execute_batch(include_str!("../migrations/0001_init.sql"))
            .expect("schema 1");
        tx.execute_batch(include_str!("../migrations/0002_alert_queries.sql"))
            .expect("schema 2");
        tx.execute_batch(include_str!("../migrations/0003_alert_write_cost.sql"))
            .expect("schema 3");
        tx.pragma_update(None, "user_version", 3)
            .expect("version 3");
        tx.commit().expect("commit");
        for e in &events {
            conn.execute(
                "INSERT INTO events (id, alert, hlc, origin, kind, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    &e.id.as_bytes()[..],
                    &e.alert.as_bytes()[..],
                    i64::try_from(e.hlc.pack()).expect("fits"),
                    e.origin.as_str(),
                    e.body.name(),
                    serde_json::to_string(e).expect("json"),
                ],
            )
            .expect("event");
        }
        for (alert, k, evs, peak) in [
            (a, &ka, &events[..2], "critical"),
            (b, &kb, &events[2..], "minor"),
        ] {
            let view = vigil_core::AlertView::fold(alert, evs);
            let last = evs.last().expect("events");
            conn.execute(
                "INSERT INTO alerts (id, key, site, severity, active, acknowledged, closed,
                                     updated_at, last_hlc, last_event_id, event_count, view,
                                     shelved_until, suppressed, out_of_service, awaiting_reset,
                                     peak_severity)
                 VALUES (?1, ?2, ?14, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, 0, 0, ?13)",
                // The columns as the writer of version 3 filled them: from the view.
                rusqlite::params![
                    &alert.as_bytes()[..],
                    k.to_string(),
                    view.severity.as_str(),
                    view.active,
                    view.acknowledged,
                    view.closed,
                    view.updated_at.as_millis(),
                    i64::try_from(last.hlc.pack()).expect("fits"),
                    &last.id.as_bytes()[..],
                    view.event_count,
                    serde_json::to_string(&view).expect("json"),
                    view.shelved_until.map(|t| t.to_string()),
                    peak,
                    view.site.as_ref().map(|s| s.as_str()),
                ],
            )
            .expect("alert");
        }
        // Version 3 still checks the key.
        let orphan = conn.execute(
            "UPDATE alerts SET last_event_id = ?1 WHERE id = ?2",
            rusqlite::params![&[0xEE_u8; 16][..], &a.as_bytes()[..]],
        );
        assert!(orphan.is_err(), "version 3 has the foreign key");
        rows(&conn)
    };
    assert_eq!(before.len(), 2);

    let mut s = Store::open(&path).expect("open and migrate");
    assert_eq!(
        s.schema_version().expect("version"),
        vigil_store::SCHEMA_VERSION
    );
    let conn = rusqlite::Connection::open(&path).expect("second connection");
    assert_eq!(rows(&conn), before, "every row and column kept");
    let fks: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_foreign_key_list('alerts')",
            [],
            |r| r.get(0),
        )
        .expect("foreign keys");
    assert_eq!(fks, 0);
    let mut indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'alerts' AND sql IS NOT NULL ORDER BY name")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("indexes");
    indexes.sort();
    assert_eq!(
        indexes,
        // As version 9 leaves them: the list order indexed for closed alerts only.
        [
            "alerts_closed_by_site",
            "alerts_closed_by_updated",
            "alerts_open_by_key",
            "alerts_open_by_origin",
            "alerts_open_by_site",
        ]
    );
    // The other constraints still hold.
    let bad_id = conn.execute(
        "UPDATE alerts SET id = x'0102' WHERE id = ?1",
        [&a.as_bytes()[..]],
    );
    assert!(bad_id.is_err(), "CHECK (length(id) = 16) kept");
    let bad_flag = conn.execute(
        "UPDATE alerts SET closed = 2 WHERE id = ?1",
        [&a.as_bytes()[..]],
    );
    assert!(bad_flag.is_err(), "CHECK (closed IN (0, 1)) kept");
    let no_view = conn.execute(
        "UPDATE alerts SET view = NULL WHERE id = ?1",
        [&a.as_bytes()[..]],
    );
    assert!(no_view.is_err(), "NOT NULL kept");

    // The store reads and writes the rebuilt table as before.
    assert_eq!(
        s.alert(a).expect("read"),
        Some(vigil_core::AlertView::fold(a, &events[..2]))
    );
    assert_eq!(s.open_alert_for_key(&ka).expect("open alert"), Some(a));
    assert_eq!(s.open_alert_for_key(&kb).expect("closed alert"), None);
    s.apply_batch_and_forward(
        &node("gw-1"),
        Lane::Normal,
        1,
        &[event(5, a, T0 + 5, AlertEventBody::Unshelved)],
        Some(UP),
        |_| None,
    )
    .expect("apply");
    let mut all = events[..2].to_vec();
    all.push(event(5, a, T0 + 5, AlertEventBody::Unshelved));
    assert_eq!(
        s.alert(a).expect("read"),
        Some(vigil_core::AlertView::fold(a, &all))
    );
}
