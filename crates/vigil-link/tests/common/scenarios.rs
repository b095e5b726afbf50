//! The link scenarios, each run against every broker kind (see `embedded.rs` and
//! `mosquitto.rs`).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use vigil_core::{AlertEvent, HlcClock, Lane};
use vigil_link::metrics::names;
use vigil_link::{child_link, SenderConfig};
use vigil_wire::{encode, Message, NodeState, Status};

use super::*;

/// Child → parent, 5,000 events in both lanes: every one stored exactly once at the parent,
/// delivered once, acknowledged and deleted at the child.
pub async fn drains_5000_exactly_once(kind: BrokerKind) {
    init_tracing();
    let broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let mut parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let mut child = Child::start("gw-1", &broker.url(), &dirs.db("gw-1"));
    let mut sent = child.record(4_000, Lane::Normal).await;
    sent.extend(child.record(1_000, Lane::Critical).await);

    let delivered = parent.collect(5_000).await;
    assert_exactly_once(&delivered, &sent);
    assert_stored(&parent.store, &sent, 5_000);
    wait_until("the child's outbox to be acknowledged", || {
        child.backlog() == 0
    })
    .await;
    {
        let store = parent.store.lock();
        assert_eq!(
            store.inbox_cursor(&child.id, Lane::Normal).expect("cursor"),
            4_000
        );
        assert_eq!(
            store
                .inbox_cursor(&child.id, Lane::Critical)
                .expect("cursor"),
            1_000
        );
    }
    let acked = metric(&child.registry, names::EVENTS_ACKED, &[("link", "parent")]);
    assert_eq!(acked, 5_000.0, "every record acknowledged once");
    child.stop().await;
    parent.stop().await;
}

/// Four children draining backlogs at once: the parent commits the batches it finds
/// waiting together (one transaction per group), and every event still arrives exactly
/// once, with every child's cursors at its last event.
pub async fn many_children_drain_exactly_once(kind: BrokerKind) {
    init_tracing();
    let broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let mut children = Vec::new();
    let mut sent = Vec::new();
    for i in 0..4 {
        let id = format!("gw-{i}");
        let mut child = Child::start(&id, &broker.url(), &dirs.db(&id));
        sent.extend(child.record(1_200, Lane::Normal).await);
        sent.extend(child.record(300, Lane::Critical).await);
        children.push(child);
    }
    let mut parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let delivered = parent.collect(6_000).await;
    assert_exactly_once(&delivered, &sent);
    assert_stored(&parent.store, &sent, 6_000);
    for child in &children {
        wait_until("every child's outbox to be acknowledged", || {
            child.backlog() == 0
        })
        .await;
        let store = parent.store.lock();
        assert_eq!(
            store.inbox_cursor(&child.id, Lane::Normal).expect("cursor"),
            1_200
        );
        assert_eq!(
            store
                .inbox_cursor(&child.id, Lane::Critical)
                .expect("cursor"),
            300
        );
    }
    for child in children {
        child.stop().await;
    }
    parent.stop().await;
}

/// With both lanes backlogged, every critical event reaches the parent before any normal
/// one, although the normal ones were queued first.
pub async fn critical_before_normal(kind: BrokerKind) {
    init_tracing();
    let broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let child_db = dirs.db("gw-1");
    // Queue the backlog before the link exists.
    {
        let store = open(&child_db);
        let mut clock = HlcClock::default();
        let gw = node("gw-1");
        let mut backlog = events(&gw, 1_500, Lane::Normal, &mut clock);
        backlog.extend(events(&gw, 600, Lane::Critical, &mut clock));
        store
            .call(move |s| s.record_events("parent", &backlog))
            .await
            .expect("record");
    }
    let mut parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let child = Child::start("gw-1", &broker.url(), &child_db);
    let delivered = parent.collect(2_100).await;
    let (last_critical, first_normal) = lane_boundary(&delivered);
    assert_eq!(per_lane(&delivered).get(&Lane::Critical), Some(&600));
    assert!(
        last_critical < first_normal,
        "critical drained first: last critical at {last_critical:?}, first normal at {first_normal:?}"
    );
    child.stop().await;
    parent.stop().await;
}

