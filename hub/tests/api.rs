//! The hub's HTTP API end to end on loopback: a real hub with a seeded store, driven over
//! HTTP — listing with filters and pages, one alert with its history, every operator action
//! with the outboxes it queues in, the refusals, the tree and the metrics.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{Gateway, Hub, PRISON_3, PRISON_4};
use hyper::StatusCode;
use serde_json::Value;
use vigil_core::{AlertEventBody, AlertId, Lane, NodeId, Severity, Timestamp};
use vigil_hub::auth::Role;
use vigil_wire::Status;

/// The alerts of the seeded store.
struct Seed {
    /// Critical fence alarm, active and unacknowledged.
    fence: AlertId,
    /// Major door alarm, latching, acknowledged and cleared: latched.
    door: AlertId,
    /// Minor temperature alarm, active.
    temp: AlertId,
    /// Major latching door alarm, acknowledged and still active.
    gate: AlertId,
    /// Warning from the other prison's gateway.
    other: AlertId,
    events: Vec<vigil_core::AlertEvent>,
}

fn seed() -> Seed {
    let mut gw3 = Gateway::new("gw-prison-3", PRISON_3);
    let mut gw4 = Gateway::new("gw-prison-4", PRISON_4);
    let (fence, door, temp, gate, other) = (
        AlertId::generate(),
        AlertId::generate(),
        AlertId::generate(),
        AlertId::generate(),
        AlertId::generate(),
    );
    let ack = || AlertEventBody::Acknowledged { comment: None };
    let events = vec![
        gw3.raise(door, "door-3/forced", "state", Severity::Major, true),
        gw3.event(door, ack()),
        gw3.clear(door),
        gw3.raise(temp, "env-1/temperature", "limit_h", Severity::Minor, false),
        gw3.raise(gate, "gate-1/forced", "state", Severity::Major, true),
        gw3.event(gate, ack()),
        gw4.raise(other, "ups-1/on_battery", "state", Severity::Warning, false),
        gw3.raise(
            fence,
            "fence-north/zone1_alarm",
            "state",
            Severity::Critical,
            false,
        ),
    ];
    Seed {
        fence,
        door,
        temp,
        gate,
        other,
        events,
    }
}

