//! The console's queries: filters (state at a time, severity, site subtree, origin, active,
//! closed), keyset pages that stay stable while alerts arrive, the tree's and the metrics'
//! counts, recording an event on several links at once, and a version 1 file upgraded with
//! its data.

use std::collections::{BTreeMap, BTreeSet};

use vigil_core::{
    Actor, AlertEvent, AlertEventBody, AlertId, AlertKey, AlertState, AlertView, EventId, Hlc,
    Lane, NodeId, Severity, SitePath, Timestamp,
};
use vigil_store::{AlertCursor, AlertQuery, Store, SCHEMA_VERSION};
use vigil_wire::LinkEvent;

/// A realistic base for HLC wall times (late 2026).
const T0: u64 = 1_795_000_000_000;

fn now() -> Timestamp {
    Timestamp::from_millis(i64::try_from(T0).expect("fits") + 1_000_000)
}

fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("valid node id")
}

fn site(path: &str) -> SitePath {
    SitePath::new(path).expect("valid site")
}

/// Builds events with distinct ids and increasing stamps.
struct Events {
    next: u128,
}

impl Events {
    fn new() -> Self {
        Events { next: 1 }
    }

    fn event(
        &mut self,
        alert: AlertId,
        wall: u64,
        origin: &str,
        body: AlertEventBody,
    ) -> AlertEvent {
        let id = EventId::from_bytes(
            (0xE000_0000_0000_0000_0000_0000_0000_0000 | self.next).to_be_bytes(),
        );
        self.next += 1;
        AlertEvent {
            id,
            alert,
            origin: node(origin),
            hlc: Hlc::new(wall, 0),
            actor: Actor::System,
            body,
            clamped_from: None,
        }
    }

    /// A raise of the alert with `key` (`origin/source/kind`) at `at_site`.
    fn raise(
        &mut self,
        alert: AlertId,
        wall: u64,
        key: &str,
        at_site: &str,
        severity: Severity,
        latching: bool,
    ) -> AlertEvent {
        let key: AlertKey = key.parse().expect("key");
        let origin = key.origin.to_string();
        let message = format!("{} alarm", key.source);
        self.event(
            alert,
            wall,
            &origin,
            AlertEventBody::Raised {
                key,
                site: site(at_site),
                severity,
                message,
                value: None,
                at: Timestamp::from_millis(i64::try_from(wall).expect("fits")),
                latching,
                zone: None,
                evidence: Vec::new(),
            },
        )
    }
}

fn alert_id(n: u128) -> AlertId {
    AlertId::from_bytes((0xA000_0000_0000_0000_0000_0000_0000_0000 | n).to_be_bytes())
}

fn ids(views: &[AlertView]) -> Vec<AlertId> {
    views.iter().map(|v| v.id).collect()
}

/// Every alert in the store, in list order, through as many pages as it takes.
fn all_pages(store: &Store, mut query: AlertQuery) -> Vec<AlertView> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let page = store.query_alerts(&query).expect("page");
        out.extend(page.alerts);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return out,
        }
    }
    panic!("paging did not end");
}

