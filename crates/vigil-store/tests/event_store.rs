//! The event store: idempotent apply, order-independent folding, the queries the alert
//! manager and the console use, the inbox's batch handling, migrations and corrupt rows.

mod common;

use common::*;
use proptest::prelude::*;
use vigil_core::{AlertEvent, AlertId, AlertView, Hlc, Lane, Severity};
use vigil_store::{BatchOutcome, Store, StoreError, SCHEMA_VERSION};

fn store() -> Store {
    Store::open_in_memory().expect("open in memory")
}

/// Everything observable about the event store, to compare two states.
fn snapshot(s: &Store) -> (u64, Option<Hlc>, Vec<AlertView>, Vec<Vec<AlertEvent>>) {
    let alerts = s.list_alerts(1000).expect("list");
    let events = alerts
        .iter()
        .map(|a| s.alert_events(a.id).expect("events"))
        .collect();
    (
        s.event_count().expect("count"),
        s.max_hlc().expect("max hlc"),
        alerts,
        events,
    )
}

fn stream(n: u64, alerts: u64, scramble: bool) -> Vec<AlertEvent> {
    (1..=n).map(|i| stream_event(i, alerts, scramble)).collect()
}

#[test]
fn applying_the_same_events_twice_changes_nothing() {
    let mut s = store();
    let events = stream(40, 3, false);
    let first = s.apply_events(&events).expect("apply");
    assert_eq!((first.applied, first.duplicates), (40, 0));
    let before = snapshot(&s);
    assert_eq!(before.0, 40);
    assert_eq!(before.2.len(), 3);

    let again = s.apply_events(&events).expect("apply again");
    assert_eq!((again.applied, again.duplicates), (0, 40));
    assert_eq!(snapshot(&s), before);

    // Duplicates within one call count too, and a mix applies only the new ones.
    let mut mixed = stream(45, 3, false);
    mixed.push(mixed[44].clone());
    let stats = s.apply_events(&mixed).expect("apply mixed");
    assert_eq!((stats.applied, stats.duplicates), (5, 41));
    assert_eq!(s.event_count().expect("count"), 45);
}

#[test]
fn the_view_is_the_fold_of_the_stored_events_whatever_the_arrival_order() {
    let events = stream(60, 4, true);
    let mut in_order = store();
    let mut sorted = events.clone();
    sorted.sort_by_key(AlertEvent::order_key);
    for e in &sorted {
        in_order
            .apply_events(std::slice::from_ref(e))
            .expect("apply");
    }
    // Reverse arrival, one event at a time: every event after the first forces a refold.
    let mut reversed = store();
    for e in sorted.iter().rev() {
        reversed
            .apply_events(std::slice::from_ref(e))
            .expect("apply");
    }
    for n in 0..4 {
        let id = alert_id(n);
        let expected = AlertView::fold(id, &events);
        assert_eq!(in_order.alert(id).expect("read"), Some(expected.clone()));
        assert_eq!(reversed.alert(id).expect("read"), Some(expected));
        let stored = reversed.alert_events(id).expect("events");
        let keys: Vec<_> = stored.iter().map(AlertEvent::order_key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "fold order");
    }
    assert_eq!(snapshot(&in_order), snapshot(&reversed));
}

#[test]
fn a_late_event_that_sorts_before_the_last_one_is_folded_in_its_place() {
    let mut s = store();
    let a = alert_id(1);
    let k = key("fence-north/zone1");
    // raise @10, ack @12 and a second raise @30 arrive first; the clear @20 arrives late.
    // In fold order the clear ends the first activation and the raise @30 starts a new one,
    // which needs a new acknowledgement: active_unack. Applying the clear on top of the view
    // instead would end with the alert cleared and acknowledged.
    let events = [
        event(1, a, T0 + 10, raised(&k, Severity::Major)),
        event(2, a, T0 + 12, acknowledged()),
        event(4, a, T0 + 30, raised(&k, Severity::Critical)),
    ];
    s.apply_events(&events).expect("apply");
    let view = s.alert(a).expect("read").expect("exists");
    assert!(view.active && view.acknowledged);
    let late = event(3, a, T0 + 20, cleared());
    s.apply_events(std::slice::from_ref(&late))
        .expect("apply late");
    let view = s.alert(a).expect("read").expect("exists");
    assert!(view.active && !view.acknowledged, "{view:?}");
    assert_eq!(view.severity, Severity::Critical);
    assert_eq!(view.event_count, 4);
    assert_eq!(view.last, Some((Hlc::new(T0 + 30, 0), event_id(4))));
    let mut all = events.to_vec();
    all.push(late);
    assert_eq!(view, AlertView::fold(a, &all));
}

#[test]
fn an_event_before_its_raise_makes_an_alert_without_a_key() {
    let mut s = store();
    let a = alert_id(9);
    s.apply_events(&[event(2, a, T0 + 20, acknowledged())])
        .expect("apply ack");
    let view = s.alert(a).expect("read").expect("exists");
    assert_eq!(view.key, None);
    assert_eq!(s.open_alert_for_key(&key("x/y")).expect("query"), None);
    s.apply_events(&[event(1, a, T0 + 10, raised(&key("x/y"), Severity::Minor))])
        .expect("apply raise");
    assert_eq!(s.open_alert_for_key(&key("x/y")).expect("query"), Some(a));
}