/// The broker goes down mid-stream and comes back on the same port: nothing is lost,
/// nothing is stored twice.
pub async fn broker_restart_mid_stream(kind: BrokerKind) {
    init_tracing();
    let mut broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let mut parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let slow = SenderConfig {
        window: 2,
        max_batch_events: 100,
        ..fast_sender()
    };
    let mut child = Child::start_with("gw-1", &broker.url(), &dirs.db("gw-1"), slow);
    let sent = child.record(5_000, Lane::Normal).await;

    let mut delivered = parent.collect(300).await;
    broker.down();
    let before = parent.event_count();
    assert!(
        before < 5_000,
        "the broker stopped mid-stream ({before} delivered)"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.up();
    let rest = 5_000 - delivered.len();
    delivered.extend(parent.collect(rest).await);
    assert_exactly_once(&delivered, &sent);
    assert_stored(&parent.store, &sent, 5_000);
    wait_until("the child's outbox to be acknowledged", || {
        child.backlog() == 0
    })
    .await;
    assert!(
        metric(&child.registry, names::CONNECTS, &[]) >= 2.0,
        "reconnected"
    );
    child.stop().await;
    parent.stop().await;
}

/// The parent is away for a while (with the embedded broker, the broker goes with it; with
/// Mosquitto, only the parent's process): the child's outbox holds everything; when the
/// parent returns, the critical lane drains first.
pub async fn parent_down_then_critical_first(kind: BrokerKind) {
    init_tracing();
    let mut broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let mut child = Child::start("gw-1", &broker.url(), &dirs.db("gw-1"));
    wait_until("the parent to see the child", || {
        parent.sees(&child.id, NodeState::Online)
    })
    .await;
    parent.stop().await;
    if kind == BrokerKind::Embedded {
        broker.down();
    }

    let mut backlog = events(&child.id, 1_000, Lane::Normal, &mut child.clock);
    backlog.extend(events(&child.id, 200, Lane::Critical, &mut child.clock));
    let sent: Vec<AlertEvent> = backlog.iter().map(|(_, e)| e.clone()).collect();
    child.record_all(backlog).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        child.backlog(),
        1_200,
        "the outbox holds while the parent is away"
    );

    if kind == BrokerKind::Embedded {
        broker.up();
    }
    let mut parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let delivered = parent.collect(1_200).await;
    assert_exactly_once(&delivered, &sent);
    let (last_critical, first_normal) = lane_boundary(&delivered);
    assert!(
        last_critical < first_normal,
        "critical drained first after the outage: {last_critical:?} < {first_normal:?}"
    );
    wait_until("the child's outbox to be acknowledged", || {
        child.backlog() == 0
    })
    .await;
    child.stop().await;
    parent.stop().await;
}

/// The child dies mid-stream and its in-memory state is lost; reopened from its store, it
/// resumes after the last ack: every event once at the parent, and no more resent than
/// was in flight.
pub async fn child_restart_resumes_after_last_ack(kind: BrokerKind) {
    init_tracing();
    let broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let child_db = dirs.db("gw-1");
    let mut parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let sender = SenderConfig {
        window: 2,
        max_batch_events: 100,
        ..fast_sender()
    };
    let mut child = Child::start_with("gw-1", &broker.url(), &child_db, sender);
    let sent = child.record(5_000, Lane::Normal).await;
    let mut delivered = parent.collect(1_000).await;
    let store = child.kill().await;
    drop(store);

    let reopened = open(&child_db);
    let acked = reopened.lock().outbox_acked("parent").expect("acked");
    assert!(
        acked.normal > 0,
        "some of it was acknowledged before the crash"
    );
    drop(reopened);
    let child = Child::start_with("gw-1", &broker.url(), &child_db, sender);
    let rest = 5_000 - delivered.len();
    delivered.extend(parent.collect(rest).await);
    assert_exactly_once(&delivered, &sent);
    assert_stored(&parent.store, &sent, 5_000);
    let duplicates = metric(
        &parent.registry,
        names::EVENTS_RECEIVED,
        &[("outcome", "duplicate")],
    );
    let sent_again = metric(&child.registry, names::EVENTS_SENT, &[]);
    let resumed_from = acked.normal as f64;
    assert!(
        sent_again <= 5_000.0 - resumed_from + 2.0 * 200.0,
        "the restarted child sent {sent_again} events after resuming at {resumed_from}"
    );
    assert!(
        duplicates <= 2.0 * 200.0,
        "only what was in flight is resent: {duplicates} duplicates"
    );
    wait_until("the child's outbox to be acknowledged", || {
        child.backlog() == 0
    })
    .await;
    child.stop().await;
    parent.stop().await;
}

