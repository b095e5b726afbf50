//! A child whose clock runs an hour fast, against a running hub
//! (docs/ARCHITECTURE.md#clocks-and-skew): gateway X holds a real certificate, enrolled with
//! `--site` for its facility, and its link (the vigil-link uplink an agent runs, over mTLS
//! through the hub's gate, with its own store) sends an alarm and its clear stamped an hour
//! ahead, and a raise stamped at the very top of the stamp's range.
//!
//! - the hub's API shows them with stamps from the hub's clock, the originals kept in
//!   `clamped_from`, in their order; a `clock_skew` alert about X is raised;
//! - the clamped copies come back down X's link, and X's own store replaces its copies by
//!   them: X's alert is the hub's, event for event;
//! - operator actions at the hub carry the hub's time, also on the alert stamped at the top
//!   of the range (no 500), and still after a restart — even with stamps far ahead left in
//!   the store from before (the clock does not resume from them), and an alert stamped at
//!   the top of the range from before is refused with 409 naming it, never a 500.
//!
//! The hub runs in this process (`vigil_hub::run::run`, what the binary calls), its store in
//! a directory the test keeps across the restart.

mod common;

use std::path::{Path, PathBuf};

use common::child::{enroll, Child};
use common::{bounded, eventually, Gateway, Hub, PRISON_3};
use hyper::StatusCode;
use vigil_core::{AlertEvent, AlertId, AlertKey, AlertView, Hlc, Timestamp};
use vigil_store::Store;
use vigil_wire::LinkEvent;

const HUB: &str = "county-baiyun";
const X: &str = "gw-prison-3";
const HOUR_MS: u64 = 3_600_000;

fn now_ms() -> u64 {
    u64::try_from(Timestamp::now().as_millis()).expect("after 1970")
}

/// The hub's view of `alert` and its events.
async fn at_hub(hub: &Hub, alert: AlertId) -> Option<(AlertView, Vec<AlertEvent>)> {
    hub.link
        .store
        .call(move |s| {
            Ok(match s.alert(alert)? {
                Some(view) => Some((view, s.alert_events(alert)?)),
                None => None,
            })
        })
        .await
        .expect("read")
}

/// `POST /api/v1/alerts/{alert}/{action}` with `body`.
async fn act(
    hub: &Hub,
    alert: AlertId,
    action: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    hub.post(
        &format!("/api/v1/alerts/{alert}/{action}"),
        &[("content-type", "application/json")],
        body,
    )
    .await
}

/// The stamp of the event an action answered with.
fn stamp_of(answer: &serde_json::Value) -> Hlc {
    serde_json::from_value(answer["event"]["hlc"].clone()).expect("an event stamp")
}

