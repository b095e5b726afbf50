//! An uplink that passes its parent's downlink events on ([`Uplink::with_forward`]), over
//! the embedded broker on loopback: what the policy selects is queued on the relay outbox
//! in the transaction that commits it, exactly once.

mod common;

use std::time::Duration;

use common::{
    bounded, collect, events, fast_backoff, fast_sender, init_tracing, node, open, wait_until,
    Dirs, Parent, TestBroker,
};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;
use vigil_core::{HlcClock, Lane};
use vigil_link::{Forward, LinkMetrics, OutboxPoke, Uplink, UplinkConfig};
use vigil_wire::NodeState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downlink_events_are_relayed_in_the_commit() {
    bounded(async {
        init_tracing();
        let broker = TestBroker::start(common::BrokerKind::Embedded);
        let dirs = Dirs::new();
        let parent = Parent::start(&broker.url(), &dirs.db("parent"));
        let hub = node("county-b");
        let store = open(&dirs.db("county-b"));
        let mut config = UplinkConfig::new(hub.clone(), broker.url());
        config.sender = fast_sender();
        config.backoff = fast_backoff();
        config.poll_interval = Duration::from_millis(200);
        let mut clock = HlcClock::default();
        let sent = events(&parent.id, 40, Lane::Critical, &mut clock);
        // The events of the first alert (ten of them) go on to the relay outbox, in the
        // normal lane.
        let first = sent[0].1.alert;
        let forward = Forward::new("relay", move |e: &vigil_core::AlertEvent| {
            (e.alert == first).then_some(Lane::Normal)
        })
        .with_poke(OutboxPoke::new());
        let mut uplink = Uplink::new(
            config,
            store.clone(),
            LinkMetrics::new(&Registry::new()).expect("metrics"),
        )
        .expect("uplink")
        .with_forward(forward);
        let mut deliveries = uplink.take_deliveries().expect("deliveries");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(uplink.run(shutdown.clone()));
        wait_until("the parent to see the hub", || {
            parent.sees(&hub, NodeState::Online)
        })
        .await;

        parent
            .handle
            .enqueue(&hub, sent.clone())
            .await
            .expect("enqueue");
        let delivered = collect(&mut deliveries, 40).await;
        assert_eq!(delivered.len(), 40);
        let want: Vec<_> = sent
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e.alert == first)
            .map(|e| e.id)
            .collect();
        let relayed: Vec<_> = store
            .call(|s| s.outbox_read("relay", Lane::Normal, 0, 1000, 1 << 24))
            .await
            .expect("read relay")
            .iter()
            .map(
                |r| match serde_json::from_slice(&r.payload).expect("link event") {
                    vigil_wire::LinkEvent::Alert(e) => e.id,
                    vigil_wire::LinkEvent::Audit(r) => r.event_id(),
                    other => panic!("not an alert event or audit record: {other:?}"),
                },
            )
            .collect();
        assert_eq!(want.len(), 10);
        assert_eq!(relayed, want, "the selected events, once, in order");
        shutdown.cancel();
        task.await.expect("join").expect("uplink ran");
        parent.stop().await;
    })
    .await;
}
