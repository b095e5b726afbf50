//! `GET /api/v1/stream` end to end: a raw HTTP client reads Server-Sent Events while an
//! operator acts over the API and the link side ingests a gateway's events; the stream ends
//! cleanly when the hub shuts down.

mod common;

use common::{Gateway, Hub, SseReader, PRISON_3};
use hyper::StatusCode;
use vigil_core::{AlertId, Severity};
use vigil_hub::auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_and_ingested_events_arrive_live_and_the_stream_ends_at_shutdown() {
    let mut gw = Gateway::new("gw-prison-3", PRISON_3);
    let fence = AlertId::generate();
    let hub = Hub::start(
        true,
        &[gw.raise(
            fence,
            "fence-north/zone1_alarm",
            "state",
            Severity::Critical,
            false,
        )],
    )
    .await;

    let resp = hub.send("GET", "/api/v1/stream", &[], "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let mut sse = SseReader::new(resp.into_body());

    // The client is counted.
    let (_, _, metrics) = hub.get_text("/metrics").await;
    assert!(
        metrics.lines().any(|l| l == "vigil_hub_sse_clients 1"),
        "{metrics}"
    );

    // An operator acknowledges: the stream carries the event and the alert as it now is.
    let li = hub.session("li.na", Role::Operator, PRISON_3).await;
    let (status, body) = hub
        .post(&format!("/api/v1/alerts/{fence}/ack"), &li.headers(), "")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let m = sse.next().await.expect("a message");
    assert_eq!(m.event, "acknowledged");
    assert_eq!(m.id, body["event"]["id"].as_str().expect("id"));
    let data: serde_json::Value = serde_json::from_str(&m.data).expect("JSON data");
    assert_eq!(data["event"]["body"]["type"], "acknowledged");
    assert_eq!(data["event"]["actor"]["user"], "li.na");
    assert_eq!(data["alert"]["id"], fence.to_string());
    assert_eq!(data["alert"]["state"], "active_ack");

    // The link side ingests a gateway's batch: a clear and a new raise.
    let door = AlertId::generate();
    let batch = vec![
        gw.clear(fence),
        gw.raise(door, "door-3/forced", "state", Severity::Major, true),
    ];
    hub.ingest(batch.clone()).await;
    let m = sse.next().await.expect("the clear");
    assert_eq!(m.event, "cleared");
    assert_eq!(m.id, batch[0].id.to_string());
    let data: serde_json::Value = serde_json::from_str(&m.data).expect("JSON data");
    assert_eq!(data["alert"]["state"], "normal", "cleared after its ack");
    let m = sse.next().await.expect("the raise");
    assert_eq!(m.event, "raised");
    let data: serde_json::Value = serde_json::from_str(&m.data).expect("JSON data");
    assert_eq!(data["alert"]["key"], "gw-prison-3/door-3/forced/state");
    assert_eq!(data["alert"]["state"], "active_unack");

    // Shutdown ends the stream instead of hanging the server.
    hub.stop().await;
    assert!(sse.next().await.is_none(), "the stream ended");
}