#[test]
fn open_alert_for_key_finds_the_open_episode_only() {
    let mut s = store();
    let k = key("door-3/forced");
    let (a, b, c) = (alert_id(1), alert_id(2), alert_id(3));
    assert_eq!(s.open_alert_for_key(&k).expect("query"), None);
    s.apply_events(&[event(1, a, T0 + 10, raised(&k, Severity::Critical))])
        .expect("apply");
    assert_eq!(s.open_alert_for_key(&k).expect("query"), Some(a));
    assert_eq!(
        s.open_alert_for_key(&key("door-4/forced")).expect("query"),
        None
    );

    s.apply_events(&[event(2, a, T0 + 20, closed())])
        .expect("close");
    assert_eq!(s.open_alert_for_key(&k).expect("query"), None);

    s.apply_events(&[event(3, b, T0 + 30, raised(&k, Severity::Critical))])
        .expect("new episode");
    assert_eq!(s.open_alert_for_key(&k).expect("query"), Some(b));

    // Two replicas opened an episode each (a partition): the most recent one is used.
    s.apply_events(&[event(4, c, T0 + 40, raised(&k, Severity::Critical))])
        .expect("concurrent episode");
    assert_eq!(s.open_alert_for_key(&k).expect("query"), Some(c));
    s.apply_events(&[event(5, b, T0 + 50, acknowledged())])
        .expect("ack b");
    assert_eq!(s.open_alert_for_key(&k).expect("query"), Some(b));
}

#[test]
fn max_hlc_and_the_alert_list() {
    let mut s = store();
    assert_eq!(s.max_hlc().expect("empty"), None);
    assert!(s.list_alerts(10).expect("empty").is_empty());
    let events = stream(30, 5, true);
    s.apply_events(&events).expect("apply");
    let max = events.iter().map(|e| e.hlc).max();
    assert_eq!(s.max_hlc().expect("max"), max);

    let listed = s.list_alerts(10).expect("list");
    assert_eq!(listed.len(), 5);
    assert_eq!(s.alert_count().expect("count"), 5);
    let times: Vec<_> = listed.iter().map(|v| (v.updated_at, v.last)).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "most recent first: {times:?}"
    );
    assert_eq!(s.list_alerts(2).expect("limited").len(), 2);
    assert_eq!(
        s.list_alerts(2).expect("limited")[..],
        listed[..2],
        "limit keeps the order"
    );
    let some = &events[7];
    assert_eq!(s.event(some.id).expect("read"), Some(some.clone()));
    assert_eq!(s.event(event_id(10_000)).expect("read"), None);
}

#[test]
fn a_stamp_beyond_the_storable_range_fails_the_whole_call() {
    let mut s = store();
    let a = alert_id(1);
    let good = event(1, a, T0, raised(&key("a/b"), Severity::Minor));
    let mut bad = event(2, a, T0, acknowledged());
    bad.hlc = Hlc::new(1 << 48, 0);
    let err = s
        .apply_events(&[good, bad.clone()])
        .expect_err("out of range");
    assert!(
        matches!(&err, StoreError::HlcOutOfRange { event, .. } if *event == bad.id),
        "{err}"
    );
    assert_eq!(s.event_count().expect("count"), 0, "rolled back");
    assert_eq!(s.alert(a).expect("read"), None);
}

#[test]
fn batches_advance_the_cursor_and_gaps_ask_for_a_resend() {
    let mut s = store();
    let peer = node("gw-1");
    let events = stream(10, 2, false);
    let batch = |first: u64, last: u64| &events[(first - 1) as usize..last as usize];

    // A gap before anything arrived: nothing applied, ack 0.
    let out = s
        .apply_batch(&peer, Lane::Normal, 2, batch(2, 3))
        .expect("gap");
    assert_eq!(
        out,
        BatchOutcome {
            ack_upto: 0,
            applied: 0,
            duplicates: 0,
            gap: true
        }
    );
    assert_eq!(s.event_count().expect("count"), 0);

    let out = s
        .apply_batch(&peer, Lane::Normal, 1, batch(1, 3))
        .expect("in order");
    assert_eq!(
        (out.ack_upto, out.applied, out.duplicates, out.gap),
        (3, 3, 0, false)
    );

    // A resend overlapping what is here: old events are duplicates.
    let out = s
        .apply_batch(&peer, Lane::Normal, 2, batch(2, 5))
        .expect("overlap");
    assert_eq!((out.ack_upto, out.applied, out.duplicates), (5, 2, 2));

    // A full replay of old numbers: the ack stays where it is.
    let out = s
        .apply_batch(&peer, Lane::Normal, 1, batch(1, 2))
        .expect("replay");
    assert_eq!((out.ack_upto, out.applied, out.duplicates), (5, 0, 2));

    // A gap after the cursor.
    let out = s
        .apply_batch(&peer, Lane::Normal, 7, batch(7, 8))
        .expect("gap");
    assert_eq!((out.ack_upto, out.applied, out.gap), (5, 0, true));
    assert_eq!(s.inbox_cursor(&peer, Lane::Normal).expect("cursor"), 5);
    assert_eq!(s.event_count().expect("count"), 5);

    // Lanes and peers have their own cursors.
    assert_eq!(s.inbox_cursor(&peer, Lane::Critical).expect("cursor"), 0);
    assert_eq!(
        s.inbox_cursor(&node("gw-2"), Lane::Normal).expect("cursor"),
        0
    );
    let out = s
        .apply_batch(&node("gw-2"), Lane::Normal, 1, batch(6, 6))
        .expect("other peer");
    assert_eq!((out.ack_upto, out.applied), (1, 1));

    // An empty batch reports the cursor; numbering from 0 is refused.
    let out = s.apply_batch(&peer, Lane::Normal, 9, &[]).expect("empty");
    assert_eq!((out.ack_upto, out.applied, out.gap), (5, 0, false));
    let err = s
        .apply_batch(&peer, Lane::Normal, 0, batch(1, 1))
        .expect_err("seq 0");
    assert!(
        matches!(err, StoreError::InvalidBatch { first_seq: 0, .. }),
        "{err}"
    );
    let err = s
        .apply_batch(&peer, Lane::Normal, u64::MAX, batch(1, 2))
        .expect_err("overflow");
    assert!(matches!(err, StoreError::InvalidBatch { .. }), "{err}");
    assert_eq!(s.inbox_cursor(&peer, Lane::Normal).expect("cursor"), 5);
}