/// The parent queues events for the child — some while it is offline, some while it is
/// online: each is applied once in the child's store, delivered once, and acknowledged.
pub async fn downlink_exactly_once(kind: BrokerKind) {
    init_tracing();
    let broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let gw = node("gw-1");
    let mut clock = HlcClock::default();
    let early = events(&parent.id, 100, Lane::Critical, &mut clock);
    parent
        .handle
        .enqueue(&gw, early.clone())
        .await
        .expect("enqueue while the child is away");
    let mut child = Child::start("gw-1", &broker.url(), &dirs.db("gw-1"));
    wait_until("the parent to see the child", || {
        parent.sees(&gw, NodeState::Online)
    })
    .await;
    let late = events(&parent.id, 200, Lane::Normal, &mut clock);
    parent
        .handle
        .enqueue(&gw, late.clone())
        .await
        .expect("enqueue while the child is here");
    let expected: Vec<AlertEvent> = early.iter().chain(&late).map(|(_, e)| e.clone()).collect();
    let delivered = collect(&mut child.deliveries, 300).await;
    assert_exactly_once(&delivered, &expected);
    assert_stored(&child.store, &expected, 300);
    let link = child_link(&gw);
    wait_until("the downlink to be acknowledged", || {
        let store = parent.store.lock();
        Lane::ALL.iter().all(|lane| {
            store
                .outbox_lane_state(&link, *lane)
                .expect("state")
                .backlog_records
                == 0
        })
    })
    .await;
    {
        let store = child.store.lock();
        assert_eq!(
            store
                .inbox_cursor(&parent.id, Lane::Critical)
                .expect("cursor"),
            100
        );
        assert_eq!(
            store
                .inbox_cursor(&parent.id, Lane::Normal)
                .expect("cursor"),
            200
        );
    }
    child.stop().await;
    parent.stop().await;
}

/// A child that dies without a DISCONNECT is reported offline by its last will; one that
/// stops cleanly says so itself.
pub async fn last_will_marks_child_offline(kind: BrokerKind) {
    init_tracing();
    let broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let crashing = Child::start("gw-1", &broker.url(), &dirs.db("gw-1"));
    let stopping = Child::start("gw-2", &broker.url(), &dirs.db("gw-2"));
    let (gw1, gw2) = (crashing.id.clone(), stopping.id.clone());
    wait_until("both children online", || {
        parent.sees(&gw1, NodeState::Online) && parent.sees(&gw2, NodeState::Online)
    })
    .await;
    crashing.kill().await;
    wait_until("the last will of gw-1", || {
        parent.sees(&gw1, NodeState::Offline)
    })
    .await;
    assert!(parent.sees(&gw2, NodeState::Online));
    stopping.stop().await;
    wait_until("gw-2's offline status", || {
        parent.sees(&gw2, NodeState::Offline)
    })
    .await;
    assert_eq!(
        metric(&parent.registry, names::CHILDREN, &[("state", "offline")]),
        2.0
    );
    parent.stop().await;
}

/// Garbage on an up topic is counted by reason, not acknowledged, and changes nothing for
/// the children that speak the protocol.
pub async fn garbage_is_counted_not_fatal(kind: BrokerKind) {
    init_tracing();
    let broker = TestBroker::start(kind);
    let dirs = Dirs::new();
    let mut parent = Parent::start(&broker.url(), &dirs.db("parent"));
    let mut child = Child::start("gw-1", &broker.url(), &dirs.db("gw-1"));
    wait_until("the parent to see the child", || {
        parent.sees(&child.id, NodeState::Online)
    })
    .await;

    // A rogue client: garbage, and a status where a batch belongs, on gw-x's up topic.
    let port: u16 = broker
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let mut options = MqttOptions::new("gw-x", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (rogue, mut eventloop) = AsyncClient::new(options, 16);
    rogue
        .subscribe("vigil/v1/down/gw-x", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    rogue
        .publish(
            "vigil/v1/up/gw-x",
            QoS::AtLeastOnce,
            false,
            b"\x00\xffnot json".to_vec(),
        )
        .await
        .expect("publish garbage");
    let status = encode(&Message::Status(Status::last_will(node("gw-x"))));
    rogue
        .publish("vigil/v1/up/gw-x", QoS::AtLeastOnce, false, status)
        .await
        .expect("publish a status on up");
    let mut answers = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1_500);
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => answers += 1,
            Ok(Ok(_)) => {}
            Ok(Err(err)) => panic!("rogue client: {err}"),
            Err(_) => break,
        }
    }
    assert_eq!(answers, 0, "nothing is acknowledged to garbage");
    assert_eq!(
        metric(
            &parent.registry,
            names::DECODE_ERRORS,
            &[("label", "malformed")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &parent.registry,
            names::DECODE_ERRORS,
            &[("label", "wrong_topic")]
        ),
        1.0
    );

    // The parent carries on.
    let sent = child.record(100, Lane::Critical).await;
    let delivered = parent.collect(100).await;
    assert_exactly_once(&delivered, &sent);
    child.stop().await;
    parent.stop().await;
}