/// A county hub whose store (and CA) live in `dir`, which outlives it.
async fn county(dir: &Path) -> Hub {
    let store: PathBuf = dir.join("hub.db");
    Hub::start_config(|_| common::county_toml(&store, None, ""), &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_an_hour_ahead_is_clamped_alarmed_and_converges() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = county(dir.path()).await;
        let tls = enroll(&hub, X, PRISON_3).await;
        let mut x = Child::start(X, PRISON_3, &hub.broker, tls);

        // X's clock runs an hour fast: an alarm and its clear, stamped an hour ahead.
        let sent_at = now_ms();
        let alert = AlertId::generate();
        let mut raise = x.events.raise(
            alert,
            "fence-1/zone1",
            "state",
            vigil_core::Severity::Critical,
            false,
        );
        raise.hlc = Hlc::new(sent_at + HOUR_MS, 0);
        let mut clear = x.events.clear(alert);
        clear.hlc = Hlc::new(sent_at + HOUR_MS + 10, 0);
        x.record(vec![raise.clone(), clear.clone()]).await;
        // And an alarm stamped at the very top of the range (X cannot even store it).
        let top_alert = AlertId::generate();
        let mut top = x.events.raise(
            top_alert,
            "fence-2/zone1",
            "state",
            vigil_core::Severity::Critical,
            false,
        );
        top.hlc = Hlc::new(u64::MAX, u16::MAX);
        x.send(vec![LinkEvent::Alert(top.clone())]).await;

        // The hub holds them stamped by its own clock, the originals kept, in their order.
        let (view, events) = eventually("X's alarm and its clear at the hub", || async {
            at_hub(&hub, alert).await.filter(|(_, e)| e.len() == 2)
        })
        .await;
        let received_by = now_ms();
        assert_eq!(events[0].id, raise.id);
        assert_eq!(events[1].id, clear.id);
        assert_eq!(events[0].clamped_from, Some(raise.hlc));
        assert_eq!(events[1].clamped_from, Some(clear.hlc));
        for e in &events {
            assert!(
                (sent_at..=received_by).contains(&e.hlc.wall),
                "{} is not the hub's time ({sent_at}..={received_by})",
                e.hlc
            );
        }
        assert!(events[1].hlc > events[0].hlc);
        assert!(!view.active, "cleared");
        let (top_view, top_events) = eventually("the top-of-range alarm at the hub", || async {
            at_hub(&hub, top_alert).await
        })
        .await;
        assert_eq!(top_events[0].clamped_from, Some(top.hlc));
        assert!(top_events[0].hlc.wall <= now_ms());
        assert!(top_view.active);

        // The API shows the same.
        let (status, body) = hub.get(&format!("/api/v1/alerts/{alert}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let shown: Vec<AlertEvent> =
            serde_json::from_value(body["events"].clone()).expect("events");
        assert_eq!(shown, events);
        let json = body["events"][0].to_string();
        assert!(json.contains("\"clamped_from\""), "{json}");

        // A clock_skew alert about X.
        let key: AlertKey = format!("{HUB}/node/{X}/clock_skew").parse().expect("key");
        let skew_alert = eventually("a clock_skew alert about X", || async {
            let key = key.clone();
            hub.link
                .store
                .call(move |s| s.open_alert_for_key(&key))
                .await
                .expect("read")
        })
        .await;
        let (status, body) = hub.get(&format!("/api/v1/alerts/{skew_alert}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.to_string().contains("clock skew"), "{body}");

        // X's own store converges on the clamped copies.
        eventually("X holds the clamped copies", || async {
            (x.events_of(alert).await == events).then_some(())
        })
        .await;
        assert_eq!(x.alert(alert).await, Some(view.clone()));

        // Operator actions carry the hub's time, on both alerts.
        let before = now_ms();
        let (status, answer) = act(&hub, alert, "ack", "{}").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let ack = stamp_of(&answer);
        assert!(
            ack > events[1].hlc && ack.wall <= now_ms() + 1_000,
            "{ack} ({before})"
        );
        let (status, answer) = act(&hub, top_alert, "ack", "{}").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(stamp_of(&answer).wall <= now_ms() + 1_000);
        // The ack reaches X too: its alert is the hub's.
        let hub_view = at_hub(&hub, alert).await.expect("alert").0;
        eventually("X's alert as the hub's", || async {
            (x.alert(alert).await.as_ref() == Some(&hub_view)).then_some(())
        })
        .await;
        drop(x);
        hub.stop().await;

        // Left in the store from before the guard: an alert stamped ten hours ahead and one
        // at the top of the range.
        let store_path = dir.path().join("hub.db");
        let far_alert = AlertId::generate();
        let legacy_alert = AlertId::generate();
        let mut g = Gateway::new(X, PRISON_3);
        let mut far = g.raise(
            far_alert,
            "door-1/forced",
            "state",
            vigil_core::Severity::Minor,
            false,
        );
        far.hlc = Hlc::new(now_ms() + 10 * HOUR_MS, 0);
        let mut legacy = g.raise(
            legacy_alert,
            "door-2/forced",
            "state",
            vigil_core::Severity::Minor,
            false,
        );
        legacy.hlc = Hlc::MAX;
        {
            let mut store = Store::open(&store_path).expect("store");
            store.apply_events(&[far.clone(), legacy]).expect("seed");
        }
        // The harness adds its API token again at start.
        rusqlite::Connection::open(&store_path)
            .expect("raw")
            .execute("DELETE FROM api_tokens WHERE name = 'harness'", [])
            .expect("drop the old token");

        let hub = county(dir.path()).await;
        assert!(
            hub.link.clock.last().wall <= now_ms() + 300_000,
            "the clock resumed from {} (a stamp beyond the skew)",
            hub.link.clock.last()
        );
        let before = now_ms();
        let (status, answer) = act(&hub, alert, "comment", r#"{"text":"after the restart"}"#).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let comment = stamp_of(&answer);
        assert!(
            comment.wall >= before && comment.wall <= now_ms() + 1_000,
            "{comment} is not the hub's time"
        );
        // An action on the far alert still folds after it, without moving the clock.
        let (status, answer) = act(&hub, far_alert, "ack", "{}").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(stamp_of(&answer) > far.hlc);
        let (status, answer) = act(&hub, top_alert, "comment", r#"{"text":"fine"}"#).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(stamp_of(&answer).wall <= now_ms() + 1_000);
        // The alert stamped at the top of the range: a conflict naming it, not a 500.
        let (status, answer) = act(&hub, legacy_alert, "ack", "{}").await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert!(
            answer.to_string().contains(&legacy_alert.to_string())
                && answer.to_string().contains("top of the clock's range"),
            "{answer}"
        );
        let (status, _) = act(&hub, alert, "comment", r#"{"text":"still fine"}"#).await;
        assert_eq!(status, StatusCode::OK);
        hub.stop().await;
    })
    .await;
}