#[test]
fn a_fresh_file_is_migrated_and_a_reopened_one_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.db");
    {
        let mut s = Store::open(&path).expect("create");
        assert_eq!(s.schema_version().expect("version"), SCHEMA_VERSION);
        s.apply_batch(&node("gw-1"), Lane::Critical, 1, &stream(4, 2, false))
            .expect("apply");
        s.outbox_append("parent", Lane::Critical, b"x")
            .expect("append");
    }
    let s = Store::open(&path).expect("reopen");
    assert_eq!(s.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(s.event_count().expect("count"), 4);
    assert_eq!(
        s.inbox_cursor(&node("gw-1"), Lane::Critical)
            .expect("cursor"),
        4
    );
    assert_eq!(
        s.outbox_lane_state("parent", Lane::Critical)
            .expect("state")
            .head_seq,
        1
    );
}

#[test]
fn a_file_from_a_newer_vigil_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.db");
    drop(Store::open(&path).expect("create"));
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump version");
    }
    let err = Store::open(&path).expect_err("newer schema");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("newer") || err.to_string().contains("knows only"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn corrupt_json_names_the_table_and_the_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.db");
    let a = alert_id(1);
    let e = event(1, a, T0, raised(&key("a/b"), Severity::Minor));
    Store::open(&path)
        .expect("create")
        .apply_events(std::slice::from_ref(&e))
        .expect("apply");
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute("UPDATE alerts SET view = '{\"id\": 1'", [])
            .expect("damage view");
        conn.execute("UPDATE events SET body = 'garbage'", [])
            .expect("damage event");
    }
    let s = Store::open(&path).expect("reopen");
    let err = s.alert(a).expect_err("corrupt view");
    assert!(
        matches!(&err, StoreError::CorruptJson { table: "alerts", row, .. } if row.contains(&a.to_string())),
        "{err}"
    );
    let err = s.alert_events(a).expect_err("corrupt event");
    assert!(
        matches!(&err, StoreError::CorruptJson { table: "events", row, .. } if row.contains(&e.id.to_string())),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("events") && text.contains(&e.id.to_string()),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any arrival order, split into any batches, with resends, gives every alert the view
    /// of the fold of its whole event set.
    #[test]
    fn arrival_order_and_batching_do_not_matter(
        order in Just((1..=40u64).collect::<Vec<_>>()).prop_shuffle(),
        cuts in prop::collection::vec(1usize..8, 1..20),
        resend in prop::collection::vec(0usize..40, 0..10),
    ) {
        let all: Vec<AlertEvent> = (1..=40).map(|i| stream_event(i, 3, true)).collect();
        let mut arrivals: Vec<AlertEvent> = order.iter().map(|&i| all[(i - 1) as usize].clone()).collect();
        arrivals.extend(resend.iter().map(|&i| all[i].clone()));
        let mut s = store();
        let mut rest = &arrivals[..];
        let mut cut = cuts.iter().cycle();
        let (mut applied, mut duplicates) = (0, 0);
        while !rest.is_empty() {
            let n = (*cut.next().unwrap_or(&1)).min(rest.len());
            let stats = s.apply_events(&rest[..n]).expect("apply");
            applied += stats.applied;
            duplicates += stats.duplicates;
            rest = &rest[n..];
        }
        prop_assert_eq!(applied, 40);
        prop_assert_eq!(duplicates, resend.len());
        for n in 0..3 {
            let id: AlertId = alert_id(n);
            prop_assert_eq!(s.alert(id).expect("read"), Some(AlertView::fold(id, &all)));
        }
    }
}