/// One alert in each ISA-18.2 state (at `now()`), plus variants, from one gateway; returns
/// the store and each alert's expected state.
fn store_with_every_state() -> (Store, BTreeMap<AlertId, AlertState>) {
    let mut store = Store::open_in_memory().expect("open");
    let mut ev = Events::new();
    let mut events = Vec::new();
    let site_a = "ministry/gd/gz/baiyun/prison-3";
    let shelf_end = |ms: i64| Timestamp::from_millis(now().as_millis() + ms);
    let mut expected = BTreeMap::new();
    let cases: Vec<(AlertState, bool, Vec<AlertEventBody>)> = vec![
        (AlertState::ActiveUnack, false, vec![]),
        (
            AlertState::ActiveAck,
            false,
            vec![AlertEventBody::Acknowledged { comment: None }],
        ),
        (
            AlertState::RtnUnack,
            false,
            vec![AlertEventBody::Cleared {
                value: None,
                at: now(),
            }],
        ),
        (
            AlertState::Normal,
            false,
            vec![
                AlertEventBody::Cleared {
                    value: None,
                    at: now(),
                },
                AlertEventBody::Acknowledged { comment: None },
            ],
        ),
        (
            AlertState::Latched,
            true,
            vec![
                AlertEventBody::Acknowledged { comment: None },
                AlertEventBody::Cleared {
                    value: None,
                    at: now(),
                },
            ],
        ),
        (
            AlertState::Normal,
            true,
            vec![
                AlertEventBody::Acknowledged { comment: None },
                AlertEventBody::Cleared {
                    value: None,
                    at: now(),
                },
                AlertEventBody::Reset,
            ],
        ),
        (
            AlertState::Shelved,
            false,
            vec![AlertEventBody::Shelved {
                until: shelf_end(60_000),
                reason: None,
            }],
        ),
        // A shelf that has ended by `now()`: the base state shows.
        (
            AlertState::ActiveUnack,
            false,
            vec![AlertEventBody::Shelved {
                until: shelf_end(-1),
                reason: None,
            }],
        ),
        // A shelf ending exactly now has ended (`until > now` shelves).
        (
            AlertState::ActiveUnack,
            false,
            vec![AlertEventBody::Shelved {
                until: shelf_end(0),
                reason: None,
            }],
        ),
        (
            AlertState::RtnUnack,
            false,
            vec![
                AlertEventBody::Shelved {
                    until: shelf_end(60_000),
                    reason: None,
                },
                AlertEventBody::Unshelved,
                AlertEventBody::Cleared {
                    value: None,
                    at: now(),
                },
            ],
        ),
        (
            AlertState::Suppressed,
            false,
            vec![
                AlertEventBody::Shelved {
                    until: shelf_end(60_000),
                    reason: None,
                },
                AlertEventBody::Suppressed { active: true },
            ],
        ),
        (
            AlertState::ActiveUnack,
            false,
            vec![
                AlertEventBody::Suppressed { active: true },
                AlertEventBody::Suppressed { active: false },
            ],
        ),
        (
            AlertState::OutOfService,
            false,
            vec![
                AlertEventBody::Suppressed { active: true },
                AlertEventBody::OutOfService { active: true },
            ],
        ),
    ];
    for (n, (state, latching, bodies)) in cases.into_iter().enumerate() {
        let n = n as u128 + 1;
        let alert = alert_id(n);
        let wall = T0 + (n as u64) * 100;
        let severity = Severity::ALL[(n as usize) % Severity::ALL.len()];
        events.push(ev.raise(
            alert,
            wall,
            &format!("gw-a/dev-{n}/p/state"),
            site_a,
            severity,
            latching,
        ));
        for (i, body) in bodies.into_iter().enumerate() {
            events.push(ev.event(alert, wall + 1 + i as u64, "county-baiyun", body));
        }
        expected.insert(alert, state);
    }
    store.apply_events(&events).expect("apply");
    (store, expected)
}

#[test]
fn the_state_filter_agrees_with_the_fold_for_every_state() {
    let (store, expected) = store_with_every_state();
    let everything = all_pages(
        &store,
        AlertQuery {
            now: now(),
            ..AlertQuery::default()
        },
    );
    assert_eq!(everything.len(), expected.len());
    for view in &everything {
        assert_eq!(
            view.state_at(now()),
            expected[&view.id],
            "the fixture itself"
        );
    }
    for state in [
        AlertState::Normal,
        AlertState::ActiveUnack,
        AlertState::ActiveAck,
        AlertState::RtnUnack,
        AlertState::Latched,
        AlertState::Shelved,
        AlertState::Suppressed,
        AlertState::OutOfService,
    ] {
        let got: BTreeSet<AlertId> = ids(&all_pages(
            &store,
            AlertQuery {
                states: vec![state],
                now: now(),
                ..AlertQuery::default()
            },
        ))
        .into_iter()
        .collect();
        let want: BTreeSet<AlertId> = expected
            .iter()
            .filter(|(_, s)| **s == state)
            .map(|(id, _)| *id)
            .collect();
        assert!(!want.is_empty(), "{state} has a case");
        assert_eq!(got, want, "state {state}");
    }
    // Several states at once.
    let both = store
        .query_alerts(&AlertQuery {
            states: vec![AlertState::Latched, AlertState::Shelved],
            now: now(),
            ..AlertQuery::default()
        })
        .expect("query");
    assert_eq!(both.alerts.len(), 2);

    // After the shelf ends, the shelved alert shows its base state.
    let later = Timestamp::from_millis(now().as_millis() + 120_000);
    let shelved_later = store
        .query_alerts(&AlertQuery {
            states: vec![AlertState::Shelved],
            now: later,
            ..AlertQuery::default()
        })
        .expect("query");
    assert!(shelved_later.alerts.is_empty());
}