fn ids(list: &Value) -> Vec<String> {
    list["alerts"]
        .as_array()
        .expect("alerts array")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect()
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().expect("a JSON error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filter_and_page() {
    let s = seed();
    let hub = Hub::start(true, &s.events).await;

    let (status, all) = hub.get("/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all).len(), 5);
    assert_eq!(all["next"], Value::Null);
    // Most recently updated first: the fence alarm was raised last.
    assert_eq!(ids(&all)[0], s.fence.to_string());
    let fence = &all["alerts"][0];
    for field in [
        "id",
        "key",
        "site",
        "source",
        "kind",
        "severity",
        "state",
        "active",
        "acknowledged",
        "message",
        "value",
        "raised_at",
        "updated_at",
        "shelved_until",
        "incident",
        "closed",
        "assigned_to",
        "zone",
        "latching",
    ] {
        assert!(fence.get(field).is_some(), "field {field}: {fence}");
    }
    assert_eq!(fence["key"], "gw-prison-3/fence-north/zone1_alarm/state");
    assert_eq!(
        fence["source"],
        serde_json::json!({"node": "gw-prison-3", "device": "fence-north", "point": "zone1_alarm"})
    );
    assert_eq!(fence["kind"], "state");
    assert_eq!(fence["site"], PRISON_3);
    assert_eq!(fence["severity"], "critical");
    assert_eq!(fence["state"], "active_unack");
    assert_eq!(fence["active"], true);
    assert_eq!(fence["acknowledged"], false);
    assert_eq!(fence["value"], true);

    let only = |list: &Value| ids(list).into_iter().collect::<BTreeSet<_>>();
    let set = |alerts: &[AlertId]| {
        alerts
            .iter()
            .map(ToString::to_string)
            .collect::<BTreeSet<_>>()
    };
    let q = |query: &'static str| {
        let hub = &hub;
        async move {
            let (status, body) = hub.get(&format!("/api/v1/alerts?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    assert_eq!(only(&q("severity=critical").await), set(&[s.fence]));
    assert_eq!(
        only(&q("min_severity=major").await),
        set(&[s.fence, s.door, s.gate])
    );
    assert_eq!(
        only(&q("severity=major,warning").await),
        set(&[s.door, s.gate, s.other])
    );
    assert_eq!(only(&q("state=latched").await), set(&[s.door]));
    assert_eq!(
        only(&q("state=active_unack,active_ack").await),
        set(&[s.fence, s.temp, s.gate, s.other])
    );
    assert_eq!(only(&q("active=false").await), set(&[s.door]));
    assert_eq!(
        only(&q("site=ministry/gd/gz/baiyun/prison-4").await),
        set(&[s.other])
    );
    assert_eq!(only(&q("site=ministry/gd/gz/baiyun").await).len(), 5);
    assert!(
        only(&q("site=ministry/gd/gz/baiyun/prison").await).is_empty(),
        "a site matches on whole segments"
    );
    assert_eq!(only(&q("node=gw-prison-4").await), set(&[s.other]));

    // Pages of 2, while new alerts keep arriving: every seeded alert once, in list order,
    // and none of the new ones in the later pages.
    let mut gw = Gateway::new("gw-prison-3", PRISON_3);
    let mut seen = Vec::new();
    let mut path = "/api/v1/alerts?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, page) = hub.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        let fresh = AlertId::generate();
        let mut raise = gw.raise(
            fresh,
            &format!("new-{pages}/p"),
            "state",
            Severity::Info,
            false,
        );
        // Newer than everything seeded.
        raise.hlc = vigil_core::Hlc::new(raise.hlc.wall + 1_000_000, 0);
        hub.ingest(vec![raise]).await;
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/alerts?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids(&all));

    // Parameters that cannot be right.
    for bad in [
        "state=open",
        "severity=high",
        "limit=0",
        "limit=5000",
        "cursor=nonsense",
        "site=Ministry",
        "active=yes",
        "sevrity=critical",
    ] {
        let (status, body) = hub.get(&format!("/api/v1/alerts?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(!error_of(&body).is_empty());
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_with_its_events_in_fold_order() {
    let s = seed();
    let hub = Hub::start(false, &s.events).await;
    let (status, door) = hub.get(&format!("/api/v1/alerts/{}", s.door)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(door["state"], "latched");
    assert_eq!(door["latching"], true);
    let events = door["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["body"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["raised", "acknowledged", "cleared"]);
    let stamps: Vec<(u64, u64)> = events
        .iter()
        .map(|e| {
            (
                e["hlc"]["wall"].as_u64().expect("wall"),
                e["hlc"]["logical"].as_u64().expect("logical"),
            )
        })
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");

    let (status, body) = hub
        .get(&format!("/api/v1/alerts/{}", AlertId::generate()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_of(&body).contains("no alert"));
    let (status, body) = hub.get("/api/v1/alerts/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = hub.get("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_of(&body).contains("no such endpoint"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_recorded_and_queued_down_and_up() {
    let s = seed();
    let hub = Hub::start(true, &s.events).await;
    let pokes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&pokes);
    hub.link
        .pokes
        .set(move |link| sink.lock().expect("lock").push(link.to_owned()));
    let url = |id: AlertId, action: &str| format!("/api/v1/alerts/{id}/{action}");
    let zhang = hub
        .session("zhang.wei", Role::Supervisor, "ministry/gd")
        .await;
    let user = zhang.headers();

    // Acknowledge: state, event, actor, origin, stamp after the raise.
    let (status, body) = hub
        .post(&url(s.fence, "ack"), &user, r#"{"comment": "on it"}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"]["state"], "active_ack");
    assert_eq!(body["alert"]["acknowledged"], true);
    let ack = &body["event"];
    assert_eq!(ack["body"]["type"], "acknowledged");
    assert_eq!(ack["body"]["comment"], "on it");
    assert_eq!(ack["actor"], serde_json::json!({"user": "zhang.wei"}));
    assert_eq!(ack["origin"], "county-baiyun");
    let raise_wall = s.events.last().expect("fence raise").hlc.wall;
    assert!(ack["hlc"]["wall"].as_u64().expect("wall") >= raise_wall);

    // Queued down to the gateway and up to the parent, in the critical lane.
    let ack_id = ack["id"].as_str().expect("event id").to_owned();
    let down = hub.outbox("child:gw-prison-3", Lane::Critical).await;
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].id.to_string(), ack_id);
    assert!(matches!(down[0].body, AlertEventBody::Acknowledged { .. }));
    let up = hub.outbox("parent", Lane::Critical).await;
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].id.to_string(), ack_id);
    assert_eq!(
        *pokes.lock().expect("lock"),
        ["child:gw-prison-3", "parent"],
        "the drainers were woken"
    );

    // Twice is a conflict; an API token acts as token:NAME.
    let (status, body) = hub.post(&url(s.fence, "ack"), &[], "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("already acknowledged"));
    let (status, body) = hub.post(&url(s.temp, "ack"), &[], "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["event"]["actor"],
        serde_json::json!({"user": "token:harness"})
    );

    // Shelve: needs until or for; then shelved until then; unshelve once.
    let (status, body) = hub.post(&url(s.fence, "shelve"), &user, "{}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("until"), "{body}");
    let (status, body) = hub
        .post(
            &url(s.fence, "shelve"),
            &user,
            r#"{"until": "2001-01-01T00:00:00Z"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let before = Timestamp::now();
    let (status, body) = hub
        .post(
            &url(s.fence, "shelve"),
            &user,
            r#"{"for": "30m", "reason": "fence maintenance"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"]["state"], "shelved");
    assert_eq!(body["event"]["body"]["reason"], "fence maintenance");
    let until: Timestamp = body["alert"]["shelved_until"]
        .as_str()
        .expect("shelved_until")
        .parse()
        .expect("RFC 3339");
    let thirty_min = 30 * 60 * 1000;
    assert!(
        until >= before.plus_millis(thirty_min)
            && until <= Timestamp::now().plus_millis(thirty_min)
    );
    let (_, shelved) = hub.get("/api/v1/alerts?state=shelved").await;
    assert_eq!(ids(&shelved), [s.fence.to_string()]);
    let (status, body) = hub.post(&url(s.fence, "unshelve"), &user, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"]["state"], "active_ack");
    assert_eq!(body["alert"]["shelved_until"], Value::Null);
    let (status, _) = hub.post(&url(s.fence, "unshelve"), &user, "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = hub
        .post(
            &url(s.temp, "shelve"),
            &user,
            r#"{"until": "2999-01-01T00:00:00Z"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"]["shelved_until"], "2999-01-01T00:00:00.000Z");

    // Comment and assign.
    let (status, body) = hub
        .post(
            &url(s.fence, "comment"),
            &user,
            r#"{"text": "guard dispatched"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["event"]["body"]["text"], "guard dispatched");
    let (status, body) = hub
        .post(&url(s.fence, "comment"), &user, r#"{"text": " "}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = hub.post(&url(s.fence, "comment"), &user, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "text is required: {body}");
    let (status, body) = hub
        .post(
            &url(s.fence, "assign"),
            &user,
            r#"{"to": "response-team-b"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"]["assigned_to"], "response-team-b");

    // Reset (ISA-18.2): only a latched alert, and not while its condition is active.
    let (status, body) = hub.post(&url(s.gate, "reset"), &user, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("still active"), "{body}");
    let (status, body) = hub.post(&url(s.fence, "reset"), &user, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("not latched"), "{body}");
    let (status, body) = hub.post(&url(s.door, "reset"), &user, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"]["state"], "normal");

    // Close: the episode is over, and nothing more can be done to it.
    let (status, body) = hub
        .post(
            &url(s.fence, "close"),
            &user,
            r#"{"reason": "false alarm: wildlife"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["alert"]["closed"], true);
    for action in ["ack", "comment", "close", "unshelve"] {
        let body = if action == "comment" {
            r#"{"text": "x"}"#
        } else {
            ""
        };
        let (status, resp) = hub.post(&url(s.fence, action), &user, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {resp}");
        assert!(error_of(&resp).contains("closed"), "{resp}");
    }
    let (_, open) = hub.get("/api/v1/alerts").await;
    assert!(
        !ids(&open).contains(&s.fence.to_string()),
        "open alerts only by default"
    );
    let (_, closed) = hub.get("/api/v1/alerts?closed=true").await;
    assert_eq!(ids(&closed), [s.fence.to_string()]);

    // Every action went down; the history holds them in fold order.
    let down = hub.outbox("child:gw-prison-3", Lane::Critical).await;
    let names: Vec<&str> = down.iter().map(|e| e.body.name()).collect();
    assert_eq!(
        names,
        [
            "acknowledged",
            "shelved",
            "unshelved",
            "commented",
            "assigned",
            "reset",
            "closed"
        ]
    );
    let (_, fence) = hub.get(&format!("/api/v1/alerts/{}", s.fence)).await;
    let history: Vec<&str> = fence["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["body"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        history,
        [
            "raised",
            "acknowledged",
            "shelved",
            "unshelved",
            "commented",
            "assigned",
            "closed"
        ]
    );
    // The minor alert's actions travel in the normal lane, up too (escalation: minor+).
    assert_eq!(hub.outbox("child:gw-prison-3", Lane::Normal).await.len(), 2);
    assert_eq!(hub.outbox("parent", Lane::Normal).await.len(), 2);

    // A warning from the other gateway goes down to it, not up (below the policy).
    let (status, _) = hub.post(&url(s.other, "ack"), &user, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hub.outbox("child:gw-prison-4", Lane::Normal).await.len(), 1);
    assert_eq!(hub.outbox("parent", Lane::Normal).await.len(), 2);

    // Requests that cannot be right.
    let (status, body) = hub.post(&url(AlertId::generate(), "ack"), &user, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = hub.post(&url(s.temp, "comment"), &user, "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = hub
        .post(&url(s.temp, "assign"), &user, r#"{"to": "a", "extra": 1}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_parent_actions_only_go_down() {
    let s = seed();
    let hub = Hub::start(false, &s.events).await;
    let (status, _) = hub
        .post(&format!("/api/v1/alerts/{}/ack", s.fence), &[], "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        hub.outbox("child:gw-prison-3", Lane::Critical).await.len(),
        1
    );
    assert!(hub.outbox("parent", Lane::Critical).await.is_empty());
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_shows_children_health_and_alert_counts() {
    let s = seed();
    let hub = Hub::start(true, &s.events).await;
    let now = Timestamp::now();
    let mut status = Status::online(NodeId::new("gw-prison-3").expect("node"), None, now);
    status.devices_online = 19;
    status.devices_total = 20;
    // The health table, as the link engine keeps it (tests/link.rs fills it over MQTT).
    let (table, rx) = tokio::sync::watch::channel(vigil_link::Children::new());
    hub.link.children.follow(rx);
    table.send_modify(|t| {
        t.on_status(status, now);
    });

    let (code, tree) = hub.get("/api/v1/tree").await;
    assert_eq!(code, StatusCode::OK, "{tree}");
    assert_eq!(tree["id"], "county-baiyun");
    assert_eq!(tree["level"], "county");
    assert_eq!(tree["name"], "Baiyun County Command Centre");
    assert_eq!(tree["site"], "ministry/gd/gz/baiyun");
    assert_eq!(tree["state"], "online");
    assert_eq!(tree["alerts"]["open"], 5);
    let children = tree["children"].as_array().expect("children");
    assert_eq!(children.len(), 2, "{tree}");
    let gw3 = &children[0];
    assert_eq!(gw3["id"], "gw-prison-3");
    assert_eq!(gw3["state"], "online");
    assert_eq!(gw3["devices_online"], 19);
    assert_eq!(gw3["site"], PRISON_3);
    assert_eq!(gw3["alerts"]["open"], 4);
    assert_eq!(gw3["alerts"]["active"], 3);
    assert_eq!(gw3["alerts"]["unacknowledged"], 2);
    assert_eq!(gw3["alerts"]["by_severity"]["critical"], 1);
    assert_eq!(
        gw3["downlink_backlog"],
        serde_json::json!({"critical": 0, "normal": 0})
    );
    let gw4 = &children[1];
    assert_eq!(gw4["id"], "gw-prison-4");
    assert_eq!(gw4["state"], "unknown", "no status heard yet");
    assert_eq!(gw4["alerts"]["open"], 1);

    // An action shows up as downlink backlog and as the hub's own uplink backlog.
    let (code, _) = hub
        .post(&format!("/api/v1/alerts/{}/ack", s.fence), &[], "")
        .await;
    assert_eq!(code, StatusCode::OK);
    let (_, tree) = hub.get("/api/v1/tree").await;
    assert_eq!(tree["children"][0]["downlink_backlog"]["critical"], 1);
    assert_eq!(tree["backlog"]["critical"], 1);
    assert_eq!(tree["children"][0]["alerts"]["unacknowledged"], 1);

    // The last will turns it offline.
    table.send_modify(|t| {
        t.on_status(
            Status::last_will(NodeId::new("gw-prison-3").expect("node")),
            Timestamp::now(),
        );
    });
    let (_, tree) = hub.get("/api/v1/tree").await;
    assert_eq!(tree["children"][0]["state"], "offline");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text() {
    let s = seed();
    let hub = Hub::start(true, &s.events).await;
    let (status, _) = hub.get("/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub
        .post(&format!("/api/v1/alerts/{}/ack", s.fence), &[], "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub
        .post(&format!("/api/v1/alerts/{}/ack", s.fence), &[], "")
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut gw = Gateway::new("gw-prison-3", PRISON_3);
    hub.ingest(vec![gw.clear(s.temp)]).await;
    let (status, _, health) = hub.get_text("/healthz").await;
    assert_eq!((status, health.as_str()), (StatusCode::OK, "ok"));

    let (status, ctype, text) = hub.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let samples = common::check_prometheus_text(&text);
    for name in [
        "vigil_hub_http_requests_total",
        "vigil_hub_http_request_duration_seconds_bucket",
        "vigil_hub_alerts",
        "vigil_hub_operator_actions_total",
        "vigil_hub_operator_actions_refused_total",
        "vigil_hub_sse_clients",
        "vigil_hub_outbox_backlog_records",
        "vigil_hub_children",
    ] {
        assert!(samples.iter().any(|s| s == name), "{name} missing:\n{text}");
    }
    for line in [
        "vigil_hub_http_requests_total{method=\"GET\",route=\"/api/v1/alerts\",status=\"200\"} 1",
        "vigil_hub_http_requests_total{method=\"POST\",route=\"/api/v1/alerts/{id}/ack\",status=\"409\"} 1",
        "vigil_hub_alerts{severity=\"critical\",state=\"active_ack\"} 1",
        "vigil_hub_alerts{severity=\"major\",state=\"latched\"} 1",
        "vigil_hub_operator_actions_total{action=\"ack\"} 1",
        "vigil_hub_operator_actions_refused_total{action=\"ack\",reason=\"conflict\"} 1",
        "vigil_hub_events_ingested_total{type=\"cleared\"} 1",
        "vigil_hub_outbox_backlog_records{lane=\"critical\",link=\"child:gw-prison-3\"} 1",
        "vigil_hub_outbox_backlog_records{lane=\"critical\",link=\"parent\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    hub.stop().await;
}