#[test]
fn state_counts_agree_with_the_fold() {
    let (store, expected) = store_with_every_state();
    let views = all_pages(
        &store,
        AlertQuery {
            now: now(),
            ..AlertQuery::default()
        },
    );
    let mut want: BTreeMap<(&str, Severity), u64> = BTreeMap::new();
    for v in &views {
        *want
            .entry((expected[&v.id].as_str(), v.severity))
            .or_default() += 1;
    }
    let got: BTreeMap<(&str, Severity), u64> = store
        .alert_state_counts(now())
        .expect("counts")
        .into_iter()
        .map(|c| ((c.state.as_str(), c.severity), c.count))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn severity_active_closed_and_origin_filters() {
    let mut store = Store::open_in_memory().expect("open");
    let mut ev = Events::new();
    let s = "ministry/gd/gz/baiyun/prison-3";
    let mut events = vec![
        ev.raise(
            alert_id(1),
            T0 + 1,
            "gw-a/d/1/state",
            s,
            Severity::Critical,
            false,
        ),
        ev.raise(
            alert_id(2),
            T0 + 2,
            "gw-a/d/2/state",
            s,
            Severity::Major,
            false,
        ),
        ev.raise(
            alert_id(3),
            T0 + 3,
            "gw-b/d/3/state",
            s,
            Severity::Minor,
            false,
        ),
        ev.raise(
            alert_id(4),
            T0 + 4,
            "gw-b/d/4/state",
            s,
            Severity::Warning,
            false,
        ),
        ev.raise(
            alert_id(5),
            T0 + 5,
            "gw-b/d/5/state",
            s,
            Severity::Info,
            false,
        ),
    ];
    events.push(ev.event(
        alert_id(2),
        T0 + 10,
        "gw-a",
        AlertEventBody::Cleared {
            value: None,
            at: now(),
        },
    ));
    events.push(ev.event(
        alert_id(3),
        T0 + 11,
        "hub",
        AlertEventBody::Closed { reason: None },
    ));
    store.apply_events(&events).expect("apply");
    let q = |f: &dyn Fn(&mut AlertQuery)| {
        let mut query = AlertQuery {
            now: now(),
            ..AlertQuery::default()
        };
        f(&mut query);
        let mut got = ids(&store.query_alerts(&query).expect("query").alerts);
        got.sort();
        got
    };
    let a = |ns: &[u128]| ns.iter().map(|n| alert_id(*n)).collect::<Vec<_>>();
    assert_eq!(q(&|_| {}), a(&[1, 2, 3, 4, 5]));
    assert_eq!(q(&|q| q.min_severity = Some(Severity::Major)), a(&[1, 2]));
    assert_eq!(
        q(&|q| q.severities = vec![Severity::Critical, Severity::Info]),
        a(&[1, 5])
    );
    assert_eq!(
        q(&|q| {
            q.severities = vec![Severity::Info];
            q.min_severity = Some(Severity::Major);
        }),
        a(&[]),
        "a set and a minimum that exclude each other"
    );
    assert_eq!(q(&|q| q.active = Some(false)), a(&[2]));
    assert_eq!(q(&|q| q.active = Some(true)), a(&[1, 3, 4, 5]));
    assert_eq!(q(&|q| q.closed = Some(true)), a(&[3]));
    assert_eq!(q(&|q| q.closed = Some(false)), a(&[1, 2, 4, 5]));
    assert_eq!(q(&|q| q.origin = Some(node("gw-b"))), a(&[3, 4, 5]));
    assert_eq!(
        q(&|q| {
            q.origin = Some(node("gw-b"));
            q.closed = Some(false);
            q.min_severity = Some(Severity::Warning);
        }),
        a(&[4])
    );
}

#[test]
fn the_site_filter_respects_segment_boundaries() {
    let mut store = Store::open_in_memory().expect("open");
    let mut ev = Events::new();
    let sites = [
        "ministry/gd/gz/baiyun",
        "ministry/gd/gz/baiyun/prison-3",
        "ministry/gd/gz/baiyunx/prison-1",
        "ministry/gd/gz/baiyun-north/prison-2",
        "ministry/gd/gz/baiyun.old/prison-4",
        "ministry/gd/gz/tianhe/prison-5",
        "ministry/gd/gz",
    ];
    let events: Vec<_> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = i as u128 + 1;
            ev.raise(
                alert_id(n),
                T0 + n as u64,
                &format!("gw-a/d/{n}/state"),
                s,
                Severity::Major,
                false,
            )
        })
        .collect();
    store.apply_events(&events).expect("apply");
    let under = |scope: &str| {
        let mut got: Vec<String> = store
            .query_alerts(&AlertQuery {
                site: Some(site(scope)),
                now: now(),
                ..AlertQuery::default()
            })
            .expect("query")
            .alerts
            .into_iter()
            .map(|v| v.site.expect("site").to_string())
            .collect();
        got.sort();
        got
    };
    assert_eq!(
        under("ministry/gd/gz/baiyun"),
        ["ministry/gd/gz/baiyun", "ministry/gd/gz/baiyun/prison-3"]
    );
    assert_eq!(
        under("ministry/gd/gz/baiyun/prison-3"),
        ["ministry/gd/gz/baiyun/prison-3"]
    );
    assert_eq!(under("ministry/gd/gz").len(), sites.len());
    assert_eq!(under("ministry").len(), sites.len());
    assert!(
        under("ministry/gd/g").is_empty(),
        "a prefix of a segment is not a scope"
    );
    assert!(under("ministry/gd/gz/baiyun/prison-3x").is_empty());
}

#[test]
fn pages_are_stable_while_new_alerts_arrive() {
    let mut store = Store::open_in_memory().expect("open");
    let mut ev = Events::new();
    let s = "ministry/gd/gz/baiyun/prison-3";
    // 25 alerts; several share an updated_at, so the order falls back to the stamp and id.
    let first: Vec<_> = (1..=25u128)
        .map(|n| {
            ev.raise(
                alert_id(n),
                T0 + (n as u64 / 3) * 10,
                &format!("gw-a/d/{n}/state"),
                s,
                Severity::Major,
                false,
            )
        })
        .collect();
    store.apply_events(&first).expect("apply");
    let full_order = ids(&all_pages(
        &store,
        AlertQuery {
            now: now(),
            ..AlertQuery::default()
        },
    ));
    assert_eq!(full_order.len(), 25);

    let mut query = AlertQuery {
        limit: 10,
        now: now(),
        ..AlertQuery::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_alerts(&query).expect("page");
        pages += 1;
        assert!(page.alerts.len() <= 10);
        seen.extend(ids(&page.alerts));
        // New alerts arrive between pages: they sort first and never shift the pages to come.
        let n = 100 + pages;
        store
            .apply_events(&[ev.raise(
                alert_id(n),
                T0 + 1_000 + n as u64,
                &format!("gw-a/d/{n}/state"),
                s,
                Severity::Major,
                false,
            )])
            .expect("apply a new alert");
        match page.next {
            Some(next) => {
                // The cursor is opaque text that survives a round trip through a URL.
                let text = next.to_string();
                query.cursor = Some(text.parse::<AlertCursor>().expect("cursor"));
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, full_order,
        "every alert once, in order, nothing new interleaved"
    );

    // An exactly full last page says so: no `next` pointing at an empty page.
    let exact = store
        .query_alerts(&AlertQuery {
            limit: 28,
            now: now(),
            ..AlertQuery::default()
        })
        .expect("page");
    assert_eq!(exact.alerts.len(), 28);
    assert_eq!(exact.next, None);
}

#[test]
fn open_alert_counts_per_origin_and_site() {
    let mut store = Store::open_in_memory().expect("open");
    let mut ev = Events::new();
    let p3 = "ministry/gd/gz/baiyun/prison-3";
    let p4 = "ministry/gd/gz/baiyun/prison-4";
    let mut events = vec![
        ev.raise(
            alert_id(1),
            T0 + 1,
            "gw-a/d/1/state",
            p3,
            Severity::Critical,
            false,
        ),
        ev.raise(
            alert_id(2),
            T0 + 2,
            "gw-a/d/2/state",
            p3,
            Severity::Critical,
            false,
        ),
        ev.raise(
            alert_id(3),
            T0 + 3,
            "gw-a/d/3/state",
            p3,
            Severity::Minor,
            false,
        ),
        ev.raise(
            alert_id(4),
            T0 + 4,
            "gw-b/d/4/state",
            p4,
            Severity::Critical,
            false,
        ),
        ev.raise(
            alert_id(5),
            T0 + 5,
            "gw-b/d/5/state",
            p4,
            Severity::Critical,
            false,
        ),
    ];
    events.push(ev.event(
        alert_id(2),
        T0 + 10,
        "hub",
        AlertEventBody::Acknowledged { comment: None },
    ));
    events.push(ev.event(
        alert_id(2),
        T0 + 11,
        "gw-a",
        AlertEventBody::Cleared {
            value: None,
            at: now(),
        },
    ));
    events.push(ev.event(
        alert_id(5),
        T0 + 12,
        "hub",
        AlertEventBody::Closed { reason: None },
    ));
    // An acknowledgement whose raise has not arrived: counted without origin or site.
    events.push(ev.event(
        alert_id(6),
        T0 + 13,
        "hub",
        AlertEventBody::Acknowledged { comment: None },
    ));
    store.apply_events(&events).expect("apply");
    let counts = store.open_alert_counts().expect("counts");
    let get = |origin: Option<&str>, sev: Severity| {
        counts
            .iter()
            .find(|c| c.origin.as_ref().map(NodeId::as_str) == origin && c.severity == sev)
            .map(|c| {
                (
                    c.site.as_ref().map(ToString::to_string),
                    c.open,
                    c.active,
                    c.unacknowledged,
                )
            })
    };
    assert_eq!(
        get(Some("gw-a"), Severity::Critical),
        Some((Some(p3.into()), 2, 1, 1))
    );
    assert_eq!(
        get(Some("gw-a"), Severity::Minor),
        Some((Some(p3.into()), 1, 1, 1))
    );
    assert_eq!(
        get(Some("gw-b"), Severity::Critical),
        Some((Some(p4.into()), 1, 1, 1))
    );
    assert_eq!(get(None, Severity::Info), Some((None, 1, 0, 0)));
    assert_eq!(counts.len(), 4);
}

#[test]
fn an_event_recorded_for_two_links_is_stored_once_and_queued_on_both() {
    let mut store = Store::open_in_memory().expect("open");
    let mut ev = Events::new();
    let raise = ev.raise(
        alert_id(1),
        T0,
        "gw-a/d/1/state",
        "ministry/gd",
        Severity::Critical,
        false,
    );
    store
        .apply_events(std::slice::from_ref(&raise))
        .expect("apply");
    let ack = ev.event(
        alert_id(1),
        T0 + 5,
        "county",
        AlertEventBody::Acknowledged { comment: None },
    );
    let note = ev.event(
        alert_id(1),
        T0 + 6,
        "county",
        AlertEventBody::Commented {
            text: "seen".into(),
        },
    );
    let seqs = store
        .record_events_multi(&[
            ("child:gw-a", Lane::Critical, ack.clone()),
            ("parent", Lane::Critical, ack.clone()),
            ("child:gw-a", Lane::Normal, note.clone()),
            ("child:gw-a", Lane::Critical, note.clone()),
        ])
        .expect("record");
    assert_eq!(seqs, [1, 1, 1, 2]);
    assert_eq!(store.event_count().expect("count"), 3);
    let view = store.alert(alert_id(1)).expect("read").expect("alert");
    assert!(view.acknowledged);
    assert_eq!(view.comments, 1);
    let read = |link: &str, lane: Lane| -> Vec<LinkEvent> {
        store
            .outbox_read(link, lane, 0, 10, 1 << 20)
            .expect("read")
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).expect("link event"))
            .collect()
    };
    assert_eq!(
        read("child:gw-a", Lane::Critical),
        [
            LinkEvent::Alert(ack.clone()),
            LinkEvent::Alert(note.clone())
        ]
    );
    assert_eq!(read("child:gw-a", Lane::Normal), [LinkEvent::Alert(note)]);
    assert_eq!(read("parent", Lane::Critical), [LinkEvent::Alert(ack)]);
    assert!(read("parent", Lane::Normal).is_empty());
    assert_eq!(
        store.record_events_multi(&[]).expect("nothing"),
        Vec::<u64>::new()
    );
}

#[test]
fn a_damaged_view_is_left_out_of_the_list_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hub.db");
    let mut store = Store::open(&path).expect("open");
    let mut ev = Events::new();
    let s = "ministry/gd";
    store
        .apply_events(&[
            ev.raise(
                alert_id(1),
                T0 + 1,
                "gw-a/d/1/state",
                s,
                Severity::Major,
                false,
            ),
            ev.raise(
                alert_id(2),
                T0 + 2,
                "gw-a/d/2/state",
                s,
                Severity::Major,
                false,
            ),
        ])
        .expect("apply");
    let conn = rusqlite::Connection::open(&path).expect("second connection");
    conn.execute(
        "UPDATE alerts SET view = 'truncated {' WHERE id = ?1",
        [&alert_id(2).as_bytes()[..]],
    )
    .expect("damage");
    let all = store
        .query_alerts(&AlertQuery {
            now: now(),
            ..AlertQuery::default()
        })
        .expect("list despite damage");
    assert_eq!(ids(&all.alerts), [alert_id(1)]);
    let shelved = store
        .query_alerts(&AlertQuery {
            states: vec![AlertState::Shelved],
            now: now(),
            ..AlertQuery::default()
        })
        .expect("state filter despite damage");
    assert!(shelved.alerts.is_empty());
    assert!(store.alert_state_counts(now()).is_ok());
}

#[test]
fn a_version_1_file_is_upgraded_with_its_alerts_queryable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hub.db");
    let mut ev = Events::new();
    let raise = ev.raise(
        alert_id(7),
        T0,
        "gw-a/d/7/state",
        "ministry/gd",
        Severity::Critical,
        false,
    );
    let shelve = ev.event(
        alert_id(7),
        T0 + 1,
        "hub",
        AlertEventBody::Shelved {
            until: Timestamp::from_millis(now().as_millis() + 60_000),
            reason: None,
        },
    );
    let view = AlertView::fold(alert_id(7), [&raise, &shelve]);
    {
        // The schema as version 1 of this crate left it, with one alert in it.
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(include_str!("../migrations/0001_init.sql"))
            .expect("schema 1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version 1");
        for e in [&raise, &shelve] {
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
             VALUES (?1, ?2, ?3, 'critical', 1, 0, 0, ?4, ?5, ?6, 2, ?7)",
            rusqlite::params![
                &alert_id(7).as_bytes()[..],
                view.key.as_ref().map(ToString::to_string),
                "ministry/gd",
                view.updated_at.as_millis(),
                i64::try_from(shelve.hlc.pack()).expect("fits"),
                &shelve.id.as_bytes()[..],
                serde_json::to_string(&view).expect("json"),
            ],
        )
        .expect("alert");
    }
    let store = Store::open(&path).expect("open and migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let shelved = store
        .query_alerts(&AlertQuery {
            states: vec![AlertState::Shelved],
            origin: Some(node("gw-a")),
            now: now(),
            ..AlertQuery::default()
        })
        .expect("query");
    assert_eq!(shelved.alerts, [view]);
    assert_eq!(store.open_alert_counts().expect("counts").len(), 1);
}
